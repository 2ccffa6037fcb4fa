"""Credential resolution (ENV / populated / managed file / managed environment) and redaction."""
from __future__ import annotations

import logging
import os

import pytest

import vidlake
from vidlake.storage.creds import (
    Creds,
    credentials_file,
    env_var_name,
    install_log_redaction,
    redact,
    register_secrets,
    resolve_creds,
)

pytestmark = pytest.mark.timeout(60)

SECRET = "creds-test-secret-Yu7Hn2Lp"


@pytest.fixture
def creds_file(tmp_path, monkeypatch):
    path = tmp_path / "vidlake" / "credentials"
    path.parent.mkdir()
    monkeypatch.setenv("VIDLAKE_CREDENTIALS_FILE", str(path))
    for k in list(os.environ):
        if k.startswith("VIDLAKE_CREDS_"):
            monkeypatch.delenv(k)
    return path


def _write(path, text, mode):
    path.write_text(text)
    os.chmod(path, mode)


def test_env_key_means_default_chain():
    assert resolve_creds("ENV", managed=False, populated=None) is None
    assert resolve_creds("ENV", managed=True, populated={"aws_region": "x"}) is None


def test_populated_key():
    c = resolve_creds("bucket", managed=False,
                      populated={"aws_access_key_id": "AKIDPOP", "aws_secret_access_key": SECRET,
                                 "aws_region": "eu-west-1"})
    assert isinstance(c, Creds)
    assert dict(c)["aws_secret_access_key"] == SECRET
    assert SECRET not in repr(c)
    assert SECRET not in str(c)
    assert "eu-west-1" in repr(c)


def test_unpopulated_key_names_the_key():
    with pytest.raises(vidlake.CredentialsError, match="'my-key' is not populated"):
        resolve_creds("my-key", managed=False, populated=None)


def test_unknown_fields_refused():
    with pytest.raises(vidlake.CredentialsError, match="unknown field"):
        resolve_creds("k", managed=False, populated={"aws_secret": SECRET})


def test_managed_from_file(creds_file):
    assert credentials_file() == str(creds_file)
    _write(creds_file, f"[my-bucket]\naws_access_key_id = AKIDFILE\naws_secret_access_key = {SECRET}\n"
                       "endpoint_url = http://127.0.0.1:9\n\n[other]\naws_region = us-east-2\n", 0o600)
    c = resolve_creds("my-bucket", managed=True, populated=None)
    assert dict(c) == {"aws_access_key_id": "AKIDFILE", "aws_secret_access_key": SECRET,
                       "endpoint_url": "http://127.0.0.1:9"}
    assert resolve_creds("other", managed=True, populated=None) == {"aws_region": "us-east-2"}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_managed_file_readable_by_others_is_refused(creds_file, mode):
    _write(creds_file, f"[k]\naws_secret_access_key = {SECRET}\n", mode)
    with pytest.raises(vidlake.CredentialsError, match="chmod 600") as ei:
        resolve_creds("k", managed=True, populated=None)
    assert SECRET not in str(ei.value)


def test_managed_file_parse_error_does_not_quote_it(creds_file):
    _write(creds_file, f"no section header {SECRET}\n", 0o600)
    with pytest.raises(vidlake.CredentialsError) as ei:
        resolve_creds("k", managed=True, populated=None)
    assert SECRET not in str(ei.value)


def test_managed_from_environment(creds_file, monkeypatch):
    assert env_var_name("my-bucket.v2", "aws_secret_access_key") == \
        "VIDLAKE_CREDS_MY_BUCKET_V2_AWS_SECRET_ACCESS_KEY"
    monkeypatch.setenv("VIDLAKE_CREDS_MY_BUCKET_V2_AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("VIDLAKE_CREDS_MY_BUCKET_V2_AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("VIDLAKE_CREDS_MY_BUCKET_V2_ENDPOINT_URL", "http://127.0.0.1:9")
    # no file at all: the environment is used
    c = resolve_creds("my-bucket.v2", managed=True, populated=None)
    assert dict(c) == {"aws_access_key_id": "AKIDENV", "aws_secret_access_key": SECRET,
                       "endpoint_url": "http://127.0.0.1:9"}
    # a file without the key's section: still the environment
    _write(creds_file, "[someone-else]\naws_region = x\n", 0o600)
    assert resolve_creds("my-bucket.v2", managed=True, populated=None)["aws_access_key_id"] == "AKIDENV"
    # the file wins when it has the section
    _write(creds_file, "[my-bucket.v2]\naws_access_key_id = AKIDFILE\n", 0o600)
    assert resolve_creds("my-bucket.v2", managed=True, populated=None)["aws_access_key_id"] == "AKIDFILE"


def test_managed_missing_everywhere_names_the_key(creds_file):
    with pytest.raises(vidlake.CredentialsError, match=r"'ghost'.*VIDLAKE_CREDS_GHOST_AWS_ACCESS_KEY_ID"):
        resolve_creds("ghost", managed=True, populated=None)


def test_redact():
    d = {"aws_access_key_id": "AKIDX", "aws_secret_access_key": SECRET, "aws_session_token": "tok-abcdef",
         "endpoint_url": "http://h", "aws_region": "r", "headers": {"Authorization": "Bearer zzz-123"}}
    r = redact(d)
    assert r["aws_secret_access_key"] == r["aws_session_token"] == r["headers"] == r["aws_access_key_id"] == "***"
    assert r["endpoint_url"] == "http://h"
    assert r["aws_region"] == "r"
    assert d["aws_secret_access_key"] == SECRET  # a copy
    register_secrets(d)
    assert redact(f"failed with {SECRET} and Bearer zzz-123") == "failed with *** and ***"
    assert redact([SECRET, (SECRET,)]) == ["***", ("***",)]
    assert redact(ValueError(f"x {SECRET}")) == "ValueError: x ***"
    assert redact(42) == 42


def test_log_records_are_scrubbed(caplog):
    caplog.set_level(logging.DEBUG)
    secret = "log-scrub-secret-Pq9Wz"
    register_secrets({"aws_secret_access_key": secret})
    logging.getLogger("botocore.vidlake_test_child")  # created before installation
    install_log_redaction()
    logging.getLogger("botocore.vidlake_test_child").debug("header %s", secret)
    logging.getLogger("vidlake").info("value=" + secret)
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["header ***", "value=***"]

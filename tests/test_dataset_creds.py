"""Creds keys on datasets: names stored, secrets kept in memory only; ENV, populated and managed
keys; unpopulated and wrong credentials; no secret in any stored object or log record."""
from __future__ import annotations

import logging
import os
import traceback
import uuid
from pathlib import Path

import assets
import numpy as np
import pytest
from remote_fixtures import REGION

import vidlake
from vidlake.storage import get_provider

pytestmark = pytest.mark.timeout(60)

REF = str(assets.VIDEO_DIR / "carphone_distorted.mp4")
KEY = "videos/clip.mp4"


@pytest.fixture
def clip(moto_server, s3_bucket) -> str:
    moto_server.client().upload_file(REF, s3_bucket, KEY)
    return f"s3://{s3_bucket}/{KEY}"


def expected(idx) -> np.ndarray:
    return vidlake.VideoReader(REF).get_frames(np.asarray(idx, dtype=np.int64))


def all_stored_bytes(path: str, creds=None) -> bytes:
    p = get_provider(path, creds=creds, read_only=True)
    return b"\n".join(k.encode() + b"\0" + p.get(k) for k in p.list())


def test_names_are_stored_secrets_are_not(moto_server, s3_bucket, clip, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    link_secret = f"LINK-secret-{uuid.uuid4().hex}"
    link_token = f"LINK-token-{uuid.uuid4().hex}"
    ds_secret = f"DS-secret-{uuid.uuid4().hex}"
    link_creds = moto_server.creds(aws_secret_access_key=link_secret, aws_session_token=link_token)
    ds_creds = moto_server.creds(aws_secret_access_key=ds_secret)
    roots = [(str(tmp_path / "local_ds"), None), (f"s3://{s3_bucket}/ds", ds_creds)]
    errors: list[BaseException] = []
    for path, creds in roots:
        ds = vidlake.empty(path, creds=creds)
        ds.create_tensor("links", htype="link[video]")
        ds.add_creds_key("bucket")
        assert ds.get_creds_keys() == ["bucket"]
        ds.populate_creds("bucket", link_creds)
        with ds:
            ds.links.append(vidlake.link(clip, creds_key="bucket"))
            ds.links.append(vidlake.link(clip, creds_key="bucket", verify=False))
        assert np.array_equal(ds.links[0, [0, 5]].numpy(), expected([0, 5]))
        assert np.array_equal(ds.links[1, 9].numpy(), expected([9])[0])

        again = vidlake.load(path, creds=creds)
        assert again.get_creds_keys() == ["bucket"]              # the name persisted
        with pytest.raises(vidlake.CredentialsError, match="'bucket' is not populated") as ei:
            again.links[0, 0].numpy()                            # the secret did not
        errors.append(ei.value)
        assert again.links[0].shape == (ds.links[0].shape)        # metadata needs no creds
        again.populate_creds("bucket", link_creds)
        assert np.array_equal(again.links[0, 3].numpy(), expected([3])[0])
        for text in (repr(ds), repr(again), repr(again._populated_creds["bucket"]), str(again.links[0])):
            assert link_secret not in text
            assert link_token not in text

    stored = all_stored_bytes(*roots[0]) + all_stored_bytes(*roots[1])
    files = b"".join(Path(d, f).read_bytes() for d, _s, fs in os.walk(roots[0][0]) for f in fs)
    assert b'"creds_keys":[{"name":"bucket","managed":false}]' in stored
    assert b"creds_key" in stored
    assert b"bucket" in stored
    for secret in (link_secret, link_token, ds_secret):
        assert secret.encode() not in stored
        assert secret.encode() not in files
        for r in caplog.records:
            assert secret not in r.getMessage(), f"secret in a log record of {r.name}"
        for e in errors:
            assert secret not in "".join(traceback.format_exception(type(e), e, e.__traceback__))
    assert any(r.name.startswith("botocore") for r in caplog.records)  # the logs were captured


def test_key_rules(moto_server, clip):
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    with pytest.raises(vidlake.CredentialsError, match="add it first"):
        ds.populate_creds("nokey", moto_server.creds())
    with pytest.raises(ValueError, match="reserved"):
        ds.add_creds_key("ENV")
    ds.add_creds_key("a")
    ds.add_creds_key("b", managed=True)
    with pytest.raises(vidlake.DatasetError, match="already exists"):
        ds.add_creds_key("a")
    assert ds.get_creds_keys() == ["a", "b"]
    with pytest.raises(vidlake.CredentialsError, match="unknown field"):
        ds.populate_creds("a", {"password": "x"})
    with pytest.raises(vidlake.CredentialsError, match="'zzz' is not a creds key"):
        ds.links.append(vidlake.link(clip, creds_key="zzz"))
    with pytest.raises(vidlake.CredentialsError, match="'a' is not populated"):
        ds.links.append(vidlake.link(clip, creds_key="a"))   # verify reads the file: needs the secret
    ds.links.append(vidlake.link(clip, creds_key="a", verify=False))  # only the name is checked
    with pytest.raises(vidlake.CredentialsError, match="'a' is not populated"):
        _ = ds.links[0].shape
    assert len(ds.links) == 1


def test_env_key_uses_the_default_chain(moto_server, clip, monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.links.append(vidlake.link(clip, creds_key="ENV"))   # "ENV" needs no add_creds_key
    ds.links.append(vidlake.link(clip))                     # nor does None
    assert ds.get_creds_keys() == []
    assert np.array_equal(ds.links[:, 4].numpy(), np.stack([expected([4])[0]] * 2))


def test_managed_keys_from_file_and_environment(moto_server, clip, monkeypatch, tmp_path):
    cfile = tmp_path / "credentials"
    c = moto_server.creds()
    cfile.write_text("[from-file]\n" + "".join(f"{k} = {v}\n" for k, v in c.items()))
    os.chmod(cfile, 0o600)
    monkeypatch.setenv("VIDLAKE_CREDENTIALS_FILE", str(cfile))
    for field, value in c.items():
        monkeypatch.setenv(f"VIDLAKE_CREDS_FROM_ENV_{field.upper()}", value)
    ds = vidlake.empty(str(tmp_path / "ds"))
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key("from-file", managed=True)
    ds.add_creds_key("from-env", managed=True)
    ds.add_creds_key("nowhere", managed=True)
    ds.links.append(vidlake.link(clip, creds_key="from-file"))
    ds.links.append(vidlake.link(clip, creds_key="from-env"))
    with pytest.raises(vidlake.CredentialsError, match="'nowhere' was not found"):
        ds.links.append(vidlake.link(clip, creds_key="nowhere"))
    ds = vidlake.load(str(tmp_path / "ds"))  # managed keys need no populate_creds
    assert np.array_equal(ds.links[:, 2].numpy(), np.stack([expected([2])[0]] * 2))
    os.chmod(cfile, 0o644)
    ds = vidlake.load(str(tmp_path / "ds"))
    with pytest.raises(vidlake.CredentialsError, match="readable by others"):
        ds.links[0, 0].numpy()


def test_wrong_credentials_are_access_denied_naming_the_url(moto_server, clip, caplog):
    caplog.set_level(logging.DEBUG)
    ds = vidlake.empty(f"mem://{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key("bucket")
    ds.populate_creds("bucket", moto_server.creds())
    ds.links.append(vidlake.link(clip, creds_key="bucket"))
    wrong = f"WRONG-secret-{uuid.uuid4().hex}"
    ds.populate_creds("bucket", moto_server.creds(aws_access_key_id="AKIAWRONGKEY00000000",
                                                  aws_secret_access_key=wrong))
    with moto_server.enable_auth(), pytest.raises(vidlake.CredentialsError, match="access denied") as ei:
        ds.links[0, 1].numpy()
    msg = str(ei.value)
    assert clip in msg
    assert wrong not in msg
    assert all(wrong not in r.getMessage() for r in caplog.records)


def test_gcs_names_are_stored_secrets_are_not(gcs_server, gcs_bucket, token_server, tmp_path, caplog):
    """The same on GCS: a gs:// dataset and gs:// links, each with its own service-account key."""
    caplog.set_level(logging.DEBUG)
    clip = gcs_server.upload(gcs_bucket, KEY, REF)
    link_key = token_server.key(fresh=True)
    ds_key = token_server.key("ds-writer@vidlake-test.iam.gserviceaccount.com", fresh=True)
    link_creds = {"gcs_service_account": link_key, "endpoint_url": gcs_server.endpoint}
    ds_creds = {"gcs_service_account": ds_key, "endpoint_url": gcs_server.endpoint}
    roots = [(str(tmp_path / "local_ds"), None), (f"gs://{gcs_bucket}/ds", ds_creds)]
    errors: list[BaseException] = []
    for path, creds in roots:
        ds = vidlake.empty(path, creds=creds)
        ds.create_tensor("links", htype="link[video]")
        ds.add_creds_key("gcs")
        ds.populate_creds("gcs", link_creds)
        with ds:
            ds.links.append(vidlake.link(clip, creds_key="gcs"))
            ds.links.append(vidlake.link(clip, creds_key="gcs", verify=False))
        assert np.array_equal(ds.links[0, [0, 5]].numpy(), expected([0, 5]))
        assert np.array_equal(ds.links[1, 9].numpy(), expected([9])[0])
        again = vidlake.load(path, creds=creds)
        with pytest.raises(vidlake.CredentialsError, match="'gcs' is not populated") as ei:
            again.links[0, 0].numpy()
        errors.append(ei.value)
        again.populate_creds("gcs", link_creds)
        assert np.array_equal(again.links[0, 3].numpy(), expected([3])[0])
        for text in (repr(ds), repr(again), repr(again._populated_creds["gcs"]), str(again.links[0])):
            assert link_key["private_key"] not in text
            assert link_key["private_key_id"] not in text
    token_server.refuse = True  # a revoked key: access denied, naming the URL, not the key
    ds = vidlake.load(roots[0][0])
    ds.populate_creds("gcs", {"gcs_service_account": token_server.key(fresh=True),
                              "endpoint_url": gcs_server.endpoint})
    with pytest.raises(vidlake.CredentialsError, match="access denied") as ei:
        ds.links[0, 1].numpy()
    assert clip in str(ei.value)
    errors.append(ei.value)
    assert token_server.requests >= 3  # the keys were really exchanged for tokens
    token_server.refuse = False

    stored = all_stored_bytes(*roots[0]) + all_stored_bytes(*roots[1])
    files = b"".join(Path(d, f).read_bytes() for d, _s, fs in os.walk(roots[0][0]) for f in fs)
    assert b'"creds_keys":[{"name":"gcs","managed":false}]' in stored
    secrets = [link_key["private_key"].splitlines()[1], link_key["private_key_id"],
               ds_key["private_key"].splitlines()[1], ds_key["private_key_id"], token_server.access_token]
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret.encode() not in files
        for r in caplog.records:
            assert secret not in r.getMessage(), f"secret in a log record of {r.name}"
        for e in errors:
            assert secret not in "".join(traceback.format_exception(type(e), e, e.__traceback__))
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # the logs were captured

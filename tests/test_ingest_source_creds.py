"""Source credentials for ingest (issue 16): ``vidlake ingest s3://... --creds FILE|JSON|ENV:NAME``
and ``source_creds=`` on the ingest / resume API. The secrets reach the S3 client and nothing
else: every file of the dataset is scanned for them. Against moto in server mode, with its
access-key checks on, so a wrong or missing secret is refused."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np
import pytest
from helpers import video
from remote_fixtures import REGION, moto_server, s3_bucket  # noqa: F401

import vidlake
from vidlake.cli import main
from vidlake.jobs import ingest_files, new_ingest_journal

if TYPE_CHECKING:
    from pathlib import Path

CLIP = "stub_h264.mp4"


@pytest.fixture
def source(moto_server, s3_bucket, monkeypatch, tmp_path):  # noqa: F811
    """Three clips under ``s3://bucket/vids/`` readable only with an IAM user's key (moto's auth
    on), and an environment with no AWS credentials of its own."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3 = moto_server.client()
    for k in range(3):
        s3.upload_file(video(CLIP), s3_bucket, f"vids/v{k}.mp4")
    iam = moto_server.client("iam")
    user = f"ingest-{s3_bucket}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"],
             "endpoint_url": moto_server.endpoint, "aws_region": REGION}
    with moto_server.enable_auth():
        yield f"s3://{s3_bucket}/vids", creds


def _no_secret_stored(root: Path, creds: dict) -> None:
    secrets = [creds["aws_secret_access_key"].encode(), creds["aws_access_key_id"].encode()]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "spec.json" for p in files)
    for p in files:
        data = p.read_bytes()
        for s in secrets:
            assert s not in data, f"{p} holds a secret"


def _check(root: Path, prefix: str, n: int = 3) -> None:
    ds = vidlake.load(root)
    assert sorted(ds.videos[i].sample_info["filename"] for i in range(len(ds.videos))) == \
        [f"{prefix}/v{k}.mp4" for k in range(n)]
    want = vidlake.VideoReader(video(CLIP)).get_frames([0, 2])
    for i in range(n):
        np.testing.assert_array_equal(ds.videos[i, [0, 2]].numpy(), want)


@pytest.mark.parametrize("form", ["file", "json", "env"])
def test_cli_ingest_of_a_prefix_with_creds(source, tmp_path, monkeypatch, capsys, form):
    prefix, creds = source
    out = tmp_path / "ds"
    assert main(["ingest", prefix + "/", "--to", str(out), "-q"]) == 1    # the environment has none
    assert "vidlake ingest:" in capsys.readouterr().err
    if form == "file":
        f = tmp_path / "creds.json"
        f.write_text(json.dumps(creds))
        arg = str(f)
    elif form == "json":
        arg = json.dumps(creds)
    else:
        for field, v in creds.items():
            monkeypatch.setenv(f"VIDLAKE_CREDS_SRC_BUCKET_{field.upper()}", v)
        arg = "ENV:src-bucket"
    assert main(["ingest", prefix + "/", "--to", str(out), "-q", "--creds", arg]) == 0
    captured = capsys.readouterr()
    assert "ingested 3 of 3 file(s)" in captured.out
    assert creds["aws_secret_access_key"] not in captured.out + captured.err
    _check(out, prefix)
    _no_secret_stored(out, creds)


def test_cli_creds_argument_errors(tmp_path, capsys, monkeypatch):
    for bad, why in (("{not json", "JSON"), ('["a"]', "JSON object"), ("ENV:nothing-here", "VIDLAKE_CREDS_NOTHING_HERE_"),
                     ('{"aws_secret": "x"}', "unknown field")):
        monkeypatch.delenv("VIDLAKE_CREDS_NOTHING_HERE_AWS_ACCESS_KEY_ID", raising=False)
        with pytest.raises(SystemExit):
            main(["ingest", "s3://b/p/", "--to", str(tmp_path / "ds"), "--creds", bad])
        err = capsys.readouterr().err
        assert why in err, (bad, err)


def test_resume_with_source_creds(source, tmp_path):
    prefix, creds = source
    root = tmp_path / "ds"
    files = [f"{prefix}/v{k}.mp4" for k in range(3)]
    ds = vidlake.empty(root)
    journal = new_ingest_journal(ds, files, "videos", batch_size=2)
    # without the creds every file fails (and nothing is recorded as done) ...
    st = vidlake.load(root).resume_job(journal.id).status()
    assert (st["done"], st["failed"]) == (0, 3), st
    assert all("ccess" in e["cause"] or "redential" in e["cause"] for e in st["errors"]), st["errors"]
    # ... with them, the resumed job does all three
    st = vidlake.load(root).resume_job(journal.id, source_creds=creds).status()
    assert (st["state"], st["done"], st["failed"]) == ("completed", 3, 0), st
    _check(root, prefix)
    _no_secret_stored(root, creds)


def test_pool_workers_get_the_source_creds(source, tmp_path):
    prefix, creds = source
    root = tmp_path / "ds"
    ds = vidlake.empty(root)
    job = ingest_files(ds, [f"{prefix}/v{k}.mp4" for k in range(3)], workers=1, source_creds=creds)
    st = job.status()
    assert (st["state"], st["done"], st["failed"]) == ("completed", 3, 0), st
    _check(root, prefix)
    _no_secret_stored(root, creds)


def test_scene_jobs_take_source_creds(source, tmp_path):
    prefix, creds = source
    root = tmp_path / "ds"
    ds = vidlake.scene_dataset(root)
    scenes = [vidlake.VideoScene(f"s{k}", video_location=f"{prefix}/v{k}.mp4") for k in range(2)]
    st = ds.append(scenes, source_creds=creds).status()
    assert (st["done"], st["failed"]) == (2, 0), st
    assert vidlake.scene_dataset(root).scene("s1").frames[0:2].numpy().shape[0] == 2
    _no_secret_stored(root, creds)

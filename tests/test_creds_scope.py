"""Credentials go only where they were given for: a creds key's secrets are bound to their kind of
URL (S3 fields to s3://, HTTP headers to http(s)://) and to the buckets or hosts of
``populate_creds(..., scope=...)`` (else the first one the key is used with), so a stored link
naming another host never receives them."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from helpers import video

import vidlake

SECRET = {"headers": {"Authorization": "Bearer scope-test-Zq81"}}


def _ds(key="h"):
    ds = vidlake.empty(f"mem://scope-{uuid.uuid4().hex}")
    ds.create_tensor("links", htype="link[video]")
    ds.add_creds_key(key)
    return ds


def _other_host(url: str) -> str:
    # the same server reached by another name: a different host for the credentials' binding
    return url.replace("127.0.0.1", "localhost", 1)


def test_headers_go_only_to_the_scoped_host(http_server):
    url = http_server.add(f"scope-{uuid.uuid4().hex[:8]}/clip.mp4", Path(video("stub_h264.mp4")))
    ds = _ds()
    ds.populate_creds("h", SECRET, scope=url.split("/scope-")[0])
    ds.links.append(vidlake.link(url, creds_key="h"))                     # the scoped host: fine
    ds.links.append(vidlake.link(_other_host(url), creds_key="h", verify=False))
    assert ds.links[0, 0].numpy().shape[-1] == 3
    with pytest.raises(vidlake.CredentialsError, match="is bound to") as ei:
        ds.links[1, 0].numpy()
    assert "scope-test-Zq81" not in str(ei.value)


def test_without_scope_the_first_host_binds(http_server):
    url = http_server.add(f"scope-{uuid.uuid4().hex[:8]}/clip.mp4", Path(video("stub_h264.mp4")))
    ds = _ds()
    ds.populate_creds("h", SECRET)
    ds.links.append(vidlake.link(url, creds_key="h"))
    with pytest.raises(vidlake.CredentialsError, match="is bound to"):
        ds.links.append(vidlake.link(_other_host(url), creds_key="h"))
    assert len(ds.links) == 1


def test_s3_secrets_are_never_sent_to_an_http_url(http_server, moto_server):
    url = http_server.add(f"scope-{uuid.uuid4().hex[:8]}/clip.mp4", Path(video("stub_h264.mp4")))
    ds = _ds("b")
    ds.populate_creds("b", moto_server.creds())
    ds.links.append(vidlake.link(url, creds_key="b", verify=False))
    with pytest.raises(vidlake.CredentialsError, match="never sent to a http:// URL"):
        ds.links[0, 0].numpy()
    with pytest.raises(ValueError, match="not a remote URL"):
        ds.populate_creds("b", moto_server.creds(), scope="/local/path")

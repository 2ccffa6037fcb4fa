"""Reading frames of remote videos by byte ranges (S3, GCS, HTTP): exactness, bytes on the wire,
faults, cache.

Bytes are counted at the server side by a TCP proxy in front of the server (the vidlake side's
own counters are not trusted for the bound).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from remote_fixtures import HOST, CountingProxy, FaultProxy

import vidlake
from vidlake import RangeCache, RemoteRangeSource, _core, open_remote_video
from vidlake.storage import get_provider
from vidlake.storage.http import HTTPProvider
from vidlake.storage.retry import RetryPolicy
from vidlake.storage.s3 import S3Provider

pytestmark = pytest.mark.timeout(60)

SLACK = 512 * 1024
FAST = RetryPolicy(max_attempts=6, base_delay=0.02, max_delay=0.2, total_timeout=20)


@pytest.fixture(scope="module")
def local(big_video):
    """The local reader and index of the big video (the reference)."""
    idx = _core.Index.build(str(big_video.path))
    return vidlake.VideoReader(str(big_video.path), index=idx), idx


@pytest.fixture(scope="module")
def http_big(http_server, big_video):
    return http_server.add("videos/big.mp4", big_video.path)


def _split(uri: str) -> tuple[str, str]:
    parent, _, name = uri.rpartition("/")
    return parent, name


def _middle_gop(idx) -> tuple[int, int, int]:
    """(first frame, last frame, bytes) of the GOP in the middle of the video."""
    keys = [int(k) for k in idx.keyframe_indices]
    i = len(keys) // 2
    first, last = keys[i], (keys[i + 1] - 1 if i + 1 < len(keys) else idx.num_frames - 1)
    gop_bytes = sum(e - s for s, e in idx.byte_ranges(list(range(first, last + 1))))
    return first, last, gop_bytes


class Remote:
    """The big video on one remote backend: ``url``, ``port`` of its server, ``creds(endpoint)``."""

    def __init__(self, kind: str, url: str, port: int, creds) -> None:
        self.kind, self.url, self.port, self.creds = kind, url, port, creds
        self.key = _split(url)[1]

    def provider(self, endpoint: str, **kw):
        """A provider of the video's folder whose requests go to ``endpoint`` (a proxy)."""
        parent = _split(self.url)[0]
        if self.kind == "http":
            return HTTPProvider(parent.replace(parent.split("/")[2], endpoint.split("/")[2]), **kw)
        if self.kind == "s3":
            return S3Provider(parent, creds=self.creds(endpoint), **kw)
        p = get_provider(parent, creds=self.creds(endpoint))
        return type(p)(parent, creds=self.creds(endpoint), **kw)


@pytest.fixture(params=["s3", "gcs", "http"])
def remote(request) -> Remote:
    if request.param == "s3":
        moto, big = request.getfixturevalue("moto_server"), request.getfixturevalue("big_video_s3")
        return Remote("s3", big.s3_uri, moto.port, lambda endpoint=None: moto.creds(endpoint))
    if request.param == "gcs":
        gcs, url = request.getfixturevalue("gcs_server"), request.getfixturevalue("big_video_gcs")
        return Remote("gcs", url, gcs.port, lambda endpoint=None: gcs.creds(endpoint))
    http = request.getfixturevalue("http_server")
    return Remote("http", request.getfixturevalue("http_big"), http.port, lambda endpoint=None: None)


# -- exactness ---------------------------------------------------------------------------
def test_remote_frames_are_bit_identical(remote, local):
    ref, idx = local
    r = open_remote_video(remote.url, creds=remote.creds())  # index built remotely, through ranged reads
    assert len(r) == len(ref) == 600
    assert r.index.to_bytes() == idx.to_bytes()
    np.testing.assert_array_equal(r.timestamps, ref.timestamps)
    for i in (0, 1, 299, 300, 359, 599):
        assert np.array_equal(r[i], ref[i]), f"frame {i}"
    assert np.array_equal(r[10:200:37], ref[10:200:37])
    assert np.array_equal(r.get_frames([450, 17, 17, 580]), ref.get_frames([450, 17, 17, 580]))


def test_missing_remote_video(moto_server, big_video_s3, http_server):
    parent, _ = _split(big_video_s3.s3_uri)
    with pytest.raises(FileNotFoundError, match=r"no_such.mp4"):
        open_remote_video(parent + "/no_such.mp4", creds=moto_server.creds())
    with pytest.raises(FileNotFoundError, match=r"no_such.mp4"):
        open_remote_video(http_server.url + "/no_such.mp4")


# -- bytes on the wire -------------------------------------------------------------------
def test_one_frame_transfers_one_gop(remote, local, big_video):
    """Reading one frame from the middle of a large 1080p video, with the index known, moves at
    most that frame's GOP plus 512 KB over the wire, counted at the server side."""
    ref, idx = local
    kind = remote.kind
    proxy = CountingProxy(HOST, remote.port)
    try:
        p = remote.provider(proxy.url)
        src = RemoteRangeSource(p, remote.key, size=idx.source_size, cache=False)
        r = vidlake.VideoReader(src, index=idx)
        first, last, gop_bytes = _middle_gop(idx)
        proxy.reset()
        frame = r[last]  # the GOP's last frame: the whole GOP must be decoded
        wire = proxy.bytes_down
        assert np.array_equal(frame, ref[last])
        print(f"\n[{kind}] file {big_video.size} B, GOP {first}-{last} {gop_bytes} B, "
              f"one-frame read {wire} B over the wire ({wire - gop_bytes:+d} B vs GOP), "
              f"{proxy.connections} connection(s)")
        assert big_video.size > 20_000_000  # tens of MB
        assert wire <= gop_bytes + SLACK
        assert wire < big_video.size / 5
        # a frame right after the keyframe needs even less
        proxy.reset()
        assert np.array_equal(r[first + 1], ref[first + 1])
        assert proxy.bytes_down <= gop_bytes + SLACK
    finally:
        proxy.close()


def test_stored_index_means_no_demux(local, moto_server, big_video_s3):
    ref, idx = local
    proxy = CountingProxy(HOST, moto_server.port)
    try:
        r = open_remote_video(big_video_s3.s3_uri, creds=moto_server.creds(proxy.url), index=idx.to_bytes())
        assert proxy.bytes_down == 0  # nothing read yet: not even a HEAD (size comes from the index)
        assert np.array_equal(r[420], ref[420])
        assert proxy.bytes_down <= _middle_gop(idx)[2] + SLACK
    finally:
        proxy.close()


def test_several_gops_in_parallel(local, moto_server, big_video_s3):
    ref, idx = local
    parent, key = _split(big_video_s3.s3_uri)
    p = S3Provider(parent, creds=moto_server.creds(), part_size=1 << 20, max_workers=8)
    src = RemoteRangeSource(p, key, size=idx.source_size, cache=False)
    r = vidlake.VideoReader(src, index=idx)
    want = [30, 330, 560, 31]
    assert np.array_equal(r.get_frames(want), ref.get_frames(want))
    need = sum(e - s for s, e in idx.byte_ranges(want))
    assert src.stats["bytes_fetched"] <= need + SLACK


# -- faults ------------------------------------------------------------------------------
def test_frame_read_survives_transient_faults(remote, local):
    ref, idx = local
    proxy = FaultProxy(HOST, remote.port)
    try:
        p = remote.provider(proxy.url, retry=FAST)
        r = vidlake.VideoReader(RemoteRangeSource(p, remote.key, size=idx.source_size, cache=False), index=idx)
        proxy.fail(3, "503")
        assert np.array_equal(r[100], ref[100])
        proxy.fail(2, "drop")
        assert np.array_equal(r[250], ref[250])
        assert proxy.faults == 5
    finally:
        proxy.close()


def test_frame_read_permanent_failure(local, moto_server, big_video_s3):
    ref, idx = local
    proxy = FaultProxy(HOST, moto_server.port)
    try:
        parent, key = _split(big_video_s3.s3_uri)
        p = S3Provider(parent, creds=moto_server.creds(proxy.url),
                       retry=RetryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.3, total_timeout=2))
        r = vidlake.VideoReader(RemoteRangeSource(p, key, size=idx.source_size, cache=False), index=idx)
        proxy.fail_always("drop")
        t = time.monotonic()
        with pytest.raises(vidlake.StorageError) as ei:
            r[123]
        assert time.monotonic() - t < 10
        assert big_video_s3.s3_uri in str(ei.value)
        assert "attempt" in str(ei.value)
        proxy.heal()
        assert np.array_equal(r[123], ref[123])  # the reader is still usable
    finally:
        proxy.close()


# -- cache -------------------------------------------------------------------------------
def test_range_cache(local, moto_server, big_video_s3, tmp_path):
    ref, idx = local
    proxy = CountingProxy(HOST, moto_server.port)
    try:
        parent, key = _split(big_video_s3.s3_uri)
        cache = RangeCache(tmp_path / "cache", max_bytes=12 << 20)

        def reader():
            p = S3Provider(parent, creds=moto_server.creds(proxy.url))
            return vidlake.VideoReader(RemoteRangeSource(p, key, size=idx.source_size, cache=cache), index=idx)

        _first, last, gop_bytes = _middle_gop(idx)
        proxy.reset()
        assert np.array_equal(reader()[last], ref[last])
        assert 0 < proxy.bytes_down <= gop_bytes + SLACK
        proxy.reset()
        r2 = reader()  # a new reader (new decoder state), same cache
        assert np.array_equal(r2[last], ref[last])
        assert proxy.bytes_down == 0
        assert cache.hits >= 1
        # the cache stays within its bound as more GOPs are read
        for f in (10, 130, 250, 490):
            assert np.array_equal(r2[f], ref[f])
        assert cache.total_bytes <= 12 << 20
        proxy.reset()
        assert np.array_equal(reader()[490], ref[490])  # the most recent GOP is still cached
        assert proxy.bytes_down == 0
    finally:
        proxy.close()

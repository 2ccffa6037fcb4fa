"""The viewer (``vidlake/viewer/``) in a real browser: Debian's Chromium driven by Playwright.

Videos are generated here with the ffmpeg CLI: a grey moving test pattern with a magenta
32x32 square at ``(mod(7n, 288), mod(3n, 208))`` on frame ``n``, so a frame's number can be
read from its pixels and a box tensor of those squares must cover the square of the frame
on screen (a box one frame off is 7 px off). Encoded as H.264 mp4, HEVC mp4, VP9 webm and
MPEG-2; browsers decode the first and third, the frame player shows the others.

One browser for the module (launched from ``shutil.which("chromium")``, never downloaded).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import vidlake
from vidlake.viewer import Viewer

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (scripts/setup.sh does)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is needed (scripts/setup.sh installs it)"),
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg CLI makes the test videos"),
]

from remote_fixtures import (  # noqa: E402
    CountingProxy,
    http_server,  # noqa: F401
    moto_server,  # noqa: F401
    s3_bucket,  # noqa: F401
    s3_root,  # noqa: F401
)

REPO = Path(__file__).resolve().parents[1]
W, H, FPS, SECONDS = 320, 240, 25, 3
NFRAMES = FPS * SECONDS
SQ = 32


#: (left, top) of the square on each frame of the H.264 video, found in vidlake's decode
SQUARES: list[tuple[int, int]] = []


def square_at(n: int) -> tuple[int, int]:
    return SQUARES[n]


def find_squares(path: Path) -> list[tuple[int, int]]:
    """(left, top) of the magenta square on every frame, in vidlake's decode (the oracle)."""
    out = []
    for f in vidlake.VideoReader(str(path))[:]:
        r, g, b = (f[..., i].astype(int) for i in range(3))
        ys, xs = np.nonzero((r > 180) & (b > 180) & (g < 90))
        out.append((int(xs.min()), int(ys.min())))
    return out


def make_video(out: Path, codec: list[str], seconds: float = SECONDS) -> Path:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}:r={FPS}:d={seconds},hue=s=0",
           "-f", "lavfi", "-i", f"color=c=0xff00ff:s={SQ}x{SQ}:r={FPS}:d={seconds}",
           "-filter_complex", f"[0][1]overlay=x='mod(n*7\\,{W - SQ})':y='mod(n*3\\,{H - SQ})'",
           *codec, str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("viewer-videos")
    return {
        "h264": make_video(d / "sq.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-bf", "2"]),
        "hevc": make_video(d / "sq_hevc.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params",
                                               "log-level=error", "-tag:v", "hvc1"]),
        "vp9": make_video(d / "sq.webm", ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-deadline", "realtime",
                                          "-cpu-used", "8", "-b:v", "1M"]),
        "mpeg2": make_video(d / "sq.mpg", ["-c:v", "mpeg2video", "-q:v", "2", "-f", "mpeg"]),
    }


def boxes_ltwh(squares: list[tuple[int, int]]) -> list[np.ndarray]:
    return [np.array([[x, y, SQ, SQ]], dtype=np.float32) for x, y in squares]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, videos):
    SQUARES[:] = find_squares(videos["h264"])
    assert len(SQUARES) == NFRAMES
    moves = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(SQUARES, SQUARES[1:])]
    assert min(moves) >= 6  # a box one frame off is visibly off
    ds = vidlake.empty(str(tmp_path_factory.mktemp("viewer-ds") / "ds"))
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.create_tensor("boxes", htype="sequence[bbox]", coords={"type": "pixel", "mode": "LTWH"},
                         aligned_to="videos")
        ds.create_tensor("labels", htype="sequence[class_label]", class_names=["square"], aligned_to="videos")
        ds.create_tensor("ids", htype="sequence[]", dtype="uint32", aligned_to="videos")
        ds.create_tensor("metadata", htype="json")
        for k, name in enumerate(("h264", "hevc")):
            ds.append({"videos": vidlake.read(videos[name]), "boxes": boxes_ltwh(find_squares(videos[name])),
                       "labels": [[0]] * NFRAMES, "ids": [np.array([7 + k], np.uint32)] * NFRAMES,
                       "metadata": {"codec": name, "weather": "sun"}})
        ds.create_tensor("clips", htype="video", sample_compression="webm")
        ds.clips.append(vidlake.read(videos["vp9"]))
        ds.create_tensor("mpeg", htype="video", sample_compression="mpeg")
        ds.mpeg.append(vidlake.read(videos["mpeg2"]))
    return ds


@pytest.fixture(scope="module")
def viewer(dataset):
    with Viewer(dataset) as v:
        yield v
    assert v.closed


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1100, "height": 800}, device_scale_factor=1)
    pg = ctx.new_page()
    yield pg
    ctx.close()


def open_sample(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => window.vidlakePlayer !== undefined")


def wait_ready(page, n: int, timeout: float = 15000) -> None:
    page.wait_for_function(f"() => vidlakePlayer.ready() && vidlake.current() === {n}", timeout=timeout)


def stage_pixels(page, hide_overlay: bool = True) -> np.ndarray:
    """A screenshot of the frame area (the stage) as an RGB array."""
    from PIL import Image

    if hide_overlay:
        page.evaluate("() => { document.getElementById('overlay').style.visibility = 'hidden'; }")
    png = page.locator("#stage").screenshot()
    if hide_overlay:
        page.evaluate("() => { document.getElementById('overlay').style.visibility = ''; }")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of screenshot ``a`` and frame ``b``; a screenshot a pixel or two
    larger (sub-pixel layout) is compared at its best offset, a different size after resizing."""
    dy, dx = a.shape[0] - b.shape[0], a.shape[1] - b.shape[1]
    if 0 <= dy <= 2 and 0 <= dx <= 2:
        return min(float(np.abs(a[y:y + b.shape[0], x:x + b.shape[1]].astype(np.int16) - b).mean())
                   for y in range(dy + 1) for x in range(dx + 1))
    from PIL import Image

    a = np.asarray(Image.fromarray(a).resize((b.shape[1], b.shape[0]), Image.BILINEAR))
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def overlay_alpha(page) -> np.ndarray:
    """The alpha channel of the overlay canvas (what the viewer drew), (H, W)."""
    px = page.evaluate("""() => { const c = document.getElementById('overlay');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
    return np.asarray(px, dtype=np.uint8).reshape(H, W, 4)[..., 3]


def assert_box_drawn(alpha: np.ndarray, x: int, y: int) -> None:
    """A box stroke on the left, right and bottom edges of the square at (x, y), nothing 6 px
    inside or outside them (the top edge carries the caption)."""
    mid_y, mid_x = y + SQ // 2, x + SQ // 2
    edges = {"left": alpha[mid_y, x - 1:x + 2], "right": alpha[mid_y, x + SQ - 2:x + SQ + 1],
             "bottom": alpha[y + SQ - 2:y + SQ + 1, mid_x]}
    for name, px in edges.items():
        assert px.max() > 0, f"no {name} edge of the box at {x, y}"
    for px in (alpha[mid_y, x + 6], alpha[mid_y, x + SQ - 6], alpha[y + SQ - 6, mid_x],
               alpha[mid_y, max(0, x - 6)], alpha[min(H - 1, y + SQ + 6), mid_x]):
        assert px == 0, f"the box at {x, y} is drawn elsewhere"


def magenta_centre(rgb: np.ndarray) -> tuple[float, float]:
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    mask = (r > 180) & (b > 180) & (g < 90)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 200, "the magenta square is not in the frame"
    return float(xs.mean()), float(ys.mean())


def test_test_video_square_is_where_the_boxes_say(dataset):
    frames = dataset.videos[0, [0, 17, 40]].numpy()
    for f, n in zip(frames, (0, 17, 40)):
        x, y = square_at(n)
        cx, cy = magenta_centre(f)
        assert abs(cx - (x + SQ / 2 - 0.5)) < 1.5
        assert abs(cy - (y + SQ / 2 - 0.5)) < 1.5


def test_grid_page_names_tensors_and_shows_thumbnails(page, viewer, dataset):
    page.goto(viewer.url)
    html = page.content()
    for name in dataset.tensors:
        assert name in html
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.thumb')).every(i => i.complete)")
    widths = page.evaluate("() => Array.from(document.querySelectorAll('img.thumb')).map(i => i.naturalWidth)")
    assert widths == [240, 240]  # THUMB_WIDTH
    assert "sun" in page.inner_text("#grid")
    # each card links to its sample page, which points at the video by a URL in the markup
    href = page.get_attribute(".card a", "href")
    assert href.endswith("/s/videos/0")


def test_h264_plays_steps_to_exact_frames_and_boxes_follow(page, viewer, dataset, tmp_path):
    open_sample(page, viewer.sample_url("videos", 0))
    assert page.get_attribute("#stage", "data-mode") == "native"
    src = page.get_attribute("video", "src")
    assert src.startswith(f"/{viewer.token}/video/videos/0")
    page.evaluate("() => vidlakePlayer.play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 0.3", timeout=15000)
    page.evaluate("() => vidlakePlayer.pause()")
    # step with the arrow keys to frame 17, from frame 0
    page.evaluate("() => vidlakePlayer.seekFrame(0)")
    wait_ready(page, 0)
    for _ in range(17):
        page.keyboard.press("ArrowRight")
    wait_ready(page, 17)
    assert page.inner_text("#counter") == f"frame 17 / {NFRAMES}"
    ts = dataset.videos[0].timestamp
    assert page.inner_text("#time") == f"{float(ts[17]):.3f} s"
    shot = stage_pixels(page)
    want = dataset.videos[0, 16:19].numpy()
    d = [diff(shot, f) for f in want]
    assert d[1] < 6.0, d
    assert d[1] < min(d[0], d[2]) - 1.0, d
    # the box of frame 17 is drawn around the square of frame 17
    x, y = square_at(17)
    assert_box_drawn(overlay_alpha(page), x, y)
    cx, cy = magenta_centre(shot)  # and the square on screen is there
    assert abs(x + SQ / 2 - 0.5 - cx) < 1.5
    assert abs(y + SQ / 2 - 0.5 - cy) < 1.5
    page.keyboard.press("ArrowLeft")
    wait_ready(page, 16)
    assert diff(stage_pixels(page), want[0]) < 6.0
    # the README's screenshot: this page, with its box and caption
    page.evaluate("() => vidlakePlayer.seekFrame(20)")
    wait_ready(page, 20)
    out = tmp_path / "viewer.png"
    page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": 1100, "height": 420})
    if os.environ.get("VIDLAKE_WRITE_SCREENSHOT") == "1":
        shutil.copy(out, REPO / "docs" / "viewer.png")


# Collects, in the browser, for every frame presented during playback: the media time, the
# frame the viewer computes from it, and where the magenta square is in that very frame
# (drawImage inside requestVideoFrameCallback copies the frame being presented).
_PLAYBACK_PROBE = """async (ms) => {
  const v = document.querySelector('video');
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d', {willReadFrequently: true});
  const out = [];
  let on = true;
  const cb = (now, md) => {
    if (!on) return;
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let sx = 0, sy = 0, k = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > 180 && d[i + 2] > 180 && d[i + 1] < 90) { const p = i / 4; sx += p % c.width; sy += Math.floor(p / c.width); k++; }
    }
    const f = vidlake.frameAt(md.mediaTime);
    const ov = vidlake.data.overlays[0].boxes[f][0];
    out.push({t: md.mediaTime, frame: f, k, cx: sx / k, cy: sy / k, box: ov});
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
  await vidlakePlayer.play();
  await new Promise(r => setTimeout(r, ms));
  on = false; vidlakePlayer.pause();
  return {out, log: vidlake.log.slice(-400)};
}"""


def test_boxes_follow_the_frame_during_playback(page, viewer):
    open_sample(page, viewer.sample_url("videos", 0))
    page.evaluate("() => vidlakePlayer.seekFrame(0)")
    wait_ready(page, 0)
    res = page.evaluate(_PLAYBACK_PROBE, 1500)
    got = [r for r in res["out"] if r["k"] > 200]
    assert len(got) >= 5, res["out"][:5]
    frames = {r["frame"] for r in got}
    assert len(frames) >= 5
    for r in got:
        left, top, right, bottom = r["box"]
        assert abs((left + right) / 2 - r["cx"]) < 3, r
        assert abs((top + bottom) / 2 - r["cy"]) < 3, r
    # the viewer drew the frame the media time says, for every presented frame it logged
    times = {round(r["t"], 4): r["frame"] for r in got}
    logged = [(f, round(t, 4)) for f, t in res["log"] if t is not None and round(t, 4) in times]
    assert logged
    assert all(times[t] == f for f, t in logged)


def test_vp9_webm_plays(page, viewer):
    open_sample(page, viewer.sample_url("clips", 0))
    assert page.get_attribute("#stage", "data-mode") == "native"
    page.evaluate("() => vidlakePlayer.play()")
    page.wait_for_function("() => document.querySelector('video').currentTime > 0.3", timeout=15000)


def test_a_video_the_browser_refuses_switches_to_the_frame_player(page, viewer, dataset):
    open_sample(page, viewer.sample_url("videos", 0))
    wait_ready(page, 0)
    page.evaluate("() => document.querySelector('video').dispatchEvent(new Event('error'))")
    page.wait_for_function("() => vidlakePlayer.mode === 'frames'")
    assert page.get_attribute("#stage", "data-mode") == "frames"
    assert page.locator("video").count() == 0
    page.evaluate("() => vidlakePlayer.seekFrame(12)")
    wait_ready(page, 12)
    assert diff(stage_pixels(page), dataset.videos[0, 12].numpy()) < 4.0


@pytest.mark.parametrize(("tensor", "row"), [("videos", 1), ("mpeg", 0)], ids=["hevc", "mpeg2"])
def test_fallback_plays_frames_of_vidlakes_decoder(page, viewer, dataset, tensor, row):
    open_sample(page, viewer.sample_url(tensor, row))
    assert page.get_attribute("#stage", "data-mode") == "frames"
    assert "frame player" in page.inner_text("#mode")
    t0 = page.evaluate("() => vidlakePlayer.time()")
    page.evaluate("() => vidlakePlayer.play()")
    page.wait_for_function("() => vidlake.current() >= 5", timeout=20000)
    assert page.evaluate("() => vidlakePlayer.time()") > t0
    page.evaluate("() => vidlakePlayer.pause()")
    page.evaluate("() => vidlakePlayer.seekFrame(0)")
    wait_ready(page, 0)
    for _ in range(9):
        page.keyboard.press("ArrowRight")
    wait_ready(page, 9)
    shot = stage_pixels(page)
    want = dataset[tensor][row, 8:11].numpy()
    d = [diff(shot, f) for f in want]
    assert d[1] < 4.0, d  # a JPEG of vidlake's own frame 9
    assert d[1] < min(d[0], d[2]) - 1.0, d


def test_sample_page_lists_metadata_and_captions(page, viewer):
    open_sample(page, viewer.sample_url("videos", 0))
    wait_ready(page, 0)
    meta = page.inner_text("aside.meta")
    for word in ("metadata", "weather", "boxes"):
        assert word in meta
    data = page.evaluate("() => vidlake.data")
    assert data["overlays"][0]["captions"][3] == ["square 7"]  # class name and id on the box
    assert len(data["timestamps"]) == NFRAMES


def test_all_box_coordinate_modes_land_on_the_same_pixels(tmp_path, videos, browser):
    ds = vidlake.empty(str(tmp_path / "modes"))
    ltwh = boxes_ltwh(SQUARES)
    ltrb = [np.array([[b[0, 0], b[0, 1], b[0, 0] + SQ, b[0, 1] + SQ]], np.float32) for b in ltwh]
    ccwh = [np.array([[b[0, 0] + SQ / 2, b[0, 1] + SQ / 2, SQ, SQ]], np.float32) for b in ltwh]
    frac = [b / np.array([W, H, W, H], np.float32) for b in ltrb]
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        specs = {"ltrb": ({"mode": "LTRB"}, ltrb), "ccwh": ({"mode": "CCWH"}, ccwh),
                 "frac": ({"type": "fractional", "mode": "LTRB"}, frac)}
        for name, (coords, _) in specs.items():
            ds.create_tensor(name, htype="sequence[bbox]", coords=coords, aligned_to="videos")
        ds.append({"videos": vidlake.read(videos["h264"]), **{k: v for k, (_, v) in specs.items()}})
    with Viewer(ds) as v:
        ctx = browser.new_context(viewport={"width": 1100, "height": 800})
        pg = ctx.new_page()
        open_sample(pg, v.sample_url("videos", 0))
        data = pg.evaluate("() => vidlake.data.overlays")
        ctx.close()
    x, y = square_at(30)
    for ov in data:
        assert ov["boxes"][30] == [[pytest.approx(x, abs=0.01), pytest.approx(y, abs=0.01),
                                    pytest.approx(x + SQ, abs=0.01), pytest.approx(y + SQ, abs=0.01)]], ov["tensor"]


def test_range_requests_stream_only_what_the_browser_reads(page, tmp_path, http_server):  # noqa: F811
    big = tmp_path / "big.mp4"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", "color=c=gray:s=320x180:r=25:d=60,noise=alls=40:allf=t", "-c:v", "libx264", "-preset",
           "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-g", "50", str(big)]  # ~60 MB, 60 s
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    size = big.stat().st_size
    assert size > 40_000_000
    http_server.add("big.mp4", big)
    proxy = CountingProxy("127.0.0.1", http_server.port)
    try:
        ds = vidlake.empty(str(tmp_path / "links"))
        with ds:
            ds.create_tensor("videos", htype="link[video]")
            ds.videos.append(vidlake.link(f"{proxy.url}/big.mp4"))
        with Viewer(ds) as v:
            proxy.reset()
            open_sample(page, v.sample_url("videos", 0))
            page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=20000)
            time.sleep(0.5)
            down, sent = proxy.bytes_down, v.bytes_sent
            print(f"opening a {size} byte remote video: {down} bytes from storage, {sent} sent to the browser")
            # the first MB (Chromium reads ahead before it defers), the moov atom at the end
            assert down < 0.2 * size, (down, size)
            assert sent < 0.2 * size
            # playing reads on (as far as the browser buffers), and the server stays responsive
            page.evaluate("() => vidlakePlayer.play()")
            page.wait_for_function("() => document.querySelector('video').currentTime > 0.5", timeout=20000)
            t = time.monotonic()
            with urllib.request.urlopen(v.url, timeout=10) as r:
                assert r.status == 200
            assert time.monotonic() - t < 5
            page.evaluate("() => vidlakePlayer.pause()")
        # the viewer answers ranges as asked
        with Viewer(ds) as v:
            req = urllib.request.Request(f"{v.url}video/videos/0", headers={"Range": "bytes=100-199"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 206
                assert r.headers["Content-Range"] == f"bytes 100-199/{size}"
                assert r.read() == big.read_bytes()[100:200]
            req = urllib.request.Request(f"{v.url}video/videos/0", headers={"Range": f"bytes={size}-"})
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 416
    finally:
        proxy.close()


def test_s3_dataset_plays(page, s3_root, videos):  # noqa: F811
    root, creds = s3_root
    ds = vidlake.empty(root, creds=creds)
    with ds:
        ds.create_tensor("videos", htype="video", sample_compression="mp4")
        ds.videos.append(vidlake.read(videos["h264"]))
    ds = vidlake.load(root, creds=creds, read_only=True)
    with Viewer(ds) as v:
        open_sample(page, v.sample_url("videos", 0))
        page.evaluate("() => vidlakePlayer.play()")
        page.wait_for_function("() => document.querySelector('video').currentTime > 0.3", timeout=20000)


def test_bad_samples_show_an_error_page(page, viewer, tmp_path, videos):
    r = page.goto(viewer.sample_url("videos", 99))
    assert r.status == 404
    assert "no sample 99" in page.inner_text("#error-message")
    r = page.goto(viewer.url + "s/nosuch/0")
    assert r.status == 404
    assert "no tensor 'nosuch'" in page.inner_text("#error-message")
    # a linked file that is gone
    f = tmp_path / "gone.mp4"
    shutil.copy(videos["h264"], f)
    ds = vidlake.empty(str(tmp_path / "gone"), allow_local_links=True)
    with ds:
        ds.create_tensor("videos", htype="link[video]")
        ds.videos.append(vidlake.link(str(f)))
    f.unlink()
    with Viewer(ds) as v:
        r = page.goto(v.sample_url("videos", 0))
        assert r.status == 500
        assert "cannot be read" in page.inner_text("#error-message")
        assert "gone.mp4" in page.inner_text("#error-message")


def test_token_read_only_and_clean_shutdown(dataset):
    import http.client

    threads_before = threading.active_count()
    v = Viewer(dataset)
    idle = http.client.HTTPConnection("127.0.0.1", v.port, timeout=10)  # a keep-alive connection
    try:
        idle.request("GET", v.base)
        assert idle.getresponse().read()
        assert v.host == "127.0.0.1"
        assert len(v.token) >= 20
        bare = f"http://127.0.0.1:{v.port}/"
        for url in (bare, bare + "s/videos/0", bare + "static/viewer.js", bare + "x" + v.token[1:] + "/"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url, timeout=10)
            assert e.value.code == 403
        req = urllib.request.Request(v.url, data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 501
        with urllib.request.urlopen(v.url + "static/viewer.js", timeout=10) as r:
            assert b"requestVideoFrameCallback" in r.read()
    finally:
        v.close()
    assert v.closed
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(v.url, timeout=2)
    deadline = time.monotonic() + 5  # no handler thread outlives the server, idle ones included
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before, threading.enumerate()
    idle.close()


def test_play_and_visualize_open_the_browser(dataset, monkeypatch):
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    p = dataset.videos[1].play()
    assert opened == [p.url]
    assert p.url.endswith("/s/videos/1")
    assert "<iframe" in p._repr_html_()
    with urllib.request.urlopen(p.url, timeout=10) as r:
        assert b'id="vidlake-data"' in r.read()
    assert dataset.videos[0].play().viewer is p.viewer  # one server per dataset
    with pytest.raises(ValueError, match="play"):
        dataset.metadata.play(0)
    with dataset.visualize() as v:
        assert opened[-1] == v.url
    assert v.closed
    p.viewer.close()
    assert p.viewer.closed
    assert dataset.videos[0].play().viewer is not p.viewer  # a new one after close


def test_cli_view_serves_until_stopped(dataset):
    env = dict(os.environ)
    proc = subprocess.Popen([str(Path(os.sys.executable).parent / "vidlake"), "view", dataset.path, "--no-browser",
                             "--seconds", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving" in line, line + proc.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=20) as r:
            assert b"videos" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_viewers_stop_at_exit(dataset):
    code = ("import sys, urllib.request, vidlake; ds = vidlake.load(sys.argv[1], read_only=True); "
            "v = ds.visualize(open_browser=False); urllib.request.urlopen(v.url, timeout=10).read(); "
            "print(v.url, flush=True)")
    res = subprocess.run([os.sys.executable, "-c", code, dataset.path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    url = res.stdout.strip()
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(url, timeout=2)


def test_server_stays_responsive_during_a_slow_stream(dataset):
    with Viewer(dataset) as v:
        stop = threading.Event()

        def slow_reader():
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{v.url}video/videos/0", timeout=10) as r:
                while not stop.is_set() and r.read(1024):
                    time.sleep(0.05)

        th = threading.Thread(target=slow_reader, daemon=True)
        th.start()
        t = time.monotonic()
        with urllib.request.urlopen(v.url, timeout=10) as r:
            assert r.status == 200
        assert time.monotonic() - t < 3
        stop.set()
        th.join(timeout=5)


def test_payload_is_json_in_the_markup(viewer):
    with urllib.request.urlopen(viewer.sample_url("videos", 0), timeout=10) as r:
        html = r.read().decode()
    start = html.index('id="vidlake-data">') + len('id="vidlake-data">')
    data = json.loads(html[start:html.index("</script>", start)])
    assert data["frames"] == NFRAMES
    assert data["mode"] == "native"
    assert f'src="/{viewer.token}/video/videos/0"' in html


def test_image_sequence_plays_with_filmstrip_and_boxes(tmp_path, dataset, browser):
    """A MOT-style row: frames as a sequence[image] (jpg), boxes aligned to it; and a video row
    with an aligned sequence[image] shows it as a filmstrip."""
    frames = dataset.videos[0, 0:12].numpy()
    ds = vidlake.empty(str(tmp_path / "seq"))
    with ds:
        ds.create_tensor("frames", htype="sequence[image]", sample_compression="png")
        ds.create_tensor("boxes", htype="sequence[bbox]", aligned_to="frames")
        ds.append({"frames": list(frames), "boxes": boxes_ltwh(SQUARES[:12])})
    with Viewer(ds) as v:
        ctx = browser.new_context(viewport={"width": 1100, "height": 800})
        pg = ctx.new_page()
        open_sample(pg, v.sample_url("frames", 0))
        assert pg.get_attribute("#stage", "data-mode") == "frames"
        wait_ready(pg, 0)
        for _ in range(5):
            pg.keyboard.press("ArrowRight")
        wait_ready(pg, 5)
        assert diff(stage_pixels(pg), frames[5]) < 1.0  # the stored png, as it is
        assert_box_drawn(overlay_alpha(pg), *SQUARES[5])
        ctx.close()
    # a filmstrip beside a video: its items are shown, clicking one shows that frame
    ds2 = vidlake.empty(str(tmp_path / "strip"))
    with ds2:
        ds2.create_tensor("videos", htype="video", sample_compression="mp4")
        ds2.create_tensor("crops", htype="sequence[image]", sample_compression="jpg", aligned_to="videos")
        crops = [f[y:y + SQ, x:x + SQ] for f, (x, y) in zip(dataset.videos[0].numpy(), SQUARES)]
        ds2.append({"videos": vidlake.read(dataset.videos[0].sample_info["filename"]), "crops": crops})
    with Viewer(ds2) as v:
        ctx = browser.new_context(viewport={"width": 1100, "height": 800})
        pg = ctx.new_page()
        open_sample(pg, v.sample_url("videos", 0))
        assert pg.locator(".filmstrip img").count() == NFRAMES
        pg.locator('.filmstrip img[data-frame="8"]').click()
        wait_ready(pg, 8)
        assert pg.locator(".filmstrip img.current").get_attribute("data-frame") == "8"
        ctx.close()


@pytest.mark.parametrize(("name", "native"), [
    ("samplemp4.mp4", True), ("vp90-2-2pass-akiyo.webm", True), ("flipping_a_pancake.mkv", True),
    ("h265_video.mp4", False), ("amve.mp4", False), ("video_90.mov", False), ("h264small.ts", False),
    ("tinyavi.avi", False), ("matrixbench_mpeg2.lq1.mpg", False), ("vp8_video_with_alpha.webm", False),
])
def test_which_videos_play_natively(name, native):
    from assets import VIDEO_DIR

    from vidlake.viewer.media import native_playback

    path = VIDEO_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is not here (VIDLAKE_TESTDATA)")
    ds = vidlake.empty("mem://native-" + name.replace(".", "-"), overwrite=True)
    fmt = {"mp4": "mp4", "webm": "webm", "mkv": "mkv", "mov": "mov", "ts": "ts", "avi": "avi", "mpg": "mpeg"}
    ds.create_tensor("v", htype="video", sample_compression=fmt[name.rsplit(".", 1)[1]])
    ds.v.append(vidlake.read(path))
    ok, why = native_playback(ds.v, 0)
    assert ok == native, why
    assert ok or why


def test_play_in_jupyter_displays_inline_without_a_browser(dataset, monkeypatch):
    import sys
    import types

    class ZMQInteractiveShell:  # what a Jupyter kernel's get_ipython() returns
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    assert vidlake.viewer.in_notebook()
    p = dataset.videos[0].play()
    assert opened == []
    assert f'src="{p.url}"' in p._repr_html_()
    with dataset.visualize() as v:
        assert opened == []
        assert v.url in v._repr_html_()

"""Still images decode as Pillow decodes them by default; image_decoder="ffmpeg" is libavcodec's.

The JPEGs: every ``*.jpg`` / ``*.jpeg`` under the shared test data, the MJPEG frames of the shared
``stub_mjpeg.avi`` as JPEG files (stream copy, real encoder output), frames of shared videos
encoded by ffmpeg's MJPEG encoder (4:2:0, 4:2:2, 4:4:4, 1080p, odd sizes) and by Pillow
(qualities, subsamplings, progressive, grayscale, CMYK), and MOT-style generated frames.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import uuid

import annotation_assets as aa
import assets
import numpy as np
import pytest
from PIL import Image

import vidlake
from vidlake.video import IMAGE_DECODERS, JPEG_LIBRARY, decode_image, using_image_decoder

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def pillow_pixels(data: bytes) -> np.ndarray:
    """``np.asarray(Image.open(f).convert(...))`` with vidlake's channel rule (L stays 1 channel)."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode == "L":
            return np.asarray(im)[:, :, None]
        return np.asarray(im.convert("RGBA" if im.mode in ("RGBA", "LA", "PA") else "RGB"))


def _ffmpeg(*args) -> None:
    subprocess.run([*FFMPEG, *map(str, args)], check=True, capture_output=True)


def _pillow_jpeg(arr: np.ndarray, mode: str | None = None, **kw) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    (im.convert(mode) if mode else im).save(buf, "JPEG", **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> dict[str, bytes]:
    """name -> JPEG file bytes (see the module docstring)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is needed to make test JPEGs")
    root = tmp_path_factory.mktemp("jpegs")
    out: dict[str, bytes] = {}
    for p in sorted(list(assets.TESTDATA.rglob("*.jpg")) + list(assets.TESTDATA.rglob("*.jpeg"))):
        out[f"shared/{p.relative_to(assets.TESTDATA)}"] = p.read_bytes()
    v = assets.VIDEO_DIR
    _ffmpeg("-i", v / "stub_mjpeg.avi", "-c:v", "copy", "-bsf:v", "mjpeg2jpeg", root / "mjpeg_%d.jpg")
    made = [
        ("samplemp4.mp4", "yuvj420p", "", "420_640x360"),
        ("bikes.mp4", "yuvj422p", "", "422_640x272"),
        ("vp91-2-04-yuv444.webm", "yuvj444p", "", "444_352x288"),
        ("carphone_distorted.mp4", "yuvj420p", "scale=321:241", "420_odd_321x241"),
        ("demo_skeleton.mp4", "yuvj420p", "", "420_1080p"),
        ("vp8_video_with_alpha.webm", "yuvj420p", "", "420_320x213"),
    ]
    for src, pix, vf, name in made:
        _ffmpeg("-i", v / src, "-frames:v", 1, *(["-vf", vf] if vf else []), "-pix_fmt", pix, "-q:v", 3,
                root / f"ffmpeg_{name}.jpg")
    for p in sorted(root.glob("*.jpg")):
        out[p.name] = p.read_bytes()
    hd = pillow_pixels(out["ffmpeg_420_1080p.jpg"])
    crop = np.ascontiguousarray(hd[100:341, 200:521])          # 241 x 321
    for q, ss, prog in [(95, 0, False), (90, 1, False), (75, 2, False), (50, 2, True), (85, 0, True)]:
        out[f"pillow_q{q}_sub{ss}_prog{int(prog)}.jpg"] = _pillow_jpeg(crop, quality=q, subsampling=ss,
                                                                     progressive=prog)
    out["pillow_restart_markers.jpg"] = _pillow_jpeg(crop, quality=90, restart_marker_rows=2)
    out["pillow_gray.jpg"] = _pillow_jpeg(np.ascontiguousarray(crop[:, :, 1]), quality=90)
    out["pillow_cmyk.jpg"] = _pillow_jpeg(crop, "CMYK", quality=90)
    for p in aa.write_frames(root / "mot" / "img1", 3, 48, 64):
        out[f"mot_{p.name}"] = p.read_bytes()
    return out


def test_jpeg_library_is_libjpeg_turbo():
    assert JPEG_LIBRARY.startswith("libjpeg-turbo ")
    assert IMAGE_DECODERS == ("pillow", "ffmpeg")


def test_every_jpeg_equals_pillow_by_default(jpegs):
    assert len(jpegs) >= 20
    differ_ffmpeg = []
    for name, data in jpegs.items():
        want = pillow_pixels(data)
        got = decode_image(data, name=name)
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), f"{name}: max diff {np.abs(got.astype(int) - want).max()}"
        out = np.empty_like(want)
        assert decode_image(data, out=out) is out, name
        assert np.array_equal(out, want), name
        ff = decode_image(data, image_decoder="ffmpeg")
        assert ff.shape == want.shape, name
        if not np.array_equal(ff, want):
            differ_ffmpeg.append(name)
    # the reason for the default: libavcodec's JPEG pixels are not Pillow's
    assert len(differ_ffmpeg) > len(jpegs) // 2, differ_ffmpeg


def test_ffmpeg_decoder_equals_pyav(jpegs):
    for name, data in jpegs.items():
        if name in ("pillow_gray.jpg", "pillow_cmyk.jpg"):
            continue                      # PyAV's rgb24 is 3 channels; CMYK has no rgb24 path there
        assert np.array_equal(decode_image(data, image_decoder="ffmpeg"), aa.pyav_decode(data)), name


def test_channel_conversions_are_pillows(jpegs):
    gray, rgb = jpegs["pillow_gray.jpg"], jpegs["ffmpeg_420_640x360.jpg"]
    with Image.open(io.BytesIO(gray)) as im:
        want3 = np.asarray(im.convert("RGB"))
    out3 = np.empty(want3.shape, np.uint8)
    assert np.array_equal(decode_image(gray, out=out3), want3)
    with Image.open(io.BytesIO(rgb)) as im:
        want1 = np.asarray(im.convert("L"))[:, :, None]
        want4 = np.asarray(im.convert("RGBA"))
    assert np.array_equal(decode_image(rgb, out=np.empty(want1.shape, np.uint8)), want1)
    assert np.array_equal(decode_image(rgb, out=np.empty(want4.shape, np.uint8)), want4)


def test_png_and_webp_equal_pillow():
    rng = np.random.default_rng(3)
    base = np.asarray(Image.fromarray(aa.frame_image(4, 61, 83)).resize((83, 61)))
    noisy = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    rgba = np.dstack([noisy, rng.integers(0, 255, noisy.shape[:2], dtype=np.uint8)])

    def enc(im: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    cases = {
        "png_rgb": enc(Image.fromarray(noisy), "PNG"),
        "png_rgba": enc(Image.fromarray(rgba, "RGBA"), "PNG"),
        "png_gray": enc(Image.fromarray(noisy[:, :, 0]), "PNG"),
        "png_palette": enc(Image.fromarray(noisy).quantize(32), "PNG"),
        "webp_lossless": enc(Image.fromarray(noisy), "WEBP", lossless=True),
        "webp_lossy": enc(Image.fromarray(noisy), "WEBP", quality=80),
        "webp_lossy_rgba": enc(Image.fromarray(rgba, "RGBA"), "WEBP", quality=80),
    }
    for name, data in cases.items():
        want = pillow_pixels(data)
        assert np.array_equal(decode_image(data), want), name
        if name.startswith("png") or name == "webp_lossless":    # lossless: both decoders agree
            assert np.array_equal(decode_image(data, image_decoder="ffmpeg"), want), name
    lossy = cases["webp_lossy"]
    assert np.array_equal(decode_image(lossy, image_decoder="ffmpeg"), aa.pyav_decode(lossy))


def test_broken_jpegs_raise_naming_the_image(jpegs):
    data = jpegs["ffmpeg_420_640x360.jpg"]
    # Pillow refuses a truncated JPEG ("image file is truncated"), and so does the default;
    # libavcodec (image_decoder="ffmpeg") conceals the missing part instead
    with pytest.raises(OSError, match="truncated"):
        Image.open(io.BytesIO(data[: len(data) // 2])).load()
    with pytest.raises(vidlake.VideoDecodeError, match=r"frame\.jpg: the JPEG image is truncated"):
        decode_image(data[: len(data) // 2], name="frame.jpg")
    bad = data[:2] + b"\xff\xc0\x00\x05garbage" + data[40:]
    with pytest.raises(ValueError, match="not a readable image"):          # Pillow's header check
        decode_image(bad, name="frame.jpg")
    with pytest.raises(vidlake.VideoDecodeError, match=r"frame\.jpg: cannot decode the JPEG image"):
        decode_image(bad, out=np.empty((360, 640, 3), np.uint8), name="frame.jpg")     # the core's
    with pytest.raises(ValueError, match="image_decoder must be one of 'pillow', 'ffmpeg'"):
        decode_image(data, image_decoder="opencv")


def test_dataset_reads_default_option_and_tensor_default(tmp_path, jpegs):
    names = ["ffmpeg_420_640x360.jpg", "ffmpeg_420_odd_321x241.jpg", "mjpeg_1.jpg"]
    frames = [f"mot_{k:06d}.jpg" for k in (1, 2, 3)]
    ds = vidlake.empty(f"mem://img-{uuid.uuid4().hex}")
    ds.create_tensor("images", htype="image", sample_compression="jpg")
    ds.create_tensor("frames", htype="sequence[image]", sample_compression="jpg")
    ds.create_tensor("ff", htype="sequence[image]", sample_compression="jpg",
                     read_options={"image_decoder": "ffmpeg"})
    for n in names:
        ds.images.append(jpegs[n])
    ds.frames.append([jpegs[n] for n in frames])
    ds.ff.append([jpegs[n] for n in frames])
    pil = {n: pillow_pixels(jpegs[n]) for n in names + frames}
    av = {n: aa.pyav_decode(jpegs[n]) for n in names + frames}
    for k, n in enumerate(names):
        assert np.array_equal(ds.images[k].numpy(), pil[n]), n
        assert np.array_equal(ds.images[k].numpy(image_decoder="ffmpeg"), av[n]), n
    assert np.array_equal(ds.frames[0].numpy(), np.stack([pil[n] for n in frames]))     # rows path
    assert np.array_equal(ds.frames[0][1].numpy(), pil[frames[1]])                      # one item
    assert np.array_equal(ds.frames[0].numpy(image_decoder="ffmpeg"), np.stack([av[n] for n in frames]))
    assert np.array_equal(ds.ff[0].numpy(), np.stack([av[n] for n in frames]))          # tensor default
    assert np.array_equal(ds.ff[0][2].numpy(), av[frames[2]])
    assert np.array_equal(ds.ff[0].numpy(image_decoder="pillow"), np.stack([pil[n] for n in frames]))
    assert np.array_equal(ds[0, 0:3].numpy()["frames"], np.stack([pil[n] for n in frames]))
    ds.frames.set_read_options(image_decoder="ffmpeg")                                 # this process
    assert ds.frames.read_options == {"image_decoder": "ffmpeg"}
    assert np.array_equal(ds.frames[0][0].numpy(), av[frames[0]])
    with using_image_decoder("ffmpeg"):
        assert np.array_equal(ds.images[0].numpy(), av[names[0]])
    assert np.array_equal(ds.images[0].numpy(), pil[names[0]])


def test_image_decoder_option_is_checked(tmp_path):
    ds = vidlake.empty(str(tmp_path / "ds"))
    with pytest.raises(ValueError, match="image_decoder must be one of"):
        ds.create_tensor("a", htype="image", sample_compression="jpg", read_options={"image_decoder": "cv2"})
    with pytest.raises(ValueError, match="take one read option, image_decoder"):
        ds.create_tensor("b", htype="image", sample_compression="jpg", read_options={"rotate": True})
    with pytest.raises(ValueError, match="image_decoder is a read option of image tensors"):
        ds.create_tensor("v", htype="video", sample_compression="mp4", read_options={"image_decoder": "ffmpeg"})
    ds.create_tensor("v", htype="video", sample_compression="mp4")
    ds.create_tensor("labels", htype="class_label")
    ds.v.append(vidlake.read(str(assets.VIDEO_DIR / "stub_h264.mp4")))
    ds.labels.append(0)
    with pytest.raises(ValueError, match="image_decoder is a read option of image samples"):
        ds.v[0].numpy(image_decoder="ffmpeg")
    with pytest.raises(ValueError, match="image_decoder is a read option of image tensors"):
        ds.labels[0].numpy(image_decoder="ffmpeg")
    with pytest.raises(ValueError, match="image_decoder is a read option of image tensors"):
        ds.v.set_read_options(image_decoder="ffmpeg")
    assert list(ds.tensors) == ["v", "labels"]

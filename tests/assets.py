"""The test-asset registry: every video the reader tests use, declared once with its facts.

Three groups:

* ``shared``    -- real files in ``$VIDLAKE_TESTDATA/video`` (facts from MANIFEST.md / manifest.json);
* ``synthetic`` -- files written by ``$VIDLAKE_TESTDATA/make_synthetic.sh OUT [--quick]``
                   (a session fixture in conftest.py runs it once into a tmp dir);
* ``derived``   -- stream copies of synthetic files made by conftest.py with the ffmpeg CLI
                   (raw Annex-B .h264/.hevc, .m4v, .mkv, .mov, an upper-case .MP4).

``num_frames`` is the number of frames a plain sequential decode yields (the oracle in
oracle.py), which is what ``len(VideoReader(...))`` must return.  Where that differs from the
container's packet count the reason is in ``notes`` (edit-list discards, packets whose NAL units
do not split, truncation).

``pts_from_container=False`` marks containers that carry no usable presentation timestamps
(AVI, raw elementary streams): there vidlake's timestamps are FFmpeg's best-effort timestamps of
a sequential decode (test_timestamps.py), one frame duration apart.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("VIDLAKE_TESTDATA", str(REPO.parent / "shared" / "testdata")))
VIDEO_DIR = TESTDATA / "video"
REFERENCE_DIR = TESTDATA / "reference"
MAKE_SYNTHETIC = TESTDATA / "make_synthetic.sh"
FULL_TESTS = os.environ.get("VIDLAKE_FULL_TESTS", "") == "1"


@dataclass(frozen=True)
class Asset:
    name: str                 # file name; also the pytest id
    group: str                # "shared" | "synthetic" | "derived"
    codec: str                # ffprobe codec_name
    container: str            # first ffprobe format_name
    width: int
    height: int
    num_frames: int           # frames a sequential decode yields
    fps: str                  # nominal rate as a fraction string ("30000/1001")
    pix_fmt: str
    has_bframes: bool = False
    open_gop: bool = False
    rotation: int = 0         # display matrix, degrees counter-clockwise as ffprobe prints it
    pts_from_container: bool = True
    damaged: bool = False     # damaged packets: the reference is a single-threaded sequential decode
    vfr: bool = False
    stream_index: int = 0
    full_only: bool = False   # only with VIDLAKE_FULL_TESTS=1 (make_synthetic.sh without --quick)
    source: str = ""          # derived: the synthetic file it is copied from
    notes: str = ""

    @property
    def ten_bit(self) -> bool:
        return "10" in self.pix_fmt

    @property
    def fps_value(self) -> float:
        return float(Fraction(self.fps))

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3

    @property
    def large(self) -> bool:
        """Long or heavy: tests read fewer random frames from these."""
        return self.num_frames > 500 or self.frame_bytes * self.num_frames > 400_000_000

    def __str__(self) -> str:  # used as the pytest id
        return self.name


def _shared(name, codec, container, w, h, n, fps, pix_fmt="yuv420p", **kw) -> Asset:
    return Asset(name, "shared", codec, container, w, h, n, fps, pix_fmt, **kw)


def _syn(name, codec, container, w, h, n, fps, pix_fmt="yuv420p", **kw) -> Asset:
    return Asset(name, "synthetic", codec, container, w, h, n, fps, pix_fmt, **kw)


def _derived(name, source, codec, container, n, **kw) -> Asset:
    return Asset(name, "derived", codec, container, 320, 240, n, "30", "yuv420p", source=source, **kw)


SHARED = [
    _shared("samplemp4.mp4", "h264", "mov", 640, 360, 400, "30000/1001", has_bframes=True,
            notes="GOP 250, moov at end"),
    _shared("sampleavi.avi", "h264", "avi", 480, 270, 901, "30", has_bframes=True, pts_from_container=False,
            notes="H.264 with B-frames in AVI: no presentation timestamps"),
    _shared("sample_mp4.mp4", "h264", "mov", 480, 270, 901, "30", notes="faststart, AAC audio, GOP 90"),
    _shared("big_buck_bunny.mp4", "h264", "mov", 1280, 720, 132, "25", notes="720p, one GOP, AAC audio"),
    _shared("tinyavi.avi", "mpeg4", "avi", 852, 480, 2, "30",
            notes="2 video packets (header says 3) + MP3; no B-frames, so the AVI demuxer gives pts (0, 2/30)"),
    _shared("bikes.mp4", "h264", "mov", 640, 272, 250, "25", has_bframes=True, notes="6 keyframes"),
    _shared("carphone_distorted.mp4", "h264", "mov", 176, 144, 120, "30000/1001", has_bframes=True,
            notes="QCIF, single GOP"),
    _shared("realshort.mp4", "h264", "mov", 320, 240, 36, "45000/1499", notes="odd frame rate"),
    _shared("video_0.mov", "h264", "mov", 568, 320, 3, "30"),
    _shared("video_90.mov", "h264", "mov", 568, 320, 3, "30", rotation=-90),
    _shared("video_180.mov", "h264", "mov", 568, 320, 3, "30", rotation=-180),
    _shared("unordered.mov", "h264", "mov", 50, 50, 4, "32", has_bframes=True),
    _shared("corrupted.mp4", "h264", "mov", 1280, 720, 49, "10", has_bframes=True, damaged=True,
            notes="50 packets; packet 30's NAL units do not split -> not a frame"),
    _shared("flipping_a_pancake.mkv", "h264", "matroska", 426, 240, 310, "30", notes="1 ms timebase"),
    _shared("bulk-water.mov", "h264", "mov", 640, 424, 480, "24000/1001", pix_fmt="yuvj420p",
            has_bframes=True, notes="full range, GOP 240"),
    _shared("demo_skeleton.mp4", "h264", "mov", 1920, 1080, 72, "30", vfr=True, notes="one 0.2 s gap"),
    _shared("interlaced_crop.mp4", "h264", "mov", 640, 360, 126, "25", has_bframes=True, open_gop=True,
            notes="recovery-point I-frames with leading B-frames"),
    _shared("amve.mp4", "h264", "mov", 640, 360, 24, "30", pix_fmt="yuv420p10le", has_bframes=True),
    _shared("sample-in-issue-505.mp4", "h264", "mov", 480, 272, 105, "30", rotation=-90, stream_index=1,
            notes="106 packets, one discarded by the edit list; video is stream #1"),
    _shared("h264small.ts", "h264", "mpegts", 82, 144, 74, "15", notes="width 82"),
    _shared("streamloop.flv", "h264", "flv", 320, 240, 25, "25", has_bframes=True),
    _shared("frag_overlap.mp4", "h264", "mov", 640, 360, 96, "24000/1001", vfr=True,
            notes="fragmented, overlapping fragments: 108 packets, 96 frames"),
    _shared("stub_h264.mp4", "h264", "mov", 160, 120, 5, "10", has_bframes=True),
    _shared("stub_mp4v.mp4", "mpeg4", "mov", 160, 120, 5, "10"),
    _shared("stub_mjpeg.avi", "mjpeg", "avi", 160, 120, 3, "10", pix_fmt="yuvj420p",
            notes="intra-only: the AVI demuxer gives pts"),
    _shared("h265_video.mp4", "hevc", "mov", 128, 128, 10, "10", has_bframes=True, open_gop=True),
    _shared("h265_10bits.mp4", "hevc", "mov", 200, 200, 30, "30", pix_fmt="yuv420p10le", has_bframes=True),
    _shared("hdr10tags-both.mkv", "hevc", "matroska", 560, 320, 10, "25", pix_fmt="yuv420p10le",
            has_bframes=True, rotation=-90),
    _shared("two_first_slice.mp4", "hevc", "mov", 1920, 1080, 34, "15", pix_fmt="yuvj420p", vfr=True, damaged=True,
            notes="avg_frame_rate 13000/1851 vs r 15; truncated by FATE; last packet does not split into NAL units -> not a frame"),
    _shared("elst_ends_betn_b_and_i.mp4", "hevc", "mov", 320, 240, 24, "25", has_bframes=True, open_gop=True,
            notes="edit list ends between a B- and an I-frame: 25 packets, 24 frames"),
    _shared("av1_video.mkv", "av1", "matroska", 640, 360, 125, "25"),
    _shared("av1-1-b10-23-film_grain-50.ivf", "av1", "ivf", 352, 288, 10, "30", pix_fmt="yuv420p10le"),
    _shared("frames_refs_short_signaling.ivf", "av1", "ivf", 640, 360, 50, "30"),
    _shared("vp90-2-2pass-akiyo.webm", "vp9", "matroska", 352, 288, 50, "30000/1001"),
    _shared("vp91-2-04-yuv444.webm", "vp9", "matroska", 352, 288, 10, "25", pix_fmt="yuv444p"),
    _shared("vp92-2-20-10bit-yuv420.webm", "vp9", "matroska", 160, 90, 10, "50", pix_fmt="yuv420p10le"),
    _shared("vp90-2-16-intra-only.webm", "vp9", "matroska", 352, 288, 7, "30000/1001",
            notes="intra-only frames, no keyframe flag on the first packets"),
    _shared("dash_video4.webm", "vp8", "matroska", 320, 240, 812, "25"),
    _shared("vp8_video_with_alpha.webm", "vp8", "matroska", 320, 213, 120, "30", notes="height 213"),
    _shared("packed_bframes.avi", "mpeg4", "avi", 544, 352, 15, "30000/1001", has_bframes=True,
            pts_from_container=False, notes="packed B-frames"),
    _shared("matrixbench_mpeg2.lq1.mpg", "mpeg2video", "mpeg", 716, 236, 25, "25", has_bframes=True,
            open_gop=True, notes="MPEG-PS, width 716"),
    _shared("xdcam8mp2-1s_small.ts", "mpeg2video", "mpegts", 480, 270, 18, "30000/1001", pix_fmt="yuv422p",
            has_bframes=True, vfr=True),
    _shared("offset_test.ogv", "theora", "ogg", 512, 512, 10, "1"),
]

SYNTHETIC = [
    _syn("base_moov_end.mp4", "h264", "mov", 320, 240, 60, "30", has_bframes=True),
    _syn("base_faststart.mp4", "h264", "mov", 320, 240, 60, "30", has_bframes=True),
    _syn("truncated_half_faststart.mp4", "h264", "mov", 320, 240, 28, "30", has_bframes=True, damaged=True,
         notes="moov lists 60 samples; 28 packets present and whole, packet 28 cut"),
    _syn("corrupted_payload.mp4", "h264", "mov", 320, 240, 55, "30", has_bframes=True, damaged=True,
         notes="packets 32-36 overwritten with 0xFF: they do not split into NAL units"),
    _syn("one_frame.mp4", "h264", "mov", 320, 240, 1, "30"),
    _syn("vfr_setpts.mp4", "h264", "mov", 320, 240, 90, "60", vfr=True,
         notes="frames 0-29 @30fps, 30-59 @10fps, 60-89 @60fps"),
    _syn("odd_321x241_yuv444.mp4", "h264", "mov", 321, 241, 25, "25", pix_fmt="yuv444p", has_bframes=True),
    _syn("rotated_90.mp4", "h264", "mov", 320, 240, 60, "30", has_bframes=True, rotation=90),
    _syn("open_gop.mp4", "h264", "mov", 320, 240, 120, "30", has_bframes=True, open_gop=True),
    _syn("mjpeg.avi", "mjpeg", "avi", 320, 240, 30, "30", pix_fmt="yuvj420p", pts_from_container=False),
    _syn("mpeg4_bframes.avi", "mpeg4", "avi", 320, 240, 30, "30", has_bframes=True, pts_from_container=False),
    _syn("h264_10bit.mp4", "h264", "mov", 320, 240, 30, "30", pix_fmt="yuv420p10le", has_bframes=True),
    _syn("hevc.mp4", "hevc", "mov", 320, 240, 30, "30", has_bframes=True),
    _syn("vp9.webm", "vp9", "matroska", 320, 240, 30, "30"),
    _syn("vp8.webm", "vp8", "matroska", 320, 240, 30, "30"),
    _syn("av1.mp4", "av1", "mov", 320, 240, 30, "30"),
    _syn("mpeg2.mpg", "mpeg2video", "mpeg", 320, 240, 30, "30", has_bframes=True),
    _syn("with_audio.mp4", "h264", "mov", 320, 240, 60, "30", has_bframes=True),
    _syn("uhd_4k_short.mp4", "h264", "mov", 3840, 2160, 15, "30", full_only=True),
    _syn("long_gop_1080p.mp4", "h264", "mov", 1920, 1080, 360, "30", has_bframes=True, full_only=True,
         notes="keyframes at 0 and 300"),
]

DERIVED = [
    _derived("base_annexb.h264", "base_moov_end.mp4", "h264", "h264", 60, has_bframes=True,
             pts_from_container=False, notes="raw Annex-B elementary stream"),
    _derived("hevc_annexb.hevc", "hevc.mp4", "hevc", "hevc", 30, has_bframes=True,
             pts_from_container=False, notes="raw Annex-B elementary stream"),
    _derived("base_copy.m4v", "base_moov_end.mp4", "h264", "mov", 60, has_bframes=True),
    _derived("base_copy.mkv", "base_moov_end.mp4", "h264", "matroska", 60, has_bframes=True),
    _derived("base_copy.mov", "base_moov_end.mp4", "h264", "mov", 60, has_bframes=True),
    _derived("base_upper.MP4", "base_moov_end.mp4", "h264", "mov", 60, has_bframes=True,
             notes="upper-case extension"),
]

# Inputs that cannot be opened: each must raise VideoDecodeError naming the file.
BAD_INPUTS = [
    "zero_bytes.mp4", "not_a_video.mp4", "truncated_no_moov.mp4", "corrupted_header.mp4",
    "audio_only.mp4", "png_image_named.mp4",
]

ALL_ASSETS = SHARED + SYNTHETIC + DERIVED
BY_NAME = {a.name: a for a in ALL_ASSETS}
# Every asset this run reads (the 4K / long-GOP synthetic files only with VIDLAKE_FULL_TESTS=1).
READABLE = [a for a in ALL_ASSETS if FULL_TESTS or not a.full_only]


def get(name: str) -> Asset:
    return BY_NAME[name]


def select(*names: str) -> list:
    return [BY_NAME[n] for n in names]

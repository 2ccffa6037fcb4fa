#!/usr/bin/env python
"""The packet index from MP4 container tables on 1 GB+ files, locally and over HTTP (issue 19).

    python bench/index_tables.py                     # 1.1 GB files in /tmp/vidlake-bench-tables
    python bench/index_tables.py --loops 3           # a quick look (~150 MB)

A 1080p H.264 source (testsrc2, 20 s, libx264 ultrafast crf 18, GOP 250, about 50 MB) is
generated once with the ffmpeg CLI, then stream-copied ``--loops`` times end to end into two
files: moov at the end (ffmpeg's default) and fragmented (``-movflags frag_keyframe``). For each
file it reports:

* local index build, full demux vs container tables (median of 3): time, MB/s of file indexed,
  bytes read (``Index.build_bytes``);
* the index built over HTTP with ``open_remote_video`` from a loopback Range server that counts
  the bytes it sends (bodies only), tables (the default for remote sources) vs full demux;
* whether the tables index equals the full demux's byte for byte.
"""
from __future__ import annotations

import argparse
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import vidlake
from vidlake import _core, open_remote_video


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_files(folder: Path, loops: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "src_1080p_g250.mp4"
    if not src.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", "20", "-c:v", "libx264",
               "-preset", "ultrafast", "-crf", "18", "-g", "250", "-pix_fmt", "yuv420p", str(src))
    out = {}
    for name, flags in [("moov_end", []), ("fragmented", ["-movflags", "frag_keyframe"])]:
        p = folder / f"{name}_x{loops + 1}.mp4"
        if not p.exists():
            ffmpeg("-stream_loop", str(loops), "-i", str(src), "-c", "copy", *flags, str(p))
        out[name] = p
    return out


class CountingRangeHandler(http.server.SimpleHTTPRequestHandler):
    sent = 0
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        size = path.stat().st_size
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else max(0, size - int(b))
            end = min(size - 1, int(b)) if (a and b) else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        n = end - start + 1
        self.send_header("Content-Length", str(n))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            left = n
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        with self.lock:
            type(self).sent += n - left

    def do_HEAD(self) -> None:
        path = Path(self.translate_path(self.path))
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *a, **k: CountingRangeHandler(*a, directory=str(folder), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/vidlake-bench-tables")
    ap.add_argument("--loops", type=int, default=21, help="extra copies of the 50 MB source (21: 1.1 GB)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    files = make_files(Path(args.dir), args.loops)
    srv, base = serve(Path(args.dir))
    print(f"vidlake {vidlake.__version__}, FFmpeg {_core.FFMPEG_VERSIONS['libavcodec']}, "
          f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores", file=sys.stderr)
    print("| file | size | local demux | local tables | HTTP demux: bytes sent | HTTP tables: time, bytes sent (share) | equal |")
    print("|---|---|---|---|---|---|---|")
    try:
        for name, p in files.items():
            size = p.stat().st_size
            td, d = timed(lambda p=p: _core.Index.build(str(p), -1, str(p), "demux"), args.repeats)
            tt, t = timed(lambda p=p: _core.Index.build(str(p), -1, str(p), "tables"), args.repeats)
            CountingRangeHandler.sent = 0
            t0 = time.perf_counter()
            rt = open_remote_video(f"{base}/{p.name}", cache=False)
            http_tables = time.perf_counter() - t0
            tables_sent = CountingRangeHandler.sent
            CountingRangeHandler.sent = 0
            rd = open_remote_video(f"{base}/{p.name}", cache=False, index_mode="demux")
            demux_sent = CountingRangeHandler.sent
            equal = d.to_bytes() == t.to_bytes() == rt.index.to_bytes() == rd.index.to_bytes()
            print(f"| {name} | {size / 1e9:.2f} GB, {d.num_frames} frames | {td:.2f} s ({size / td / 1e6:.0f} MB/s), "
                  f"{d.build_bytes / 1e6:.0f} MB read | {tt * 1000:.0f} ms, {t.build_bytes / 1e3:.0f} KB read | "
                  f"{demux_sent / 1e6:.0f} MB | {http_tables * 1000:.0f} ms, {tables_sent / 1e3:.0f} KB "
                  f"({100 * tables_sent / size:.3f} %) | {'yes' if equal else 'NO'} |", flush=True)
            if not equal:
                print(f"{name}: the tables index differs from the full demux's", file=sys.stderr)
                return 1
    finally:
        srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

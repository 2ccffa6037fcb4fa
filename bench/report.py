"""Turn compare.py's results dict into bench/RESULTS.md and PNG charts (matplotlib, Agg)."""
from __future__ import annotations

import json
import math
from pathlib import Path

TORCHCODEC = ["torchcodec", "torchcodec_approx", "torchcodec_1t", "torchcodec_approx_1t"]
PEERS = ["pyav", "decord", "opencv", "deeplake3", *TORCHCODEC]
ORDER = ["vidlake", "vidlake_ds", "pyav", "decord", "opencv", "deeplake3", *TORCHCODEC]
FAMILIES = {
    "random": ["cold", "warm_random", "batch10"],
    "sequential": ["clip", "strided", "first100"],
    "full": ["full", "full_stream", "resize224"],
}
TITLES = {
    "cold": "cold: open + 1 random frame",
    "warm_random": "warm random single frame",
    "batch10": "10 random frames in one call",
    "clip": "clip 100:200",
    "strided": "strided 0:300:5",
    "first100": "first 100 frames",
    "full": "full decode",
    "full_stream": "full decode, streamed in batches of 8 through one buffer",
    "resize224": "decode + resize to 224x224 (10 random frames)",
}
COLORS = {"vidlake": "#1f77b4", "vidlake_ds": "#aec7e8", "pyav": "#ff7f0e", "decord": "#2ca02c",
          "opencv": "#d62728", "deeplake3": "#9467bd", "torchcodec": "#8c564b", "torchcodec_approx": "#c49c94",
          "torchcodec_1t": "#e377c2", "torchcodec_approx_1t": "#f7b6d2", "limit1": "#7f7f7f",
          "limit2": "#c7c7c7", "ffmpeg": "#bcbd22", "copy": "#17becf"}


def ms(x):
    if x is None:
        return "-"
    v = x * 1000
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}x"


def label_of(results, key):
    libs = results["libraries"]
    if key.startswith("limit"):
        t = int(key[5:])
        return f"limit ({t} thread{'s' if t > 1 else ''})"
    if key in libs:
        return libs[key]["label"]
    if key.startswith("vidlake_total_"):  # many_videos: readers under a total decoder budget
        return f"vidlake (reader), total budget {key[len('vidlake_total_'):-2]} MB"
    return key


def best_peer(cells):
    best = None
    for k in PEERS:
        c = cells.get(k)
        ok = c and c.get("status") == "ok" and c.get("median") is not None
        if ok and (best is None or c["median"] < cells[best]["median"]):
            best = k
    return best


def wrong_str(c):
    ck = c.get("check") or {}
    if ck.get("wrong") is None:
        return "-", "-"
    return str(ck["wrong"]), f"{ck['exact']}/{ck['total']}"


# ---------------------------------------------------------------------------------------
def targets(results):
    """[(target, measured, met)] from the issue-2/3/4 targets."""
    out = []
    T = results["threads"]
    head = [v for v in results["videos"].values() if v["role"] == "headline"]
    for v in head:
        W = v["workloads"]
        lab = v["label"]
        wr = W.get("warm_random", {})
        vl = wr.get("vidlake", {})
        if vl.get("status") == "ok":
            bp = best_peer(wr)
            if bp:
                r = vl["median"] / wr[bp]["median"]
                out.append((f"{lab}: warm random frame <= 0.9x best peer",
                            f"{ms(vl['median'])} ms vs {label_of(results, bp)} {ms(wr[bp]['median'])} ms = {fr(r)}",
                            r <= 0.9))
            lim = wr.get("limit1", {})
            if lim.get("status") == "ok":
                r = vl["median"] / lim["median"]
                out.append((f"{lab}: warm random frame <= 1.0x one-thread limit",
                            f"{ms(vl['median'])} ms vs {ms(lim['median'])} ms = {fr(r)}", r <= 1.0))
        for w in ("clip", "strided"):
            cells = W.get(w, {})
            vl = cells.get("vidlake", {})
            bp = best_peer(cells)
            if vl.get("status") == "ok" and bp:
                r = vl["median"] / cells[bp]["median"]
                out.append((f"{lab}: {TITLES[w]} <= 0.8x best peer",
                            f"{ms(vl['median'])} ms vs {label_of(results, bp)} {ms(cells[bp]['median'])} ms = {fr(r)}",
                            r <= 0.8))
        ff = W.get("ffmpeg_full", {}).get("ffmpeg", {})
        for w, what in (("full", "full decode into one new array"),
                        ("full_stream", "full decode streamed through one buffer")):
            # rounds interleaved with ffmpeg's where the run has them, else the workload's cell
            vl = ff.get("vidlake_" + ("full" if w == "full" else "stream")) or W.get(w, {}).get("vidlake", {})
            if ff.get("status") == "ok" and vl.get("status") == "ok":
                r = ff["median"] / vl["median"]
                first = ""
                if w == "full" and vl.get("first") is not None and vl.get("n", 0) > 1:
                    first = (f" (median of {vl['n']} reads; the first of them, into fresh pages: "
                             f"{ms(vl['first'])} ms, speed {fr(ff['median'] / vl['first'])})")
                out.append((f"{lab}: {what} >= 0.95x ffmpeg CLI speed ({T} threads)",
                            f"vidlake {ms(vl['median'])} ms, ffmpeg {ms(ff['median'])} ms: speed {fr(r)}{first}",
                            r >= 0.95))
        ib = W.get("index_build", {}).get("vidlake", {})
        if ib.get("status") == "ok":
            out.append((f"{lab}: index build >= 300 MB/s", f"{ib['mb_per_s']:.0f} MB/s",
                        ib["mb_per_s"] >= 300))
        cold = W.get("cold", {})
        ds, lim = cold.get("vidlake_ds", {}), cold.get("limit1", {})
        if ds.get("status") == "ok" and lim.get("status") == "ok":
            d = ds["median"] - lim["median"]
            out.append((f"{lab}: dataset cold load + first frame within 5 ms of the limit",
                        f"{ms(ds['median'])} ms vs limit {ms(lim['median'])} ms ({d * 1000:+.1f} ms)",
                        d <= 0.005))
    ing = (results.get("ingest") or {}).get("results", {})
    vl, dl, cp = ing.get("vidlake_ds", {}), ing.get("deeplake3", {}), ing.get("copy", {})
    if vl.get("status") == "ok" and dl.get("status") == "ok":
        r = dl["median"] / vl["median"]
        out.append(("ingestion of 50 files >= 5x Deep Lake 3.x",
                    f"vidlake {ms(vl['median'])} ms, Deep Lake 3.x {ms(dl['median'])} ms: {fr(r, 1)}", r >= 5))
    if vl.get("status") == "ok" and cp.get("status") == "ok":
        r = cp["median"] / vl["median"]
        out.append(("ingestion >= 0.5x plain file copy speed",
                    f"vidlake {ms(vl['median'])} ms, copy {ms(cp['median'])} ms: {fr(r)}", r >= 0.5))
    meta = (results.get("ingest") or {}).get("metadata") or {}
    for what in ("shape", "sample_info"):
        c = meta.get(what) or {}
        if c.get("status") == "ok":
            out.append((f"`ds.videos[i].{what}` of a loaded dataset < 1 ms",
                        f"median {c['median'] * 1e6:.1f} µs, p90 {c['p90'] * 1e6:.1f} µs ({c['n']} calls)",
                        c["median"] < 1e-3))
    # zero wrong frames (vidlake, every cell)
    wrong = total = 0
    for v in results["videos"].values():
        for _w, cells in v["workloads"].items():
            for k in ("vidlake", "vidlake_ds"):
                c = cells.get(k) if isinstance(cells, dict) else None
                ck = (c or {}).get("check") or {}
                if ck.get("wrong") is not None:
                    wrong += ck["wrong"]
                    total += ck["total"]
    if total:
        out.append(("zero wrong frames (vidlake, every cell)", f"{wrong} wrong of {total} frames checked",
                    wrong == 0))
    return out


# ---------------------------------------------------------------------------------------
#: RESULTS.md from this line on is written by other bench scripts; write() keeps it
OTHER_SECTIONS = "<!-- sections below: other bench scripts (kept by compare.py) -->"


def write(results: dict, md_path: Path, out_dir: Path) -> None:
    charts = make_charts(results, out_dir)
    L = []
    m = results["machine"]
    mode = results["mode"]
    make = "make bench-quick" if mode == "quick" else "make bench"
    L.append("# vidlake benchmark results\n")
    runs = results.get("runs") or []
    if len(runs) > 1:
        L.append(f"Produced by {len(runs)} runs whose cells were merged (`compare.py --merge`); every table "
                 "names the run that made it. Do not edit by hand: re-run to update. Raw numbers: "
                 "`bench/results/results.json`.\n")
        for r in runs:
            la = r.get("loadavg") or [0, 0]
            L.append(f"- {command_text(r['command'])}: {r['started']} to {r['finished']}, "
                     f"{r['elapsed_s']:.0f} s, load average {la[0]:.1f} at start, {la[1]:.1f} at end")
        L.append("")
    else:
        L.append(f"Produced by `{make}`, i.e. `.venv-bench/bin/{results['command']}` "
                 f"({results['started']} to {results['finished']}, {results['elapsed_s']:.0f} s). "
                 "Do not edit by hand: re-run to update. Raw numbers: `bench/results/results.json`.\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpu']}; `nproc` = {m['nproc_cmd'] or m['nproc']}; memory {m['memory']}")
    L.append(f"- {m['os']}, Python {m['python']}")
    L.append(f"- FFmpeg (system, used by vidlake and the oracle): {m['ffmpeg']}")
    la0, la1 = m.get("loadavg_start", (0, 0, 0)), m.get("loadavg_end", (0, 0, 0))
    L.append(f"- load average at start {la0[0]:.2f}, at end {la1[0]:.2f} (anything else running on the "
             "machine shows up in the times)")
    L.append(f"- decoder threads: {results['threads']} for every library that takes a thread count "
             "and for the second limit row; the loader workload uses 1 codec thread per Python thread\n")
    L.append("## Libraries\n")
    L.append("| library | version | status |")
    L.append("|---|---|---|")
    libs = results["libraries"]
    for k in [*ORDER, "limit", "oracle", "numpy"]:
        e = libs.get(k)
        if not e:
            continue
        st = "used" if e["ok"] else f"**not used**: {e.get('reason')}"
        L.append(f"| {e['label']} | {e.get('version') or '-'} | {st} |")
    L.append("")

    tg = targets(results)
    if tg:
        L.append("## Targets (issues 2, 3, 4; medians, same run)\n")
        L.append("| target | measured | met |")
        L.append("|---|---|---|")
        for name, meas, ok in tg:
            L.append(f"| {name} | {meas} | {'yes' if ok else '**NO**'} |")
        L.append("")
        missed = [t for t in tg if not t[2]]
        if missed:
            L.append(f"{len(missed)} target(s) missed in this run; the issue notes say why and what would "
                     "close them.\n")

    # headline summary
    head = [(n, v) for n, v in results["videos"].items() if v["role"] == "headline"]
    if head:
        L.append("## Headline: vidlake vs the best peer and the limit\n")
        L.append("Ratios are time ratios (vidlake median / other median): below 1 means vidlake is faster.\n")
        L.append("| video | workload | vidlake ms | best peer | peer ms | vidlake / peer | limit 1t ms "
                 "| vidlake / limit 1t | vidlake wrong |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for _, v in head:
            for w in ["cold", "warm_random", "batch10", "clip", "strided", "first100", "full", "full_stream", "resize224"]:
                cells = v["workloads"].get(w)
                if not cells:
                    continue
                vl = cells.get("vidlake", {})
                if vl.get("status") != "ok":
                    continue
                bp = best_peer(cells)
                lim = cells.get("limit1", {})
                pm = cells[bp]["median"] if bp else None
                lm = lim.get("median") if lim.get("status") == "ok" else None
                L.append(f"| {v['label']} | {TITLES[w]} | {ms(vl['median'])} | "
                         f"{label_of(results, bp) if bp else '-'} | {ms(pm)} | {fr(ratio(vl['median'], pm))} | "
                         f"{ms(lm)} | {fr(ratio(vl['median'], lm))} | {wrong_str(vl)[0]} |")
        L.append("")

    # per-video details
    for _name, v in head:
        L.append(f"## {v['label']}\n")
        gop = f", GOP {v['gop']}" if v.get("gop") else ""
        L.append(f"`{Path(v['path']).name}`: {v['codec']} {v['width']}x{v['height']}, {v.get('frames')} frames"
                 f"{gop}, {v['size_mb']:.2f} MB. {v.get('note', '')}\n")
        for w in ["cold", "warm_random", "batch10", "clip", "strided", "first100", "full", "full_stream", "resize224"]:
            cells = v["workloads"].get(w)
            if not cells:
                continue
            L += cell_table(results, w, cells)
        W = v["workloads"]
        if "ffmpeg_full" in W:
            ff = W["ffmpeg_full"]["ffmpeg"]
            vl = ff.get("vidlake_full") or W.get("full", {}).get("vidlake", {})
            vs = ff.get("vidlake_stream") or W.get("full_stream", {}).get("vidlake", {})
            L.append("### full decode vs the ffmpeg CLI\n")
            L.append(src(results, W["ffmpeg_full"]))
            paired = ff.get("vidlake_full") is not None
            L.append(f"`{ff.get('command')}`: rtime median {ms(ff.get('median'))} ms (process wall "
                     f"{ms((ff.get('wall') or {}).get('median'))} ms, n={ff.get('n')})."
                     + (" Each ffmpeg run is followed by one vidlake full decode of each kind below, so "
                        "both sides are measured in the same minutes (the target rows use these rounds)."
                        if paired else "")
                     + " At the same thread count, vidlake "
                     f"decoding every frame into one new array: {ms(vl.get('median'))} ms"
                     + (f" (speed {fr(ratio(ff.get('median'), vl.get('median')))} of ffmpeg's)"
                        if vl.get("median") and ff.get("median") else "")
                     + f"; streamed in batches of 8 through one buffer, which is what ffmpeg does when it "
                       f"writes raw frames to /dev/null: {ms(vs.get('median'))} ms"
                     + (f" (speed {fr(ratio(ff.get('median'), vs.get('median')))})"
                        if vs.get("median") and ff.get("median") else "")
                     + ". A new array's memory is new pages that the kernel must hand out and zero, "
                       "which ffmpeg never does; from the second read on, vidlake's arrays reuse the "
                       "memory of the previous read's freed array (docs/DESIGN.md, recycled output "
                       "buffers), so a read into fresh pages is the slow one"
                     + (f" (the first of these reads: {ms(vl.get('first'))} ms)"
                        if vl.get("first") is not None and (vl.get("n") or 0) > 1 else "")
                     + ".\n")
        if "index_build" in W:
            L.append("### index build (demux only, no decode)\n")
            L.append(src(results, W["index_build"]))
            L.append("| library | what is timed | median ms | p90 ms | n | MB/s |")
            L.append("|---|---|---|---|---|---|")
            for k, c in W["index_build"].items():
                if c.get("status") == "ok":
                    L.append(f"| {label_of(results, k)} | {c.get('what', '')} | {ms(c['median'])} | "
                             f"{ms(c['p90'])} | {c.get('n', '')} | {c['mb_per_s']:.0f} |")
                else:
                    L.append(f"| {label_of(results, k)} | | {c.get('status')}: {c.get('reason')} | | | |")
            L.append("")
        if "loader" in W:
            L.append("### data-loader pattern: 2 Python threads, each decoding batches of 8 random 16-frame "
                     "clips (1 codec thread per reader)\n")
            L.append(src(results, W["loader"]))
            L.append("| library | batch median ms | batch p90 ms | batches | frames/s (both threads) "
                     "| × vidlake | wrong | exact |")
            L.append("|---|---|---|---|---|---|---|---|")
            base = (W["loader"].get("vidlake") or {}).get("median")
            for k, c in W["loader"].items():
                if c.get("status") == "ok":
                    wr, ex = wrong_str(c)
                    L.append(f"| {label_of(results, k)} | {ms(c['median'])} | {ms(c['p90'])} | {c['n']} | "
                             f"{c['frames_per_s']:.0f} | {fr(ratio(c['median'], base))} | {wr} | {ex} |")
                else:
                    L.append(f"| {label_of(results, k)} | {c.get('status')}: {c.get('reason')} | | | | | | |")
            L.append("\nThe limit row is the one-thread decode time of all clips divided by 2 threads.\n")
        if "memory" in W:
            L.append("### peak memory of a 100-frame clip fetch (separate process per library)\n")
            L.append(src(results, W["memory"]))
            L.append("| library | peak RSS increase MB | output array MB | overhead MB (increase - output) |")
            L.append("|---|---|---|---|")
            for k, c in W["memory"].items():
                if c.get("status") == "ok":
                    L.append(f"| {label_of(results, k)} | {c['delta_mb']:.0f} | {c['out_mb']:.0f} | "
                             f"{c['overhead_mb']:.0f} |")
                else:
                    L.append(f"| {label_of(results, k)} | {c.get('status')}: {c.get('reason')} | | |")
            L.append("\nPeak RSS (`VmHWM`, reset through `/proc/self/clear_refs` after open and one "
                     "warm-up frame) minus the RSS before `range(100, 200)`.\n")

    # matrix
    mat = [(n, v) for n, v in results["videos"].items() if v["role"] == "matrix"]
    if mat:
        L.append("## Codec x resolution x GOP matrix (synthetic videos)\n")
        L.append("Median ms; each peer cell shows its time ratio to vidlake; `!N` = N wrong frames.\n")
        for w in ["warm_random", "batch10", "clip", "strided"]:
            keys = []
            for _, v in mat:
                for k in (v["workloads"].get(w) or {}):
                    if k not in keys:
                        keys.append(k)
            if not keys:
                continue
            L.append(f"### {TITLES[w]}\n")
            L.append("| video | " + " | ".join(label_of(results, k) for k in keys) + " |")
            L.append("|---|" + "---|" * len(keys))
            for _, v in mat:
                cells = v["workloads"].get(w) or {}
                base = (cells.get("vidlake") or {}).get("median")
                row = []
                for k in keys:
                    c = cells.get(k) or {}
                    if c.get("status") != "ok":
                        row.append(c.get("status", "-"))
                        continue
                    s = ms(c["median"])
                    if k != "vidlake" and base:
                        s += f" ({fr(ratio(c['median'], base))})"
                    wr = (c.get("check") or {}).get("wrong")
                    if wr:
                        s += f" !{wr}"
                    row.append(s)
                L.append(f"| {v['label']} | " + " | ".join(row) + " |")
            L.append("")

    ing = results.get("ingest")
    if ing:
        L.append(f"## Ingestion of {ing['files']} files ({ing['total_mb']:.1f} MB of H.264 mp4)\n")
        L.append(src(results, ing.get("results")))
        L.append("| what | median ms | p90 ms | n | MB/s | files/s | speed vs vidlake |")
        L.append("|---|---|---|---|---|---|---|")
        vl = ing["results"].get("vidlake_ds", {}).get("median")
        for k, c in ing["results"].items():
            lab = "plain file copy" if k == "copy" else label_of(results, k)
            if c.get("status") == "ok":
                L.append(f"| {lab} (`{c.get('what', '')}`) | {ms(c['median'])} | {ms(c['p90'])} | {c['n']} | "
                         f"{c['mb_per_s']:.0f} | {c['files_per_s']:.1f} | {fr(ratio(vl, c['median']))} |")
            else:
                L.append(f"| {lab} | {c.get('status')}: {c.get('reason')} | | | | | |")
        L.append("")

    L += many_sections(results)

    if results.get("skipped"):
        L.append("## Skipped (time budget)\n")
        L.append("The run's time budget ran out before these videos: " + ", ".join(results["skipped"]) + ".\n")
    L.append("## Charts\n")
    for c in charts:
        L.append(f"- [{c.stem}](results/{c.name})")
    L.append("")
    L.append("## Method\n")
    L.append(f"- Correctness: every returned frame is compared with a sequential PyAV decode of the same "
             f"stream, each frame converted with its own colour matrix and range as vidlake's default, the "
             f"ffmpeg CLI and torchcodec do (`bench/colors.py`; resized frames with PyAV's BILINEAR swscale to "
             f"224x224). *wrong* = frames whose mean absolute difference is > {results['wrong_mad_threshold']} "
             "(or missing / misshapen), also from the BT.601 conversion where that differs (PyAV <= 16's "
             "`to_ndarray`, decord, Deep Lake 3.x: another colour convention is not another frame); "
             "*exact* = frames bit-identical to the own-colours frame, out of all checked (warm-up included). "
             "Resized frames: a library's own scaler legitimately differs from swscale's bilinear, so "
             "a resized frame is wrong when an oracle frame within 3 of the target matches it better "
             "than the target (or its mean difference exceeds 16).")
    L.append("- Same requests for every library (random indices seeded per video). Warm workloads open "
             "the decoder and do one untimed warm-up request first; cold creates the decoder inside the "
             "timed region (Deep Lake 3.x and the vidlake dataset ingest once beforehand, untimed).")
    L.append("- Medians and p90 of wall time over the repeats (n); each cell stops repeating after a "
             "few seconds. The limit rows are `vidlake._core.decode_limit`: libavcodec decoding exactly "
             "the packets the request needs with a bare send/receive loop and converting only the wanted "
             "frames to RGB, at 1 thread and at the run's thread count.")
    L.append("- *Best peer* is the fastest peer median in the cell, whether or not its frames were right "
             "(the stricter comparison for vidlake).")
    L.append("- PyAV: a demux pass at open maps index to pts and finds keyframes; a request seeks to the "
             "keyframe at or before the target (`container.seek(pts, stream=s, backward=True)`) and "
             "decodes to the target's pts; sorted requests ahead in the same GOP keep decoding. "
             "OpenCV: `CAP_PROP_POS_FRAMES` + `read` (grab forward for short hops), BGR to RGB. "
             "decord: `get_batch`. Deep Lake 3.x: `ds.videos[0][i]` / `[a:b:s]` (no list indexing, so a "
             "list is one call per frame). Deep Lake 3.x accepts only mp4/mkv/avi, so other containers "
             "are remuxed (`ffmpeg -c copy`, same packets) for it.")
    tc = libs.get("torchcodec", {})
    if not tc.get("ok"):
        L.append(f"- torchcodec is not in the results: {tc.get('reason')}")
    else:
        L.append(f"- torchcodec {tc.get('version')}, the CPU build on the system FFmpeg, installed next to the "
                 "CPU torch by `bench/setup_bench.sh` (never a CUDA build): `VideoDecoder(path, "
                 "seek_mode=..., dimension_order=\"NHWC\")`, `get_frame_at` / `get_frames_at` / "
                 "`get_frames_in_range`, resize with its decoder transform `Resize((224, 224))`. Four rows: seek "
                 "mode `exact` (scans every packet when the decoder is created) and `approximate` (positions "
                 f"from the header), each at {results['threads']} threads (`num_ffmpeg_threads`) and at "
                 "torchcodec's default (the argument left out: 1 thread). The loader row runs every reader "
                 "at 1 thread, so only the default-thread rows appear there.")
    L.append("- Many-file rows: `short_files` creates each decoder inside the timed loop (open + 4 random "
             "frames + close, per file); `many_videos` reads random (video, frame) pairs over 50 clips in "
             "one child process per library with every reader kept open (datasets: one dataset of the 50 "
             "clips), sampling `VmRSS` as it goes; their frames are checked against the oracle through "
             "md5, with any differing frame compared in full.")
    # sections other bench scripts append (bench/ingest_jobs.py, bench/many_samples.py) are kept
    old = md_path.read_text() if md_path.exists() else ""
    kept = old[old.index(OTHER_SECTIONS):] if OTHER_SECTIONS in old else ""
    md_path.write_text("\n".join(with_commands(L, results)) + "\n" + (("\n" + kept) if kept else ""))


MARK = "\x00command:"  # a section's own run (merged results), read by with_commands


def src(results: dict, cells) -> str:
    """A marker naming the run(s) that made these cells: [[command, [row labels]], ...]."""
    groups: dict = {}
    for k, c in (cells or {}).items():
        if isinstance(c, dict):
            groups.setdefault(c.get("command") or results["command"], []).append(
                "plain file copy" if k == "copy" else label_of(results, k))
    return MARK + json.dumps(list(groups.items()))


def command_text(cmd: str) -> str:
    make = {"python bench/compare.py --quick": "make bench-quick", "python bench/compare.py --full": "make bench"}
    return f"`{make[cmd]}` (`.venv-bench/bin/{cmd}`)" if cmd in make else f"`.venv-bench/bin/{cmd}`"


def with_commands(lines: list[str], results: dict) -> list[str]:
    """State under every heading whose section holds a table the command that made it: the
    section's own run where results were merged, else the run's (or every run's) command."""
    runs = results.get("runs") or []
    default = (f"Command: {command_text(results['command'])}.\n" if len(runs) <= 1 else
               "Commands: the runs listed at the top (each per-video table below names its own).\n")
    out = []
    for j, line in enumerate(lines):
        if line.startswith(MARK):
            continue
        out.append(line)
        if line.startswith("#") and not line.startswith("# "):
            own = []
            for nxt in lines[j + 1:]:
                if nxt.startswith(MARK):
                    own = json.loads(nxt[len(MARK):])
                    continue
                if nxt.startswith("#"):
                    break
                if nxt.startswith("|"):
                    if len(own) == 1:
                        out.append(f"Command: {command_text(own[0][0])}.\n")
                    elif own:
                        out.append("Commands (merged runs): " + "; ".join(
                            f"{command_text(c)} for {', '.join(rows)}" for c, rows in own) + ".\n")
                    else:
                        out.append(default)
                    break
    return out


def many_sections(results) -> list[str]:
    L = []
    sf = results.get("short_files")
    if sf:
        L.append(f"## Decoder created inside the timed loop: {sf['files']} short files\n")
        L.append(src(results, sf.get("cells")))
        L.append(f"{sf['files']} clips ({sf['note']}; {sf['size_mb'] / sf['files']:.2f} MB each): for every file, "
                 "create the decoder, read 4 random frames (one call; a repeated index is read once), close it; all of it timed. This is "
                 "the data-loader pattern over many short videos.\n")
        L.append("| library | total median ms | n | ms per file (median) | files/s | × vidlake | wrong | exact |")
        L.append("|---|---|---|---|---|---|---|---|")
        base = (sf["cells"].get("vidlake") or {}).get("median")
        for k, c in sf["cells"].items():
            if c.get("status") != "ok":
                L.append(f"| {label_of(results, k)} | {c.get('status')}: {str(c.get('reason'))[:160]} | | | | | | |")
                continue
            wr, ex = wrong_str(c)
            L.append(f"| {label_of(results, k)} | {ms(c['median'])} | {c['n']} | {ms(c['per_file']['median'])} | "
                     f"{c['files_per_s']:.1f} | {fr(ratio(c['median'], base))} | {wr} | {ex} |")
        L.append("")
    mv = results.get("many_videos")
    if mv:
        L.append(f"## {mv.get('frames')} random frames across {mv['files']} videos in one process\n")
        L.append(src(results, mv.get("cells")))
        L.append(f"The same {mv['files']} clips; {mv.get('frames')} random (video, frame) reads in one child process "
                 "per library, every reader kept open once made (datasets: one dataset holding the 50 "
                 "clips, `ds.videos[j, i]`). A read's time includes creating that video's reader on its "
                 "first use. RSS is `VmRSS` after the library's import (start) and after each share of "
                 "the reads.\n")
        L.append("| library | wall s | per-read median ms | p90 ms | RSS start MB | RSS at 25% | 50% | 75% | "
                 "100% | peak (VmHWM) MB | wrong | exact |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for k, c in mv["cells"].items():
            if c.get("status") != "ok":
                L.append(f"| {label_of(results, k)} | {c.get('status')}: {str(c.get('reason'))[:160]} "
                         "| | | | | | | | | | |")
                continue
            rss = c["rss"]
            n = c["frames"]

            def at(frac, rss=rss, n=n):
                want = frac * n
                return min(rss, key=lambda r: abs(r[0] - want))[2]
            wr, ex = wrong_str(c)
            L.append(f"| {label_of(results, k)} | {c['wall']:.2f} | {ms(c['median'])} | {ms(c['p90'])} | "
                     f"{c['base_mb']:.0f} | {at(0.25):.0f} | {at(0.5):.0f} | {at(0.75):.0f} | {at(1.0):.0f} | "
                     f"{c['peak_mb']:.0f} | {wr} | {ex} |")
        L.append("\nRSS over time: [many_videos_rss](results/many_videos_rss.png).\n")
    ing = results.get("ingest_small")
    if ing:
        L.append(f"## Ingestion of {ing['files']:,} small files ({ing['total_mb']:.0f} MB of H.264 mp4)\n")
        L.append(src(results, ing.get("results")))
        L.append("256x144 H.264, 15 frames each (10 distinct encodes copied to 10,000 names); one run each.\n")
        L.append("| what | files | seconds | ms per file | files/s | MB/s | files/s vs vidlake |")
        L.append("|---|---|---|---|---|---|---|")
        vl = ing["results"].get("vidlake_ds", {}).get("files_per_s")
        for k, c in ing["results"].items():
            lab = "plain file copy" if k == "copy" else label_of(results, k)
            if c.get("status") == "ok":
                L.append(f"| {lab} (`{c.get('what', '')}`) | {c['files']:,} | {c['median']:.2f} | "
                         f"{c['ms_per_file']:.2f} | {c['files_per_s']:.0f} | {c['mb_per_s']:.0f} | "
                         f"{fr(ratio(c['files_per_s'], vl))} |")
            else:
                L.append(f"| {lab} | {c.get('status')}: {c.get('reason')} | | | | | |")
        dl = ing["results"].get("deeplake3")
        if dl is None:
            L.append("\nDeep Lake 3.x is not in this run's row (`make bench` ingests the first 1,000 of the "
                     "files with it and compares files/s).")
        elif dl.get("status") == "ok" and dl["files"] < ing["files"]:
            L.append(f"\nDeep Lake 3.x ingests the first {dl['files']:,} of the files (10,000 would take minutes "
                     "of the run); compare files/s.")
        L.append("")
    return L


def cell_table(results, w, cells):
    L = [f"### {TITLES[w]}\n", src(results, cells)]
    L.append("| library | median ms | p90 ms | n | × vidlake | × limit 1t | wrong | exact |")
    L.append("|---|---|---|---|---|---|---|---|")
    base = (cells.get("vidlake") or {}).get("median")
    lim = (cells.get("limit1") or {}).get("median")
    for k, c in cells.items():
        lab = label_of(results, k)
        if c.get("status") != "ok":
            L.append(f"| {lab} | {c.get('status')}: {str(c.get('reason'))[:160]} | | | | | | |")
            continue
        wr, ex = wrong_str(c)
        L.append(f"| {lab} | {ms(c['median'])} | {ms(c['p90'])} | {c['n']} | {fr(ratio(c['median'], base))} | "
                 f"{fr(ratio(c['median'], lim))} | {wr} | {ex} |")
    L.append("")
    return L


# ---------------------------------------------------------------------------------------
def make_charts(results, out_dir: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    made = []
    head = [v for v in results["videos"].values() if v["role"] == "headline"]

    def bars(ax, groups, series, title, ylabel, log=True):
        """groups: x labels; series: {key: [(median, p90) or None per group]}"""
        keys = [k for k in series if any(x for x in series[k])]
        if not keys:
            ax.set_visible(False)
            return
        width = 0.8 / len(keys)
        for j, k in enumerate(keys):
            xs, ys, err = [], [], []
            for i, val in enumerate(series[k]):
                if not val or val[0] is None:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(val[0])
                err.append(max(0.0, (val[1] or val[0]) - val[0]))
            ax.bar(xs, ys, width, yerr=[[0] * len(err), err], label=label_of(results, k),
                   color=COLORS.get(k), capsize=2)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, fontsize=7, rotation=15)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)

    for fam, wls in FAMILIES.items():
        wls = [w for w in wls if any(w in v["workloads"] for v in head)]
        if not wls:
            continue
        fig, axes = plt.subplots(1, len(wls), figsize=(5.5 * len(wls), 4.2), squeeze=False)
        for ax, w in zip(axes[0], wls):
            groups = [v["label"] for v in head if w in v["workloads"]]
            keys = []
            for v in head:
                for k in v["workloads"].get(w, {}):
                    if k not in keys:
                        keys.append(k)
            series = {k: [] for k in keys}
            for v in head:
                if w not in v["workloads"]:
                    continue
                for k in keys:
                    c = v["workloads"][w].get(k) or {}
                    series[k].append((c["median"] * 1000, c["p90"] * 1000) if c.get("status") == "ok" else None)
            bars(ax, groups, series, TITLES[w], "ms (median, whisker = p90)")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"vidlake benchmark: {fam} ({results['mode']}, {results['threads']} threads)", fontsize=10)
        fig.tight_layout()
        p = out_dir / f"{fam}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)

    # loader
    lv = [v for v in head if "loader" in v["workloads"]]
    if lv:
        fig, ax = plt.subplots(figsize=(7, 4))
        keys = []
        for v in lv:
            for k in v["workloads"]["loader"]:
                if k not in keys:
                    keys.append(k)
        series = {k: [((v["workloads"]["loader"].get(k) or {}).get("frames_per_s"), None)
                      if (v["workloads"]["loader"].get(k) or {}).get("status") == "ok" else None for v in lv]
                  for k in keys}
        bars(ax, [v["label"] for v in lv], series, "data loader: 2 threads x 8 clips x 16 frames",
             "frames/s (higher is better)", log=False)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / "loader.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)

    # ingest
    ing = results.get("ingest")
    if ing:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        items = [(("plain copy" if k == "copy" else label_of(results, k)), c["mb_per_s"], COLORS.get(k))
                 for k, c in ing["results"].items() if c.get("status") == "ok"]
        if items:
            ax.barh([i[0] for i in items], [i[1] for i in items], color=[i[2] for i in items])
            ax.set_xscale("log")
            ax.set_xlabel("MB/s (higher is better)")
            ax.set_title(f"ingestion of {ing['files']} files ({ing['total_mb']:.0f} MB)", fontsize=9)
            fig.tight_layout()
            p = out_dir / "ingest.png"
            fig.savefig(p, dpi=110)
            made.append(p)
        plt.close(fig)

    # memory + index build
    mv = [v for v in head if "memory" in v["workloads"]]
    if mv:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        cells = mv[0]["workloads"]["memory"]
        items = [(label_of(results, k), c["delta_mb"], c["out_mb"], COLORS.get(k)) for k, c in cells.items()
                 if c.get("status") == "ok"]
        if items:
            ax.barh([i[0] for i in items], [i[1] for i in items], color=[i[3] for i in items])
            ax.axvline(items[0][2], color="k", ls="--", lw=1, label="output array size")
            ax.set_xlabel("peak RSS increase, MB (lower is better)")
            ax.set_title(f"memory of a 100-frame clip fetch, {mv[0]['label']}", fontsize=9)
            ax.legend(fontsize=7)
            fig.tight_layout()
            p = out_dir / "memory.png"
            fig.savefig(p, dpi=110)
            made.append(p)
        plt.close(fig)
    iv = [v for v in head if "index_build" in v["workloads"]]
    if iv:
        fig, ax = plt.subplots(figsize=(7, 4))
        keys = []
        for v in iv:
            for k in v["workloads"]["index_build"]:
                if k not in keys:
                    keys.append(k)
        series = {k: [((v["workloads"]["index_build"].get(k) or {}).get("mb_per_s"), None)
                      if (v["workloads"]["index_build"].get(k) or {}).get("status") == "ok" else None for v in iv]
                  for k in keys}
        bars(ax, [v["label"] for v in iv], series, "index build (demux only)", "MB/s (higher is better)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / "index_build.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)

    # matrix: vidlake / best peer ratio per video for each workload
    mat = [v for v in results["videos"].values() if v["role"] == "matrix"]
    if mat:
        wls = ["warm_random", "batch10", "clip", "strided"]
        fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(mat)), 4.5))
        width = 0.8 / len(wls)
        for j, w in enumerate(wls):
            xs, ys = [], []
            for i, v in enumerate(mat):
                cells = v["workloads"].get(w) or {}
                vl = (cells.get("vidlake") or {}).get("median")
                bp = best_peer(cells)
                if vl and bp:
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(vl / cells[bp]["median"])
            ax.bar(xs, ys, width, label=TITLES[w])
        ax.axhline(1.0, color="k", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(range(len(mat)))
        ax.set_xticklabels([v["label"] for v in mat], fontsize=6, rotation=70)
        ax.set_ylabel("vidlake time / best peer time (<1: vidlake faster)")
        ax.set_title("codec x resolution x GOP matrix", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / "matrix.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    mv = results.get("many_videos")
    if mv and any(c.get("status") == "ok" for c in mv["cells"].values()):
        fig, ax = plt.subplots(figsize=(7, 4))
        for k, c in mv["cells"].items():
            if c.get("status") == "ok":
                ax.plot([r[0] for r in c["rss"]], [r[2] for r in c["rss"]], label=label_of(results, k),
                        color=COLORS.get(k), marker=".")
        ax.set_xlabel("random frames read (across 50 videos)")
        ax.set_ylabel("RSS MB")
        ax.set_title(f"RSS over time: {mv.get('frames')} random frames across {mv['files']} videos, one process",
                     fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        p = out_dir / "many_videos_rss.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    _ = math  # keep import for callers formatting inf
    return made

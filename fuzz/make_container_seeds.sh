#!/usr/bin/env bash
# Seeds of the container fuzzer (fuzz/container_fuzzer.cpp), made at run time with the ffmpeg CLI
# (no media file is ever committed):
#   fuzz/make_container_seeds.sh OUT_DIR MAX_BYTES
# Tiny videos (a few frames, a few KB): synthetic testsrc2 encodes in every layout the index
# builder parses itself (MP4 with the moov after or before the mdat, fragmented MP4, Matroska,
# H.264 and HEVC; a VP9 WebM for the demux path), and a few frames cut without re-encoding from
# the shared test data (real encoders' streams: B-frames, audio beside video, HDR Matroska).
# An encoder this FFmpeg lacks is skipped. Each seed is written three times, behind the selector
# bytes of "tables" on file bytes, "checked" on file bytes and "auto" on a remote range source.
# Inputs larger than MAX_BYTES (the fuzzer's -max_len) are left out.
set -euo pipefail
out=$1
max=$2
testdata=${VIDLAKE_TESTDATA:-../shared/testdata}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)
src=(-f lavfi -i "testsrc2=s=64x48:r=10" -frames:v 6 -pix_fmt yuv420p)
quiet=(-map_metadata -1 -fflags +bitexact -threads 1)
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null || true)
has() { [[ $encoders == *" $1 "* ]]; }

made=()
encode() {  # name, then ffmpeg output options and file
  local name=$1
  shift
  if "${ff[@]}" "${src[@]}" "${quiet[@]}" "$@" 2>"$tmp/err"; then made+=("$name"); else
    echo "fuzz: seed $name not made: $(head -c 300 "$tmp/err")" >&2; fi
}
cut() {  # name, test video, frames
  local name=$1 video=$testdata/video/$2
  [ -f "$video" ] || { echo "fuzz: seed $name not made: $video missing" >&2; return 0; }
  if "${ff[@]}" -i "$video" -map 0:v:0 -map "0:a:0?" -frames:v "$3" -c copy "${quiet[@]}" "$tmp/$name" 2>"$tmp/err"; then
    made+=("$name"); else echo "fuzz: seed $name not made: $(head -c 300 "$tmp/err")" >&2; fi
}

if has libx264; then
  h264=(-c:v libx264 -g 3 -bf 2 -x264-params log-level=none)
  encode h264-moov-end.mp4 "${h264[@]}" "$tmp/h264-moov-end.mp4"
  encode h264-moov-front.mp4 "${h264[@]}" -movflags +faststart "$tmp/h264-moov-front.mp4"
  encode h264-fragmented.mp4 "${h264[@]}" -movflags frag_keyframe+empty_moov+default_base_moof \
    "$tmp/h264-fragmented.mp4"
  encode h264-avc3.mp4 "${h264[@]}" -tag:v avc3 "$tmp/h264-avc3.mp4"
  encode h264.mkv "${h264[@]}" "$tmp/h264.mkv"
fi
if has libx265; then
  hevc=(-c:v libx265 -x265-params log-level=none:keyint=3:bframes=2)
  encode hevc-hvc1.mp4 "${hevc[@]}" -tag:v hvc1 "$tmp/hevc-hvc1.mp4"
  encode hevc-fragmented.mp4 "${hevc[@]}" -movflags frag_keyframe+empty_moov+default_base_moof \
    "$tmp/hevc-fragmented.mp4"
  encode hevc.mkv "${hevc[@]}" "$tmp/hevc.mkv"
fi
if has libvpx-vp9; then
  encode vp9.webm -c:v libvpx-vp9 -g 3 -deadline realtime "$tmp/vp9.webm"
fi
cut stub_h264.mp4 stub_h264.mp4 5          # libx264 with B-frames, moov at the end
cut unordered.mov unordered.mov 4          # QuickTime, presentation order != decode order
cut h265_video.mp4 h265_video.mp4 3        # x265 open GOP (CRA)
cut hdr10tags-both.mkv hdr10tags-both.mkv 2  # HEVC Main 10 in Matroska, HDR metadata, rotation
cut realshort.mp4 realshort.mp4 2          # H.264 + AAC

n=0
for name in "${made[@]}"; do
  f=$tmp/$name
  if [ "$(stat -c %s "$f")" -ge "$max" ]; then
    echo "fuzz: seed $name left out: $(stat -c %s "$f") bytes, over $max" >&2
    continue
  fi
  # Selector byte: index mode (0 auto, 1 tables, 2 checked, 3 demux) + 4 x source (0 memory,
  # 1 local ranges, 2 remote ranges).
  for sel in 1 2 8; do
    { printf "\\$(printf %03o "$sel")"; cat "$f"; } > "$out/seed-$sel-$name"
  done
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "fuzz: no container seed could be made (ffmpeg CLI and encoders?)" >&2; exit 1; }

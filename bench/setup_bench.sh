#!/usr/bin/env bash
# Set up the benchmark environment: a separate virtual environment (.venv-bench) with
# vidlake built from this checkout, the oracle (PyAV) and every peer library that installs
# here (PyAV, decord, OpenCV, Deep Lake 3.x, torchcodec 0.13.0 on the CPU torch 2.13.0).
# The test venv (.venv) is never touched: peers pin numpy/av versions of their own.
#
# Idempotent: re-running only rebuilds vidlake (incremental) and re-checks the peers.
# The outcome for every peer (installed + version, or failed + why) is written to
# bench/.cache/peers.json, which compare.py reads and reports in RESULTS.md.
#
#   bash bench/setup_bench.sh                 # set up / refresh
#   BENCH_RETRY_PEERS=1 bash bench/setup_bench.sh   # retry peers that failed before
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${VIDLAKE_BENCH_VENV:-.venv-bench}
PY=${PYTHON:-python3}
CACHE=bench/.cache
mkdir -p "$CACHE"
PEERS_JSON=$CACHE/peers.json
LOG=$CACHE/setup_bench.log
: > "$LOG"

log() { echo "setup_bench: $*"; }

command -v ffmpeg >/dev/null || { log "the ffmpeg CLI is missing: run 'make setup' (it installs FFmpeg) first"; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV" || exit 1
fi
VPY=$VENV/bin/python
pipi() { "$VPY" -m pip install -q "$@" >>"$LOG" 2>&1; }

# ---- base tools (re-installed when this script changes) -------------------------------
want=$(sha1sum bench/setup_bench.sh | cut -c1-40)
stamp=$VENV/.bench-base
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing base tools"
  pipi --upgrade pip
  pipi scikit-build-core pybind11 numpy "tqdm>=4.60" cython matplotlib psutil pytest pytest-timeout pytest-benchmark \
    || { log "base install failed, see $LOG"; exit 1; }
  # The oracle: PyAV built against the system FFmpeg (the same libavcodec vidlake links),
  # exactly as the test venv does, so 'exact match' compares decoders, not FFmpeg builds.
  # Fallback: the PyAV wheel (bundles its own FFmpeg; tiny bit differences are possible).
  if ! "$VPY" -c "import av" 2>/dev/null; then
    if pkg-config --exists libavcodec 2>/dev/null && pipi --no-binary av "av==12.3.0"; then
      log "PyAV 12.3.0 built against the system FFmpeg"
    else
      log "PyAV from source failed; using the PyAV wheel"
      pipi av || { log "PyAV install failed, see $LOG"; exit 1; }
    fi
  fi
  echo "$want" > "$stamp"
fi
AV_PIN="av==$("$VPY" -c 'import av; print(av.__version__)')"

# ---- vidlake from this checkout ----------------------------------------------------
vidlake_status=ok
vidlake_reason=""
# A build directory of its own: the test venv's build/ is configured for another Python.
if pipi --no-build-isolation --no-deps -C build-dir=build/bench-{wheel_tag} . \
    && (cd /tmp && "$OLDPWD/$VPY" -c "import vidlake._core") >>"$LOG" 2>&1; then
  log "vidlake installed"
else
  vidlake_status=failed
  vidlake_reason="vidlake did not build/import from this checkout (see bench/.cache/setup_bench.log)"
  log "$vidlake_reason; the peers are still set up"
fi

# ---- peers ------------------------------------------------------------------------
# Each peer: name | pip requirements | smoke test (python). Results go to peers.json.
retry=${BENCH_RETRY_PEERS:-0}
prev_failed() {  # did this peer fail under this same script version before?
  [ "$retry" = 1 ] && return 1
  "$VPY" - "$PEERS_JSON" "$1" "$want" <<'EOF' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
p = d.get("peers", {}).get(sys.argv[2], {})
sys.exit(0 if (d.get("setup_hash") == sys.argv[3] and p.get("ok") is False) else 1)
EOF
}

RESULTS=$CACHE/peers.tmp
: > "$RESULTS"
record() {  # name ok version reason
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"
}
last_error() {  # the last meaningful line of a log chunk
  grep -vE '^\s*$|is ignored|^\s+(File|\^)|Traceback' "$1" | tail -1 | cut -c1-300
}

try_peer() {  # name smoke_code pip-args...
  local name=$1 smoke=$2; shift 2
  if prev_failed "$name"; then
    local why
    why=$("$VPY" -c "import json;print(json.load(open('$PEERS_JSON'))['peers']['$name']['reason'])")
    log "$name: failed before ($why); BENCH_RETRY_PEERS=1 retries"
    record "$name" false "" "$why"
    return
  fi
  local tmp; tmp=$(mktemp)
  if ! "$VPY" -c "$smoke" >/dev/null 2>&1; then
    if ! "$VPY" -m pip install -q "$@" "$AV_PIN" >"$tmp" 2>&1; then
      cat "$tmp" >> "$LOG"
      record "$name" false "" "pip install $* failed: $(last_error "$tmp")"
      log "$name: pip install failed"
      rm -f "$tmp"; return 1
    fi
  fi
  if "$VPY" -c "$smoke" >"$tmp" 2>&1; then
    record "$name" true "$(tail -1 "$tmp")" ""
    log "$name $(tail -1 "$tmp") ok"
    rm -f "$tmp"; return 0
  fi
  cat "$tmp" >> "$LOG"
  record "$name" false "" "installs but does not import: $(last_error "$tmp")"
  log "$name: installs but does not work: $(last_error "$tmp")"
  rm -f "$tmp"; return 1
}

try_peer pyav "import av; print(av.__version__)" "$AV_PIN"
try_peer decord "import decord; print(decord.__version__)" decord
try_peer opencv "import cv2; print(cv2.__version__)" opencv-python-headless
try_peer deeplake3 "import warnings; warnings.filterwarnings('ignore'); import os; os.environ['BUGGER_OFF']='true'; import deeplake; assert deeplake.__version__.startswith('3.'); print(deeplake.__version__)" "deeplake[av]<4"

# torchcodec needs torch. Only the CPU build of torch 2.13.0 is allowed (this machine has its
# wheel on disk; pip takes it from there) and nothing may pull CUDA packages: torch is
# installed first, pinned, then torchcodec 0.13.0 with --no-deps (its newer PyPI wheels link
# libtorch_cuda/libcudart; 0.13.0 is a CPU build that loads the system FFmpeg). The smoke test
# decodes a frame of a tiny video, so "ok" means it really decodes here.
TORCH_PIN="torch==2.13.0"
TORCHCODEC_PIN="torchcodec==0.13.0"
TC_SMOKE='
import os, subprocess, sys, tempfile
import torch, torchcodec
from torchcodec.decoders import VideoDecoder
p = os.path.join(tempfile.mkdtemp(), "smoke.mp4")
subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10",
                "-frames:v", "5", "-c:v", "libx264", "-pix_fmt", "yuv420p", p], check=True)
f = VideoDecoder(p, seek_mode="exact", dimension_order="NHWC")[3]
assert tuple(f.shape) == (48, 64, 3) and f.dtype == torch.uint8, (f.shape, f.dtype)
assert not torch.version.cuda, "torch is a CUDA build: " + str(torch.version.cuda)
print(torchcodec.__version__)
'
cuda_pkgs() { "$VPY" -m pip list 2>/dev/null | grep -iE '^(nvidia-|cuda-|triton)' | awk '{print $1}' | tr '\n' ' '; }
if ! prev_failed torchcodec; then
  tc_ok=0
  tmp=$(mktemp)
  if "$VPY" -c "$TC_SMOKE" >"$tmp" 2>&1 && [ "$(tail -1 "$tmp")" = "${TORCHCODEC_PIN#*==}" ]; then
    :  # already installed and working
  elif ! "$VPY" -m pip install -q "$TORCH_PIN" >"$tmp" 2>&1; then
    record torchcodec false "" "$TORCH_PIN (CPU) did not install: $(last_error "$tmp")"
  elif [ -n "$(cuda_pkgs)" ]; then
    record torchcodec false "" "$TORCH_PIN pulled CUDA packages ($(cuda_pkgs)); refused"
  elif ! "$VPY" -m pip install -q --no-deps "$TORCHCODEC_PIN" >"$tmp" 2>&1; then
    record torchcodec false "" "pip install --no-deps $TORCHCODEC_PIN failed: $(last_error "$tmp")"
  fi
  cat "$tmp" >> "$LOG"
  if ! grep -q "^torchcodec" "$RESULTS"; then
    if "$VPY" -c "$TC_SMOKE" >"$tmp" 2>&1; then
      record torchcodec true "$(tail -1 "$tmp") (torch $("$VPY" -c 'import torch;print(torch.__version__)'), system FFmpeg)" ""
      tc_ok=1
    else
      tcv=$("$VPY" -c "from importlib.metadata import version; print(version('torchcodec'))" 2>/dev/null)
      tv=$("$VPY" -c "from importlib.metadata import version; print(version('torch'))" 2>/dev/null)
      so=$(ls "$VENV"/lib/python3*/site-packages/torchcodec/libtorchcodec_core*.so 2>/dev/null | tail -1)
      need=""
      [ -n "$so" ] && need=$(readelf -d "$so" 2>/dev/null | grep NEEDED | grep -oE 'lib(torch_cuda|c10_cuda|cudart|nvrtc)[^]]*' | sort -u | tr '\n' ' ')
      record torchcodec false "" "torchcodec $tcv does not decode with torch $tv: $(last_error "$tmp")${need:+; its libraries need CUDA libraries: $need}"
      cat "$tmp" >> "$LOG"
    fi
  fi
  rm -f "$tmp"
  if [ $tc_ok = 0 ]; then  # keep the venv lean: torch is only there for torchcodec
    "$VPY" -m pip uninstall -y -q torchcodec torch >>"$LOG" 2>&1 || true
  fi
  grep "^torchcodec" "$RESULTS" | tail -1 | awk -F'\t' '{print "setup_bench: torchcodec ok=" $2 " " $3 $4}'
else
  why=$("$VPY" -c "import json;print(json.load(open('$PEERS_JSON'))['peers']['torchcodec']['reason'])")
  log "torchcodec: failed before ($why); BENCH_RETRY_PEERS=1 retries"
  record torchcodec false "" "$why"
fi

# ---- remote reads (bench/remote.py) -------------------------------------------------
# moto's S3 server (the bucket, on 127.0.0.1) and s3fs (the fsspec file object torchcodec and
# PyAV read through). Additive: a failure here only disables bench/remote.py.
if ! "$VPY" -c "import s3fs, moto.server, boto3" 2>/dev/null; then
  if pipi s3fs "moto[server]" boto3 "$AV_PIN"; then
    log "s3fs + moto[server] installed (bench/remote.py)"
  else
    log "s3fs / moto[server] did not install (bench/remote.py needs them), see $LOG"
  fi
fi

# ---- write peers.json ---------------------------------------------------------------
"$VPY" - "$RESULTS" "$PEERS_JSON" "$want" "$vidlake_status" "$vidlake_reason" <<'EOF'
import json, sys, time
rows, out, h, vst, vwhy = sys.argv[1:6]
peers = {}
for line in open(rows):
    name, ok, ver, why = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
    peers[name] = {"ok": ok == "true", "version": ver or None, "reason": why or None}
try:
    import vidlake
    vver = vidlake.__version__
except Exception:
    vver = None
json.dump({"setup_hash": h, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
           "vidlake": {"ok": vst == "ok", "version": vver, "reason": vwhy or None},
           "peers": peers}, open(out, "w"), indent=2)
EOF
rm -f "$RESULTS"
log "peers written to $PEERS_JSON"
exit 0

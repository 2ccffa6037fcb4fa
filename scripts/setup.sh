#!/usr/bin/env bash
# One-time (idempotent) set-up for vidlake on a fresh Debian/Ubuntu machine:
#   1. system packages: FFmpeg's libraries + headers (found with pkg-config), the ffmpeg CLI
#      (tests generate synthetic videos with it), and the extra -dev packages the test
#      oracle (PyAV built from source against the same FFmpeg) needs;
#   2. a virtual environment .venv with vidlake and its test dependencies.
# apt-get runs when we are root; otherwise the exact command is printed and we stop.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(pkg-config libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
      libavdevice-dev libavfilter-dev libswresample-dev libjpeg-dev ffmpeg)
missing=()
command -v pkg-config >/dev/null || missing+=(pkg-config)
for lib in libavformat libavcodec libavutil libswscale libavdevice libavfilter libswresample libjpeg; do
  pkg-config --exists "$lib" 2>/dev/null || { missing+=("$lib-dev"); }
done
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: missing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${PKGS[@]}" >/dev/null
  else
    echo "setup: run this once, then try again:"
    echo "  sudo apt-get update && sudo apt-get install -y ${PKGS[*]}"
    exit 1
  fi
fi

# clang with libFuzzer and the sanitizer runtimes, for `make fuzz` (fuzz/run.sh); the build
# and `make test` do not need them, so without root this only prints the command.
FUZZ_PKGS=(clang libclang-rt-14-dev)
if ! command -v clang++ >/dev/null || [ ! -f "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${FUZZ_PKGS[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${FUZZ_PKGS[@]}" >/dev/null; }
  else
    echo "setup: for make fuzz: sudo apt-get install -y ${FUZZ_PKGS[*]}"
  fi
fi

# Debian's Chromium for the viewer's browser tests (tests/test_viewer.py drives it with
# Playwright's Python package through executable_path; no browser is ever downloaded).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "setup: for the viewer tests: sudo apt-get install -y chromium"
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# Dependencies are re-installed only when pyproject.toml changes.
stamp=.venv/.vidlake-deps
want=$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-40)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  $VPY -m pip install -q --upgrade pip
  $VPY -m pip install -q "scikit-build-core>=0.8" "pybind11>=2.11" numpy "tqdm>=4.60" cython
  # The oracle: PyAV compiled from source against the system FFmpeg (same libavcodec/libswscale
  # as vidlake), so "bit-identical to PyAV" compares decoders, not two FFmpeg builds.
  # 12.3.0 is the newest PyAV that builds against FFmpeg 5.1 (Debian 12) and builds against 6.x;
  # it does not build against FFmpeg 7 (Debian 13: 7.1), where 13.1.0 does.
  avcodec_major=$(pkg-config --modversion libavcodec | cut -d. -f1)
  if [ "$avcodec_major" -ge 61 ]; then PYAV=13.1.0; else PYAV=12.3.0; fi
  if ! $VPY -c "import av, sys; sys.exit(av.__version__ != '$PYAV')" 2>/dev/null; then
    echo "setup: building the oracle PyAV $PYAV from source against libavcodec $(pkg-config --modversion libavcodec)"
    $VPY -m pip install -q --no-binary av "av==$PYAV"
  fi
  $VPY -m pip install -q pytest pytest-timeout pillow boto3 "moto[server]>=5" ruff mypy "hypothesis>=6.100" \
    "google-cloud-storage>=2.10" "gcp-storage-emulator; python_version >= '3.10'"
  # Playwright's Python package drives Debian's chromium in the viewer tests (never `playwright install`)
  $VPY -m pip install -q "playwright>=1.40"
  # PyTorch for the vidlake.torch tests: the CPU wheel (torch==2.13.0+cpu, kept on this
  # machine's local wheel folder; no CUDA packages). Without it those tests skip.
  if ! $VPY -c "import torch" 2>/dev/null; then
    $VPY -m pip install -q "torch==2.13.0" || echo "setup: torch not installed; the vidlake.torch tests will skip"
  fi
  echo "$want" > "$stamp"
fi
# Ray for the distributed ingest tests (vidlake[ray], tests/test_jobs_ray.py); without it they skip.
if ! $VPY -c "import ray" 2>/dev/null; then
  $VPY -m pip install -q "ray>=2.9" || echo "setup: ray not installed; the Ray ingest tests will skip"
fi
# Build and install vidlake itself (incremental: CMake keeps build/ between runs).
$VPY -m pip install -q --no-build-isolation --no-deps .
$VPY -c "import vidlake, vidlake._core; print('setup: vidlake', vidlake.__version__, 'ready')"

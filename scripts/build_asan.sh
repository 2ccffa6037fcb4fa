#!/usr/bin/env bash
# Builds vidlake._core with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) into build-asan/,
# and lays out build-asan/site/vidlake: the Python sources of this checkout (symlinks) beside the
# sanitized module, so PYTHONPATH=build-asan/site runs the test suite against it (make test-asan).
# Prints the LD_PRELOAD the Python process needs (Python itself is not instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
[ -x "$VPY" ] || { echo "build_asan: run make setup first" >&2; exit 1; }
out=build-asan
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DPython_EXECUTABLE="$PWD/$VPY" -Dpybind11_DIR="$($VPY -m pybind11 --cmakedir)" >/dev/null
cmake --build "$out" -j"${ASAN_BUILD_JOBS:-2}" --target _core >/dev/null
site="$out/site/vidlake"
rm -rf "$out/site"
mkdir -p "$site"
for f in python/vidlake/*; do
  case "$f" in *__pycache__) continue ;; esac
  ln -s "$PWD/$f" "$site/"
done
ln -s "$PWD"/"$out"/_core*.so "$site/"
echo "$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" > "$out/preload"
# The runtime is preloaded into Python processes only: tools the tests run through subprocess
# (bash, dd, ffmpeg) are not instrumented and some trip over it (ASan's aligned_alloc refuses
# dd's 1-byte buffer). Python children (subprocess, multiprocessing) keep it.
cat > "$out/site/sitecustomize.py" <<'PY'
"""make test-asan: no preloaded ASan runtime in non-Python children (see scripts/build_asan.sh)."""
import os
import subprocess

_Popen = subprocess.Popen


class _SanitizedPopen(_Popen):
    def __init__(self, args, *a, **kw):
        argv0 = args if isinstance(args, (str, bytes, os.PathLike)) else (list(args) or [""])[0]
        if not os.path.basename(os.fsdecode(argv0)).startswith("python"):
            env = dict(kw.get("env") if kw.get("env") is not None else os.environ)
            env.pop("LD_PRELOAD", None)
            kw["env"] = env
        super().__init__(args, *a, **kw)


if os.environ.get("LD_PRELOAD"):
    subprocess.Popen = _SanitizedPopen
PY

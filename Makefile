# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
BENCH_VENV := .venv-bench
BPY := $(BENCH_VENV)/bin/python
VIDEOS ?=

.PHONY: setup demo test bench-setup bench bench-quick bench-core lint clean

setup:
	@flock .setup.lock bash scripts/setup.sh

demo: setup
	$(PY) -m vidlake.demo $(if $(VIDEOS),--videos $(VIDEOS),)

test: setup
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q tests

# ruff (rules in pyproject.toml) and mypy on the package; `make test` runs it first
lint: setup
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/mypy

# The benchmark has its own venv: the peers (decord, OpenCV, Deep Lake 3.x, torchcodec with
# the CPU torch) pin packages of their own and must never touch the test venv's oracle.
bench-setup: setup
	@flock .setup.lock bash bench/setup_bench.sh

bench: bench-setup
	$(BPY) bench/compare.py --full

bench-quick: bench-setup
	$(BPY) bench/compare.py --quick

bench-core: bench-setup
	$(BPY) -m pytest bench/ --benchmark-only -p no:cacheprovider

clean:
	rm -rf build $(VENV) $(BENCH_VENV) .setup.lock

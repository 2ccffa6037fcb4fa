# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
BENCH_VENV := .venv-bench
BPY := $(BENCH_VENV)/bin/python
VIDEOS ?=

.PHONY: setup demo test bench-setup bench bench-quick bench-core lint clean asan test-asan test-asan-core fuzz

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

# Hostile input (docs/DESIGN.md, "Threat model"). The core under ASan + UBSan: the Python
# sources of this checkout with a sanitized _core (build-asan/), e.g.
#   make test-asan                          the whole suite (slow: about 3x)
#   make test-asan-core                     the tests that drive the C++ core hardest (CI size)
#   make test-asan ASAN_TESTS=tests/test_reader_exact.py
ASAN_TESTS ?= tests
ASAN_CORE_TESTS ?= tests/test_hostile_index.py tests/test_damaged_dataset.py tests/test_fuzz_regressions.py \
	tests/test_reader_errors.py tests/test_reference_frames.py tests/test_output_cache.py tests/test_index_tables.py \
	tests/test_index_mkv.py tests/test_decoder_memory.py
ASAN_ENV = LD_PRELOAD="$$(cat build-asan/preload)" PYTHONPATH=build-asan/site \
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan: setup
	bash scripts/build_asan.sh

test-asan: asan
	$(ASAN_ENV) $(PY) -m pytest -q -p no:cacheprovider $(ASAN_TESTS)

test-asan-core: asan
	$(ASAN_ENV) $(PY) -m pytest -q -p no:cacheprovider $(ASAN_CORE_TESTS)

# Fuzzing, CI size (about 3 minutes with the build): the libFuzzer harnesses under ASan + UBSan
# (index_fuzzer: stored index bytes; container_fuzzer: video file bytes through the index builder)
# sharing FUZZ_SECONDS, then the dataset-metadata property test with FUZZ_EXAMPLES fresh examples.
# A developer's longer run: make fuzz FUZZ_SECONDS=3600 FUZZ_EXAMPLES=5000 (FUZZ_JOBS=N workers).
# FUZZ_RUNS=N FUZZ_SEED=S (CI): a fixed number of inputs from fixed seeds, as long on any machine
# (N - N/5 for index_fuzzer, N/5 for container_fuzzer).
FUZZ_SECONDS ?= 60
FUZZ_EXAMPLES ?= 200
FUZZ_SEED ?=
fuzz: setup
	FUZZ_SEED=$(FUZZ_SEED) bash fuzz/run.sh $(FUZZ_SECONDS)
	VIDLAKE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz_dataset.py \
		$(if $(FUZZ_SEED),--hypothesis-seed=$(FUZZ_SEED),)

clean:
	rm -rf build build-asan build-fuzz $(VENV) $(BENCH_VENV) .setup.lock

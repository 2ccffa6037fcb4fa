# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
VIDEOS ?=

.PHONY: setup demo test bench bench-quick lint clean

setup:
	@flock .setup.lock bash scripts/setup.sh

demo: setup
	$(PY) -m vidlake.demo $(if $(VIDEOS),--videos $(VIDEOS),)

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check python tests bench

bench: setup
	$(PY) bench/compare.py --full

bench-quick: setup
	$(PY) bench/compare.py --quick

clean:
	rm -rf build $(VENV) .setup.lock

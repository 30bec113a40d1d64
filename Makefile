# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install everything on first use (scripts/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.raymix-installed

.PHONY: setup demo test test-all lint bench

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/raymix demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check raymix tests benchmarks experiments scripts

bench: $(STAMP)
	$(PY) benchmarks/bench_trainer.py
	$(PY) benchmarks/bench_data_stream.py
	$(PY) benchmarks/bench_aioli_overhead.py

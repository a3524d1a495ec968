# survey-ingest — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install services-install demo serve test test-unit lint typecheck services services-down stack stack-down bench bench-standing clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(BIN)/survey-ingest demo

serve: install
	$(BIN)/survey-ingest serve

# Installs the real services the tests use (Kafka jars, ClickHouse server); the test session
# starts each once and stops it at the end.
services-install:
	bash infra/pages/install.sh
	bash infra/reports/install.sh
	bash infra/monitoring/install.sh
	bash infra/kafka/install.sh
	bash infra/clickhouse/install.sh
	bash infra/nginx/install.sh

test: install services-install
	$(PY) -m pytest -q -ra

test-unit: install
	$(PY) -m pytest -q -m "not integration and not browser"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

stack: install services-install
	bash infra/stack/up.sh

stack-down:
	bash infra/stack/down.sh

bench: install services-install
	$(PY) -m benchmarks.run

# Regional queries at 10 M sheets with review decisions covering 100,000 of them (issue 18's
# floor: p95 <= 100 ms), on the ClickHouse server and chDB; ~20 minutes on 2 cores.
bench-standing: install services-install
	$(PY) -m benchmarks.bench_queries --rows 10000000 --reviewed 100000 \
		--out benchmarks/results/queries_standing.json

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache

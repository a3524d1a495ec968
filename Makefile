# survey-ingest — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install services-install bench-install demo serve test test-unit lint typecheck services services-down stack stack-down bench bench-restart bench-read bench-read-quick clean bench-export bench-reports bench-standing bench-quick bench-curves

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
	$(PY) -m pytest -q -ra --durations=30

test-unit: install
	$(PY) -m pytest -q -m "not integration and not browser"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

stack: install services-install
	bash infra/stack/up.sh

stack-down:
	bash infra/stack/down.sh

# wrk drives the HTTP benchmarks; Kafka's own tools (kafka-tools, fetched with Maven like the
# broker's jars) give the producer ceiling the collector's figure reads against.
bench-install:
	bash infra/bench/install.sh

bench: install services-install bench-install
	$(PY) -m benchmarks.run

# Every figure of `make bench` at quick sizes, in under 15 minutes (run.py prints the time it
# took and says when it went over). Its own results file, so full figures are never replaced by
# quick ones: benchmarks/results/quick.json, quick.md and quick-plots/.
bench-quick: install services-install bench-install
	$(PY) -m benchmarks.run --quick --latest benchmarks/results/quick.json

# How cost grows with the campaign (issue 20), alone: freshness at 250-2,000 sheets/s, queries
# at 1 M, 10 M and 30 M sheets, CPU per sheet; into latest.json, RESULTS.md (tables and plots)
# and docs/capacity.md. About 1.5-2 hours on 2 cores (the 30 M fills and scans are most of it).
bench-curves: install services-install bench-install
	$(PY) -m benchmarks.run --only curves

# Restart time against the store's size: 0, 1 M, 10 M and 30 M sheets (about an hour of fills).
bench-restart: install
	$(PY) -m benchmarks.bench_restart --rows 0,1000000,10000000,30000000 --out benchmarks/results/restart.json

# The read side under a crowd (issue 23): 1 M sheets stored, 2,000 sheets/s coming in, 15 s per
# route, 10,000 screens on /live. Results to benchmarks/results/read.json.
bench-read: install bench-install
	$(PY) -m benchmarks.bench_read --out benchmarks/results/read.json

# The same, short (9,000 sheets, no ingest, 4 s per route, 1,000 screens): provisional figures.
bench-read-quick: install bench-install
	$(PY) -m benchmarks.bench_read --quick --out benchmarks/results/read_quick.json

# Exports at campaign scale (issue #17): 10 M sheets to csv and parquet against the engine's own
# CSVWithNames / Parquet, then 1 M to sav and xlsx; on chDB and the ClickHouse server. Long.
bench-export: install services-install
	$(PY) -m benchmarks.bench_export --sheets 10000000 --formats csv,parquet \
		--out benchmarks/results/export-10m.json
	$(PY) -m benchmarks.bench_export --sheets 1000000 --formats sav,xlsx \
		--out benchmarks/results/export-1m.json

# `report --all-eligible` over 10 M generated sheets in the embedded store (about an hour on 2
# cores): time and peak memory into benchmarks/results/latest.json and RESULTS.md.
bench-reports: install
	bash infra/reports/install.sh
	$(PY) -m benchmarks.run --only reports

# Regional queries at 10 M sheets with review decisions covering 100,000 of them (issue 18's
# floor: p95 <= 100 ms), on the ClickHouse server and chDB; ~20 minutes on 2 cores.
bench-standing: install services-install
	$(PY) -m benchmarks.bench_queries --rows 10000000 --reviewed 100000 \
		--out benchmarks/results/queries_standing.json

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache

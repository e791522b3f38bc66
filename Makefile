# Targets a newcomer can guess. `make test` alone sets everything up on a fresh Debian machine.
PY := .venv/bin/python
# Tests run in parallel (pytest-xdist): one worker per core for the unit tests, four per core for the whole
# suite, whose runtime tests mostly wait on failovers (on 2 cores, 4 workers kept the CPU 41% busy; 8 workers:
# 312-340 s -> 220 s, 84% busy, and more no longer pays). --dist loadfile (refined in tests/conftest.py) keeps a
# file's module fixtures (a started cluster, a fresh clone) on one worker. `make test WORKERS=0` runs in one process.
CORES := $(shell nproc 2>/dev/null || echo 2)
WORKERS ?= $(shell expr 4 \* $(CORES))
UNIT_WORKERS ?= $(CORES)
XDIST = --dist loadfile --no-loadscope-reorder
# Python may keep bytecode here (in the __pycache__ directories .gitignore and each chart's .helmignore leave out),
# whatever the environment says: the suite starts hundreds of Python processes on the same modules, and each
# xdist worker imports every test module through pytest's assertion rewriting (2,700 asserts), which pytest only
# caches as bytecode. Measured on 2 cores, with PYTHONDONTWRITEBYTECODE=1 set by the machine, as the time 8 workers
# take to start and collect before the first test runs (`pytest -n 8 -k <nothing>`): 14 s and 27 CPU s without
# bytecode, 6-7 s and 11 CPU s with it (2 workers: 3.2 s -> 1.5 s).
export PYTHONDONTWRITEBYTECODE :=
.DEFAULT_GOAL := help

.PHONY: help setup lint test test-unit test-runtime test-cluster schema schema-check ct-lint package up deploy status logs cleanup down bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Create .venv, install Python deps, helm 4 + helm 3 (sha256-checked) and the test daemons
	@sh scripts/bootstrap.sh

lint: setup ## The main job: render every chart and values profile with helm and check it
	$(PY) -m tools.lint

# While the three checks run on one core, one `pytest --collect-only` on the other writes that bytecode, so
# that on a fresh clone the workers do not each rewrite and compile every test module again.
test: setup ## Every test (unit, lint fixtures, schema, runtime daemons; cluster tests skip without a cluster)
	@$(PY) -m pytest -q --collect-only -p no:xdist >/dev/null 2>&1 & warm=$$!; \
	$(PY) -m ruff check tools tests bench && $(PY) -m tools.schema --check && $(PY) -m tools.lint.docs --check; \
	rc=$$?; wait $$warm; exit $$rc
	$(PY) -m pytest -q -n $(WORKERS) $(XDIST)

test-unit: setup ## Only the fast tests (no daemons)
	$(PY) -m pytest -q -n $(UNIT_WORKERS) $(XDIST) -m "not runtime and not cluster"

test-runtime: setup ## Only the tests that start real Redis/Sentinel/etcd/Patroni/PostgreSQL
	$(PY) -m pytest -q -n $(WORKERS) $(XDIST) -m runtime

schema: setup ## Regenerate values.schema.json and the README parameter tables
	$(PY) -m tools.schema

schema-check: setup ## Fail when a committed schema or README table is stale
	$(PY) -m tools.schema --check

ct-lint: setup ## What chart-testing's `ct lint` runs, with our ct.yaml, without ct
	$(PY) -m tools.ctlint

package: setup ## Package the application charts, dependencies bundled, into dist/ (what a release pushes)
	$(PY) -m tools.package --out dist

up: setup ## Create the Kind cluster (needs docker and kind)
	$(PY) -m tools.cluster up

deploy: setup ## helm upgrade --install charts/nova with values/local.yaml and wait
	$(PY) -m tools.cluster deploy

status: setup ## Pods, ready counts, Redis master, PostgreSQL leader, port-forward addresses
	$(PY) -m tools.cluster status

logs: setup ## Logs of every component (make logs C=redis for one)
	$(PY) -m tools.cluster logs $(C)

test-cluster: setup ## helm test, then the failover tests in tests/cluster (needs a cluster)
	$(PY) -m tools.cluster test

cleanup: setup ## Uninstall the release and delete its namespaces
	$(PY) -m tools.cluster cleanup

down: setup ## Delete the Kind cluster
	$(PY) -m tools.cluster down

bench: setup ## Run every benchmark in bench/ (each prints one JSON object last)
	$(PY) bench/failover.py redis
	$(PY) bench/failover.py postgres
	$(PY) bench/schema.py
	$(PY) bench/lint.py

clean: ## Remove the venv, built chart dependencies and dist/
	rm -rf .venv charts/*/charts/*.tgz dist

# Kasal developer tasks.  `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV ?= .venv
PY = $(VENV)/bin/python
PYTHON ?= python3
KASAL_DATA_DIR ?= .kasal
PYTEST_ARGS ?=
SOAK_ROUNDS ?= 60
RUN_ARGS ?=
BENCH_ARGS ?=
# Set these to use an existing PostgreSQL / Kafka instead of the private test services.
KASAL_TEST_POSTGRES_URL ?=
KASAL_TEST_KAFKA_BOOTSTRAP ?=

LOCKFILE := $(wildcard requirements.lock)
STAMP := $(VENV)/.installed

# Keep third-party libraries quiet and offline for every target.
export CREWAI_DISABLE_TELEMETRY = true
export OTEL_SDK_DISABLED = true
export CREWAI_TRACING_ENABLED = false
export LITELLM_LOCAL_MODEL_COST_MAP = True
export KASAL_DATA_DIR

.PHONY: help venv run lint services-up services-down test test-services soak bench clean distclean

help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: VENV=$(VENV) KASAL_DATA_DIR=$(KASAL_DATA_DIR) PYTEST_ARGS=... RUN_ARGS=..."
	@echo "           KASAL_TEST_POSTGRES_URL=... (use an existing PostgreSQL for tests)"
	@echo "           KASAL_TEST_KAFKA_BOOTSTRAP=host:port (use an existing Kafka for tests)"

$(STAMP): pyproject.toml $(LOCKFILE)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' $(if $(LOCKFILE),-c $(LOCKFILE))
	@touch $@

venv: $(STAMP) ## Create the virtualenv and install Kasal with dev extras

run: $(STAMP) ## Run the Kasal server (data in KASAL_DATA_DIR, default .kasal)
	$(VENV)/bin/kasal serve --data-dir $(KASAL_DATA_DIR) $(RUN_ARGS)

lint: $(STAMP) ## ruff check + mypy + import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

services-up: ## Start the private PostgreSQL, Kafka and Qdrant test services (installs them if needed)
	@set -o pipefail; \
	pg_url="$$(bash scripts/postgres.sh up | tail -n 1)" && \
	kafka_bootstrap="$$(bash scripts/kafka.sh up | tail -n 1)" && \
	qdrant_url="$$(bash scripts/qdrant.sh up | tail -n 1 || [ $$? -eq 3 -a -z "$$CI" ])" && \
	echo "PostgreSQL: $$pg_url" && \
	echo "Kafka:      $$kafka_bootstrap" && \
	echo "Qdrant:     $${qdrant_url:-none (no server binary: the distributed search legs do not run)}"

services-down: ## Stop the private PostgreSQL, Kafka and Qdrant test services
	@rc=0; bash scripts/qdrant.sh down || rc=1; bash scripts/kafka.sh down || rc=1; \
	bash scripts/postgres.sh down || rc=1; exit $$rc

# The private services are only started when KASAL_TEST_POSTGRES_URL,
# KASAL_TEST_KAFKA_BOOTSTRAP and KASAL_TEST_QDRANT_URL are not all given; a given one is used
# as it is. Qdrant's URL is passed on only when its server runs (no binary: no server).
test: $(STAMP) $(if $(and $(KASAL_TEST_POSTGRES_URL),$(KASAL_TEST_KAFKA_BOOTSTRAP),$(KASAL_TEST_QDRANT_URL)),,test-services) ## Lint, then run the test suite
	@$(MAKE) --no-print-directory lint
	KASAL_TEST_POSTGRES_URL="$${KASAL_TEST_POSTGRES_URL:-$$(bash scripts/postgres.sh url)}" \
	KASAL_TEST_KAFKA_BOOTSTRAP="$${KASAL_TEST_KAFKA_BOOTSTRAP:-$$(bash scripts/kafka.sh url)}" \
	KASAL_TEST_QDRANT_URL="$${KASAL_TEST_QDRANT_URL:-$$(bash scripts/qdrant.sh status 2>/dev/null && bash scripts/qdrant.sh url)}" \
		$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# Starts only the private services that the test run will use.
test-services: $(STAMP)
	$(if $(KASAL_TEST_POSTGRES_URL),,bash scripts/postgres.sh up)
	$(if $(KASAL_TEST_KAFKA_BOOTSTRAP),,bash scripts/kafka.sh up)
	$(if $(KASAL_TEST_QDRANT_URL),,bash scripts/qdrant.sh up || [ $$? -eq 3 -a -z "$$CI" ])

# The soak: the failover tests (worker SIGKILL, broker SIGKILL, writer fencing), each
# SOAK_ROUNDS times; prints the counts per test and one JSON line (also in .soak-report.json).
soak: $(STAMP) $(if $(and $(KASAL_TEST_POSTGRES_URL),$(KASAL_TEST_KAFKA_BOOTSTRAP)),,test-services) ## Repeat the failover tests SOAK_ROUNDS times (default 60) and report the counts
	KASAL_SOAK_ROUNDS=$(SOAK_ROUNDS) KASAL_SOAK_REPORT=.soak-report.json \
	KASAL_TEST_POSTGRES_URL="$${KASAL_TEST_POSTGRES_URL:-$$(bash scripts/postgres.sh url)}" \
	KASAL_TEST_KAFKA_BOOTSTRAP="$${KASAL_TEST_KAFKA_BOOTSTRAP:-$$(bash scripts/kafka.sh url)}" \
		$(VENV)/bin/pytest -q -p no:cacheprovider tests/soak $(PYTEST_ARGS)

bench: $(STAMP) ## Run the benchmarks (append, crew overhead, search); each prints its figures
	$(PY) bench/append.py $(BENCH_ARGS)
	$(PY) bench/crew_overhead.py
	$(PY) bench/search.py
	$(PY) bench/distributed.py

clean: ## Stop services; remove .kasal, .services and caches (keeps the venv)
	-bash scripts/qdrant.sh destroy
	-bash scripts/kafka.sh destroy
	-bash scripts/postgres.sh destroy
	rm -rf .kasal .services .soak-report.json .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean + remove the virtualenv
	rm -rf $(VENV)

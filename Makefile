# Kasal developer tasks.  `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV ?= .venv
PY = $(VENV)/bin/python
PYTHON ?= python3
KASAL_DATA_DIR ?= .kasal
PYTEST_ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=
# Set this to use an existing PostgreSQL instead of the private test cluster.
KASAL_TEST_POSTGRES_URL ?=

LOCKFILE := $(wildcard requirements.lock)
STAMP := $(VENV)/.installed

# Keep third-party libraries quiet and offline for every target.
export CREWAI_DISABLE_TELEMETRY = true
export OTEL_SDK_DISABLED = true
export CREWAI_TRACING_ENABLED = false
export LITELLM_LOCAL_MODEL_COST_MAP = True
export KASAL_DATA_DIR

.PHONY: help venv run lint services-up services-down test bench clean distclean

help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@echo
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: VENV=$(VENV) KASAL_DATA_DIR=$(KASAL_DATA_DIR) PYTEST_ARGS=... RUN_ARGS=..."
	@echo "           KASAL_TEST_POSTGRES_URL=... (use an existing PostgreSQL for tests)"

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

services-up: ## Start the private PostgreSQL test cluster (installs PostgreSQL if needed)
	bash scripts/postgres.sh up

services-down: ## Stop the private PostgreSQL test cluster
	bash scripts/postgres.sh down

# The private cluster is only started when KASAL_TEST_POSTGRES_URL is not given.
test: $(STAMP) $(if $(KASAL_TEST_POSTGRES_URL),,services-up) ## Lint, then run the test suite
	@$(MAKE) --no-print-directory lint
	KASAL_TEST_POSTGRES_URL="$${KASAL_TEST_POSTGRES_URL:-$$(bash scripts/postgres.sh url)}" \
		$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: $(STAMP) ## Run the append benchmark
	$(PY) bench/append.py $(BENCH_ARGS)

clean: ## Stop services; remove .kasal, .services and caches (keeps the venv)
	-bash scripts/postgres.sh destroy
	rm -rf .kasal .services .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean + remove the virtualenv
	rm -rf $(VENV)

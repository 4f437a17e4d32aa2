# okx-collector: every command a user or CI needs. `make help` lists them.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install demo run db-upgrade test test-all soak check lint format bench bench-peers clean prefect-up prefect-down

help:
	@echo "make install     create .venv and install the project (editable) with its console script"
	@echo "make demo        collect from the local simulator through injected faults, then validate/backfill/validate/reaggregate as Prefect flow runs; table vs the truth (DURATION=60)"
	@echo "make run         install, migrate the embedded SQLite database and check the config"
	@echo "make test        lint + type-check + layer check, then the test suite (no soak tests)"
	@echo "make test-all    everything, soak tests included"
	@echo "make soak        only the soak tests (SOAK_MINUTES=30, SOAK_SEED=...; report in data/soak/<time>/, docs/soak.md)"
	@echo "make bench       benchmarks (make bench ONLY=<name> for one); writes benchmarks/results/latest.json"
	@echo "make bench-peers our collector beside ccxt.pro and cryptofeed through one fault timeline (QUICK=1, STALL=s); docs/benchmarks.md"
	@echo "make lint        ruff, mypy --strict on collectors/, okx_simulator/, tasks/, flows/, import-linter"
	@echo "make prefect-up  local Prefect: server, pools, limits, automations, deploy prefect.yaml, workers (PORT=4200)"
	@echo "make prefect-down stop what prefect-up started (pid files in data/prefect)"

install: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml setup.py collectors/exchanges/okx/_fastparse.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-test.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

demo: install
	$(BIN)/okx-collector demo $(if $(DURATION),--duration $(DURATION),)

run: install
	$(BIN)/okx-collector db upgrade
	$(BIN)/okx-collector config check

db-upgrade: install
	$(BIN)/okx-collector db upgrade

lint check: install
	$(BIN)/ruff check collectors okx_simulator tasks flows tests benchmarks
	$(BIN)/ruff format --check collectors okx_simulator tasks flows tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format collectors okx_simulator tasks flows tests benchmarks
	$(BIN)/ruff check --fix collectors okx_simulator tasks flows tests benchmarks

test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: check
	$(BIN)/python -m pytest -m "" $(PYTEST_ARGS)

soak: install
	$(BIN)/python -m pytest -m soak -s $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks $(if $(ONLY),--only $(ONLY),)

# the peers get their own venvs in data/peers (never the project's): cryptofeed 3 needs Python 3.13
PY313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
bench-peers: install
	sh benchmarks/peers/make_venv.sh ccxt "$(PY)"
	sh benchmarks/peers/make_venv.sh cryptofeed "$(PY313)" optional
	$(BIN)/python -m benchmarks.peers $(if $(QUICK),--quick,) $(if $(STALL),--stall $(STALL),)

prefect-up: install
	$(BIN)/okx-collector prefect up $(if $(PORT),--port $(PORT),)

prefect-down: install
	$(BIN)/okx-collector prefect down $(if $(PORT),--port $(PORT),)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

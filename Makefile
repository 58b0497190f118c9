# Dockyard: `make run` starts everything locally; `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench venv services-install lint unit clean

run: venv services-install
	infra/dev/run.sh

test: venv services-install
	infra/dev/test.sh

# Benchmarks (print figures; see docs/performance.md).
bench: venv services-install
	infra/dev/bench.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
	@python3 -m venv $(VENV) 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

services-install:
	infra/dev/services.sh install

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

unit: venv
	$(PY) -m pytest tests/unit -q

clean:
	rm -rf $(VENV) .dockyard .pytest_cache

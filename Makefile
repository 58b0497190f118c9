# Dockyard: `make run` starts everything locally; `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench image venv services-install lint unit clean lock

# make run installs only what it runs on; make test and make bench install the test tools too.
run: venv
	infra/dev/services.sh install run
	infra/dev/run.sh

test: venv services-install
	infra/dev/test.sh

# Benchmarks (print figures; see docs/performance.md).
bench: venv services-install
	infra/dev/bench.sh

# The app image (infra/Dockerfile) as dockyard:latest; BASE_IMAGE=... picks its base.
image:
	infra/dev/image.sh

venv: $(VENV)/.installed

# The exact versions of requirements-dev.lock (pyproject.toml keeps the ranges; `make lock` writes the locks).
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
	@python3 -m venv $(VENV) 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

# Resolve pyproject.toml's ranges again into exact versions: requirements.lock (what the processes need:
# the image, a PaaS) and requirements-dev.lock (with the dev extras: make run, make test, CI).
lock: venv
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --annotation-style=line --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --annotation-style=line --no-emit-index-url --no-emit-find-links --extra dev -o requirements-dev.lock pyproject.toml

services-install:
	infra/dev/services.sh install

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

unit: venv
	$(PY) -m pytest tests/unit -q

clean:
	rm -rf $(VENV) .dockyard .pytest_cache

# The two commands a newcomer needs: `make run` and `make test`. Everything installs from here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test unit integration lint bench crds clean

include tests/testenv/testenv.mk
include tests/node/node.mk

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/provider-router demo

test: $(VENV)/.installed testenv-build
	$(PY) -m pytest tests

integration: $(VENV)/.installed testenv-build
	$(PY) -m pytest tests/integration tests/operator

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src

bench: $(VENV)/.installed testenv-build
	$(PY) bench/engine.py
	$(PY) bench/route_service.py
	$(PY) bench/operator_scale.py

crds: $(VENV)/.installed
	$(VENV)/bin/provider-router crds --out crds
	bash tests/tools/sync-chart-crds.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks

# The two commands a newcomer needs: `make run` and `make test`. Everything installs from here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# uv installs exactly the versions in uv.lock. uv itself is pinned and comes from PyPI (a wheel
# with the binary inside) into a per-user cache, so no installer script is piped into a shell.
UV_VERSION := 0.13.9
UV_DIR := $(HOME)/.cache/zoey-provider-router/uv-$(UV_VERSION)
UV := $(UV_DIR)/bin/uv
# Use the interpreter we name; never download one.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test unit integration lint lock bench bench-deps crds clean

include tests/testenv/testenv.mk
include tests/node/node.mk

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_DIR) \
		uv==$(UV_VERSION)

# --locked: fail (rather than re-resolve) if pyproject.toml changed without `make lock`.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --locked --extra dev --python $(PYTHON)
	touch $@

# The image installs exactly the locked runtime dependencies, with their hashes, from a file
# exported from uv.lock (`make lint` fails when it is out of date).
IMAGE_REQUIREMENTS := requirements-image.txt
EXPORT_IMAGE_REQUIREMENTS = $(UV) export --locked --no-dev --no-emit-project \
	--format requirements-txt --quiet

# After editing dependencies in pyproject.toml: re-resolve and rewrite uv.lock and the image's
# requirements (commit both). `make lock UPGRADE=1` also moves every pin to the newest allowed
# version.
lock: $(UV)
	$(UV) lock --python $(PYTHON) $(if $(UPGRADE),--upgrade)
	$(EXPORT_IMAGE_REQUIREMENTS) > $(IMAGE_REQUIREMENTS)

run: $(VENV)/.installed
	$(VENV)/bin/provider-router demo

test: $(VENV)/.installed testenv-build
	$(PY) -m pytest tests

integration: $(VENV)/.installed testenv-build
	$(PY) -m pytest tests/integration tests/operator

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

lint: $(VENV)/.installed
	@$(EXPORT_IMAGE_REQUIREMENTS) | cmp -s - $(IMAGE_REQUIREMENTS) \
		|| { echo "$(IMAGE_REQUIREMENTS) is out of date with uv.lock: run make lock"; exit 1; }
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: $(VENV)/.installed testenv-build bench-deps
	$(PY) bench/engine.py
	$(PY) bench/route_service.py
	$(PY) bench/route_instructions.py
	$(PY) bench/operator_scale.py
	$(PY) bench/load_sim.py
	$(PY) bench/cli_startup.py
	$(PY) bench/shared_state.py
	$(PY) bench/auth.py
	$(PY) bench/upstream_client.py
	$(PY) bench/proxy.py

# wrk drives the HTTP benches, valgrind counts the route path's instructions; installed from
# the distribution when missing.
bench-deps:
	bash tests/tools/install-wrk.sh
	bash tests/tools/install-valgrind.sh

crds: $(VENV)/.installed
	$(VENV)/bin/provider-router crds --out crds
	bash tests/tools/sync-chart-crds.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks .import_linter_cache

# Test Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager
# built from source; see tests/testenv/README.md). Included by the top-level
# Makefile, which defines PY and the .venv/.installed target.
#
#   make testenv        start in the background and leave running
#   make testenv-stop   stop it (by the PIDs recorded in .testenv/state.json)
#   make testenv-build  build or reuse the cached binary only

PY ?= .venv/bin/python
TESTENV_STARTER := tests/testenv/starter.py
# `stop` and `build` need only the standard library: don't force a venv for them.
TESTENV_PY = $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: testenv testenv-stop testenv-build

testenv: .venv/.installed
	$(PY) $(TESTENV_STARTER) start

testenv-stop:
	$(TESTENV_PY) $(TESTENV_STARTER) stop

testenv-build:
	$(TESTENV_PY) $(TESTENV_STARTER) build

# A real node for tests/e2e (see tests/node/README.md). Included by the top-level Makefile.
#
#   make node-deps   install the Debian packages (mmdebstrap, buildah, containerd, runc, CNI, ...)
#   make image       build localhost/zoey-provider-router:dev from the Dockerfile (cached)
#   make node        control plane + scheduler + one kubelet node, image loaded; leaves it running
#   make node-stop   stop it and remove everything it set up on the machine

NODE_PY = $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: node-deps image node node-stop node-preflight

node-deps:
	bash tests/tools/install-node-deps.sh

image: node-deps
	$(NODE_PY) tests/node/image.py build

# preflight first: without root, one line and nothing is built or started.
node: node-preflight .venv/.installed node-deps image testenv-build
	$(PY) tests/node/node.py start

node-preflight:
	@$(NODE_PY) tests/node/node.py preflight

node-stop:
	$(NODE_PY) tests/node/node.py stop

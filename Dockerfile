# syntax=docker/dockerfile:1
# provider-router: the Kopf operator plus the HTTP route API (and standalone `serve` mode).
#
# Two stages: the builder turns the source into a wheel; the final image installs only that
# wheel and its runtime dependencies as locked, so no compiler, build backend or source tree
# ships, and the image runs the dependency versions the tests ran.
#   docker build -t provider-router .
#   docker run --rm -p 8080:8080 -v "$PWD/examples/kubernetes:/manifests:ro" \
#     provider-router serve --manifests /manifests --host 0.0.0.0 --port 8080
# tests/chart/test_image.py replays both stages without a container engine (wheel build, fresh
# venv, the same pip install, the CLI) and lints this file with hadolint. `make image` builds it
# for real with buildah on a base made from Debian packages (tests/node/image.py).
#
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (never a layer):
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt .
# The pip steps use it only when it is given.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest of the repository out).
COPY pyproject.toml README.md ./
COPY src/ src/
# --no-deps: only our own wheel is built here; dependencies come from the index, as wheels,
# in the final stage. The build backend (hatchling) is fetched into an isolated build env.
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python -m pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="provider-router" \
      org.opencontainers.image.description="Kubernetes-native LLM router: LLMProvider and RoutingPolicy custom resources, a Kopf operator and a route API." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="zoeyos"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A numeric non-root user (65532, as in distroless "nonroot"), so that Kubernetes can verify
# runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
COPY --from=builder /wheels/ /tmp/wheels/
# The dependencies exactly as locked in uv.lock (versions and hashes: `make lock` exports the
# file), then the wheel alone. --only-binary makes a dependency without a wheel for this
# platform fail the build instead of needing a compiler the image lacks.
COPY requirements-image.txt /tmp/
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -f /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python -m pip install --no-cache-dir --only-binary :all: --require-hashes \
      -r /tmp/requirements-image.txt \
 && python -m pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels /tmp/requirements-image.txt
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["provider-router"]
CMD ["operator"]

#!/usr/bin/env bash
# Installs the pinned helm, kubectl (and, if named, helm4 / hadolint) used by the tests into
# ${ZOEY_TOOLS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/zoey-provider-router/tools} and prints their
# paths, one "name path" line each. Idempotent and quiet: a second run only stats the cache.
# Usage: tests/tools/install-helm.sh [helm] [kubectl] [helm4] [hadolint]
# The work is done by tests/support/tools.py (stdlib only), which the tests import as well.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
# As a module (not a script path): a script's own directory would shadow the standard library
# with tests/support/*.py (there is an operator.py).
export PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m support.tools "$@"

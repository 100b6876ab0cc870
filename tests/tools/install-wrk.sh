#!/usr/bin/env bash
# Installs wrk, the load generator of bench/route_service.py, bench/auth.py and bench/proxy.py,
# once: a no-op when wrk is already on PATH.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-command.sh" wrk wrk

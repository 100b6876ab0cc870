#!/usr/bin/env bash
# Installs wrk, the load generator of bench/route_service.py, bench/auth.py and bench/proxy.py,
# once: a no-op when wrk is already on PATH. Debian/Ubuntu (apt-get), as root or via sudo.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends wrk
command -v wrk

#!/usr/bin/env bash
# Installs redis-server for the shared-state tests (tests/sharedstate), once: a no-op when a
# redis-server (or valkey-server) is already on PATH. The tests start their own servers on
# free ports in temporary folders; the packaged service is not needed and is stopped if the
# package started it.
set -euo pipefail

if command -v valkey-server >/dev/null 2>&1; then
    exit 0
fi
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
bash "$(dirname "$0")/ensure-command.sh" redis-server redis-server
# The package may start a system instance on 6379; the tests never use it.
if command -v service >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    $SUDO service redis-server stop >/dev/null 2>&1 || true
fi

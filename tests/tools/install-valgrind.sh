#!/usr/bin/env bash
# Installs valgrind, which bench/route_instructions.py counts instructions with, once: a no-op
# when it is already on PATH.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-command.sh" valgrind valgrind

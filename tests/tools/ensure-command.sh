#!/usr/bin/env bash
# Usage: ensure-command.sh COMMAND PACKAGE
# Installs the Debian/Ubuntu PACKAGE (apt-get, as root or via sudo) unless COMMAND is already
# on PATH, then prints COMMAND's path. The install scripts of test and bench tools share it.
set -euo pipefail

command_name=$1
package=$2
if command -v "$command_name" >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$package"
command -v "$command_name"

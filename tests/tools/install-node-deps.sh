#!/usr/bin/env bash
# Installs the Debian packages that `make image`, `make node` and the tests that need real
# system services use: mmdebstrap + buildah (the image, without Docker or a public registry),
# containerd + runc + CNI plugins + iptables (a real kubelet node), redis-server (tests that
# run a real Redis). Idempotent: when every package is already installed it only asks dpkg,
# so a warm run takes well under a second. Needs root (apt-get).
set -euo pipefail
packages=(
  mmdebstrap buildah uidmap fuse-overlayfs
  containerd runc containernetworking-plugins
  iptables iproute2 conntrack
  redis-server
)
missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "[node-deps] all ${#packages[@]} packages already installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[node-deps] needs root to install: ${missing[*]}" >&2
  exit 1
fi
echo "[node-deps] installing ${#missing[@]}/${#packages[@]} packages: ${missing[*]}"
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: buildah recommends podman-like extras we do not use.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start their services; the node starts its own containerd (its own
# socket and state under a temp dir) and tests start their own redis-server on free ports.
for unit in containerd redis-server; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl stop "$unit" || true
  fi
done
echo "[node-deps] installed in $((SECONDS - started))s"

#!/usr/bin/env bash
# Copies the generated CRDs (crds/, written by `make crds`) into the Helm chart's crds/, which
# must hold identical copies (tests/chart/test_crds.py fails on drift). Run after `make crds`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
chart_crds="$root/charts/provider-router/crds"
rm -f "$chart_crds"/router.zoeyos.io_*.yaml
cp "$root"/crds/router.zoeyos.io_*.yaml "$chart_crds"/
echo "synced: $(cd "$chart_crds" && ls router.zoeyos.io_*.yaml | tr '\n' ' ')"

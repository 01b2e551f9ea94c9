#!/usr/bin/env bash
# Runs the bank demo in a fresh scratch directory and exits with its status.
# Usage: examples/run-demo.sh [build-dir]   (default: build)
set -euo pipefail
build="${1:-build}"
demo="$build/examples/bank_demo"
if [ ! -x "$demo" ]; then
  echo "run-demo.sh: $demo not found; build first (make build)" >&2
  exit 2
fi
scratch="$(mktemp -d "${TMPDIR:-/tmp}/snapstore-demo.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
status=0
"$demo" "$scratch" || status=$?
exit "$status"

#!/usr/bin/env bash
# Runs caf_bank in a fresh scratch directory and exits with its status.
# Usage: integrations/caf/run-caf-bank.sh path/to/caf_bank [caf_bank options]
set -euo pipefail
bin="${1:?usage: run-caf-bank.sh path/to/caf_bank [options]}"
shift
if [ ! -x "$bin" ]; then
  echo "run-caf-bank.sh: $bin not found; build first (make build)" >&2
  exit 2
fi
scratch="$(mktemp -d "${TMPDIR:-/tmp}/snapstore-caf.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
status=0
"$bin" "$@" "$scratch" || status=$?
exit "$status"

#!/usr/bin/env bash
# Follows the README in order, as a new user would: the install recipe of
# "Building and installing" (into PREFIX instead of /usr/local), then the
# quick start's test command (COMMAND, `make test` unless given), which must
# still run the whole suite. Then `make test` on a build directory configured
# without tests must fail.
#
# Usage: tests/release/readme-order.sh PREFIX [COMMAND...]
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$1
shift
[ $# -gt 0 ] || set -- make test
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/snapstore-readme.XXXXXX")
trap 'rm -f "$log"' EXIT

# The first ```sh block after the heading.
recipe=$(awk '/^## Building and installing/ {s=1} s && /^```sh/ {b=1; next} b && /^```/ {exit} b' README.md)
[ -n "$recipe" ] || { echo "readme-order: no install recipe in README.md" >&2; exit 1; }
echo "readme-order: the README's install recipe, into $prefix:"
echo "$recipe" | sed 's/^/  /'
recipe=${recipe//\/usr\/local/$prefix}
bash -euo pipefail -c "$recipe" >"$log" 2>&1 || { cat "$log"; echo "readme-order: the recipe failed" >&2; exit 1; }

echo "readme-order: then the quick start's $*"
"$@" 2>&1 | tee "$log" || { echo "readme-order: $* failed" >&2; exit 1; }
summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" || true)
ran=$(echo "$summary" | sed -nE 's/.* out of ([0-9]+)$/\1/p')
if [ -z "$ran" ] || [ "$ran" -eq 0 ]; then
  echo "readme-order: $* ran no test after the install recipe" >&2
  exit 1
fi
echo "readme-order: $summary"

# A build directory without tests: make test must say so and fail.
notests=$(echo "$recipe" | sed -nE 's/.*-B ([^ ]+).*/\1/p' | head -n1)
if make test BUILD="$notests" CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release" >"$log" 2>&1; then
  tail -n 20 "$log"
  echo "readme-order: make test in $notests (no tests) exited 0" >&2
  exit 1
fi
grep -q 'No tests were found' "$log" || { tail -n 20 "$log"; echo "readme-order: unexpected failure" >&2; exit 1; }
echo "readme-order: make test BUILD=$notests fails: $(grep -m1 'No tests were found' "$log")"

#!/usr/bin/env bash
# `make demo` on a fresh build directory, as on a fresh clone: it must build
# only what the demo needs (the library, bank_demo and the options tour, no
# tests), print the demo, not the build's progress, and name the tour.
#
# Usage: tests/release/first-demo.sh BUILD-DIR   (a directory that does not exist yet)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$1
[ ! -e "$dir" ] || { echo "first-demo: $dir exists; give a fresh directory" >&2; exit 2; }
out=$(make demo BUILD="$dir" 2>&1) || { echo "$out"; echo "first-demo: make demo failed" >&2; exit 1; }
echo "$out"
if echo "$out" | grep -Eq 'Building C|Linking C|Scanning dependencies|^\[ *[0-9]+%\]'; then
  echo "first-demo: make demo printed build progress" >&2
  exit 1
fi
[ -x "$dir/examples/options_tour" ] || { echo "first-demo: make demo did not build the options tour" >&2; exit 1; }
echo "$out" | grep -q "examples/options_tour (docs/OPTIONS.md)" ||
  { echo "first-demo: make demo does not name the options tour" >&2; exit 1; }
built=$(find "$dir" -type f -name 'test_*' -perm -u+x | head -n3)
if [ -n "$built" ]; then
  echo "first-demo: make demo built more than the demo needs:" >&2
  echo "$built" >&2
  exit 1
fi
echo "$out" | bash tests/release/demo-figures.sh bank
echo "first-demo: $(echo "$out" | wc -l) lines of output, nothing built beyond the library, the demo and the tour"

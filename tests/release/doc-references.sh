#!/usr/bin/env bash
# The repository stands on its own: every relative Markdown link in README.md
# and docs/, and every path they cite from the repository's top-level folders
# (`docs/FORMAT.md`, `store/src/save.c`, in prose or code), names a file that
# exists, and no document or source file cites a design document ("DESIGN §9",
# "DESIGN.md") that is not in the repository.
#
# Usage: tests/release/doc-references.sh [repository-root]
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
cd "$root"
status=0
tops='docs|tests|tools|store|plugin|pipeline|cli|examples|integrations|conformance|fuzz|bench|cmake|\.ci'

for md in README.md docs/*.md; do
  dir=$(dirname "$md")
  # [text](target) with a relative target, outside code; anchors and URLs are skipped.
  while IFS= read -r target; do
    path=${target%%#*}
    [ -n "$path" ] || continue
    if [ ! -e "$dir/$path" ]; then
      echo "$md: link to $target, which is not in the repository" >&2
      status=1
    fi
  done < <(awk '/^ *```/ {code = !code; next} !code' "$md" | sed -E 's/`[^`]*`//g' |
             grep -oE '\]\([^)]+\)' | sed -E 's/^\]\((.*)\)$/\1/' |
             grep -vE '^(https?:|mailto:|#)' || true)
  # A cited path starts a word; one followed by a placeholder (`tests/test_<module>.c`) or a
  # glob is a pattern, and a program is cited by the source it is built from
  # (`examples/options_tour`).
  while IFS= read -r path; do
    if [ ! -e "$path" ] && [ ! -e "$path.c" ] && [ ! -e "$path.cpp" ]; then
      echo "$md: cites $path, which is not in the repository" >&2
      status=1
    fi
  done < <(grep -oE "(^|[[:space:]\`(\"])($tops)/[A-Za-z0-9_./-]*[A-Za-z0-9_][<*{]?" "$md" |
             sed -E 's/^[^A-Za-z.]//' | grep -vE '[<*{]$' | sort -u || true)
done

if [ ! -e DESIGN.md ] && [ ! -e docs/DESIGN.md ]; then
  hits=$(grep -rnE 'DESIGN( §|\.md)' README.md docs bench pipeline store plugin examples tools fuzz \
           tests --include='*.md' --include='*.c' --include='*.h' --include='*.txt' 2>/dev/null || true)
  if [ -n "$hits" ]; then
    echo "cites a design document that is not in the repository:" >&2
    echo "$hits" >&2
    status=1
  fi
fi
[ $status -ne 0 ] || echo "doc references: every link, cited path and citation resolves inside the repository"
exit $status

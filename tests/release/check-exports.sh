#!/usr/bin/env bash
# Checks that a shared libsnapstore exports exactly the documented API: the
# functions declared with SNAP_API in the public headers, nothing internal,
# nothing missing. Prints both lists' difference on failure.
#
# Usage: tests/release/check-exports.sh path/to/libsnapstore.so include-dir...
set -euo pipefail
lib=$1
shift
[ $# -gt 0 ] || { echo "usage: $0 libsnapstore.so include-dir..." >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Documented: every `SNAP_API <type> name(` in the headers (declarations may
# span lines; comments and the macro's own definition are skipped).
find "$@" -name '*.h' -print0 | xargs -0 cat |
  perl -0777 -ne 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; s{^\s*#[^\n]*(?:\\\n[^\n]*)*}{}mg;
                  print "$1\n" while /\bSNAP_API\b[^;{(]*?\b([A-Za-z_]\w*)\s*\(/g' |
  sort -u >"$tmp/documented"

# Exported: every symbol the dynamic symbol table defines (functions and data).
nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$tmp/exported"

comm -23 "$tmp/exported" "$tmp/documented" >"$tmp/internal"
comm -13 "$tmp/exported" "$tmp/documented" >"$tmp/missing"
status=0
if [ -s "$tmp/internal" ]; then
  echo "exported but not declared with SNAP_API in a public header:" >&2
  sed 's/^/  /' "$tmp/internal" >&2
  status=1
fi
if [ -s "$tmp/missing" ]; then
  echo "declared with SNAP_API but not exported by $lib:" >&2
  sed 's/^/  /' "$tmp/missing" >&2
  status=1
fi
if [ $status -eq 0 ]; then
  echo "exports: $(wc -l <"$tmp/exported") symbols, exactly the SNAP_API declarations of $*"
fi
exit $status

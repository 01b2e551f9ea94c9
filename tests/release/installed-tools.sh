#!/usr/bin/env bash
# The installed snapctl starts from a prefix as installed: no ldconfig, no
# LD_LIBRARY_PATH, a clean environment. Its RUNPATH is relative to its own
# directory ($ORIGIN), so the same holds for /usr/local before `ldconfig`.
#
# Usage: tests/release/installed-tools.sh PREFIX   (after `cmake --install ... --prefix PREFIX`)
set -euo pipefail
prefix=$(cd "$1" && pwd)
tool=$prefix/bin/snapctl
[ -x "$tool" ] || { echo "installed-tools: no $tool" >&2; exit 1; }
runpath=$(readelf -d "$tool" | sed -nE 's/.*\((RUNPATH|RPATH)\).*\[(.*)\]/\2/p')
echo "installed-tools: $tool RUNPATH: ${runpath:-none}"
case $runpath in
'$ORIGIN'/*) ;;
*) echo "installed-tools: snapctl has no \$ORIGIN-relative RUNPATH" >&2; exit 1 ;;
esac
if ! out=$(env -i PATH=/usr/bin:/bin "$tool" --help 2>&1); then
  echo "$out" | head -n 5
  echo "installed-tools: the installed snapctl does not start" >&2
  exit 1
fi
lib=$(env -i PATH=/usr/bin:/bin ldd "$tool" | awk '/libsnapstore/ {print $3}')
case $(realpath "$lib") in
"$prefix"/*) echo "installed-tools: snapctl --help runs against $(realpath "$lib")" ;;
*) echo "installed-tools: snapctl resolves libsnapstore to '$lib', not the prefix's" >&2; exit 1 ;;
esac

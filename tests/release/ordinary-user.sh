#!/usr/bin/env bash
# test_readonly as an ordinary user (nobody): its read-only media test must
# get the mount it needs from a user namespace of its own and pass, not skip
# (this machine allows unprivileged user namespaces). The binary and the
# library are copied where nobody can reach them; the build may be private.
#
# Usage: tests/release/ordinary-user.sh BUILD-DIR   (as root)
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/snapstore-user.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$build/tests/test_readonly" "$work/"
cp -P "$build"/libsnapstore.so* "$work/" 2>/dev/null || true
mkdir "$work/tmp"
chown nobody "$work/tmp"
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
      env LD_LIBRARY_PATH="$work" SNAP_TEST_TMP="$work/tmp" "$work/test_readonly" --verbose 2>&1) ||
  { echo "$out"; echo "ordinary-user: test_readonly failed as nobody" >&2; exit 1; }
if echo "$out" | grep -q 'SKIP'; then
  echo "$out" | grep -A2 'SKIP'
  echo "ordinary-user: the read-only media test was skipped as nobody" >&2
  exit 1
fi
echo "$out" | grep -E 'loads_work_on_read_only_media|Synthesis'
echo "ordinary-user: test_readonly passes as nobody (uid $(id -u nobody)), read-only mount included"

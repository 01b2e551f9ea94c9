#!/usr/bin/env bash
# Runs the INSTALLED conformance kit, PREFIX/bin/snapstore-conformance, as a
# backend author would (docs/PLUGIN.md, "Writing a backend"):
#  - on the example backend tests/backends/testmem.c, compiled against the
#    installed headers only (PREFIX/include) into a shared object that links
#    nothing of snapstore;
#  - on the built-ins: memory, sqlite, and postgres (one database, and three
#    shards) on a throw-away cluster of its own, when the PostgreSQL server
#    programs are installed and the library has the backend (else it says so
#    and skips them).
# Every run must end with "N passed, 0 failed". WORKDIR holds the example's
# build, the cases' directories and the cluster; it is removed at the end.
#
# Usage: conformance/run-kit.sh PREFIX WORKDIR     (from the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(cd "$1" && pwd)
work=$2
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
kit=$prefix/bin/snapstore-conformance
[ -x "$kit" ] || { echo "run-kit: no $kit (is SNAP_BUILD_CONFORMANCE off?)" >&2; exit 1; }

pgdata=$work/pg/data
pg_ctl_as=()
cleanup() {
  if [ -f "$pgdata/postmaster.pid" ]; then
    "${pg_ctl_as[@]}" "$pgbin/pg_ctl" stop -D "$pgdata" -m immediate >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One run of the kit; its last line must say that nothing failed.
kit_run() { # label kit-arguments...
  local label=$1 log=$work/$1.log
  shift
  echo "run-kit: $label: snapstore-conformance $*"
  if ! "$kit" --tmpdir "$work/tmp" "$@" >"$log" 2>&1; then
    grep -v '^ok ' "$log" | tail -n 40
    echo "run-kit: $label failed (log above)" >&2
    exit 1
  fi
  grep '^skip ' "$log" | sed 's/^/  /' || true
  echo "  $(tail -n 1 "$log")"
}

# The example backend, built as a third party builds theirs.
cc=${CC:-cc}
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -I"$prefix/include" -o "$work/testmem.so" tests/backends/testmem.c -pthread
if readelf -d "$work/testmem.so" | grep -q 'NEEDED.*snapstore'; then
  echo "run-kit: the example backend links libsnapstore; it must not" >&2
  exit 1
fi
kit_run example --backend-library "$work/testmem.so"
builtins=$("$kit" --list-backends)
for b in memory sqlite; do
  if echo "$builtins" | grep -qx "$b"; then
    kit_run "$b" --backend "$b"
  else
    echo "run-kit: $b: skipped, this library was built without it"
  fi
done

if ! echo "$builtins" | grep -qx postgres; then
  echo "run-kit: postgres: skipped, this library was built without it (SNAP_WITH_POSTGRES=OFF)"
  exit 0
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "run-kit: postgres: skipped, no PostgreSQL server programs (/usr/lib/postgresql/*/bin)"
  exit 0
fi
# The server refuses to run as root: then it runs as the postgres account.
mkdir -p "$work/pg"
if [ "$(id -u)" = 0 ]; then
  chown postgres "$work/pg"
  chmod 755 "$work"
  pg_ctl_as=(runuser -u postgres --)
fi
"${pg_ctl_as[@]}" "$pgbin/initdb" -D "$pgdata" -U snapstore -A trust >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log"; exit 1; }
"${pg_ctl_as[@]}" "$pgbin/pg_ctl" start -w -t 60 -D "$pgdata" -l "$work/pg/server.log" \
  -o "-c listen_addresses='' -k $work/pg -c fsync=off" >/dev/null
ci() { echo "host=$work/pg user=snapstore dbname=$1"; }
for db in snap1 snap2; do
  "$pgbin/createdb" -h "$work/pg" -U snapstore "$db"
done
kit_run postgres --backend postgres \
  --config "{\"conninfo\": \"$(ci postgres)\", \"table\": \"@ID@\"}"
kit_run postgres-3-shards --backend postgres \
  --config "{\"shards\": [\"$(ci postgres)\", \"$(ci snap1)\", \"$(ci snap2)\"], \"table\": \"@ID@\"}"

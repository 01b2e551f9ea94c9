#!/usr/bin/env bash
# What an operator relies on besides the data: exports that hold only records
# and stay private, messages that name the right row, exit statuses that follow
# one rule, interruptions that say how to go on. Against real SQLite files.
# Usage: snapctl_trust.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
SNAPCTL=$1 MK=$2 W=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 2
. "$HERE/expect.sh"

newkeys k1 k2 kx
conf() { # conf FILE DB KEYFILE [context]: zlib + encryption, plaintext accepted
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"},
  "options": {"compression": "zlib", "encryption": {"key_file": "%s", "context": "%s"},
  "accept_unauthenticated": true}}\n' "$2" "$3" "${4:-test/snapctl/v1}" >"$1"
}
conf2() { # conf2 FILE DB: keys 1 (k1) and 2 (k2), 2 writes
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"},
  "options": {"compression": "zlib", "encryption": {"keys": [{"version": 1, "file": "k1"},
  {"version": 2, "file": "k2"}], "active": 2, "context": "test/snapctl/v1"},
  "accept_unauthenticated": true}}\n' "$2" >"$1"
}

# A store of 150 snapshots, two of them damaged at rest.
"$MK" fill bad.db 50 1 k1 || exit 2
"$MK" damage bad.db flip acct-00002 1 && "$MK" damage bad.db swap acct-00004 2 acct-00005 2 || exit 2
conf bad.json bad.db k1

# ---- export to stdout: records only; failures counted on stderr ---------------
expect 1 "export of a store with 2 undecodable bodies exits 1" -- ctl --config bad.json export
cp out bad-stdout.jsonl
[ "$(wc -l <bad-stdout.jsonl)" -eq 148 ] || fail "stdout holds $(wc -l <bad-stdout.jsonl) lines, expected 148 records"
grep -v '^{"pid":' bad-stdout.jsonl | head -3 | grep -q . && fail "stdout holds lines that are no record: $(grep -v '^{"pid":' bad-stdout.jsonl | head -3)"
grep -q '2 could not be decoded' err || fail "no count of the failed bodies on stderr: $(cat err)"
grep -q '"acct-00002" 1 auth' err && grep -q '"acct-00004" 2 auth' err || fail "the failed bodies are not named on stderr: $(cat err)"
conf piped.json piped.db k1
expect 0 "the export's stdout imports as it is" -- ctl --config piped.json import bad-stdout.jsonl

# ---- export --out: mode 0600, written under a temporary name ------------------
expect 0 "export --out (umask 022)" -- bash -c "umask 022; '$SNAPCTL' --quiet --config piped.json export --out private.jsonl"
[ "$(stat -c %a private.jsonl)" = 600 ] && ok "the export file is mode 0600" ||
  fail "the export file is mode $(stat -c %a private.jsonl), expected 600"
# A file size limit makes the export fail half way (SIGXFSZ ignored: EFBIG).
expect 1 "export --out that cannot be written in full" -- \
  bash -c "trap '' XFSZ; ulimit -f 16; '$SNAPCTL' --quiet --config piped.json export --out cut.jsonl"
[ ! -e cut.jsonl ] && ok "a failed export leaves nothing under the final name" ||
  fail "a truncated cut.jsonl of $(wc -c <cut.jsonl) bytes was left"
[ -z "$(ls -A | grep '^\.cut\.jsonl')" ] && ok "and no temporary file" || fail "left: $(ls -A | grep '^\.cut')"
expect 2 "export --out over an existing file" -- ctl --config piped.json export --out private.jsonl

# ---- rekey: each failed row carries its own error ---------------------------
conf2 bad2.json bad.db
expect 1 "rekey of a store with 2 undecodable bodies" -- ctl --config bad2.json rekey
[ "$(wc -l <out)" -eq 2 ] || fail "rekey reported $(wc -l <out) rows, expected 2: $(cat out)"
while IFS= read -r line; do
  pid=$(printf '%s\n' "$line" | sed -n 's/^"\([^"]*\)" \([0-9]*\) .*/\1/p')
  seq=$(printf '%s\n' "$line" | sed -n 's/^"\([^"]*\)" \([0-9]*\) .*/\2/p')
  named=$(printf '%s\n' "$line" | grep -o "pid '[^']*' seq [0-9]*" | sort -u)
  [ "$named" = "pid '$pid' seq $seq" ] && ok "rekey's line for $pid $seq names its own row" ||
    fail "rekey's line for $pid $seq names another row: $line"
done <out

# ---- messages -------------------------------------------------------------------
expect 2 "a usage error" -- ctl --config bad.json stats --bogus
grep -q "Try 'snapctl stats --help'" err || fail "the hint lacks its space: $(cat err)"
expect 2 "backup over an existing file" -- ctl --config bad.json backup bad.db
grep -q "backup: backup:" err && fail "the backup message repeats itself: $(cat err)"
grep -q "'bad.db' already exists" err || fail "the existing file is not named: $(cat err)"
printf '{"backend": "memory", "config": {}}\n' >mem.json
expect 2 "backup of a backend without online backups" -- ctl --config mem.json backup mem.db
grep -q "ABI" err && fail "the message speaks of the ABI: $(cat err)"
grep -q "export" err && grep -q "copy" err || fail "the message does not say what to do instead: $(cat err)"

# ---- Ctrl-C: say what was done and how to go on -----------------------------
# The command writes into a pipe nobody reads for a second: it blocks there,
# gets SIGINT (once, as from Ctrl-C), then the pipe is drained.
# (set -m: a background job of a shell without job control ignores SIGINT.)
interrupt() { # interrupt COMMAND...: its exit status in $st, its stderr in int.err
  { set -m; "$@" 2>int.err & echo $! >int.pid; wait $!; echo $? >int.st; } |
    { sleep 1; kill -INT "$(cat int.pid)"; cat >/dev/null; }
  st=$(cat int.st)
}
"$MK" fill big.db 700 1 k1 || exit 2
conf2 big.json big.db
interrupt "$SNAPCTL" --quiet --config big.json export
[ "$st" -eq 130 ] && ok "export stopped by Ctrl-C exits 130" || fail "export stopped by Ctrl-C: exit $st"
grep -q "interrupted (Ctrl-C): [0-9]* snapshots exported; run it again" int.err &&
  ok "and says what was done and how to go on" || fail "export stopped by Ctrl-C said: $(cat int.err)"
# A wrong key and no migration switch: every body fails, nothing is rewritten.
printf '{"backend": "sqlite", "config": {"path": "big.db", "keep": 0},
  "options": {"encryption": {"key_file": "kx", "context": "test/snapctl/v1"}}}\n' >wrongkey.json
interrupt "$SNAPCTL" --quiet --config wrongkey.json rekey
[ "$st" -eq 130 ] && grep -q "interrupted (Ctrl-C): .* rewritten, [0-9]* failed; a new run continues" int.err &&
  ok "rekey stopped by Ctrl-C says what was done" || fail "rekey stopped by Ctrl-C: exit $st: $(cat int.err)"
interrupt "$SNAPCTL" --quiet --config wrongkey.json verify
[ "$st" -eq 130 ] && grep -q "interrupted (Ctrl-C): [0-9]* bodies decoded" int.err &&
  ok "verify stopped by Ctrl-C says so" || fail "verify stopped by Ctrl-C: exit $st: $(cat int.err)"
expect 0 "a rekey after the interruption completes" -- ctl --config big.json rekey

echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]

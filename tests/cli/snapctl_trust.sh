#!/usr/bin/env bash
# What an operator relies on besides the data: exports that hold only records
# and stay private, messages that name the right row, exit statuses that follow
# one rule, interruptions that say how to go on. Against real SQLite files.
# Usage: snapctl_trust.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

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

# ---- copy reads the copy back through the target's document -----------------
"$MK" sealed sealed.db 40 1 k1 || exit 2
conf sealed.json sealed.db k1
conf otherkey.json otherkey.db kx
expect 1 "copy to a target whose key differs" -- ctl --config sealed.json copy --to otherkey.json
grep -q "120 identical" err && grep -q "40 decoded, 40 cannot be read there" err ||
  fail "copy did not count the rows the target cannot read: $(cat err)"
[ "$(grep -c ' cannot be read in the target: auth: ' out)" -eq 40 ] ||
  fail "copy listed $(grep -c 'cannot be read' out) unreadable rows, expected 40 (one per pid)"
conf otherctx.json otherctx.db k1 test/snapctl/other
expect 1 "copy to a target whose context differs" -- ctl --config sealed.json copy --to otherctx.json
grep -q "40 cannot be read there" err || fail "a target with another context: $(cat err)"
conf samekey.json samekey.db k1
expect 0 "copy to a target with the source's key and context" -- ctl --config sealed.json copy --to samekey.json
grep -q "(one row per pid): 40 decoded, 0 cannot be read there" err || fail "copy: $(cat err)"
expect 0 "copy --decode-all decodes every row in the target" -- \
  ctl --config sealed.json copy --to samekey.json --decode-all
grep -q "(every row): 120 decoded, 0 cannot be read there" err || fail "copy --decode-all: $(cat err)"

# ---- a bound on failures in a row --------------------------------------------
# A target that refuses the rows of one pid in ten (a trigger), as a dead shard
# among live ones would: every batch has failures.
refuse() { # refuse DB: inserts and updates of pids ending in 7 fail
  sqlite3 "$1" "CREATE TRIGGER refuse_i BEFORE INSERT ON snapshots WHEN NEW.pid GLOB '*7'
    BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;
    CREATE TRIGGER refuse_u BEFORE UPDATE ON snapshots WHEN NEW.pid GLOB '*7'
    BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;" || fail "sqlite3 could not add a trigger"
}
"$MK" fill many.db 600 1 k1 || exit 2
conf many.json many.db k1
refused=$(( $(ctl --config many.json ls | grep -c '7$') * 3 ))
"$MK" fill target.db 1 1 k1 || exit 2
conf target.json target.db k1
refuse target.db
expect 1 "copy into a target that refuses one pid in ten" -- ctl --config many.json copy --to target.json
[ "$(wc -l <out)" -le 10 ] && ok "at most 10 failed rows listed" || fail "copy listed $(wc -l <out) failed rows"
[ "$(grep -c 'stopped after [0-9]* failures in a row' err)" -eq 1 ] && grep -q "running it again resumes" err &&
  ok "one summary line, and how to go on" || fail "copy stopped by the bound said: $(cat err)"
expect 1 "copy --max-failures 0 goes on to the end" -- ctl --config many.json copy --to target.json --max-failures 0
grep -q "^snapctl: copy: $refused rows could not be stored" err || fail "copy --max-failures 0: $(cat err)"
[ "$(wc -l <out)" -le 10 ] || fail "copy --max-failures 0 listed $(wc -l <out) failed rows"
expect 2 "--max-failures takes a count" -- ctl --config many.json copy --to target.json --max-failures x
sqlite3 target.db "DROP TRIGGER refuse_i; DROP TRIGGER refuse_u;"
expect 0 "copy again once the target takes the rows" -- ctl --config many.json copy --to target.json
grep -q "^copy: $refused rows written" err || fail "the rerun did not resume: $(cat err)"
# rekey and import against a store that refuses the same rows
cp many.db rk.db && conf2 rk.json rk.db && refuse rk.db
expect 1 "rekey of a store that refuses one pid in ten" -- ctl --config rk.json rekey
[ "$(wc -l <out)" -le 10 ] && grep -q "stopped after [0-9]* failures in a row" err ||
  fail "rekey against failures: $(wc -l <out) lines listed; $(cat err)"
sqlite3 rk.db "DROP TRIGGER refuse_i; DROP TRIGGER refuse_u;"
expect 0 "rekey again once the store takes the rows" -- ctl --config rk.json rekey
ctl --config many.json export >many.jsonl
"$MK" fill imp.db 1 1 k1 && conf imp.json imp.db k1 && refuse imp.db
expect 1 "import into a store that refuses one pid in ten" -- ctl --config imp.json import many.jsonl
[ "$(grep -c 'not stored' err)" -le 10 ] && grep -q "stopped after [0-9]* failures in a row" err ||
  fail "import against failures: $(grep -c 'not stored' err) lines listed; $(tail -2 err)"

# ---- reading never creates a store --------------------------------------------
# A typo in config.path, or a relative path run from another directory: exit 2,
# the path as written and as resolved, and nothing left on disk.
conf typo.json typo-store.db k1
nothing_created() { # nothing_created WHAT FILE...: none of the files exists
  local what=$1 f; shift
  for f in "$@"; do [ -e "$f" ] && { fail "$what created $f"; rm -f "$f"; return; }; done
  ok "$what created nothing"
}
for cmd in ls verify stats export "show acct-00001" "backup typo-backup.db" rekey "delete acct-00001"; do
  expect 2 "$cmd of a store that does not exist: exit 2" -- ctl --config typo.json $cmd
  grep -q "no store at 'typo-store.db' (resolved to '$W/typo-store.db')" err ||
    fail "$cmd does not say where it looked: $(cat err)"
  nothing_created "$cmd" typo-store.db typo-store.db-wal typo-store.db-shm typo-store.db-journal typo-backup.db
done
mkdir -p elsewhere
conf relative.json bad.db "$W/k1"
expect 2 "verify from another directory (a relative path): exit 2" -- \
  bash -c "cd elsewhere && '$SNAPCTL' --quiet --config ../relative.json verify"
grep -q "resolved to '$W/elsewhere/bad.db'" err || fail "the resolved path is not named: $(cat err)"
nothing_created "verify from another directory" elsewhere/bad.db elsewhere/bad.db-wal elsewhere/bad.db-shm
expect 0 "import creates its store" -- ctl --config typo.json import bad-stdout.jsonl
[ -e typo-store.db ] && ok "import created typo-store.db" || fail "import created no store"
rm -f typo-store.db*
expect 0 "copy creates its target" -- ctl --config sealed.json copy --to typo.json
rm -f typo-store.db*
expect 0 "--create lets another command create the store" -- ctl --config typo.json --create stats
[ -e typo-store.db ] && ok "stats --create created typo-store.db" || fail "--create created no store"

# ---- exit statuses: 2 the document is wrong, 1 the store cannot be reached ---
printf '{"backend": "postgres", "config": {"conninfo": "host=%s/no-server dbname=snap", "keep": 0}}\n' \
  "$W" >down.json
ctl --config down.json ls >/dev/null 2>err
if grep -q "no backend named 'postgres'" err; then
  ok "unreachable server: skipped (built without the postgres backend)"
else
  for cmd in ls verify stats export; do
    expect 1 "$cmd with the server down: exit 1 (unreachable), not 2 (configuration)" -- ctl --config down.json $cmd
    grep -q "cannot be reached: .*cannot connect" err || fail "$cmd with the server down said: $(cat err)"
  done
fi
printf '{"backend": "sqlite", "config": {"path": "typo.db", "paht": "x.db"}}\n' >typo.json
expect 2 "a document with an unknown key: exit 2" -- ctl --config typo.json ls
grep -q "paht" err || fail "the unknown key is not named: $(cat err)"

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

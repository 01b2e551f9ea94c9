#!/usr/bin/env bash
# snapctl from the shell against real SQLite files written by the library.
# Usage: snapctl.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

newkeys k1 k2 kx
conf() { # conf FILE DB KEYFILE [accept_unauthenticated] [compression]
  local enc='' acc=''
  [ -n "$3" ] && enc=", \"encryption\": {\"key_file\": \"$3\", \"context\": \"test/snapctl/v1\"}"
  [ "${4:-}" = accept ] && acc=', "accept_unauthenticated": true'
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"},
  "options": {"compression": "zlib"%s%s}}\n' "$2" "$enc" "$acc" >"$1"
}

conf2() { # conf2 FILE DB ACTIVE [strict]: keys 1 (k1) and 2 (k2), ACTIVE writes
  local acc=', "accept_unauthenticated": true'
  [ "${4:-}" = strict ] && acc=''
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"},
  "options": {"compression": "zlib", "encryption": {"keys": [{"version": 1, "file": "k1"},
  {"version": 2, "file": "k2"}], "active": %s, "context": "test/snapctl/v1"}%s}}\n' "$2" "$3" "$acc" >"$1"
}

# ---- a store with mixed formats and stages: plaintext, zlib, key 1 ---------
"$MK" fill mixed.db 200 1 k1 || exit 2
conf mixed.json mixed.db k1 accept
expect 0 "verify a mixed store (plain, zlib, aead, zlib+aead; json, msgpack)" -- ctl --config mixed.json verify
expect 0 "ls lists the pids" -- ctl --config mixed.json ls
[ "$(wc -l <out)" -eq 200 ] || fail "ls printed $(wc -l <out) pids, expected 200"
expect 0 "ls PID --json" -- ctl --config mixed.json ls acct-00001 --json
grep -q '"key_version":1' out && grep -q '"stages":"none"\|"stages":"zlib"' out || fail "ls --json lacks the metadata"
expect 0 "ls PID with a UTF-8 pid" -- ctl --config mixed.json ls "acct é/3"
expect 0 "show PID" -- ctl --config mixed.json show acct-00002
grep -q '"owner"\|"a"' out || fail "show printed no state"
expect 0 "show PID SEQ --raw" -- ctl --config mixed.json show acct-00004 2 --raw
expect 0 "stats --json" -- ctl --config mixed.json stats --json
grep -q '"snapshots":[[:space:]]*600' out || fail "stats does not count 600 snapshots"
expect 0 "stats" -- ctl --config mixed.json stats
expect 0 "rekey --dry-run" -- ctl --config mixed.json rekey --dry-run
grep -q "to rewrite" err || fail "rekey --dry-run printed no summary"
expect 1 "verify without the migration switch refuses plaintext bodies" -- \
  bash -c "$(declare -f conf); conf strict.json mixed.db k1; '$SNAPCTL' --quiet --config strict.json verify"
grep -q ' auth: ' out || fail "the plaintext bodies were not reported as auth failures"

# ---- export | import round trip, byte for byte --------------------------------
expect 0 "export" -- ctl --config mixed.json export --out mixed.jsonl
[ "$(wc -l <mixed.jsonl)" -eq 600 ] || fail "export wrote $(wc -l <mixed.jsonl) lines"
conf imported.json imported.db k1 accept
expect 0 "import" -- ctl --config imported.json import mixed.jsonl
expect 0 "export the imported store" -- ctl --config imported.json export --out imported.jsonl
cmp -s mixed.jsonl imported.jsonl && ok "export | import round-trips byte for byte" || fail "the re-export differs"
conf piped.json piped.db k1 accept
ctl --config mixed.json export | ctl --config piped.json import && ctl --config piped.json export >piped.jsonl
cmp -s mixed.jsonl piped.jsonl && ok "export | import through a pipe" || fail "the piped re-export differs"

# ---- copy sqlite -> sqlite, then verify the copy -----------------------------
conf copy.json copy.db k1 accept
expect 0 "copy --to" -- ctl --config mixed.json copy --to copy.json
expect 0 "verify the copy" -- ctl --config copy.json verify
expect 0 "copy again (resumes: nothing to write)" -- "$SNAPCTL" --config mixed.json copy --to copy.json
grep -q "0 rows written, 600 already present" err || fail "a second copy rewrote rows: $(cat err)"
ctl --config copy.json export >copy.jsonl; cmp -s mixed.jsonl copy.jsonl && ok "the copy exports the same" || fail "the copy differs"

# ---- backup, and verify on the backup ----------------------------------------
expect 0 "backup FILE" -- ctl --config mixed.json backup backup.db
conf backup.json backup.db k1 accept
expect 0 "verify the backup" -- ctl --config backup.json verify
expect 2 "backup over an existing file" -- ctl --config mixed.json backup backup.db

# ---- key versions: a store under keys 1 and 2 and in plaintext ---------------
"$MK" fill rot.db 100 2 k1 k2 || exit 2
conf2 rot.json rot.db 2
expect 0 "verify a store with key versions 0, 1 and 2" -- ctl --config rot.json verify
expect 0 "stats of mixed key versions" -- ctl --config rot.json stats --json
grep -q '"0":' out && grep -q '"1":' out && grep -q '"2":' out || fail "stats lacks a key version: $(cat out)"
conf only1.json rot.db k1 accept
expect 1 "verify without key 2 reports nokey" -- ctl --config only1.json verify
grep -q ' nokey: ' out || fail "a missing key version was not reported as nokey"

# ---- rotation: rekey killed with SIGKILL, then resumed -----------------------
"$MK" fill kill.db 700 2 k1 k2 || exit 2
conf2 kill.json kill.db 2
ctl --config kill.json export >kill-before.jsonl
kills=0
for i in $(seq 1 24); do
  # A random point: up to ~0.3 s into a run that needs longer in total.
  delay=$(printf '0.%03d' $((RANDOM % 300)))
  { timeout -s KILL "$delay" "$SNAPCTL" --quiet --config kill.json rekey >/dev/null 2>&1; } 2>/dev/null
  [ $? -eq 137 ] && kills=$((kills + 1))
done
echo "rekey killed $kills times of 24"
expect 0 "rekey resumed after the kills" -- ctl --config kill.json rekey
expect 0 "stats after the resumed rekey" -- ctl --config kill.json stats --json
grep -q '"2":[[:space:]]*2100' out || fail "not every body is under key 2: $(cat out)"
ctl --config kill.json export >kill-after.jsonl
cmp -s kill-before.jsonl kill-after.jsonl && ok "states and timestamps unchanged, nothing lost" || fail "export changed by rekey"
printf '{"backend": "sqlite", "config": {"path": "kill.db"}, "options": {"encryption":
  {"keys": [{"version": 2, "file": "k2"}], "active": 2, "context": "test/snapctl/v1"}}}\n' >kill-retired.json
expect 0 "key 1 retired, no migration switch: every body still verifies" -- ctl --config kill-retired.json verify
expect 0 "a second rekey finds nothing to do" -- "$SNAPCTL" --config kill.json rekey
grep -q " 0 rewritten, 2100 already current" err || fail "second rekey: $(cat err)"

# ---- rekey beside a live writer that saves and deletes -----------------------
"$MK" fill live.db 600 0 || exit 2
conf live.json live.db k1 accept
"$MK" churn live.db 6000 expect.txt &
writer=$!
# Rekey over and over while the writer runs (each pass finds the writer's new
# plaintext saves), and once more after it ended.
passes=0 rfail=0
while kill -0 $writer 2>/dev/null; do
  ctl --config live.json rekey 2>>rekey-live.log || rfail=$((rfail + 1)); passes=$((passes + 1))
done
wait $writer || fail "the writer failed"
ctl --config live.json rekey 2>>rekey-live.log || rfail=$((rfail + 1))
echo "rekey ran $((passes + 1)) times beside the writer; $(grep -o '[0-9]* replaced by newer saves' rekey-live.log | awk '{s+=$1} END {print s+0}') bodies left to newer saves"
[ $rfail -eq 0 ] || fail "rekey beside the writer failed $rfail times"
expect 0 "no newer save overwritten, no deleted snapshot back" -- "$MK" check live.db expect.txt k1

# ---- integrity: rekey adds the MAC to a plaintext store ----------------------
"$MK" fill macs.db 60 0 k1 || exit 2
macconf() { # macconf FILE [accept]: integrity under k1 (version 3), no encryption
  local acc=''
  [ "${2:-}" = accept ] && acc=', "accept_unauthenticated": true'
  printf '{"backend": "sqlite", "config": {"path": "macs.db", "keep": 0, "synchronous": "normal"},
  "options": {"integrity": {"keys": [{"version": 3, "file": "k1"}], "context": "test/snapctl/mac"}%s}}\n' "$acc" >"$1"
}
macconf mac-migrate.json accept
macconf mac.json
expect 1 "verify with an integrity key refuses the plaintext bodies" -- ctl --config mac.json verify
expect 0 "rekey with an integrity document" -- ctl --config mac-migrate.json rekey
expect 0 "verify under the integrity key without the migration switch" -- ctl --config mac.json verify
expect 0 "stats after adding the MAC" -- ctl --config mac.json stats --json
grep -q '"3":' out && ! grep -q '"0":' out || fail "bodies not all under integrity key 3: $(cat out)"
grep -q 'aead' out && fail "the integrity document encrypted bodies: $(cat out)"
grep -q 'mac' out || fail "no MAC'd stage set in stats: $(cat out)"

# ---- verify finds planted corruption -----------------------------------------
"$MK" fill bad.db 50 1 k1 || exit 2
conf bad.json bad.db k1 accept
"$MK" damage bad.db flip acct-00002 1 && "$MK" damage bad.db swap acct-00004 2 acct-00005 2 || exit 2
expect 1 "verify finds a flipped byte and a swapped body" -- ctl --config bad.json verify
grep -q '^"acct-00002" 1 ' out && grep -q '^"acct-00004" 2 ' out || fail "verify missed a planted body: $(cat out)"
[ "$(wc -l <out)" -eq 2 ] || fail "verify reported $(wc -l <out) failures, expected 2"
conf wrong.json mixed.db kx accept
expect 1 "verify with the wrong key" -- ctl --config wrong.json verify
grep -q ' auth: ' out || fail "a wrong key was not reported as auth"

# ---- bad input: clear message, status 2 (or 1), nothing written --------------
expect 2 "unknown command" -- "$SNAPCTL" frobnicate
grep -q "unknown command 'frobnicate'" err || fail "no clear message: $(cat err)"
expect 2 "unknown option" -- "$SNAPCTL" --config mixed.json ls --bogus
expect 2 "no configuration" -- env -u SNAPCTL_CONFIG "$SNAPCTL" ls
expect 2 "missing configuration file" -- ctl --config nowhere.json ls
grep -q "nowhere.json" err || fail "the missing file is not named"
conf nokey.json nokey.db missing.key
expect 2 "unreadable key file" -- ctl --config nokey.json ls
cp k1 open.key; chmod 644 open.key; conf openkey.json nokey.db open.key
expect 2 "group-readable key file" -- ctl --config openkey.json ls
[ ! -e nokey.db ] && ok "no database created by a bad configuration" || fail "nokey.db was created"
printf '{"pid":"a","seq":1,"timestamp":5,"format":"json","state":[1]}\n{"pid":"b","seq":-1}\n{"pid":"c","seq":1,"timestamp":5,"format":"json","state":[1]} trailing\n' >bad.jsonl
conf fresh.json fresh.db k1
expect 2 "import of a malformed JSON Lines file" -- ctl --config fresh.json import bad.jsonl
grep -q "line 2" err && grep -q "line 3" err || fail "the bad lines are not named: $(cat err)"
grep -q "line 1:" err && fail "line 1 was reported bad"
[ ! -e fresh.db ] && ok "nothing stored from a bad import" || fail "fresh.db was written"
expect 1 "show of a pid that does not exist" -- ctl --config mixed.json show no-such-pid
grep -q "no-such-pid" err || fail "the pid is not named"
expect 1 "delete of a pid that does not exist" -- ctl --config mixed.json delete no-such-pid
expect 2 "show with a bad SEQ" -- ctl --config mixed.json show acct-00001 x
expect 0 "delete PID --to SEQ" -- ctl --config mixed.json delete acct-00001 --to 2
ctl --config mixed.json ls acct-00001 | grep -c '^[0-9]' | grep -qx 1 || fail "delete --to left the wrong rows"
"$MK" typed typed.db || exit 2
conf typed.json typed.db ""
expect 0 "ls PID shows the manifest" -- ctl --config typed.json ls typed-2
grep -q 'bank.Account/2' out || fail "ls lacks the manifest: $(cat out)"
expect 0 "stats --json groups by manifest" -- ctl --config typed.json stats --json
grep -q '"bank.Account/1":[[:space:]]*2' out && grep -q '"bank.Account/2":[[:space:]]*1' out &&
  grep -q '"without_manifest":[[:space:]]*1' out || fail "stats does not group by manifest: $(cat out)"
expect 0 "export of a typed store" -- ctl --config typed.json export --out typed.jsonl
grep -q '"manifest":"bank.Account/1","metadata_base64":"bQBk"' typed.jsonl ||
  fail "export lacks the manifest or the metadata: $(cat typed.jsonl)"
conf typed2.json typed2.db ""
expect 0 "import of a typed export" -- ctl --config typed2.json import typed.jsonl
expect 0 "export of the import" -- ctl --config typed2.json export --out typed2.jsonl
cmp -s typed.jsonl typed2.jsonl && ok "manifests and metadata survive export | import" ||
  fail "the typed re-export differs"
conf typed3.json typed3.db ""
expect 0 "copy of a typed store" -- ctl --config typed.json copy --to typed3.json
expect 0 "stats of the copy" -- ctl --config typed3.json stats --json
grep -q '"bank.Account/1":[[:space:]]*2' out || fail "the copy lost the manifests: $(cat out)"
expect 0 "--help of a command" -- "$SNAPCTL" rekey --help
expect 0 "--help of the tool" -- "$SNAPCTL" --help

echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]

#!/usr/bin/env bash
# snapctl and envelope keys kept in a separate key store: `backup` copies the
# data and the key store to separate files, forgetting a unit reaches its
# bodies in a data backup restored beside the live key store (but not while
# an older key-store backup survives: why those are kept short), and
# `rekey --wrap-only` killed beside a writer, run again, lets the old master
# key go; `rekey --new-keys` killed and run again leaves every body loadable
# and a copy of a body sealed with an old data key unreadable. Usage: snapctl_keys.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

newkeys k1 k2
# conf FILE DATA KEYSTORE [ACTIVE]: envelope mode; KEYSTORE "" keeps the keys in
# DATA; ACTIVE 2 adds master key 2 (k2) and writes with it, 2only drops key 1.
conf() {
  local ks='' keys='"keys": [{"version": 1, "file": "k1"}], "active": 1'
  [ -n "$3" ] && ks=", \"envelope\": {\"keystore\": {\"path\": \"$3\", \"synchronous\": \"normal\"}}"
  [ "${4:-}" = 2 ] && keys='"keys": [{"version": 1, "file": "k1"}, {"version": 2, "file": "k2"}], "active": 2'
  [ "${4:-}" = 2only ] && keys='"keys": [{"version": 2, "file": "k2"}], "active": 2'
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"%s},
  "options": {"encryption": {%s, "context": "test/keys/v1", "mode": "envelope"}}}\n' \
    "$2" "$ks" "$keys" >"$1"
}
# lines FROM TO [SEQ]: JSON Lines of units u-FROM..u-TO
lines() {
  local i
  for ((i = $1; i <= $2; i++)); do
    printf '{"pid":"u-%05d","seq":%d,"timestamp":1,"format":"json","state":{"u":%d}}\n' "$i" "${3:-1}" "$i"
  done
}

# ---- backup: data and key store, separately -----------------------------------
conf live.json data.db keys.db
lines 1 300 >first.jsonl
expect 0 "import 300 units in envelope mode" -- ctl --config live.json import first.jsonl
expect 2 "backup of a store with a separate key store names --keys" -- ctl --config live.json backup b1.db
grep -q -- "--keys FILE" err || fail "the refusal does not name --keys: $(cat err)"
[ ! -e b1.db ] || fail "a refused backup left b1.db"
expect 2 "--keys and --data-only exclude each other" -- \
  ctl --config live.json backup b1.db --keys kb1.db --data-only
expect 2 "--keys naming the data's file" -- ctl --config live.json backup b1.db --keys b1.db
expect 0 "backup FILE --keys KEYFILE" -- "$SNAPCTL" --config live.json backup b1.db --keys kb1.db
[ -s b1.db ] && [ -s kb1.db ] && ok "two files: the data's and the key store's" || fail "missing backup files"
grep -q "key store written to kb1.db" err || fail "backup does not report the key store's file"
expect 0 "backup --data-only" -- ctl --config live.json backup b2.db --data-only
[ -s b2.db ] && [ ! -e kb2.db ] || fail "--data-only wrote other files"
conf both.json b1.db kb1.db
expect 0 "the two backups together verify" -- ctl --config both.json verify
conf nokeys.json b1.db nokeys.db
expect 1 "the data backup beside an empty key store opens no body" -- \
  ctl --create --config nokeys.json verify
grep -q "nokey" out && [ "$(grep -c nokey out)" -eq 300 ] || fail "the data backup decrypted without its key store"

conf inplace.json inplace.db ""
lines 1 3 >three.jsonl
expect 0 "a store with its keys in its data" -- ctl --config inplace.json import three.jsonl
expect 2 "--keys without a separate key store" -- ctl --config inplace.json backup c.db --keys kc.db
expect 0 "backup of a store with its keys in its data" -- ctl --config inplace.json backup c.db
conf c.json c.db ""
expect 0 "... holds its keys" -- ctl --config c.json verify

# ---- forgetting reaches the data backup, not an old key-store backup ---------------
expect 0 "forget u-00007" -- ctl --config live.json forget u-00007
conf restored.json b1.db keys.db
expect 0 "the data backup beside the live key store: other units load" -- ctl --config restored.json show u-00008
expect 1 "... the forgotten unit does not" -- ctl --config restored.json show u-00007
grep -q "was forgotten" err || fail "the message does not say the unit was forgotten: $(cat err)"
expect 0 "while a key-store backup of before survives, the unit comes back" -- \
  ctl --config both.json show u-00007
rm -f kb1.db kb1.db-wal kb1.db-shm # expired: only the live key store is left (above)

# ---- rekey --wrap-only killed beside a writer, then run to completion --------------
conf rot.json data.db keys.db 2
lines 301 6000 >more.jsonl
expect 0 "import 5,700 more units under master key 1" -- ctl --config live.json import more.jsonl
lines 1 3000 2 >writer.jsonl
ctl --config rot.json import writer.jsonl 2>/dev/null &
writer=$!
kills=0
for round in 1 2 3; do
  # snapctl itself in the background: `ctl ... &` would put the ctl
  # function's subshell there, and killing it would leave the rekey running.
  "$SNAPCTL" --quiet --config rot.json rekey --wrap-only 2>/dev/null &
  r=$!
  sleep "0.0$((round * 3))"
  kill -9 "$r" 2>/dev/null && kills=$((kills + 1))
  wait "$r" 2>/dev/null
done
expect 0 "rekey --wrap-only to completion beside the writer" -- "$SNAPCTL" --config rot.json rekey --wrap-only
wait "$writer" || fail "the writer failed"
expect 0 "a rerun finds nothing left under master key 1" -- "$SNAPCTL" --config rot.json rekey --wrap-only
grep -q " 0 rewrapped" err || fail "the rerun rewrapped keys: $(cat err)"
conf new.json data.db keys.db 2only
expect 0 "master key 1 retired: every body verifies" -- ctl --config new.json verify
expect 0 "the writer's saves are all there" -- ctl --config new.json show u-03000 2
ok "rekey --wrap-only killed $kills time(s) while it ran"

# ---- rekey --new-keys: new data keys, killed and resumed; old copies stop opening --
expect 2 "--new-keys needs UNIT... or --all" -- ctl --config new.json rekey --new-keys
expect 2 "--new-keys takes UNIT... or --all, not both" -- ctl --config new.json rekey --new-keys u-00001 --all
expect 2 "--after goes with --all" -- ctl --config new.json rekey --new-keys u-00001 --after u-00001
expect 2 "--wrap-only and --new-keys exclude each other" -- ctl --config new.json rekey --wrap-only --new-keys --all
expect 2 "UNIT... without --new-keys" -- ctl --config new.json rekey u-00001
expect 0 "backup before new keys" -- "$SNAPCTL" --config new.json backup nk.db --keys nkk.db
units=$(for ((i = 1; i <= 40; i++)); do printf 'u-%05d ' "$i"; done)
nkills=0
for round in 1 2 3; do
  # snapctl itself in the background (not the ctl function's subshell), so
  # that the kill stops the renewal before the check below reads the store.
  # shellcheck disable=SC2086
  "$SNAPCTL" --quiet --config new.json rekey --new-keys $units 2>/dev/null &
  r=$!
  sleep "0.0$((round * 2))"
  kill -9 "$r" 2>/dev/null && nkills=$((nkills + 1))
  wait "$r" 2>/dev/null
  expect 0 "after kill $round every body still verifies" -- ctl --config new.json verify
done
# shellcheck disable=SC2086
expect 0 "rekey --new-keys to completion" -- "$SNAPCTL" --config new.json rekey --new-keys $units
grep -q "40 units renewed" err || fail "not every unit was renewed: $(cat err)"
expect 0 "every body verifies under the new data keys" -- ctl --config new.json verify
expect 0 "the writer's saves are still there" -- ctl --config new.json show u-00020 2
conf oldcopy.json nk.db keys.db 2only
expect 1 "a copy of a body sealed with the old data key no longer opens" -- \
  ctl --config oldcopy.json show u-00005
grep -q "generation 1 was deleted" err || fail "the message does not name the deleted key: $(cat err)"
expect 0 "... a unit not renewed still opens" -- ctl --config oldcopy.json show u-00041
ok "rekey --new-keys killed $nkills time(s) while it ran"

[ "$FAILS" -eq 0 ] || { echo "$FAILS failure(s)" >&2; exit 1; }
echo "all snapctl key store checks passed"

#!/usr/bin/env bash
# snapctl dict: training a zstd dictionary from the store's own snapshots,
# listing, showing, refusing to remove one in use; saves that name it in the
# document compress with it and load back. Against a real SQLite file.
# Usage: snapctl_dict.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

# 300 account states of one shape and 50 session states, as JSON Lines.
for i in $(seq 1 300); do
  printf '{"pid":"account-%04d","seq":1,"timestamp":1600000000000,"format":"json","state":{"account":"acc-%04d","owner":"owner %d","currency":"EUR","balance_cents":%d,"active":true,"tags":["premium","eu"],"history":[{"kind":"deposit","cents":%d,"memo":"salary"},{"kind":"withdrawal","cents":%d,"memo":"rent"}]}}\n' \
    "$i" "$i" "$i" $((i * 7919 % 100000)) $((i * 31)) $((i * 17))
done >accounts.jsonl
for i in $(seq 1 50); do
  printf '{"pid":"session-%03d","seq":1,"timestamp":1600000000000,"format":"json","state":{"s":%d}}\n' "$i" "$i"
done >>accounts.jsonl
printf '{"backend": "sqlite", "config": {"path": "d.db", "keep": 0}}\n' >plain.json
expect 0 "import the states" -- ctl --config plain.json --create import accounts.jsonl

expect 2 "dict train without --pids" -- ctl --config plain.json dict train --name accounts
expect 2 "an unknown dict command" -- ctl --config plain.json dict frob
expect 1 "dict train on too few pids" -- ctl --config plain.json dict train --name x --pids 'nobody-*'
expect 0 "dict train on the account pids" -- \
  ctl --config plain.json dict train --name accounts --pids 'account-*' --size 4096
line=$(cat out)
id=$(printf '%s' "$line" | sed -n 's/.*\tid \([0-9]*\)\t.*/\1/p')
[ -n "$id" ] && ok "train prints the id ($id)" || fail "no id in: $line"
with=$(printf '%s' "$line" | sed -n 's/.*ratio zstd-3+dict \([0-9.]*\).*/\1/p')
zlib=$(printf '%s' "$line" | sed -n 's/.*zlib-6 \([0-9.]*\).*/\1/p')
awk -v a="$with" -v b="$zlib" 'BEGIN { exit !(a > b) }' &&
  ok "the held-out ratio with the dictionary ($with) beats zlib-6 ($zlib)" ||
  fail "held-out ratio $with, zlib-6 $zlib: $line"
grep -q 'held out 30' out && ok "one in ten samples is held out" || fail "held out: $line"
expect 1 "a second dictionary of the same name is refused" -- \
  ctl --config plain.json dict train --name accounts --pids 'account-*' --size 2048
expect 0 "dict ls" -- ctl --config plain.json dict ls
grep -q "^$id	accounts	" out && ok "ls lists it" || fail "ls: $(cat out)"

# Saves that name it in the document use it; the bodies load back.
printf '{"backend": "sqlite", "config": {"path": "d.db", "keep": 0},
  "options": {"compression": "zstd", "dictionary": "accounts"}}\n' >zstd.json
printf '{"pid":"account-9999","seq":2,"timestamp":1600000000000,"format":"json","state":{"account":"acc-9999","owner":"owner 9999","currency":"EUR","balance_cents":1,"active":true,"tags":["premium","eu"],"history":[]}}\n' >one.jsonl
expect 0 "import through the dictionary" -- ctl --config zstd.json import one.jsonl
expect 0 "show the state saved with the dictionary" -- ctl --config plain.json show account-9999 2
grep -q '"owner 9999"' out && ok "it loads back" || fail "show: $(cat out)"
expect 0 "dict show" -- ctl --config plain.json dict show accounts
grep -q "used by 1 snapshot" out && ok "show counts its one use" || fail "show: $(cat out)"
# copy carries the dictionaries with the bodies that use them.
printf '{"backend": "sqlite", "config": {"path": "copy.db", "keep": 0}}\n' >copy.json
expect 0 "copy to a new store" -- ctl --config plain.json copy --to copy.json
expect 0 "the copy reads the state saved with the dictionary" -- \
  ctl --config copy.json show account-9999 2
expect 0 "the copy lists the dictionary" -- ctl --config copy.json dict ls
grep -q "^$id	accounts	" out && ok "under its id and name" || fail "copy's ls: $(cat out)"
expect 0 "a second copy finds it there already" -- ctl --config plain.json copy --to copy.json
expect 1 "dict rm of a dictionary in use is refused" -- ctl --config plain.json dict rm "$id"
grep -q 'used by 1' err && ok "saying why" || fail "rm: $(cat err)"
expect 0 "dict rm --force" -- ctl --config plain.json dict rm accounts --force
expect 1 "the body that used it fails naming the dictionary" -- \
  ctl --config plain.json show account-9999 2
grep -q "dictionary $id" err && ok "named" || fail "show: $(cat err)"

# rekey --recompress moves the copy's stored bodies to the document's codec and
# dictionary: the 300 account states shrink, the 50 tiny session states stay
# uncompressed, the one body already there is current; a rerun does nothing.
printf '{"backend": "sqlite", "config": {"path": "copy.db", "keep": 0},
  "options": {"compression": "zstd", "dictionary": "accounts"}}\n' >copyzstd.json
expect 0 "rekey --recompress --dry-run" -- ctl --config copyzstd.json rekey --recompress --dry-run
grep -q '350 to rewrite, 1 already current' err && ok "the dry run counts 350, 1 current" ||
  fail "dry run: $(cat err)"
expect 0 "the dry run changed nothing" -- ctl --config copy.json ls account-0001
grep -q 'zstd' out && fail "dry run rewrote: $(cat out)" || ok "still uncompressed"
before=$(stat -c %s copy.db)
expect 0 "rekey --recompress" -- ctl --config copyzstd.json rekey --recompress
grep -q '300 rewritten, 51 already current' err && ok "300 rewritten, 51 current" ||
  fail "recompress: $(cat err)"
expect 0 "ls names the codec and dictionary" -- ctl --config copy.json ls account-0001
grep -q 'zstd+dict' out && ok "ls says zstd+dict" || fail "ls: $(cat out)"
expect 0 "ls --json names the dictionary" -- ctl --config copy.json ls account-0001 --json
grep -q "\"dictionary\":$id" out && ok "by its id" || fail "ls --json: $(cat out)"
expect 0 "a second run finds nothing to do" -- ctl --config copyzstd.json rekey --recompress
grep -q '0 rewritten, 351 already current' err && ok "0 rewritten" || fail "rerun: $(cat err)"
expect 0 "verify after recompressing" -- ctl --config copy.json verify
expect 0 "a recompressed state loads" -- ctl --config copy.json show account-0042 1
grep -q '"owner 42"' out && ok "byte for byte" || fail "show: $(cat out)"
expect 0 "dict show counts the new uses" -- ctl --config copy.json dict show accounts
grep -q "used by 301 snapshot" out && ok "301 uses" || fail "dict show: $(cat out)"
expect 2 "--wrap-only and --recompress together" -- \
  ctl --config copyzstd.json rekey --wrap-only --recompress

# export carries the dictionaries (first, one line each); import stores them
# before the states, so a document naming the dictionary imports at once, and
# export | import | export is byte for byte the same.
expect 0 "export a store with a dictionary" -- ctl --config copy.json export --out exp1.jsonl
head -1 exp1.jsonl | grep -q "^{\"dictionary\":\"accounts\",\"id\":$id,\"bytes_base64\":" &&
  ok "the first line is the dictionary" || fail "export: $(head -c 200 exp1.jsonl)"
printf '{"backend": "sqlite", "config": {"path": "imp.db", "keep": 0},
  "options": {"compression": "zstd", "dictionary": "accounts"}}\n' >imp.json
expect 0 "import it into a new store naming the dictionary" -- \
  ctl --config imp.json --create import exp1.jsonl
expect 0 "the new store lists the dictionary" -- ctl --config imp.json dict ls
grep -q "^$id	accounts	" out && ok "under its id and name" || fail "dict ls: $(cat out)"
expect 0 "the imported bodies use it" -- ctl --config imp.json ls account-0007
grep -q 'zstd+dict' out && ok "zstd+dict" || fail "ls: $(cat out)"
expect 0 "export the imported store" -- ctl --config imp.json export --out exp2.jsonl
cmp -s exp1.jsonl exp2.jsonl && ok "export | import | export is byte-identical" ||
  fail "the exports differ"
expect 0 "importing again finds the dictionary there" -- ctl --config imp.json import exp1.jsonl
head -1 exp1.jsonl | sed "s/\"id\":$id/\"id\":$((id ^ 1))/" >baddict.jsonl
expect 2 "a dictionary line whose id is not its bytes' is refused" -- \
  ctl --config imp.json import baddict.jsonl
grep -q 'is not the id of the bytes' err && ok "saying so" || fail "import: $(cat err)"

[ "$FAILS" -eq 0 ] || { echo "$FAILS failure(s)" >&2; exit 1; }

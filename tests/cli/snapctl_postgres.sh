#!/usr/bin/env bash
# snapctl copy from a SQLite store into a postgres store sharded over three
# databases (docs/POSTGRES.md, "Migrating a SQLite store"), then snapctl on the
# target: verify, ls, show, export, and the spread of the pids over the shards;
# then a store with a trained zstd dictionary copied, exported and imported;
# then a streamed snapshot backed up with pg_dump and restored with pg_restore.
# Runs under tests/cli/pgcluster.c, which provides SNAP_PG_CONNINFO_0..2.
# Usage: pgcluster 3 bash snapctl_postgres.sh SNAPCTL MKSTORE WORKDIR
set -uo pipefail
for i in 0 1 2; do
  v=SNAP_PG_CONNINFO_$i
  [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (run under pgcluster 3)" >&2; exit 2; }
done
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

newkeys k1
OPTIONS='"options": {"compression": "zlib", "encryption": {"key_file": "k1", "context": "test/snapctl/v1"}}'
printf '{"backend": "sqlite", "config": {"path": "src.db", "keep": 0}, %s}\n' "$OPTIONS" >src.json
shards="\"$SNAP_PG_CONNINFO_0\", \"$SNAP_PG_CONNINFO_1\", \"$SNAP_PG_CONNINFO_2\""
printf '{"backend": "postgres", "config": {"shards": [%s], "table": "migrated", "keep": 0}, %s}\n' \
  "$shards" "$OPTIONS" >pg.json
# One database of the three alone: what that shard holds.
for i in 0 1 2; do
  v=SNAP_PG_CONNINFO_$i
  printf '{"backend": "postgres", "config": {"conninfo": "%s", "table": "migrated"}, %s}\n' \
    "${!v}" "$OPTIONS" >shard$i.json
done

# ---- the source: 200 pids x 3 seqs, every body zlib + encrypted -------------
"$MK" sealed src.db 200 1 k1 || { echo "FAIL: mkstore" >&2; exit 2; }
expect 0 "verify the source" -- ctl --config src.json verify
expect 0 "stats of the source" -- ctl --config src.json stats --json
grep -q '"snapshots":[[:space:]]*600' out || fail "the source does not hold 600 snapshots"
grep -q '"zlib+aead":[[:space:]]*[1-9]' out && ! grep -q '"none"\|"zlib":' out ||
  fail "the source's bodies are not all encrypted, most compressed: $(cat out)"
cp out src.stats

# ---- copy into 3 shards ------------------------------------------------------
expect 0 "copy sqlite -> postgres (3 shards)" -- "$SNAPCTL" --config src.json copy --to pg.json
grep -q "600 rows written, 0 already present" err || fail "copy summary: $(cat err)"
grep -q "600 identical, 0 different or missing, 0 only in the target" err ||
  fail "copy's own comparison: $(cat err)"
expect 0 "verify the target (every body decodes)" -- ctl --config pg.json verify
expect 0 "stats of the target" -- ctl --config pg.json stats --json
cmp -s src.stats out && ok "the target's counts, sizes, key versions and stage sets are the source's" ||
  fail "stats differ: $(diff src.stats out)"
expect 0 "ls the source" -- ctl --config src.json ls
cp out src.ls
expect 0 "ls the target" -- ctl --config pg.json ls
cp out pg.ls
[ "$(wc -l <pg.ls)" -eq 200 ] || fail "the target lists $(wc -l <pg.ls) pids, expected 200"
cmp -s src.ls pg.ls && ok "the target lists the same pids in the same order" || fail "ls differs"

# Every snapshot decodes to the same state, timestamp and format.
expect 0 "export the source" -- ctl --config src.json export --out src.jsonl
expect 0 "export the target" -- ctl --config pg.json export --out pg.jsonl
[ "$(wc -l <pg.jsonl)" -eq 600 ] || fail "the target exports $(wc -l <pg.jsonl) snapshots"
cmp -s src.jsonl pg.jsonl && ok "all 600 snapshots decode identically" || fail "the exports differ"
for pid in acct-00000 acct-00101 "acct é/3" acct-00199; do
  for seq in 1 2 3; do
    ctl --config src.json show "$pid" "$seq" >a.show 2>&1
    ctl --config pg.json show "$pid" "$seq" >b.show 2>&1
    cmp -s a.show b.show || fail "show '$pid' $seq differs"
  done
  ctl --config src.json ls "$pid" --json >a.ls 2>&1
  ctl --config pg.json ls "$pid" --json >b.ls 2>&1
  cmp -s a.ls b.ls || fail "ls '$pid' --json differs"
done
ok "show and ls PID agree on sample pids"

# The pids are spread over all three shards, each pid on one shard only.
total=0
for i in 0 1 2; do
  expect 0 "ls shard $i alone" -- ctl --config shard$i.json ls
  n=$(wc -l <out)
  cp out shard$i.ls
  [ "$n" -ge 40 ] || fail "shard $i holds $n of 200 pids"
  total=$((total + n))
done
[ "$total" -eq 200 ] || fail "the shards hold $total pids together, expected 200"
[ "$(sort shard0.ls shard1.ls shard2.ls | uniq -d | wc -l)" -eq 0 ] || fail "a pid is on two shards"
ok "pids per shard: $(wc -l <shard0.ls) $(wc -l <shard1.ls) $(wc -l <shard2.ls)"

# ---- again: nothing to write --------------------------------------------------
expect 0 "copy again (resumes: nothing to write)" -- "$SNAPCTL" --config src.json copy --to pg.json
grep -q "0 rows written, 600 already present" err || fail "a second copy rewrote rows: $(cat err)"

# ---- rows only in the target: kept and counted, or deleted with --delete --------
expect 0 "delete a pid in the source" -- ctl --config src.json delete acct-00007
expect 0 "copy keeps rows the source no longer has" -- "$SNAPCTL" --config src.json copy --to pg.json
grep -q "3 only in the target (kept" err || fail "the extra rows were not counted: $(cat err)"
expect 0 "the target still has them" -- ctl --config pg.json ls acct-00007
expect 0 "copy --delete" -- "$SNAPCTL" --config src.json copy --to pg.json --delete
grep -q "3 deleted from the target" err && grep -q "0 only in the target" err ||
  fail "copy --delete: $(cat err)"
expect 1 "the target no longer has them" -- ctl --config pg.json ls acct-00007
expect 0 "export the source again" -- ctl --config src.json export --out src2.jsonl
expect 0 "export the target again" -- ctl --config pg.json export --out pg2.jsonl
cmp -s src2.jsonl pg2.jsonl && ok "the target mirrors the source" || fail "the exports differ"

# ---- the copy stored the target document's keep (0) as the data set's --------
sed 's/"keep": 0/"keep": 2/' pg.json >pg2.json
expect 2 "an opener of the target with another keep is refused" -- ctl --config pg2.json verify
grep -q "keeps 0 (keep all)" err || fail "the refusal does not name the stored keep: $(cat err)"

# ---- one shard of three down: exit 1 (the store cannot be reached), never 2 --
down="\"$SNAP_PG_CONNINFO_0\", \"$SNAP_PG_CONNINFO_1\", \"host=$W/no-server dbname=snap2\""
printf '{"backend": "postgres", "config": {"shards": [%s], "table": "migrated", "keep": 0}, %s}\n' \
  "$down" "$OPTIONS" >pgdown.json
for cmd in ls verify; do
  expect 1 "$cmd with one shard of three down: exit 1" -- ctl --config pgdown.json $cmd
  grep -q "shard 2/3" err || fail "$cmd does not name the shard that is down: $(cat err)"
done

# ---- dictionaries: copy, export and import carry them to every shard ----------
# 300 account states of one shape, encrypted, recompressed through a trained
# dictionary in SQLite, then copied to the three shards, exported and imported
# into another data set: every shard holds the dictionary, and every export is
# byte for byte the source's.
for i in $(seq 1 300); do
  printf '{"pid":"account-%04d","seq":1,"timestamp":1600000000000,"format":"json","state":{"account":"acc-%04d","owner":"owner %d","currency":"EUR","balance_cents":%d,"active":true,"tags":["premium","eu"],"history":[{"kind":"deposit","cents":%d,"memo":"salary"},{"kind":"withdrawal","cents":%d,"memo":"rent"}]}}\n' \
    "$i" "$i" "$i" $((i * 7919 % 100000)) $((i * 31)) $((i * 17))
done >accounts.jsonl
KEYS='"encryption": {"key_file": "k1", "context": "test/snapctl/v1"}'
ZOPTS="\"options\": {\"compression\": \"zstd\", \"dictionary\": \"accounts\", $KEYS}"
printf '{"backend": "sqlite", "config": {"path": "d.db", "keep": 0}, %s}\n' "$OPTIONS" >dsrc.json
printf '{"backend": "sqlite", "config": {"path": "d.db", "keep": 0}, %s}\n' "$ZOPTS" >dsrcz.json
expect 0 "import 300 account states" -- ctl --config dsrc.json --create import accounts.jsonl
expect 0 "train a dictionary on them" -- \
  ctl --config dsrc.json dict train --name accounts --pids 'account-*' --size 4096
id=$(sed -n 's/.*\tid \([0-9]*\)\t.*/\1/p' out)
[ -n "$id" ] && ok "trained dictionary $id" || fail "no id in: $(cat out)"
expect 0 "recompress the source through it" -- ctl --config dsrcz.json rekey --recompress
grep -q '300 rewritten' err || fail "recompress: $(cat err)"
for t in dicted imported; do
  printf '{"backend": "postgres", "config": {"shards": [%s], "table": "%s", "keep": 0}, %s}\n' \
    "$shards" "$t" "$ZOPTS" >pg-$t.json
done
expect 0 "copy the store with its dictionary to 3 shards" -- \
  "$SNAPCTL" --config dsrcz.json copy --to pg-dicted.json
grep -q "300 rows written" err || fail "copy summary: $(cat err)"
for i in 0 1 2; do
  v=SNAP_PG_CONNINFO_$i
  printf '{"backend": "postgres", "config": {"conninfo": "%s", "table": "dicted"}, %s}\n' \
    "${!v}" "$ZOPTS" >dshard$i.json
  expect 0 "dict ls on shard $i alone" -- ctl --config dshard$i.json dict ls
  grep -q "^$id	accounts	" out || fail "shard $i lacks the dictionary: $(cat out)"
done
ok "every shard holds dictionary $id"
expect 0 "verify the copy" -- ctl --config pg-dicted.json verify
expect 0 "ls on postgres names the codec" -- ctl --config pg-dicted.json ls account-0042
grep -q 'zstd+dict' out && ok "zstd+dict" || fail "ls: $(cat out)"
expect 0 "export the source" -- ctl --config dsrcz.json export --out d-src.jsonl
expect 0 "export the copy" -- ctl --config pg-dicted.json export --out d-pg.jsonl
head -1 d-pg.jsonl | grep -q "^{\"dictionary\":\"accounts\",\"id\":$id," &&
  ok "the export starts with the dictionary" || fail "export: $(head -c 120 d-pg.jsonl)"
cmp -s d-src.jsonl d-pg.jsonl && ok "the copy exports byte for byte as the source" ||
  fail "the exports differ"
expect 0 "import the export into another data set" -- \
  ctl --config pg-imported.json --create import d-pg.jsonl
expect 0 "the imported bodies use the dictionary" -- ctl --config pg-imported.json ls account-0007
grep -q 'zstd+dict' out && ok "zstd+dict after import" || fail "ls: $(cat out)"
expect 0 "export the imported data set" -- ctl --config pg-imported.json export --out d-imp.jsonl
cmp -s d-src.jsonl d-imp.jsonl && ok "export | import | export on postgres is byte-identical" ||
  fail "the exports differ"
expect 1 "dict rm of the dictionary in use is refused on postgres" -- \
  ctl --config pg-imported.json dict rm accounts
grep -q 'used by 300' err && ok "saying why" || fail "rm: $(cat err)"

# ---- backups: pg_dump of each shard's database, streamed snapshots included ----
# A streamed snapshot (imported part by part) lives in the chunk table of its
# pid's shard; a dump of each shard's whole database restored into new
# databases loads it byte for byte, and its chunk rows go with it on a delete
# (the trigger function came along). docs/OPERATIONS.md, "Backing up a
# postgres store".
PGBIN=/usr/lib/postgresql/15/bin
part() { printf '{"part_base64":"%s"}\n' "$(printf '%s' "$1" | base64 -w0)"; }
ones=$(yes '1,' | head -n 350000 | tr -d '\n')
{
  printf '{"pid":"big","seq":1,"timestamp":1600000000000,"format":"json","stream_length":1400003}\n'
  part "[$ones"; part "$ones"; part "1]"
} >big.jsonl
printf '{"backend": "postgres", "config": {"shards": [%s], "table": "streamed", "keep": 0}, %s}\n' \
  "$shards" "$OPTIONS" >pg-st.json
expect 0 "import a streamed snapshot into 3 shards" -- ctl --config pg-st.json --create import big.jsonl
expect 0 "it is stored as a stream" -- ctl --config pg-st.json ls big --json
grep -q '"streamed":true' out || fail "not a stream: $(cat out)"
expect 0 "export it" -- ctl --config pg-st.json export --out big-src.jsonl
rshards=""
for i in 0 1 2; do
  v=SNAP_PG_CONNINFO_$i
  "$PGBIN/pg_dump" -Fc -d "${!v}" -f "snap$i.dump" || fail "pg_dump of shard $i"
  "$PGBIN/psql" -q -d "${!v}" -c "CREATE DATABASE restored$i" || fail "create restored$i"
  r=${!v/dbname=snap$i/dbname=restored$i}
  "$PGBIN/pg_restore" -d "$r" "snap$i.dump" || fail "pg_restore of shard $i"
  rshards="$rshards${rshards:+, }\"$r\""
done
printf '{"backend": "postgres", "config": {"shards": [%s], "table": "streamed", "keep": 0}, %s}\n' \
  "$rshards" "$OPTIONS" >pg-rest.json
expect 0 "verify the restored store (every chunk authenticated)" -- ctl --config pg-rest.json verify
expect 0 "export the restored store" -- ctl --config pg-rest.json export --out big-rest.jsonl
cmp -s big-src.jsonl big-rest.jsonl && ok "the restored stream exports byte for byte as the original" ||
  fail "the restored export differs"
chunks() { # the chunk rows of the restored data set, on all its shards
  local n=0
  for i in 0 1 2; do
    v=SNAP_PG_CONNINFO_$i
    n=$((n + $("$PGBIN/psql" -At -d "${!v/dbname=snap$i/dbname=restored$i}" \
      -c 'SELECT count(*) FROM streamed_chunks')))
  done
  echo "$n"
}
[ "$(chunks)" -gt 0 ] || fail "the restored databases hold no chunk rows"
expect 0 "delete the restored stream" -- ctl --config pg-rest.json delete big
[ "$(chunks)" -eq 0 ] && ok "its chunk rows went with it (the restored triggers)" ||
  fail "$(chunks) chunk rows left after the delete"

echo "$FAILS failure(s)"
[ "$FAILS" -eq 0 ]

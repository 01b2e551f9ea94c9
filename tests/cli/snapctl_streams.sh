#!/usr/bin/env bash
# snapctl on streamed snapshots (docs/STREAMS.md), written by tests/cli/mkstream.c:
# ls, stats, show, verify, export/import, rekey, copy, backup and delete of streams
# of a few MiB (plain, zlib + AEAD), a rekey killed with SIGKILL mid-stream then
# verified and run again, and rekey and export of a 256 MiB stream in bounded memory
# (peak RSS of snapctl at most 64 MiB, from /usr/bin/time -v).
# Usage: snapctl_streams.sh SNAPCTL MKSTREAM WORKDIR
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"

newkeys k1 k2
conf() { # conf FILE DB ACTIVE: keys 1 (k1) and 2 (k2), ACTIVE writes, plaintext accepted
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"},
  "options": {"compression": "zlib", "encryption": {"keys": [{"version": 1, "file": "k1"},
  {"version": 2, "file": "k2"}], "active": %s, "context": "test/snapctl/v1"},
  "accept_unauthenticated": true}}\n' "$2" "$3" >"$1"
}
files() { ls "$1.streams" 2>/dev/null | wc -l; } # chunk files beside a database
sum() { md5sum | cut -d' ' -f1; }

"$MK" save s.db plain 1 3072 && "$MK" save s.db plain 2 1024 && "$MK" save s.db sealed 1 4096 k1 ||
  exit 2
want3=$("$MK" print 3072 | sum) want4=$("$MK" print 4096 | sum)
conf s.json s.db 1

# ---- reading: ls, stats, show, verify --------------------------------------------
expect 0 "ls PID shows a stream's chunks and stored size" -- ctl --config s.json ls plain
awk '$1 == 1 && $4 == 3145728 && $5 > 3145728 && $6 == 3 { found = 1 } END { exit !found }' out ||
  fail "ls does not show 3 chunks and the stored size of plain/1: $(cat out)"
expect 0 "ls PID --json" -- ctl --config s.json ls sealed --json
grep -q '"streamed":true' out && grep -q '"chunks":' out && grep -q '"head_size":' out ||
  fail "ls --json lacks the stream's fields: $(cat out)"
expect 0 "stats --json counts streams and their bytes" -- ctl --config s.json stats --json
grep -q '"streamed":[[:space:]]*3' out || fail "stats does not count 3 streams: $(cat out)"
awk -F: '/"stored_bytes"/ { gsub(/[^0-9]/, "", $2); exit !($2 > 4194304) }' out ||
  fail "stats counts the heads only: $(cat out)"
expect 0 "show prints the first bytes of a stream" -- ctl --config s.json show plain 1
[ "$(head -c 4096 out)" = "$("$MK" print 3072 | head -c 4096)" ] ||
  fail "show printed other bytes than the state's first 4096"
[ "$(wc -c <out)" -eq 4097 ] || fail "show printed $(wc -c <out) bytes, expected 4096 and a newline"
expect 0 "show --bytes" -- ctl --config s.json show sealed --bytes 10
[ "$(cat out)" = "$("$MK" print 4096 | head -c 10)" ] || fail "show --bytes 10: $(cat out)"
expect 0 "show --raw writes the whole stream" -- ctl --config s.json show sealed --raw
[ "$(sum <out)" = "$want4" ] || fail "show --raw is not the state"
expect 0 "verify checks every chunk" -- ctl --config s.json verify

# ---- export and import: a streamed record, read back as a streamed save ----------
expect 0 "export" -- ctl --config s.json export --out e.jsonl
[ "$(grep -c '"stream_length"' e.jsonl)" -eq 3 ] || fail "export wrote no 3 streamed records"
[ "$(grep -c '^{"part_base64"' e.jsonl)" -eq 12 ] ||
  fail "export wrote $(grep -c '^{"part_base64"' e.jsonl) part lines, expected 4 + 2 + 6"
conf i.json i.db 1
expect 0 "import" -- ctl --config i.json import e.jsonl
expect 0 "the import holds streams" -- ctl --config i.json ls sealed --json
grep -q '"streamed":true' out || fail "import stored an ordinary snapshot: $(cat out)"
[ "$(ctl --config i.json show plain 1 --raw | sum)" = "$want3" ] || fail "the import differs"
ctl --config i.json export | cmp -s - e.jsonl && ok "export | import | export is byte-exact" ||
  fail "a second export differs"
head -n 3 e.jsonl >cut.jsonl
expect 2 "import refuses a streamed record cut short" -- ctl --config i.json import cut.jsonl
grep -q "ends before its length" err || fail "no reason given: $(cat err)"

# ---- rekey to key 2, then recompression ------------------------------------------
conf s2.json s.db 2
expect 0 "rekey rewrites the streams chunk by chunk" -- "$SNAPCTL" --config s2.json rekey
grep -q "3 rewritten" err || fail "rekey did not rewrite 3 streams: $(cat err)"
expect 0 "ls after the rekey" -- ctl --config s2.json ls plain --json
[ "$(grep -c '"key_version":2' out)" -eq 2 ] || fail "plain's streams are not under key 2: $(cat out)"
[ "$(ctl --config s2.json show plain 1 --raw | sum)" = "$want3" ] || fail "the rekeyed stream differs"
expect 0 "verify after the rekey" -- ctl --config s2.json verify
[ "$(files s.db)" -eq 3 ] || fail "$(files s.db) chunk files after the rekey, expected 3"
expect 0 "rekey again: all current" -- "$SNAPCTL" --config s2.json rekey
grep -q "0 rewritten, 3 already current" err || fail "a second rekey rewrote: $(cat err)"

# ---- copy, backup, delete ----------------------------------------------------------
conf c.json c.db 2
expect 0 "copy streams to another store" -- ctl --config s2.json copy --to c.json
expect 0 "copy again (resumes: nothing to write)" -- "$SNAPCTL" --config s2.json copy --to c.json
grep -q "0 rows written, 3 already present" err || fail "a second copy rewrote rows: $(cat err)"
[ "$(ctl --config c.json show sealed --raw | sum)" = "$want4" ] || fail "the copy differs"
expect 0 "backup takes the chunk files along" -- ctl --config s2.json backup b.db
conf b.json b.db 2
[ "$(files b.db)" -eq 3 ] || fail "the backup has $(files b.db) chunk files, expected 3"
expect 0 "verify the backup" -- ctl --config b.json verify
expect 0 "delete a stream" -- ctl --config s2.json delete plain --to 1
[ "$(files s.db)" -eq 2 ] || fail "delete left $(files s.db) chunk files, expected 2"
[ "$(ctl --config b.json show plain 1 --raw | sum)" = "$want3" ] || fail "the backup lost plain/1"

# ---- a rekey killed with SIGKILL mid-stream, then verify and run again -------------
"$MK" save big.db big 1 262144 || exit 2
conf big.json big.db 1
"$SNAPCTL" --quiet --config big.json rekey >/dev/null 2>&1 &
rk=$!
for _ in $(seq 1 400); do [ "$(files big.db)" -ge 2 ] && break; sleep 0.05; done
sleep 0.3
kill -9 "$rk" 2>/dev/null
wait "$rk"
[ $? -eq 137 ] && ok "rekey killed mid-stream" || fail "the rekey ended before it was killed"
expect 0 "verify after the kill" -- ctl --config big.json verify
expect 0 "ls after the kill: the old stream, unauthenticated" -- ctl --config big.json ls big --json
grep -q '"key_version":0' out || fail "the killed rekey changed the stream: $(cat out)"
# The second run reclaims the orphan (open for writing) and rewrites the stream;
# its peak memory is bounded by the chunk size, not the 256 MiB state.
/usr/bin/time -v "$SNAPCTL" --quiet --config big.json rekey >out 2>err ||
  fail "rekey after the kill: $(cat err)"
rss=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' err)
[ "${rss:-999999}" -le 65536 ] && ok "rekey of 256 MiB peaked at $rss KiB" ||
  fail "rekey of 256 MiB peaked at ${rss:-?} KiB (over 64 MiB)"
[ "$(files big.db)" -eq 1 ] || fail "$(files big.db) chunk files after the rerun, expected 1"
expect 0 "ls after the rerun: under key 1" -- ctl --config big.json ls big --json
grep -q '"key_version":1' out || fail "the rerun did not rekey: $(cat out)"
# Export streams it to the output (here /dev/null: the disk is not measured).
/usr/bin/time -v "$SNAPCTL" --quiet --config big.json export >/dev/null 2>err ||
  fail "export of 256 MiB: $(cat err)"
rss=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' err)
[ "${rss:-999999}" -le 65536 ] && ok "export of 256 MiB peaked at $rss KiB" ||
  fail "export of 256 MiB peaked at ${rss:-?} KiB (over 64 MiB)"

[ "$FAILS" -eq 0 ] && echo "all passed" || echo "$FAILS failed"
[ "$FAILS" -eq 0 ]

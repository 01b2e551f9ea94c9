#!/usr/bin/env bash
# snapctl migrate: a mixed store brought to one manifest through the
# upcasters of tests/upcasters/wrap.c named by the document's "upcasters";
# the dry run's counts, failures left unchanged and reported, a missing step
# named, the document's rules for the key; then a run killed with SIGKILL
# over and over beside a live writer that saves newer snapshots of the same
# pids, resumed, and checked row by row. Against real SQLite files.
# Usage: snapctl_migrate.sh SNAPCTL MKSTORE WORKDIR UPCASTERS_SO
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/expect.sh" "$@"
SO=$4

doc() { # doc FILE DB [UPCASTERS-JSON]
  printf '{"backend": "sqlite", "config": {"path": "%s", "keep": 0, "synchronous": "normal"}%s}\n' \
    "$2" "${3:+, \"upcasters\": $3}" >"$1"
}
rec() { # rec PID SEQ MANIFEST STATE
  printf '{"pid":"%s","seq":%s,"timestamp":1600000000000,"format":"json","manifest":"%s","state":%s}\n' "$@"
}

# ---- a mixed store: T/1, T/2, T/3, another type, no manifest ----------------
{
  rec a 1 test.Account/1 '{"n":1}'
  rec a 2 test.Account/2 '{"n":2}'
  rec a 3 test.Account/3 '{"n":3}'
  rec b 1 test.Account/1 '{"n":4}'
  rec c 1 other.Thing/1 '{"n":5}'
  rec c 2 test.Account/7 '{"n":6}'
  printf '{"pid":"d","seq":1,"timestamp":1600000000000,"format":"json","state":{"n":7}}\n'
} >mixed.jsonl
doc plain.json m.db
doc up.json m.db "{\"library\": \"$SO\"}"
expect 0 "import the mixed store" -- ctl --config plain.json --create import mixed.jsonl
ctl --config plain.json export >before.jsonl

expect 2 "migrate without --to" -- ctl --config up.json migrate
expect 0 "migrate --help" -- ctl migrate --help
grep -q "\-\-dry-run" out && ok "migrate --help names --dry-run" || fail "help: $(cat out err)"
expect 2 "migrate --to an invalid manifest" -- ctl --config up.json migrate --to ''
expect 0 "migrate --dry-run" -- ctl --config up.json migrate --to test.Account/3 --dry-run
grep -q '^test.Account/1	2	migrate$' out && grep -q '^test.Account/2	1	migrate$' out &&
  grep -q '^test.Account/3	1	current$' out && grep -q '^other.Thing/1	1	other$' out &&
  grep -q '^test.Account/7	1	newer$' out && grep -q '^-	1	other$' out &&
  ok "the dry run counts rows per manifest" || fail "dry run table: $(cat out)"
grep -q '3 to migrate, 1 already at the target, 3 left alone' err &&
  ok "the dry run's summary" || fail "dry run summary: $(cat err)"
ctl --config plain.json export >after-dry.jsonl
cmp -s before.jsonl after-dry.jsonl && ok "the dry run changed nothing" || fail "dry run changed the store"

expect 1 "migrate without the upcasters names the missing step" -- \
  ctl --config plain.json migrate --to test.Account/3
grep -q "no upcaster from 'test.Account/1'" out && ok "the missing step is named" ||
  fail "missing step: $(cat out)"
expect 0 "migrate --to test.Account/3" -- ctl --config up.json migrate --to test.Account/3
grep -q '3 migrated, 1 already at the target, 3 left alone' err && ok "migrate's summary" ||
  fail "summary: $(cat err)"
ctl --config plain.json export >after.jsonl
grep -q '"pid":"a","seq":1,.*"manifest":"test.Account/3","state":{"v":3,"was":{"v":2,"was":{"n":1}}}' after.jsonl &&
  grep -q '"pid":"a","seq":2,.*"manifest":"test.Account/3","state":{"v":3,"was":{"n":2}}' after.jsonl &&
  grep -q '"pid":"b","seq":1,.*"manifest":"test.Account/3","state":{"v":3,"was":{"v":2,"was":{"n":4}}}' after.jsonl &&
  ok "T/1 and T/2 rows carry the upcast state and the target manifest" || fail "after: $(cat after.jsonl)"
for k in '"pid":"a","seq":3' '"pid":"c","seq":1' '"pid":"c","seq":2' '"pid":"d","seq":1'; do
  [ "$(grep -F "$k" before.jsonl)" = "$(grep -F "$k" after.jsonl)" ] || fail "row $k changed"
done
ok "T/3, other types, newer and manifest-less rows untouched"
expect 0 "verify after migrate" -- ctl --config plain.json verify
expect 0 "a second migrate finds nothing to do" -- ctl --config up.json migrate --to test.Account/3
grep -q ' 0 migrated, 4 already at the target' err && ok "rerun skips migrated rows" || fail "rerun: $(cat err)"
expect 0 "ls shows the new manifest" -- ctl --config plain.json ls b
grep -q 'test.Account/3' out && ok "ls reads test.Account/3" || fail "ls: $(cat out)"

# ---- a missing step and a failing upcaster: the row stays, it is reported ----
{
  rec g 1 gap.Thing/1 '{"n":1}'
  rec f 1 test.Account/1 '{"fail":true}'
  rec f 2 test.Account/2 '{"n":2}'
} >bad.jsonl
doc bplain.json b.db
doc bup.json b.db "{\"library\": \"$SO\"}"
expect 0 "import rows that cannot migrate" -- ctl --config bplain.json --create import bad.jsonl
ctl --config bplain.json export >bad-before.jsonl
expect 1 "migrate --to gap.Thing/3 names the missing step" -- ctl --config bup.json migrate --to gap.Thing/3
grep -q "^\"g\" 1 error: migrate pid 'g' seq 1: no upcaster from 'gap.Thing/2'" out &&
  ok "the missing step gap.Thing/2 is named" || fail "gap: $(cat out)"
expect 1 "a failing upcaster fails its row" -- ctl --config bup.json migrate --to test.Account/3
grep -q "^\"f\" 1 error: .*upcaster 'test.Account/1' -> 'test.Account/2' failed: wrap: this state asks to fail" out &&
  ok "the failing step and its message are reported" || fail "failing: $(cat out)"
grep -q '1 migrated, 0 already at the target, 1 left alone.* 1 failed' err && ok "the other rows still migrate" ||
  fail "failing summary: $(cat err)"
ctl --config bplain.json export >bad-after.jsonl
[ "$(grep -F '"pid":"f","seq":1' bad-before.jsonl)" = "$(grep -F '"pid":"f","seq":1' bad-after.jsonl)" ] &&
  [ "$(grep -F '"pid":"g"' bad-before.jsonl)" = "$(grep -F '"pid":"g"' bad-after.jsonl)" ] &&
  ok "rows that failed are unchanged" || fail "a failed row changed"

# ---- the document's "upcasters" key ------------------------------------------
doc u1.json m.db '{"library": "/nonexistent/up.so"}'
expect 2 "a missing library" -- ctl --config u1.json migrate --to test.Account/3
grep -q 'upcasters.library: cannot load' err && ok "a missing library is named" || fail "$(cat err)"
doc u2.json m.db "{\"library\": \"$SO\", \"symbol\": \"nope\"}"
expect 2 "a missing symbol" -- ctl --config u2.json migrate --to test.Account/3
grep -q "upcasters.symbol: .* has no entry symbol nope" err && ok "a missing symbol is named" || fail "$(cat err)"
doc u3.json m.db "{\"library\": \"$SO\", \"colour\": 1}"
expect 2 "an unknown key" -- ctl --config u3.json migrate --to test.Account/3
grep -q 'upcasters.colour' err && ok "an unknown key is named by its path" || fail "$(cat err)"
doc u4.json m.db '{"library": 7}'
expect 2 "a library that is not a string" -- ctl --config u4.json migrate --to test.Account/3
grep -q 'upcasters.library' err && ok "a wrong type is named by its path" || fail "$(cat err)"
doc u5.json m.db "{\"library\": \"$SO\", \"symbol\": \"refusing_register\"}"
expect 2 "an entry point that refuses" -- ctl --config u5.json migrate --to test.Account/3
grep -q 'refusing_register() of .* failed: this library refuses' err && ok "its refusal is reported" || fail "$(cat err)"
printf '{"backend": "sqlite", "config": {"path": "m.db"}, "upcasters": {"library": "%s"}, "upcasters": {"library": "%s"}}\n' "$SO" "$SO" >u6.json
expect 2 "a duplicate key" -- ctl --config u6.json migrate --to test.Account/3
grep -q 'upcasters' err && ok "a duplicate key is named" || fail "$(cat err)"

# ---- killed with SIGKILL and resumed beside a live writer --------------------
# live-0..9 hold seeded T/1 and T/2 rows that the writer overwrites with newer
# test.Account/3 saves (same seqs, then new ones) and deletes; old-* rows give
# every pass enough to do to be killed in the middle.
"$MK" seed live.db live 10 2000 || exit 2
"$MK" seed live.db old 40 60 || exit 2
doc live.json live.db "{\"library\": \"$SO\"}"
expect 0 "dry run before the live migration" -- ctl --config live.json migrate --to test.Account/3 --dry-run
grep -q "22400 to migrate" err && ok "22400 rows to migrate" || fail "live dry run: $(cat err)"
# Each step sleeps 100 us: a page of 256 rows is read long before its
# conditional replace, and the writer's newer saves land in between.
export WRAP_STEP_DELAY_US=100
"$MK" typedchurn live.db 40000 expect.txt 2001 &
writer=$!
kills=0 passes=0 mfail=0
for delay in 0.05 0.1 0.15 0.2 0.3 0.05 0.1 0.2; do
  { timeout -s KILL "$delay" "$SNAPCTL" --quiet --config live.json migrate --to test.Account/3 >/dev/null 2>&1; } 2>/dev/null
  [ $? -eq 137 ] && kills=$((kills + 1))
done
while kill -0 $writer 2>/dev/null; do
  ctl --config live.json migrate --to test.Account/3 >>migrate-live.out 2>>migrate-live.log || mfail=$((mfail + 1))
  passes=$((passes + 1))
done
wait $writer || fail "the writer failed"
echo "migrate killed $kills times of 8, then ran $passes times beside the writer;" \
  "$(grep -o '[0-9]* replaced by newer saves' migrate-live.log | awk '{s+=$1} END {print s+0}') bodies left to newer saves"
[ $kills -gt 0 ] && ok "migrate was killed with SIGKILL ($kills times)" || fail "migrate never killed"
unset WRAP_STEP_DELAY_US
[ $mfail -eq 0 ] || fail "migrate beside the writer failed $mfail times: $(cat migrate-live.out; tail -5 migrate-live.log)"
expect 0 "the final pass" -- ctl --config live.json migrate --to test.Account/3
expect 0 "dry run after the final pass" -- ctl --config live.json migrate --to test.Account/3 --dry-run
grep -q ' 0 to migrate' err && ! grep -q 'migrate$' out && ok "every row is at the target" ||
  fail "after the final pass: $(cat out err)"
expect 0 "verify after the live migration" -- ctl --config live.json verify
expect 0 "no newer save overwritten, no deleted row back, every seed migrated" -- "$MK" migcheck live.db expect.txt
cat out

[ $FAILS -eq 0 ] || { echo "$FAILS failures" >&2; exit 1; }
echo "all snapctl migrate tests passed"

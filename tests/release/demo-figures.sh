#!/usr/bin/env bash
# The figures a reader of `make demo` and `make demo-caf` compares are
# explained where they are printed: the store metrics of the killed process
# say they were last published before the SIGKILL, and how many snapshots
# were acknowledged by then (beside the total acknowledged); a count of wrong
# balances is two named counters, never "0/0 wrong".
#
# Usage: make demo | tests/release/demo-figures.sh bank
#        make demo-caf | tests/release/demo-figures.sh caf
set -euo pipefail
kind=$1
out=$(cat)
fail() { echo "$out" | sed 's/^/  | /'; echo "demo-figures: $*" >&2; exit 1; }
if echo "$out" | grep -Eq '[0-9]+/[0-9]+ wrong'; then
  fail "a count of wrong balances reads as 'N of M': $(echo "$out" | grep -Eo '[0-9]+/[0-9]+ wrong' | head -n1)"
fi
case $kind in
bank)
  acked=$(echo "$out" | sed -nE 's/^  snapshots taken +([0-9]+) acknowledged.*/\1/p')
  [ -n "$acked" ] || fail "no 'snapshots taken N acknowledged' line"
  line=$(echo "$out" | grep -A1 '^  store metrics, run ' | tr -s ' \n' ' ')
  echo "$line" | grep -Eq "last published [0-9]+ ms before the SIGKILL, when [0-9]+ of the $acked snapshots" ||
    fail "the run's store metrics do not say they were published before the SIGKILL, against the $acked acknowledged"
  echo "demo-figures: bank: the run's metrics are explained against the $acked acknowledged snapshots"
  ;;
caf)
  echo "$out" | grep -Eq '\(0 wrong after recovery, 0 wrong after completing the transfers\)' ||
    fail "the balances line does not name its two counters"
  echo "demo-figures: caf: each count of wrong balances is named"
  ;;
*) echo "usage: demo-figures.sh bank|caf" >&2; exit 2 ;;
esac

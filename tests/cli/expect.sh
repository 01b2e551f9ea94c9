# Shared by the snapctl shell tests, sourced with the test's arguments
# (`. expect.sh "$@"`: SNAPCTL MKSTORE WORKDIR): sets SNAPCTL, MK and W and
# moves into a fresh $W. fail/ok count and print results, expect runs a
# command and checks its exit status (its output in $W/out and $W/err), ctl
# runs snapctl quietly.
SNAPCTL=$1 MK=$2 W=$3
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 2
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
# expect STATUS DESCRIPTION -- COMMAND...: runs it, checks its exit status.
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$W/out" 2>"$W/err"; local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit $got, expected $want"; sed 's/^/  | /' "$W/err" >&2
  else ok "$what"; fi
}
ctl() { "$SNAPCTL" --quiet "$@"; }
# newkeys FILE...: a fresh 32-byte key in each FILE, mode 0600.
newkeys() { local k; for k in "$@"; do head -c 32 /dev/urandom >"$k" && chmod 600 "$k"; done; }

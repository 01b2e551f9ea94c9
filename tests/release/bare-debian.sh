#!/usr/bin/env bash
# The README's quick start on a bare Debian 12, as written: a fresh
# `debootstrap --variant=minbase bookworm` root (no make, compiler, cmake, git
# or sudo) with this machine's apt sources, /proc, /sys, /dev and /dev/shm
# mounted and the root its own mount point; a clean clone of the repository
# copied in; then, in a chroot as root, the quick start's two commands exactly
# as the README gives them. Then the test command again as an ordinary user
# on the packages root installed, and no PostgreSQL template may be left in
# /tmp. The host's apt cache is bind-mounted into the root, so packages this
# machine already downloaded are not fetched twice.
#
# Usage: tests/release/bare-debian.sh WORKDIR     (as root; WORKDIR is removed first)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
[ "$(id -u)" -eq 0 ] || { echo "bare-debian: needs root (debootstrap, mount, chroot)" >&2; exit 2; }
work=$1
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$work/root
log=$work/log
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }

# Everything mounted below $root goes away, whatever happens; so do the
# processes left running in the root (a server the suite failed to stop).
cleanup() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  if mountpoint -q "$root" 2>/dev/null; then
    umount -R "$root" 2>/dev/null || umount -R -l "$root" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# The mirror of this machine's apt sources for bookworm itself (deb822 .sources
# or one-line .list), else Debian's.
mirror() {
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
      awk 'BEGIN {RS=""} /(^|\n)Types:[^\n]*deb([ \n]|$)/ && /(^|\n)Suites:[^\n]* bookworm([ \n]|$)/ {
             if (match($0, /(^|\n)URIs: *[^ \n]+/)) { s = substr($0, RSTART, RLENGTH);
               sub(/^\n?URIs: */, "", s); print s; exit } }')
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++;
                           if ($(i + 1) == "bookworm") { print $i; exit } }')
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

bash tools/deps.sh debootstrap git

echo "bare-debian: debootstrap --variant=minbase bookworm $root $(mirror)"
mkdir -p /var/cache/apt/archives/partial
if ! debootstrap --variant=minbase --cache-dir=/var/cache/apt/archives bookworm "$root" "$(mirror)" \
     >"$log" 2>&1; then
  tail -n 30 "$log"
  echo "bare-debian: debootstrap failed (log: $log)" >&2
  exit 1
fi
echo "bare-debian: minbase root made ($(elapsed))"

# This machine's apt sources and keys, its name server; no service starts
# from a package's scripts inside the root (there is no init).
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && cp "$f" "$root$f"
done
for d in /etc/apt/trusted.gpg.d /etc/apt/keyrings; do
  [ -d "$d" ] && cp -a "$d/." "$root$d/"
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"
# dpkg without an fsync per file: a throw-away root, and it halves the time.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# The root its own mount point, private, then the kernel's file systems.
mount --bind "$root" "$root"
mount --make-private "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount --bind /var/cache/apt/archives "$root/var/cache/apt/archives"

# A clean clone of what is committed, in a directory every user can reach.
git clone --quiet --no-hardlinks "$repo" "$work/clone"
git -C "$work/clone" checkout --quiet "$(git rev-parse HEAD)"   # (a worktree's own commit)
rm -rf "$work/clone/.git"
cp -a "$work/clone" "$root/srv/snapstore"
rm -rf "$work/clone"
for tool in make cc cmake git sudo; do
  if chroot "$root" sh -c "command -v $tool" >/dev/null; then
    echo "bare-debian: the root is not bare: it has $tool" >&2
    exit 1
  fi
done

# The quick start's commands, exactly as README.md gives them.
mapfile -t commands < <(awk '/^## Quick start/ {s=1} s && /^```sh/ {b=1; next} b && /^```/ {exit} b' \
                        README.md | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$')
[ "${#commands[@]}" -eq 2 ] || {
  echo "bare-debian: the README's quick start has ${#commands[@]} commands, not 2" >&2; exit 1; }
for c in "${commands[@]}"; do
  echo "bare-debian: as root in the bare root: $c"
  t0=$(date +%s)
  if ! chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
       HOME=/root sh -c "cd /srv/snapstore && $c" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "bare-debian: '$c' failed as root in a bare Debian 12 (log: $log)" >&2
    exit 1
  fi
  grep -E 'deps: installing|tests passed|tests failed|acknowledged|wrong' "$log" | cut -c1-160 || true
  echo "bare-debian: '$c' passed in $(($(date +%s) - t0)) s"
done
left=$(find "$root/tmp" -maxdepth 1 -name 'snap-pg-*' | head -n3)
[ -z "$left" ] || { echo "bare-debian: the suite left in /tmp: $left" >&2; exit 1; }

# An ordinary user, on the packages root installed: the test command again
# (the read-only media test may skip here, and says why: a chroot refuses an
# ordinary user the user namespace it would mount in).
chroot "$root" useradd --create-home --shell /bin/sh snapuser
chroot "$root" chown -R snapuser: /srv/snapstore
echo "bare-debian: as an ordinary user: ${commands[1]}"
t0=$(date +%s)
if ! chroot "$root" su - snapuser -c "cd /srv/snapstore && ${commands[1]}" >"$log" 2>&1; then
  tail -n 60 "$log"
  echo "bare-debian: '${commands[1]}' failed as an ordinary user (log: $log)" >&2
  exit 1
fi
grep -E 'tests passed|tests failed' "$log" || true
grep -A3 -E 'loads_work_on_read_only_media' "$log" | grep -iE 'skip' | cut -c1-300 || true
echo "bare-debian: '${commands[1]}' passed as an ordinary user in $(($(date +%s) - t0)) s"
left=$(find "$root/tmp" -maxdepth 1 -name 'snap-pg-*' | head -n3)
[ -z "$left" ] || { echo "bare-debian: the suite left in /tmp: $left" >&2; exit 1; }
echo "bare-debian: the README's quick start works on a bare Debian 12 ($(elapsed) in all)"

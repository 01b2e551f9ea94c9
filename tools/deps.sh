#!/usr/bin/env bash
# Installs the Debian 12 packages snapstore needs to build and test, when missing.
# Usage: tools/deps.sh [extra-package ...]
# As root it runs apt-get; otherwise it prints the exact command to run as root
# (with `su -c`, since a bare Debian has no sudo, and the sudo form).
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      libsqlite3-dev libcjson-dev libmsgpack-dev zlib1g-dev libdeflate-dev libzstd-dev libsodium-dev
      libcriterion-dev sqlite3 g++ libcaf-dev libpq-dev postgresql-15 time "$@")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: install them as root, then run the command again:" >&2
  echo "deps:   su -c '$cmd'" >&2
  echo "deps: or, where sudo is set up:" >&2
  echo "deps:   sudo sh -c '$cmd'" >&2
  exit 1
fi

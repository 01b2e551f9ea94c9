#!/usr/bin/env bash
# Builds and runs the out-of-tree consumers (tests/consumers/) against an
# installed snapstore, each saving and loading an encrypted snapshot:
#   shared  a C program through `pkg-config --cflags --libs snapstore` and a
#           C++17 program through find_package(snapstore); both must run
#           against the prefix's libsnapstore.so.0; find_package(snapstore
#           QUIET) with its dependencies hidden must report not-found and let
#           the consumer's configure go on. With both libraries installed,
#           `pkg-config --libs snapstore-static` links libsnapstore.a, and the
#           package's snapstore::caf target builds a CAF program (when the
#           prefix has the CAF header).
#   static  the C program through `pkg-config --static` against a prefix
#           holding only libsnapstore.a, and the C++17 program through
#           find_package: no libsnapstore.so may be needed.
#
# Usage: tests/release/consumers.sh shared|static PREFIX [WORKDIR]
set -euo pipefail
mode=$1
prefix=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")/../consumers" && pwd)
work=${3:-$(mktemp -d "${TMPDIR:-/tmp}/snapstore-consumers.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
CC=${CC:-cc}

pcfile=$(find "$prefix" -name snapstore.pc -path '*/pkgconfig/*' | head -n1)
[ -n "$pcfile" ] || { echo "consumers: no snapstore.pc under $prefix" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pcfile")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
libdir=$(realpath "$(pkg-config --variable=libdir snapstore)")
echo "consumers: $mode, snapstore $(pkg-config --modversion snapstore) in $prefix"

# The C++17 consumer through find_package(snapstore), built in $work/cxx and run.
build_cxx() {
  rm -rf "$work/cxx"
  cmake -S "$src/cxx" -B "$work/cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    >"$work/cxx-configure.log" 2>&1 || { cat "$work/cxx-configure.log"; exit 1; }
  cmake --build "$work/cxx" >"$work/cxx-build.log" 2>&1 || { cat "$work/cxx-build.log"; exit 1; }
  "$work/cxx/consumer-cxx" "$work"
}

case $mode in
shared)
  echo "+ pkg-config --cflags --libs snapstore: $(pkg-config --cflags --libs snapstore)"
  # shellcheck disable=SC2046
  "$CC" -std=c11 -Wall -Wextra -pedantic -Werror "$src/c/main.c" -o "$work/consumer-c" \
    $(pkg-config --cflags --libs snapstore)
  needed=$(readelf -d "$work/consumer-c" | grep -c 'NEEDED.*libsnapstore\.so\.0' || true)
  [ "$needed" = 1 ] || { echo "consumers: consumer-c does not need libsnapstore.so.0" >&2; exit 1; }
  LD_LIBRARY_PATH=$libdir "$work/consumer-c" "$work"
  resolved=$(realpath "$(LD_LIBRARY_PATH=$libdir ldd "$work/consumer-c" | awk '/libsnapstore/ {print $3}')")
  echo "consumers: consumer-c runs against $resolved"
  case $resolved in "$libdir"/*) ;; *) echo "consumers: not the installed library" >&2; exit 1 ;; esac

  build_cxx
  resolved=$(realpath "$(ldd "$work/cxx/consumer-cxx" | awk '/libsnapstore/ {print $3}')")
  echo "consumers: consumer-cxx runs against $resolved"
  case $resolved in "$libdir"/*) ;; *) echo "consumers: not the installed library" >&2; exit 1 ;; esac

  # No dependency visible to pkg-config: the package is "not found", quietly.
  out=$(PKG_CONFIG_LIBDIR=$work/empty PKG_CONFIG_PATH= \
        cmake -S "$src/quiet" -B "$work/quiet" -DCMAKE_PREFIX_PATH="$prefix" 2>&1) ||
    { echo "$out"; echo "consumers: find_package(snapstore QUIET) stopped the configure" >&2; exit 1; }
  echo "$out" | grep -q 'snapstore: not found, building without it' ||
    { echo "$out"; echo "consumers: snapstore_FOUND was not false without its dependencies" >&2; exit 1; }
  echo "consumers: find_package(snapstore QUIET) without its dependencies: snapstore_FOUND false, configure went on"
  rm -rf "$work/quiet"
  out=$(cmake -S "$src/quiet" -B "$work/quiet" -DCMAKE_PREFIX_PATH="$prefix" 2>&1)
  echo "$out" | grep -q 'snapstore: found' ||
    { echo "$out"; echo "consumers: find_package(snapstore QUIET) failed with its dependencies" >&2; exit 1; }
  echo "consumers: find_package(snapstore QUIET) with its dependencies: found"

  # Both libraries installed: snapstore-static.pc links the archive.
  if [ -e "$libdir/libsnapstore.a" ]; then
    echo "+ pkg-config --static --libs snapstore-static: $(pkg-config --static --libs snapstore-static)"
    # shellcheck disable=SC2046
    "$CC" -std=c11 -Wall -Wextra -pedantic -Werror "$src/c/main.c" -o "$work/consumer-c-archive" \
      $(pkg-config --cflags --static --libs snapstore-static)
    if readelf -d "$work/consumer-c-archive" | grep -q 'NEEDED.*libsnapstore'; then
      echo "consumers: pkg-config snapstore-static linked the shared libsnapstore" >&2
      exit 1
    fi
    env -u LD_LIBRARY_PATH "$work/consumer-c-archive" "$work"
    echo "consumers: pkg-config --libs snapstore-static links libsnapstore.a beside the shared one"
  fi

  # The CAF integration through the package's target (docs/CAF.md).
  if [ -e "$prefix/include/snap/caf/event_sourced.hpp" ]; then
    rm -rf "$work/caf"
    { cmake -S "$src/caf" -B "$work/caf" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release &&
      cmake --build "$work/caf"; } >"$work/caf.log" 2>&1 ||
      { tail -n 30 "$work/caf.log"; echo "consumers: the CAF consumer did not build" >&2; exit 1; }
    "$work/caf/consumer-caf"
  fi
  ;;
static)
  echo "+ pkg-config --static --cflags --libs snapstore: $(pkg-config --static --cflags --libs snapstore)"
  # shellcheck disable=SC2046
  "$CC" -std=c11 -Wall -Wextra -pedantic -Werror "$src/c/main.c" -o "$work/consumer-c-static" \
    $(pkg-config --static --cflags --libs snapstore)
  if readelf -d "$work/consumer-c-static" | grep -q 'NEEDED.*libsnapstore'; then
    echo "consumers: the static consumer needs a shared libsnapstore" >&2
    exit 1
  fi
  "$work/consumer-c-static" "$work"
  echo "consumers: consumer-c-static links libsnapstore.a (no libsnapstore.so needed)"
  build_cxx
  if readelf -d "$work/cxx/consumer-cxx" | grep -q 'NEEDED.*libsnapstore'; then
    echo "consumers: the static C++ consumer needs a shared libsnapstore" >&2
    exit 1
  fi
  echo "consumers: consumer-cxx links libsnapstore.a through find_package(snapstore)"
  ;;
*)
  echo "usage: $0 shared|static PREFIX [WORKDIR]" >&2
  exit 2
  ;;
esac

#!/bin/sh
# The quick start's first command: `sh tools/demo.sh` builds and runs the
# bank-account actor demo, on a bare Debian 12 too. It needs only sh (and
# bash, which every Debian has): tools/deps.sh installs make, the compilers,
# cmake and the libraries that are missing (as root, with apt-get; an ordinary
# user is shown the exact command to run as root), then `make demo` runs.
# Arguments go to make (e.g. BUILD=dir).
set -eu
cd "$(dirname "$0")/.."
bash tools/deps.sh
exec make --no-print-directory demo "$@"

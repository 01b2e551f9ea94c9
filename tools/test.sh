#!/bin/sh
# The quick start's second command: `sh tools/test.sh` builds snapstore and
# runs the whole test suite, on a bare Debian 12 too. Like tools/demo.sh it
# needs only sh: tools/deps.sh installs what is missing (as root; an ordinary
# user is shown the exact command), then `make test` runs. Arguments go to
# make (e.g. BUILD=dir).
set -eu
cd "$(dirname "$0")/.."
bash tools/deps.sh
exec make --no-print-directory test "$@"

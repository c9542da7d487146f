#!/bin/sh
# bench/proxy-xff.sh BUILD [N] - prints the X-Forwarded-For list of bench/proxy.lua: N (200) public
# IPv4 addresses, one per country, for the most frequent N countries of a seeded random sample, each
# checked with `gslbctl route -` to land in a known country of the GeoLite2 City database.
# Run it again only when the geo data changes, and paste its output into bench/proxy.lua.
set -eu
BUILD=${1:-build}
N=${2:-200}
CITY=${GSLB_GEOIP_DIR:-data/geoip}/GeoLite2-City.mmdb

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/gslbctl" --db "$tmp/xff.db" import - >/dev/null <<'JSON'
{"regions":[{"name":"eu-west","lat":53.35,"lon":-6.26,"origins":[{"address":"127.0.0.1:9"}]}]}
JSON
# Host octet 1-254, first octet 1-223: unicast, never a network or broadcast address.
awk 'BEGIN { srand(20191224); for (i = 0; i < 400000; i++)
    printf "%d.%d.%d.%d\n", 1 + int(rand() * 223), int(rand() * 256), int(rand() * 256),
        1 + int(rand() * 254) }' |
    "$BUILD/gslbctl" --db "$tmp/xff.db" --geoip "$CITY" route - |
    sed -n 's/^{"ip":"\([0-9.]*\)".*"geo":{"status":"found".*"country":"\([A-Z][A-Z]\)","continent":"\([A-Z][A-Z]\)".*/\1 \2 \3/p' \
        >"$tmp/located"
# The first address seen per country, for the N countries seen most often; then in sample order,
# so consecutive requests hop between continents as real traffic does.
awk '{ n[$2]++; if (!($2 in first)) { first[$2] = $1; line[$2] = NR } }
     END { for (c in n) print n[c], c, first[c], line[c] }' "$tmp/located" |
    sort -k1,1nr -k2,2 | head -n "$N" | sort -k4,4n |
    awk '{ printf "%s\"%s\",%s", (NR % 6 == 1 ? "    " : " "), $3, (NR % 6 == 0 ? "\n" : "") }
         END { if (NR % 6) printf "\n" }'

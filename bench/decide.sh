#!/bin/sh
# bench/decide.sh BUILD - decision benchmark (in-process), then bulk `gslbctl route -` throughput.
# Numbers are for the machine it runs on; a 2-core shared machine is noisy, so run it twice.
set -eu
BUILD=${1:-build}
CITY=${GSLB_GEOIP_DIR:-data/geoip}/GeoLite2-City.mmdb
N=${N:-1000000}

"$BUILD/bench/bench_decide" "$CITY" "$N"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/gslbctl" --db "$tmp/bench.db" import - >/dev/null <<'JSON'
{"regions":[{"name":"eu-west","lat":53.35,"lon":-6.26,"origins":[{"address":"10.0.1.1:80"}]},
{"name":"us-east","lat":39.04,"lon":-77.49,"origins":[{"address":"10.0.3.1:80"}]},
{"name":"ap-southeast","lat":1.35,"lon":103.82,"origins":[{"address":"10.0.7.1:80"}]}]}
JSON
COUNT=${COUNT:-500000}
awk -v n="$COUNT" 'BEGIN { srand(42); for (i = 0; i < n; i++)
    printf "%d.%d.%d.%d\n", 1 + int(rand() * 222), int(rand() * 256), int(rand() * 256), int(rand() * 256) }' \
    >"$tmp/addresses"
start=$(date +%s.%N)
"$BUILD/gslbctl" --db "$tmp/bench.db" --geoip "$CITY" route - <"$tmp/addresses" >"$tmp/out"
end=$(date +%s.%N)
lines=$(wc -l <"$tmp/out")
awk -v n="$lines" -v s="$start" -v e="$end" 'BEGIN {
    printf "gslbctl route -: %d addresses in %.2f s, %.0f addresses/s (JSON output included)\n",
        n, e - s, n / (e - s) }'

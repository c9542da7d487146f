#!/bin/bash
# bench/proxy.sh BUILD - the proxy benchmark: gslbd against nginx (geoip2 module) and HAProxy,
# each with one worker/thread, in front of the same three nginx origins on 127.0.0.1, driven by
# wrk. A benchmark, not a test: it asserts nothing about speed, and `make test` never runs it.
#
# Scenarios: keep-alive small responses; a new connection per request; X-Forwarded-For rotating
# over 200 addresses from 200 countries (bench/proxy.lua); 100 KiB responses; and keep-alive and
# rotating X-Forwarded-For again with each connection waiting PACE_MS between a response and its
# next request ("paced"), so that all three carry about the same load (rates differ by their
# latencies only), for latency at equal load: at full speed a faster proxy also drives the load
# core (wrk and the origins) harder, and its queues set the tail. All three proxies
# run while one at a time is loaded; they take turns scenario by scenario, in an order that
# rotates every round, and the median of ROUNDS rounds is reported. Per proxy and scenario:
# requests/s, p50/p99 latency, CPU time of the proxy process per request (/proc/PID/stat), and
# user-space instructions per request (callgrind over a fixed number of requests, minus a run
# without requests), each with its ratio to nginx.
#
# Idle connections: per proxy, its memory (Rss and Private_Dirty of /proc/PID/smaps_rollup of the
# same processes whose CPU time is measured: nginx's worker, gslbd's and HAProxy's only process)
# before and after IDLE_CONNS client connections are opened and left idle (bench/idle_conns.py),
# the difference divided by IDLE_CONNS: once for connections that each completed one keep-alive
# request ("used") and once, with a fresh proxy, for connections that sent nothing ("fresh").
#
# The proxies run on CPU 1, wrk and the origins on CPU 0 (PIN=0 turns that off), so "core busy"
# near 100% means the proxy was the bottleneck. Every process it starts is stopped by PID on exit.
#
# Settings (environment): DURATION (8, seconds per wrk run), ROUNDS (3), CONNS (50), IR_REQUESTS
# (2000), PIN (1), PACE_MS (2: the paced scenarios' wait), POOL (64: idle connections kept per
# origin, nginx's upstream keepalive and gslbd's --max-idle-per-origin alike; more than CONNS, so
# neither reconnects under load; HAProxy keeps every idle one), GSLBD_FLAGS (more gslbd flags),
# SKIP_IR=1 (no callgrind phase), PHASES ("load ir idle": which phases run, e.g. PHASES=idle
# alone; the routing check always runs), IDLE_CONNS (2000, at most 4000: HAProxy's maxconn is
# 4096), PEER_DEFER=1 (nginx's listener "deferred" and HAProxy's bind "defer-accept", which both
# leave off by default; gslbd defers accepting unless GSLBD_FLAGS says --defer-accept no).
set -euo pipefail

BUILD=${1:-build}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
IR_REQUESTS=${IR_REQUESTS:-2000}
PIN=${PIN:-1}
PACE_MS=${PACE_MS:-2}
POOL=${POOL:-64}
GSLBD_FLAGS=${GSLBD_FLAGS:-}
SKIP_IR=${SKIP_IR:-0}
PHASES=" ${PHASES:-load ir idle} "
IDLE_CONNS=${IDLE_CONNS:-2000}
PEER_DEFER=${PEER_DEFER:-0}
CITY=$(realpath "${GSLB_GEOIP_DIR:-data/geoip}/GeoLite2-City.mmdb")
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=$HERE/proxy.lua
GSLBD=$(realpath "$BUILD/gslbd")
GSLBCTL=$(realpath "$BUILD/gslbctl")
CONTINENTS=$(realpath "$BUILD/bench/mmdb_continents")
XFF_FIXED=81.2.69.142 # GB: eu-west for all three proxies
IDLE=$HERE/idle_conns.py
PROXIES=(gslbd nginx haproxy)
SCENARIOS=(keepalive close xff-rotate 100k keepalive-paced xff-paced)
IR_SCENARIOS=(keepalive close xff-rotate 100k) # paced or not, a request costs the same
REGIONS=(eu-west us-east ap-southeast)

say() { printf 'bench-proxy: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}
for phase in $PHASES; do
    case $phase in load | ir | idle) ;; *) die "unknown phase '$phase' in PHASES" ;; esac
done
[ "$SKIP_IR" != 1 ] || PHASES=${PHASES// ir / }
has_phase() { [[ $PHASES == *" $1 "* ]]; }

# ---- packages: apt-get only for what is missing, one update at most ----

missing=""
for p in nginx libnginx-mod-http-geoip2 haproxy wrk valgrind curl python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    say "installing$missing"
    $SUDO apt-get update -qq
    # policy-rc.d may refuse to start the distribution's own nginx/haproxy services; we run ours.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
[ -x "$GSLBD" ] && [ -x "$GSLBCTL" ] && [ -x "$CONTINENTS" ] || die "build first (make bench-proxy)"
[ -r "$CITY" ] || die "$CITY missing (make deps)"
NGINX_GEOIP2=/usr/lib/nginx/modules/ngx_http_geoip2_module.so
[ -r "$NGINX_GEOIP2" ] || die "$NGINX_GEOIP2 missing"
CPUS=$(nproc)
if [ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ]; then
    PIN_PROXY=(taskset -c 1)
    PIN_LOAD=(taskset -c 0)
else
    PIN_PROXY=()
    PIN_LOAD=()
fi
HZ=$(getconf CLK_TCK)
if has_phase idle; then
    [[ $IDLE_CONNS =~ ^[0-9]+$ ]] && [ "$IDLE_CONNS" -ge 1 ] && [ "$IDLE_CONNS" -le 4000 ] ||
        die "IDLE_CONNS must be 1 to 4000"
    # The client and each proxy hold IDLE_CONNS sockets, plus origin connections and files.
    [ "$(ulimit -n)" -ge $((IDLE_CONNS + 1024)) ] || ulimit -n $((IDLE_CONNS + 1024)) ||
        die "cannot raise the open files limit to $((IDLE_CONNS + 1024)) (ulimit -Hn)"
fi
GSLB_REV=$(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo unknown)

# ---- processes: everything started is remembered by PID and stopped on exit ----

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers run as nobody and read the 100 KiB file from here
PIDS=()

alive() { # a zombie is not alive
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (10); reaps it.
stop_pid() {
    local pid=$1 limit=$((${2:-10} * 10)) i=0
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && [ $i -lt $limit ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$pid"; then
        say "pid $pid ignored SIGTERM for ${2:-10} s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

forget() {
    local kept=() p
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || kept+=("$p")
    done
    PIDS=("${kept[@]+"${kept[@]}"}")
}

# run CMD...: runs CMD in the background and waits for it, so that a signal reaches our trap at
# once (bash delays traps until a foreground command ends) and the trap can stop CMD too.
run() {
    local pid status=0
    "$@" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    return $status
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        stop_pid "$pid" 5
    done
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports: free ones between 10000 and the kernel's ephemeral range (whose ports outgoing
# connections take, and which a listener then cannot bind), distinct.
PORT_LOW=10000
PORT_HIGH=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range)
[ "$PORT_HIGH" -gt $((PORT_LOW + 1000)) ] || PORT_HIGH=$((PORT_LOW + 5000))
PORTS_TAKEN=" "
free_port() {
    local p
    while :; do
        p=$((PORT_LOW + RANDOM % (PORT_HIGH - PORT_LOW)))
        case "$PORTS_TAKEN" in *" $p "*) continue ;; esac
        [ -z "$(ss -Htan "( sport = :$p )")" ] && break
    done
    PORTS_TAKEN="$PORTS_TAKEN$p "
    PORT=$p
}

# wait_listen PORT PID SECONDS: until something listens on 127.0.0.1:PORT. No connection is
# made, so the callgrind runs count nothing for it.
wait_listen() {
    local i=0
    while [ -z "$(ss -Htln "( sport = :$1 )")" ]; do
        alive "$2" || return 1
        [ $i -lt $(($3 * 20)) ] || return 1
        sleep 0.05
        i=$((i + 1))
    done
}

cpu_ticks() { # utime + stime of a process, all threads
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
sys_ticks() { # stime alone: the kernel's share
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $13 }'
}

# CPU 0 (wrk and the origins when pinned): "busy total" ticks, and the busy share between two.
cpu0_ticks() {
    awk '$1 == "cpu0" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
cpu0_busy() {
    echo "$1 $2" | awk '{ printf "%.0f", ($4 > $2) ? 100 * ($3 - $1) / ($4 - $2) : 0 }'
}

# ---- the origins: one nginx, one server per region ----

declare -A ORIGIN_PORT PROXY_PORT
for r in "${REGIONS[@]}"; do
    free_port
    ORIGIN_PORT[$r]=$PORT
done
for p in "${PROXIES[@]}"; do
    free_port
    PROXY_PORT[$p]=$PORT
done

mkdir -p "$tmp/www"
head -c 102400 /dev/urandom >"$tmp/www/100k"
chmod -R a+rX "$tmp/www"
{
    cat <<EOF
worker_processes 1;
daemon off;
pid $tmp/origin.pid;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type text/plain;
EOF
    for r in "${REGIONS[@]}"; do
        cat <<EOF
    server {
        listen 127.0.0.1:${ORIGIN_PORT[$r]};
        location = /100k { root $tmp/www; default_type application/octet-stream; }
        location / { return 200 "$r\n"; }
    }
EOF
    done
    echo "}"
} >"$tmp/origin.conf"
"${PIN_LOAD[@]}" nginx -p "$tmp/" -e "$tmp/origin.err" -c "$tmp/origin.conf" &
ORIGIN_PID=$!
PIDS+=("$ORIGIN_PID")
for r in "${REGIONS[@]}"; do
    wait_listen "${ORIGIN_PORT[$r]}" "$ORIGIN_PID" 10 ||
        die "origin nginx did not start: $(cat "$tmp/origin.err")"
    [ "$(curl -s "http://127.0.0.1:${ORIGIN_PORT[$r]}/")" = "$r" ] || die "origin $r answers wrongly"
done

# ---- the three proxies' configurations ----

# gslbd: the short topology form, one origin per region.
cat >"$tmp/topology.json" <<EOF
{"regions":[
 {"name":"eu-west","lat":53.35,"lon":-6.26,"origins":[{"address":"127.0.0.1:${ORIGIN_PORT[eu-west]}"}]},
 {"name":"us-east","lat":39.04,"lon":-77.49,"origins":[{"address":"127.0.0.1:${ORIGIN_PORT[us-east]}"}]},
 {"name":"ap-southeast","lat":1.35,"lon":103.82,"origins":[{"address":"127.0.0.1:${ORIGIN_PORT[ap-southeast]}"}]}]}
EOF
"$GSLBCTL" --db "$tmp/gslb.db" import "$tmp/topology.json" >/dev/null

# nginx: realip takes the client from X-Forwarded-For (loopback trusted, as gslbd's
# --trusted-proxies), geoip2 reads the continent of $remote_addr (its default source, which realip
# has replaced; $realip_remote_addr would be the peer), a map picks the upstream.
cat >"$tmp/nginx.conf" <<EOF
load_module $NGINX_GEOIP2;
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
events { worker_connections 10000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    geoip2 $CITY {
        \$continent default=-- continent code;
    }
    set_real_ip_from 127.0.0.0/8;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    map \$continent \$region {
        default eu_west;
        EU eu_west; AF eu_west;
        NA us_east; SA us_east;
        AS ap_southeast; OC ap_southeast;
    }
    upstream eu_west { server 127.0.0.1:${ORIGIN_PORT[eu-west]}; keepalive $POOL; keepalive_requests 1000000; }
    upstream us_east { server 127.0.0.1:${ORIGIN_PORT[us-east]}; keepalive $POOL; keepalive_requests 1000000; }
    upstream ap_southeast { server 127.0.0.1:${ORIGIN_PORT[ap-southeast]}; keepalive $POOL; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:${PROXY_PORT[nginx]}$([ "$PEER_DEFER" = 1 ] && echo " deferred");
        location / {
            proxy_pass http://\$region;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF

# HAProxy: no MaxMind reader, so a CIDR -> backend map made from the same City database
# (bench/mmdb_continents walks its IPv4 tree): a real continent lookup, IPv4 only, radix tree.
"$CONTINENTS" "$CITY" 2>/dev/null |
    awk 'BEGIN { b["EU"] = b["AF"] = "eu_west"; b["NA"] = b["SA"] = "us_east"
                 b["AS"] = b["OC"] = "ap_southeast" }
         $2 in b { print $1, b[$2] }' >"$tmp/haproxy.map"
cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    # Idle origin connections are shared between clients, as gslbd's and nginx's pools are.
    http-reuse always
frontend fe
    bind 127.0.0.1:${PROXY_PORT[haproxy]}$([ "$PEER_DEFER" = 1 ] && echo " defer-accept")
    use_backend %[req.hdr_ip(x-forwarded-for,-1),map_ip($tmp/haproxy.map,eu_west)]
    default_backend eu_west
backend eu_west
    server o 127.0.0.1:${ORIGIN_PORT[eu-west]}
backend us_east
    server o 127.0.0.1:${ORIGIN_PORT[us-east]}
backend ap_southeast
    server o 127.0.0.1:${ORIGIN_PORT[ap-southeast]}
EOF

# start_proxy NAME [WRAPPER...]: starts it on the proxy CPU; sets MAIN_PID (what we stop) and
# WORK_PID (what does the work: nginx's worker process).
start_proxy() {
    local name=$1
    shift
    case $name in
    gslbd)
        # shellcheck disable=SC2086 # GSLBD_FLAGS is a list of words
        "${PIN_PROXY[@]}" "$@" "$GSLBD" --db "$tmp/gslb.db" --geoip "$CITY" \
            --listen "127.0.0.1:${PROXY_PORT[gslbd]}" --workers 1 --trusted-proxies 127.0.0.0/8 \
            --access-log '' --metrics-listen '' --max-idle-per-origin "$POOL" $GSLBD_FLAGS \
            2>>"$tmp/gslbd.err" &
        ;;
    nginx)
        "${PIN_PROXY[@]}" "$@" nginx -p "$tmp/" -e "$tmp/nginx.err" -c "$tmp/nginx.conf" &
        ;;
    haproxy)
        "${PIN_PROXY[@]}" "$@" haproxy -db -f "$tmp/haproxy.cfg" 2>>"$tmp/haproxy.err" &
        ;;
    esac
    MAIN_PID=$!
    PIDS+=("$MAIN_PID")
    wait_listen "${PROXY_PORT[$name]}" "$MAIN_PID" 120 ||
        die "$name did not start: $(tail -5 "$tmp/$name.err" 2>/dev/null)"
    WORK_PID=$MAIN_PID
    if [ "$name" = nginx ]; then
        local i=0
        WORK_PID=""
        while [ -z "$WORK_PID" ] && [ $i -lt 200 ]; do
            WORK_PID=$(pgrep -P "$MAIN_PID" | head -1 || true)
            [ -n "$WORK_PID" ] || sleep 0.05
            i=$((i + 1))
        done
        [ -n "$WORK_PID" ] || die "nginx has no worker process"
    fi
}

# ---- routing check: same origins, plausible routing, nothing logged by gslbd ----

XFF_LIST=$(grep -oE '"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+"' "$LUA" | tr -d '"')
xff_count=$(printf '%s\n' "$XFF_LIST" | wc -l)
printf '%s\n' "$XFF_LIST" | "$GSLBCTL" --db "$tmp/gslb.db" --geoip "$CITY" route - >"$tmp/xff.json"
located=$(grep -c '"geo":{"status":"found".*"country":"[A-Z][A-Z]"' "$tmp/xff.json" || true)
countries=$(sed -n 's/.*"country":"\([A-Z][A-Z]\)".*/\1/p' "$tmp/xff.json" | sort -u | wc -l)
[ "$located" = "$xff_count" ] ||
    die "only $located of the $xff_count addresses of $LUA have a country"
say "X-Forwarded-For list: $xff_count addresses, all located, $countries countries"

{
    sep=""
    for ip in $XFF_LIST; do
        printf '%surl = "http://127.0.0.1:PORT/"\nheader = "X-Forwarded-For: %s"\n' "$sep" "$ip"
        sep=$'next\n'
    done
} >"$tmp/curl-xff.cfg"

check_proxy() {
    local name=$1 port=${PROXY_PORT[$1]} got
    for probe in "$XFF_FIXED eu-west" "8.8.8.8 us-east" "115.234.19.175 ap-southeast"; do
        set -- $probe
        got=$(curl -s -m 5 -H "X-Forwarded-For: $1" "http://127.0.0.1:$port/")
        [ "$got" = "$2" ] || die "$name routes $1 to '$got', expected $2"
    done
    got=$(curl -s -m 5 -o /dev/null -w '%{http_code} %{size_download}' \
        -H "X-Forwarded-For: $XFF_FIXED" "http://127.0.0.1:$port/100k")
    [ "$got" = "200 102400" ] || die "$name: /100k gave '$got'"
    sed "s/PORT/$port/" "$tmp/curl-xff.cfg" | curl -s -m 30 -K - >"$tmp/route.$name"
    [ "$(wc -l <"$tmp/route.$name")" = "$xff_count" ] || die "$name: routing check incomplete"
}

for name in "${PROXIES[@]}"; do
    start_proxy "$name"
    check_proxy "$name"
    if [ "$name" = gslbd ]; then
        sleep 0.5 # the access log writer would flush within 200 ms
        if grep -q '"status":' "$tmp/gslbd.err"; then
            ACCESS_LOG_NOTE="WARNING: gslbd --access-log '' still wrote access log lines"
        else
            ACCESS_LOG_NOTE="gslbd --access-log '' checked: no access log lines were written"
        fi
        say "$ACCESS_LOG_NOTE"
    fi
    stop_pid "$MAIN_PID"
done
say "routing of the $xff_count rotating addresses (eu-west/us-east/ap-southeast):"
for name in "${PROXIES[@]}"; do
    say "  $name: $(for r in "${REGIONS[@]}"; do grep -cx "$r" "$tmp/route.$name" || true; done |
        paste -sd/)"
done
agree() { paste -d' ' "$tmp/route.$1" "$tmp/route.$2" | awk '$1 == $2' | wc -l; }
say "  nginx and haproxy (continent maps) agree on $(agree nginx haproxy)/$xff_count;" \
    "gslbd (nearest region by distance) agrees with nginx on $(agree gslbd nginx)/$xff_count"

# ---- load: wrk, proxies interleaved, ROUNDS rounds ----

# scenario NAME: sets S_PATH, S_HEADERS (wrk -H arguments) and S_ENV (for the wrk script).
scenario() {
    S_PATH=/
    S_HEADERS=(-H "X-Forwarded-For: $XFF_FIXED")
    S_ENV=()
    case $1 in
    keepalive) ;;
    close) S_HEADERS+=(-H "Connection: close") ;;
    xff-rotate)
        S_HEADERS=()
        S_ENV=(BENCH_ROTATE=1)
        ;;
    keepalive-paced) S_ENV=(BENCH_DELAY_MS="$PACE_MS") ;;
    xff-paced)
        S_HEADERS=()
        S_ENV=(BENCH_ROTATE=1 BENCH_DELAY_MS="$PACE_MS")
        ;;
    100k) S_PATH=/100k ;;
    esac
}

# wrk_stats FILE: "requests rps p50_ms p99_ms errors" from wrk --latency output.
wrk_stats() {
    awk 'function ms(v) {
             if (v ~ /us$/) return v * 0.001
             if (v ~ /ms$/) return v * 1
             if (v ~ /m$/) return v * 60000
             return v * 1000
         }
         $1 == "50%" { p50 = ms($2) }
         $1 == "99%" { p99 = ms($2) }
         $2 == "requests" && $3 == "in" { n = $1 }
         /^Requests\/sec:/ { rps = $2 }
         /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
         /Non-2xx or 3xx/ { err += $NF }
         END { printf "%d %.1f %.3f %.3f %d\n", n, rps, p50, p99, err }' "$1"
}

echo "round proxy scenario requests rps p50_ms p99_ms errors cpu_us_per_req core_busy kernel_pct" \
    >"$tmp/runs"
if has_phase load; then
    say "per run: round proxy scenario requests req/s p50_ms p99_ms errors proxy_CPU_us/req" \
        "proxy_core_busy% kernel%"
    say "load: wrk -t1 -c$CONNS -d${DURATION}s per run, $ROUNDS rounds; proxy on CPU 1, wrk and" \
        "origins on CPU 0 (PIN=$PIN, $CPUS CPUs)"
    declare -A MAIN WORK
    for round in $(seq 1 "$ROUNDS"); do
        # All three run (fresh each round) while one at a time is loaded: an idle proxy costs
        # nothing.
        for name in "${PROXIES[@]}"; do
            start_proxy "$name"
            MAIN[$name]=$MAIN_PID
            WORK[$name]=$WORK_PID
            scenario keepalive # warm-up: pools filled, code paged in
            run "${PIN_LOAD[@]}" wrk -t1 -c"$CONNS" -d1s "${S_HEADERS[@]}" \
                "http://127.0.0.1:${PROXY_PORT[$name]}/" >/dev/null
        done
        for s in "${SCENARIOS[@]}"; do
            scenario "$s"
            for k in 0 1 2; do
                name=${PROXIES[$(((k + round - 1) % 3))]}
                before=$(cpu_ticks "${WORK[$name]}")
                sys_before=$(sys_ticks "${WORK[$name]}")
                load_before=$(cpu0_ticks)
                t0=$(date +%s.%N)
                run env "${S_ENV[@]+"${S_ENV[@]}"}" "${PIN_LOAD[@]}" \
                    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA" \
                    "${S_HEADERS[@]+"${S_HEADERS[@]}"}" \
                    "http://127.0.0.1:${PROXY_PORT[$name]}$S_PATH" \
                    >"$tmp/wrk.out"
                after=$(cpu_ticks "${WORK[$name]}")
                sys_after=$(sys_ticks "${WORK[$name]}")
                secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
                load_busy=$(cpu0_busy "$load_before" "$(cpu0_ticks)")
                read -r n rps p50 p99 err < <(wrk_stats "$tmp/wrk.out")
                [ "$n" -gt 0 ] || die "$name $s: no requests completed: $(cat "$tmp/wrk.out")"
                awk -v r="$round" -v p="$name" -v s="$s" -v n="$n" -v rps="$rps" -v p50="$p50" \
                    -v p99="$p99" -v err="$err" -v t="$((after - before))" -v hz="$HZ" \
                    -v d="$secs" -v k="$((sys_after - sys_before))" \
                    'BEGIN { printf "%s %s %s %d %.1f %.3f %.3f %d %.2f %.0f %.0f\n",
                        r, p, s, n, rps, p50, p99, err, t / hz * 1e6 / n, 100 * t / hz / d,
                        (t > 0 ? 100 * k / t : 0) }' \
                    >>"$tmp/runs"
                say "$(tail -1 "$tmp/runs") (load CPU busy $load_busy%)"
            done
        done
        for name in "${PROXIES[@]}"; do
            stop_pid "${MAIN[$name]}"
        done
    done
fi

# ---- instructions per request: callgrind, a fixed number of requests minus none ----

# callgrind_ir DIR: total instructions over every process that wrote a file there (nginx: the
# master and its worker).
callgrind_ir() {
    cat "$1"/cg.* | awk '/^summary:/ { s += $2 } END { printf "%.0f\n", s }'
}

# curl_config SCENARIO PORT N: a curl config for exactly N sequential requests, the connection
# kept between them (curl's cache) unless the scenario closes it.
curl_config() {
    awk -v s="$1" -v port="$2" -v n="$3" -v fixed="$XFF_FIXED" -v list="$XFF_LIST" 'BEGIN {
        nx = split(list, xff, /[ \n]+/)
        path = s == "100k" ? "/100k" : "/"
        for (i = 0; i < n; i++) {
            if (i) print "next"
            printf "url = \"http://127.0.0.1:%d%s\"\n", port, path
            print "output = \"/dev/null\""
            print "write-out = \"%{http_code}\\n\""
            printf "header = \"X-Forwarded-For: %s\"\n", s == "xff-rotate" ? xff[i % nx + 1] : fixed
            if (s == "close") print "header = \"Connection: close\""
        }
    }'
}

echo "proxy scenario requests ir" >"$tmp/ir"
if has_phase ir; then
    say "instructions: callgrind, $IR_REQUESTS sequential requests per scenario (curl), minus" \
        "a run without requests"
    for name in "${PROXIES[@]}"; do
        total_s=0
        for s in "${IR_SCENARIOS[@]}" none; do
            dir="$tmp/cg-$name-$s"
            mkdir -p "$dir"
            chmod 777 "$dir" # nginx's worker, as nobody, writes its own file
            [ "$s" = none ] ||
                curl_config "$s" "${PROXY_PORT[$name]}" "$IR_REQUESTS" >"$tmp/curl.cfg"
            start_proxy "$name" valgrind -q --tool=callgrind --callgrind-out-file="$dir/cg.%p"
            t0=$(date +%s.%N)
            if [ "$s" = none ]; then
                # As long as an average loaded run, so timers and polling threads cost the same.
                run sleep "$(awk -v t="$total_s" -v n="${#IR_SCENARIOS[@]}" 'BEGIN { printf "%.2f", t / n }')"
                n=0
            else
                run "${PIN_LOAD[@]}" timeout 600 curl -s -m 30 -K "$tmp/curl.cfg" >"$tmp/codes" ||
                    true
                n=$(grep -cx 200 "$tmp/codes" || true)
                [ "$n" = "$IR_REQUESTS" ] ||
                    say "$name $s under callgrind: $n of $IR_REQUESTS requests answered 200"
                total_s=$(awk -v a="$total_s" -v b="$t0" -v c="$(date +%s.%N)" \
                    'BEGIN { print a + c - b }')
            fi
            stop_pid "$MAIN_PID" 60
            echo "$name $s $n $(callgrind_ir "$dir")" >>"$tmp/ir"
        done
    done
    awk 'NR > 1 && $2 == "none" { base[$1] = $4 } NR > 1 { row[NR] = $0 }
         END { for (i in row) { split(row[i], f, " ")
                   if (f[2] != "none" && f[3] > 0)
                       printf "%s %s %.0f\n", f[1], f[2], (f[4] - base[f[1]]) / f[3] } }' \
        "$tmp/ir" >"$tmp/ir.per"
else
    : >"$tmp/ir.per"
fi

# ---- idle connections: memory per connection ----

echo "proxy mode conns rss_before rss_after pss_before pss_after dirty_before dirty_after" \
    "closed" >"$tmp/idle"
if has_phase idle; then
    say "idle connections: $IDLE_CONNS per proxy, used (one keep-alive request each) and fresh" \
        "(no request), a fresh proxy for each"
    for mode in used fresh; do
        for name in "${PROXIES[@]}"; do
            start_proxy "$name"
            # Warm-up: 20 requests on one connection (code paged in, an origin connection pooled).
            curl_config keepalive "${PROXY_PORT[$name]}" 20 >"$tmp/warmup.cfg"
            run "${PIN_LOAD[@]}" curl -s -m 10 -K "$tmp/warmup.cfg" >"$tmp/codes" || true
            [ "$(grep -cx 200 "$tmp/codes")" = 20 ] || die "$name: warm-up requests failed"
            sleep 0.5
            run "${PIN_LOAD[@]}" timeout 300 python3 "$IDLE" --port "${PROXY_PORT[$name]}" \
                --pid "$WORK_PID" --conns "$IDLE_CONNS" --mode "$mode" --xff "$XFF_FIXED" \
                >"$tmp/idle.out" || die "$name: idle connections ($mode) failed"
            echo "$name $(cat "$tmp/idle.out")" >>"$tmp/idle"
            say "  $(tail -1 "$tmp/idle")"
            stop_pid "$MAIN_PID"
        done
    done
fi

# ---- the tables: medians over the rounds, ratios to nginx ----

echo
echo "Proxy benchmark, $(date -u '+%Y-%m-%d %H:%M') UTC, $CPUS CPUs" \
    "($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)); gslbd $GSLB_REV," \
    "$(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }')."
if has_phase load || has_phase ir; then
    echo "Load: wrk -t1 -c$CONNS -d${DURATION}s per run, median of $ROUNDS rounds, proxy" \
        "pinned to CPU 1 and wrk + origins to CPU 0 (PIN=$PIN).$(has_phase ir &&
            echo " Instructions: callgrind over $IR_REQUESTS sequential curl requests, minus a" \
                "run without requests.")$([ "$PEER_DEFER" = 1 ] &&
            echo " nginx and HAProxy defer accepting too (PEER_DEFER=1).")"
    echo
    awk -v scenarios="${SCENARIOS[*]}" '
        function median(list,    a, n, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
                    t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
                }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function ratio(v, ref) { return ref > 0 ? sprintf(" (%.2f×)", v / ref) : "" }
        function commas(v,    s) {
            s = sprintf("%.0f", v)
            while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
            return s
        }
        FILENAME ~ /ir.per$/ { ir[$1, $2] = $3; next }
        FNR == 1 { next }
        { k = $2 SUBSEP $3
          rps[k] = rps[k] " " $5; p50[k] = p50[k] " " $6; p99[k] = p99[k] " " $7
          cpu[k] = cpu[k] " " $9; busy[k] = busy[k] " " $10; err[k] += $8
          kern[k] = kern[k] " " $11 }
        END {
            print "| scenario | proxy | requests/s | p50 ms | p99 ms | CPU µs/request | of it kernel | instructions/request | proxy core busy |"
            print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
            n = split(scenarios, S, " "); split("nginx gslbd haproxy", P, " ")
            for (i = 1; i <= n; i++) {
                ref = "nginx" SUBSEP S[i]
                for (j = 1; j <= 3; j++) {
                    k = P[j] SUBSEP S[i]
                    if (!(k in rps) && !(k in ir)) continue
                    if (!(k in rps)) { # instructions only (PHASES without load)
                        printf "| %s | %s | n/a | n/a | n/a | n/a | n/a | %s%s | n/a |\n", S[i], P[j],
                            commas(ir[k]), ratio(ir[k], ir["nginx" SUBSEP S[i]])
                        continue
                    }
                    r = median(rps[k]); a = median(p50[k]); b = median(p99[k]); c = median(cpu[k])
                    printf "| %s | %s%s | %s%s | %.2f%s | %.2f%s | %.1f%s | %.0f%% | %s%s | %.0f%% |\n",
                        S[i], P[j], err[k] ? " (" err[k] " errors)" : "",
                        commas(r), ratio(r, median(rps[ref])),
                        a, ratio(a, median(p50[ref])), b, ratio(b, median(p99[ref])),
                        c, ratio(c, median(cpu[ref])), median(kern[k]),
                        (k in ir) ? commas(ir[k]) : "n/a", (k in ir) ? ratio(ir[k], ir[ref]) : "",
                        median(busy[k])
                }
            }
        }' "$tmp/ir.per" "$tmp/runs"
    echo
    echo "- Ratios are to nginx. \"proxy core busy\": the proxy's CPU time over the run's wall" \
        "time;"
    echo "  well below 100% the load side (wrk + origins on one core), not the proxy, was the" \
        "limit,"
    echo "  or (the paced rows) the pace itself."
    echo "- Each proxy keeps up to $POOL idle connections per origin (nginx keepalive, gslbd"
    echo "  --max-idle-per-origin; HAProxy all, http-reuse always); one worker/thread each."
    echo "- HAProxy looks the continent up in a CIDR map made from the same GeoLite2 City data" \
        "(IPv4"
    echo "  only) by bench/mmdb_continents, not with a MaxMind reader. nginx and HAProxy route by"
    echo "  continent, gslbd to the nearest region by distance."
    echo "- Instructions are user space only (callgrind); \"of it kernel\": the share of the CPU" \
        "time"
    echo "  spent in the kernel (stime over utime + stime, /proc/PID/stat): sockets, TCP on" \
        "loopback, epoll."
fi
echo "- $ACCESS_LOG_NOTE."
if has_phase idle; then
    echo
    echo "Idle client connections: $IDLE_CONNS per proxy, memory of the worker process (nginx's"
    echo "worker; gslbd and HAProxy: their only process) before and after, divided by $IDLE_CONNS."
    echo
    awk '
        function ratio(v, ref) { return ref > 0 ? sprintf(" (%.2f×)", v / ref) : "" }
        function commas(v,    s) {
            s = sprintf("%.0f", v < 0 ? -v : v)
            while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
            return (v < 0 ? "-" : "") s
        }
        NR == 1 { next }
        { rss[$1, $2] = ($5 - $4) / $3; dirty[$1, $2] = ($9 - $8) / $3; closed[$1, $2] = $10 }
        END {
            print "| proxy | used: RSS bytes/connection | used: private dirty |" \
                " fresh: RSS bytes/connection | fresh: private dirty |"
            print "|---|---:|---:|---:|---:|"
            split("nginx gslbd haproxy", P, " ")
            for (j = 1; j <= 3; j++) {
                line = "| " P[j]
                for (m = 1; m <= 2; m++) {
                    mode = m == 1 ? "used" : "fresh"
                    k = P[j] SUBSEP mode; ref = "nginx" SUBSEP mode
                    note = closed[k] ? " (" closed[k] " closed early)" : ""
                    line = line sprintf(" | %s%s%s | %s%s", commas(rss[k]), ratio(rss[k], rss[ref]),
                                        note, commas(dirty[k]), ratio(dirty[k], dirty[ref]))
                }
                print line " |"
            }
            k = "gslbd" SUBSEP "used"
            printf "\ngslbd: %s bytes (%.1f KiB) per used idle connection: the 16 KiB" \
                " target is %s.\n",
                commas(rss[k]), rss[k] / 1024, rss[k] <= 16384 ? "met" : "not met"
        }' "$tmp/idle"
    echo
    echo "- used: each connection completed one keep-alive request (origin connections are pooled"
    echo "  and shared, so few); fresh: accepted, nothing sent. Each figure from a fresh proxy"
    echo "  warmed up by 20 requests on one connection. Kernel socket memory is not included."
fi

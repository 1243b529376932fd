#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# haproxy_storm: the handshake storm of scripts/bench_tls_latency.sh as a
# test, not a benchmark. Debian's HAProxy, nbthread 1, ssl-mode-async, the
# offload provider loaded through OPENSSL_CONF, an RSA-2048 and a P-256
# frontend on 127.0.0.1. For each: test/latency_probe holds keep-alive TLS
# 1.3 connections and sends a request on each every few ms while storms of
# new full handshakes hit the same listener (h2load -c 32, h2load -c 128,
# ab -f TLS1.3 -c 128). It asserts
#   - every keep-alive request was answered, status 200 with the body "ok",
#     on the connection it was sent on (probe: 0 errors, 0 reconnects),
#   - every storm connection succeeded (h2load: all succeeded, 0 failed,
#     errored or timed out; ab: all complete, 0 failed, no non-2xx, every
#     body there),
#   - the handshakes' signatures went to the provider's workers,
#   - HAProxy stays alive, logs no alert, and its fd count
#     (/proc/PID/fd) comes back to its baseline (polled, with a timeout).
# No timing is asserted.
#
#   haproxy_storm_test.sh PROBE      (meson passes build/test/latency_probe)
#   STORM_N=1000 PROBE_INTERVAL_MS=5 ...
set -euo pipefail

PROBE=${1:?usage: haproxy_storm_test.sh LATENCY_PROBE}
: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES
STORM_N=${STORM_N:-1000}
PINT=${PROBE_INTERVAL_MS:-5}

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
san_env_for "$OPENSSL_MODULES"

for tool in haproxy h2load ab openssl; do
    command -v $tool >/dev/null || { echo "FAIL: $tool not found (scripts/bootstrap installs it)"; exit 1; }
done
[ -x "$PROBE" ] || { echo "FAIL: no probe at $PROBE"; exit 1; }

DIR=$(mktemp -d /tmp/haproxy_storm.XXXXXX)
HAP_PID=
PROBE_PID=
STORM_PID=
cleanup() {
    local p
    for p in "$STORM_PID" "$PROBE_PID" "$HAP_PID"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "$STORM_PID" "$PROBE_PID" "$HAP_PID"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT

# Keys, certificates and every client use the default provider alone;
# only HAProxy loads offload.
export OPENSSL_CONF=/dev/null
write_offload_conf "$DIR/offload.cnf" offload.so
make_cert "$DIR" rsa -newkey rsa:2048
make_cert "$DIR" ec -newkey ec -pkeyopt ec_paramgen_curve:P-256
cat "$DIR/rsa.crt" "$DIR/rsa.key" >"$DIR/rsa.pem"
cat "$DIR/ec.crt" "$DIR/ec.key" >"$DIR/ec.pem"

# shellcheck disable=SC2012 # fd numbers: ls | wc -l is exact here
nfds() { ls "/proc/$HAP_PID/fd" 2>/dev/null | wc -l; }
alive() { kill -0 "$HAP_PID" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
stat_of() { stat_in "$DIR/stats" "$1"; }
fresh_stats() { stats_settle "$DIR/stats"; }

start_haproxy() {
    local try i
    for ((try = 0; try < 10; try++)); do
        PORT_RSA=$((20000 + RANDOM % 30000))
        PORT_EC=$((PORT_RSA + 1))
        if listening $PORT_RSA || listening $PORT_EC; then continue; fi
        cat >"$DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    ssl-mode-async
    tune.ssl.cachesize 0
    ssl-default-bind-options no-tls-tickets
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 30s
    timeout http-keep-alive 30s

frontend fe_rsa
    bind 127.0.0.1:$PORT_RSA ssl crt $DIR/rsa.pem
    http-request return status 200 content-type text/plain string ok

frontend fe_ec
    bind 127.0.0.1:$PORT_EC ssl crt $DIR/ec.pem
    http-request return status 200 content-type text/plain string ok
EOF
        OPENSSL_CONF=$DIR/offload.cnf OFFLOAD_STATS_FILE=$DIR/stats \
            "${SAN_ENV[@]}" haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 </dev/null &
        HAP_PID=$!
        for ((i = 0; i < 200; i++)); do
            listening $PORT_RSA && listening $PORT_EC && return 0
            alive || break
            sleep 0.05
        done
        kill "$HAP_PID" 2>/dev/null || true
        wait "$HAP_PID" 2>/dev/null || true
        HAP_PID=
    done
    echo "FAIL: haproxy did not start:"
    cat "$DIR/haproxy.log"
    exit 1
}

check_alive() { # phase
    alive && return 0
    fail "haproxy died during $1:"
    sed 's/^/    /' "$DIR/haproxy.log" | head -40
    echo "haproxy_storm_test: $FAILS failure(s)"
    exit 1
}

# One storm against $1 (port): $2 tool (h2load, ab), $3 concurrency.
# Asserts that all STORM_N connections succeeded.
storm() {
    local port=$1 tool=$2 conc=$3 rc=0 ok failed errored tmo complete bodies
    if [ "$tool" = h2load ]; then
        timeout 300 h2load --h1 -t 1 -c "$conc" -n "$STORM_N" -H "Connection: close" \
            "https://127.0.0.1:$port/" >"$DIR/storm.out" 2>&1 &
    else
        timeout 300 ab -q -f TLS1.3 -c "$conc" -n "$STORM_N" "https://127.0.0.1:$port/" \
            >"$DIR/storm.out" 2>&1 &
    fi
    STORM_PID=$!
    wait "$STORM_PID" || rc=$?
    STORM_PID=
    if [ "$tool" = h2load ]; then
        read -r ok failed errored tmo < <(awk '/^requests:/ {
            for (i = 2; i <= NF; i++) v[$i] = $(i - 1)
            print v["succeeded,"] + 0, v["failed,"] + 0, v["errored,"] + 0, v["timeout"] + 0}' \
            "$DIR/storm.out")
        echo "  h2load -c $conc: $(grep -m1 '^finished in' "$DIR/storm.out");" \
            "${ok:-0} of $STORM_N succeeded, ${failed:-?} failed, ${errored:-?} errored, ${tmo:-?} timeout;" \
            "$(grep -m1 '^TLS Protocol' "$DIR/storm.out")"
        if [ "$rc" -ne 0 ] || [ "${ok:-0}" != "$STORM_N" ] || [ "${failed:-1}" != 0 ] ||
            [ "${errored:-1}" != 0 ] || [ "${tmo:-1}" != 0 ] ||
            ! grep -q '^TLS Protocol: TLSv1.3' "$DIR/storm.out"; then
            fail "h2load -c $conc on port $port (exit $rc)"
            grep -E '^(requests|status codes)' "$DIR/storm.out" | sed 's/^/    /'
        fi
    else
        complete=$(awk '/^Complete requests:/ {print $3}' "$DIR/storm.out")
        failed=$(awk '/^Failed requests:/ {print $3}' "$DIR/storm.out")
        # ab counts a failed handshake as a complete request: count the bodies ("ok").
        bodies=$(awk '/^HTML transferred:/ {print $3 / 2}' "$DIR/storm.out")
        echo "  ab -c $conc: ${complete:-0} complete, ${failed:-?} failed, ${bodies:-0} bodies of" \
            "$STORM_N; $(grep -m1 '^SSL/TLS Protocol' "$DIR/storm.out" | tr -s ' ')"
        if [ "$rc" -ne 0 ] || [ "${complete:-0}" != "$STORM_N" ] || [ "${failed:-1}" != 0 ] ||
            [ "${bodies:-0}" != "$STORM_N" ] || grep -q '^Non-2xx' "$DIR/storm.out" ||
            ! grep -q '^SSL/TLS Protocol: *TLSv1.3,' "$DIR/storm.out"; then
            fail "ab -c $conc on port $port (exit $rc)"
            grep -E '^(Complete|Failed|Non-2xx|HTML)' "$DIR/storm.out" | sed 's/^/    /'
        fi
    fi
}

echo "$(haproxy -v | head -1)"
start_haproxy
echo "haproxy pid $HAP_PID, nbthread 1, ssl-mode-async: 127.0.0.1:$PORT_RSA (RSA-2048)," \
    "127.0.0.1:$PORT_EC (P-256)"

# Baseline: after one connection on each frontend, the least of a few
# looks (the provider's stats thread holds its file open for an instant).
for cert in rsa ec; do
    port=$PORT_RSA
    [ $cert = ec ] && port=$PORT_EC
    h2load --h1 -t 1 -c 1 -n 1 "https://127.0.0.1:$port/" >/dev/null 2>&1 ||
        fail "a first connection to port $port failed"
done
sleep 0.3
BASE_FDS=$(nfds)
for ((i = 0; i < 5; i++)); do
    sleep 0.05
    n=$(nfds)
    [ "$n" -lt "$BASE_FDS" ] && BASE_FDS=$n
done
echo "baseline: $BASE_FDS fds"
fresh_stats
sig0=$(stat_of offload-signature-offloaded)
inl0=$(stat_of offload-signature-inline)

for cert in rsa ec; do
    port=$PORT_RSA
    [ $cert = ec ] && port=$PORT_EC
    echo "== $cert, port $port: 4 keep-alive connections, a request every $PINT ms each, during:"
    : >"$DIR/probe.out"
    "$PROBE" --port "$port" --conns 4 --interval-ms "$PINT" --warmup 0 --duration 3600 \
        --timeout 20 --cafile "$DIR/$cert.crt" >"$DIR/probe.out" 2>"$DIR/probe.err" &
    PROBE_PID=$!
    for ((i = 0; i < 500; i++)); do
        grep -q '^ready' "$DIR/probe.out" && break
        kill -0 "$PROBE_PID" 2>/dev/null || break
        sleep 0.02
    done
    grep -q '^ready' "$DIR/probe.out" || fail "$cert: the probe did not connect"
    sleep 0.2 # some requests before the storm
    storm "$port" h2load 32
    check_alive "h2load -c 32 ($cert)"
    storm "$port" h2load 128
    check_alive "h2load -c 128 ($cert)"
    storm "$port" ab 128
    check_alive "ab -c 128 ($cert)"
    sleep 0.2 # and after it
    kill -TERM "$PROBE_PID" 2>/dev/null || true
    rc=0
    wait "$PROBE_PID" || rc=$?
    PROBE_PID=
    line=$(grep '^latency_probe:' "$DIR/probe.out" || true)
    echo "  probe: ${line#latency_probe: }"
    val() { awk -v k="$1" '{for (i = 2; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$line"; }
    if [ "$rc" -ne 0 ] || [ -z "$line" ] || [ "$(val errors)" != 0 ] ||
        [ "$(val reconnects)" != 0 ] || [ "$(val requests)" -lt 1 ]; then
        fail "$cert: keep-alive requests: probe exit $rc, errors $(val errors)," \
            "reconnects $(val reconnects), $(val requests) requests answered"
        sed 's/^/    /' "$DIR/probe.err" | head -20
    fi
done

# Work went to the provider's workers.
fresh_stats
sig1=$(stat_of offload-signature-offloaded)
inl1=$(stat_of offload-signature-inline)
echo "signatures during the storms: $((sig1 - sig0)) offloaded, $((inl1 - inl0)) inline," \
    "for $((6 * STORM_N)) storm connections"
[ $((sig1 - sig0 + inl1 - inl0)) -ge $((6 * STORM_N)) ] ||
    fail "fewer signatures than storm connections: sessions resumed, or signing bypassed offload"
[ $((sig1 - sig0)) -gt 0 ] || fail "no signature offloaded: ssl-mode-async or the provider not in effect"

# fds back to the baseline: every storm and probe connection closed, no
# async wait fd left behind.
n=-1
for ((i = 0; i < 150; i++)); do
    n=$(nfds)
    [ "$n" -le "$BASE_FDS" ] && break
    sleep 0.2
done
check_alive "the end"
echo "haproxy: $n fds after the storms (baseline $BASE_FDS)"
if [ "$n" -gt "$BASE_FDS" ]; then
    fail "haproxy holds $n fds, $BASE_FDS at the baseline"
    ls -l "/proc/$HAP_PID/fd" | sed 's/^/    /'
fi
[ "$(stat_of offload-in-flight)" -eq 0 ] || fail "offload-in-flight is $(stat_of offload-in-flight) at rest"
if grep -qiE 'fatal|bug|alert' "$DIR/haproxy.log"; then
    fail "haproxy log:"
    sed 's/^/    /' "$DIR/haproxy.log" | head -20
fi

if [ "$FAILS" -ne 0 ]; then
    echo "haproxy_storm_test: $FAILS failure(s)"
    exit 1
fi
echo "haproxy_storm_test: passed"

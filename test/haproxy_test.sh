#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HAProxy (Debian's, nbthread 1, ssl-mode-async) with the offload provider
# loaded through OPENSSL_CONF: full TLS 1.2 and 1.3 handshakes from curl,
# openssl s_client, h2load and ab on an RSA-2048 and a P-256 certificate
# all succeed, signatures run on the provider's workers, and after a few
# thousand connections, many of them dropped mid-handshake, HAProxy is
# alive, its fd count is back to its baseline and its RSS is flat.
#
# Needs OPENSSL_MODULES pointing at the directory of offload.so (meson
# sets it). HAProxy listens on 127.0.0.1 only and is stopped on exit.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
san_env_for "$OPENSSL_MODULES"
FULL=${FULL:-2000}        # full handshakes per certificate from h2load
DROPS=${DROPS:-2000}      # connections that send (part of) a ClientHello and go away
KILLS=${KILLS:-10}        # h2load runs killed mid-flight
RSS_SLACK_KB=${RSS_SLACK_KB:-10240}

for tool in haproxy curl h2load ab openssl python3; do
    command -v $tool >/dev/null || { echo "FAIL: $tool not found (scripts/bootstrap installs it)"; exit 1; }
done

DIR=$(mktemp -d)
HAP_PID=
cleanup() {
    if [ -n "$HAP_PID" ]; then
        kill "$HAP_PID" 2>/dev/null
        wait "$HAP_PID" 2>/dev/null
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

write_offload_conf "$DIR/offload.cnf" offload.so

# Keys and certificates come from the default provider alone; clients
# below use it alone too (OPENSSL_CONF=/dev/null): only HAProxy loads offload.
export OPENSSL_CONF=/dev/null
make_cert "$DIR" rsa -newkey rsa:2048
make_cert "$DIR" ec -newkey ec -pkeyopt ec_paramgen_curve:P-256
cat "$DIR/rsa.crt" "$DIR/rsa.key" >"$DIR/rsa.pem"
cat "$DIR/ec.crt" "$DIR/ec.key" >"$DIR/ec.pem"

echo "$(haproxy -v | head -1)"
providers=$(OPENSSL_CONF=$DIR/offload.cnf "${SAN_ENV[@]}" haproxy -vv 2>&1 | grep 'OpenSSL providers loaded')
echo "with the generated config: $providers"
echo "$providers" | grep -qw offload || { echo "FAIL: haproxy does not load offload from OPENSSL_CONF"; exit 1; }

stat_of() { stat_in "$DIR/stats" "$1"; } # counter -> value from HAProxy's stats file
fresh_stats() { stats_settle "$DIR/stats"; }

hap_cmd() { # a command on HAProxy's stats socket
    python3 - "$DIR/hap.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode())
EOF
}
info_of() { hap_cmd "show info" | awk -F': ' -v k="$1" '$1 == k {print $2}'; }

nfds() { ls "/proc/$HAP_PID/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$HAP_PID/status" 2>/dev/null; }
alive() { kill -0 "$HAP_PID" 2>/dev/null; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts HAProxy, OPENSSL_CONF=$1, with an RSA frontend on PORT_RSA and a
# P-256 one on PORT_EC.
start_haproxy() {
    local conf=$1 try i
    for ((try = 0; try < 10; try++)); do
        PORT_RSA=$((20000 + RANDOM % 30000))
        PORT_EC=$((PORT_RSA + 1))
        listening $PORT_RSA || listening $PORT_EC && continue
        cat >"$DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    ssl-mode-async
    ssl-server-verify none
    tune.ssl.cachesize 0
    ssl-default-bind-options no-tls-tickets
    maxconn 2048
    stats socket $DIR/hap.sock mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
    timeout http-request 5s

frontend fe_rsa
    bind 127.0.0.1:$PORT_RSA ssl crt $DIR/rsa.pem
    http-request return status 200 content-type text/plain string ok

frontend fe_ec
    bind 127.0.0.1:$PORT_EC ssl crt $DIR/ec.pem
    http-request return status 200 content-type text/plain string ok
EOF
        OPENSSL_CONF=$conf OFFLOAD_STATS_FILE=$DIR/stats \
            "${SAN_ENV[@]}" haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 </dev/null &
        HAP_PID=$!
        for ((i = 0; i < 100; i++)); do
            listening $PORT_RSA && listening $PORT_EC && return 0
            alive || break
            sleep 0.05
        done
        kill "$HAP_PID" 2>/dev/null
        wait "$HAP_PID" 2>/dev/null
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
    echo "haproxy_test: $FAILS failure(s)"
    exit 1
}

start_haproxy "$DIR/offload.cnf"
echo "haproxy pid $HAP_PID on 127.0.0.1:$PORT_RSA (RSA-2048) and 127.0.0.1:$PORT_EC (P-256)"

# ---- warm-up, then the baselines ----
# fds: after one connection. RSS: after one connection too, and after a
# burst of 64 concurrent handshakes, which grows HAProxy's pools and
# OpenSSL's async job pool to their working size; the leak check is on
# the growth beyond that.
curl -sk "https://127.0.0.1:$PORT_RSA/" >/dev/null
sleep 0.3
BASE_FDS=$(nfds)
BASE1_RSS=$(rss_kb)
h2load --h1 -t 1 -c 64 -n 512 -H "Connection: close" "https://127.0.0.1:$PORT_RSA/" >/dev/null 2>&1
h2load --h1 -t 1 -c 64 -n 512 -H "Connection: close" "https://127.0.0.1:$PORT_EC/" >/dev/null 2>&1
sleep 0.3
BASE_RSS=$(rss_kb)
echo "baseline: $BASE_FDS fds and VmRSS $BASE1_RSS kB after one connection;" \
    "VmRSS $BASE_RSS kB after a warm-up burst of 2 x 512 handshakes, 64 at a time"

# ---- curl, TLS 1.2 and 1.3 ----
for port in $PORT_RSA $PORT_EC; do
    for v in 1.2 1.3; do
        for r in 1 2 3; do
            body=$(curl -sSk -v --tlsv$v --tls-max $v --max-time 20 "https://127.0.0.1:$port/" \
                2>"$DIR/curl.err")
            rc=$?
            conn=$(grep -m1 'SSL connection using' "$DIR/curl.err" | sed 's/^\* //')
            [ $rc -eq 0 ] && [ "$body" = ok ] ||
                { fail "curl TLS $v port $port: rc $rc, body '$body'"; tail -3 "$DIR/curl.err"; continue; }
            echo "$conn" | grep -q "TLSv$v" || fail "curl TLS $v port $port: $conn"
            [ $r -eq 1 ] && echo "curl port $port: $conn"
        done
    done
done
check_alive curl

# ---- openssl s_client -async ----
for port in $PORT_RSA $PORT_EC; do
    for v in 1_2 1_3; do
        printf 'GET / HTTP/1.0\r\n\r\n' |
            timeout 20 openssl s_client -async -brief -ign_eof -tls$v -servername localhost \
                -connect "127.0.0.1:$port" >"$DIR/sc.out" 2>"$DIR/sc.err"
        rc=$?
        if [ $rc -ne 0 ] || ! grep -aq '^HTTP/1\.[01] 200' "$DIR/sc.out" ||
            ! grep -aqx 'ok' "$DIR/sc.out"; then
            fail "s_client -tls$v port $port: rc $rc"
            sed 's/^/    /' "$DIR/sc.err" "$DIR/sc.out" | head -20
        else
            echo "s_client -tls$v port $port: $(grep '^Protocol version' "$DIR/sc.err")," \
                "$(grep '^Ciphersuite' "$DIR/sc.err"), $(grep '^Server Temp Key' "$DIR/sc.err")"
        fi
    done
done
check_alive s_client

# ---- h2load: full handshakes (no tickets, no session cache) ----
fresh_stats
sig0=$(($(stat_of offload-signature-offloaded) + $(stat_of offload-signature-inline)))
for port in $PORT_RSA $PORT_EC; do
    timeout 120 h2load --h1 -t 1 -c 32 -n "$FULL" -H "Connection: close" \
        "https://127.0.0.1:$port/" >"$DIR/h2load.out" 2>&1
    ok=$(awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i ~ /^succeeded/) print $(i-1)}' \
        "$DIR/h2load.out")
    echo "h2load port $port: $(grep -E '^finished in' "$DIR/h2load.out"); ${ok:-0} of $FULL succeeded;" \
        "$(grep -E '^(TLS Protocol|Server Temp Key)' "$DIR/h2load.out" | tr '\n' ' ')"
    [ "${ok:-0}" = "$FULL" ] || { fail "h2load port $port"; grep -E '^requests|^status' "$DIR/h2load.out"; }
    check_alive h2load
done
fresh_stats
sig1=$(($(stat_of offload-signature-offloaded) + $(stat_of offload-signature-inline)))
echo "signatures during h2load: $((sig1 - sig0)) for $((2 * FULL)) connections"
[ $((sig1 - sig0)) -ge $((2 * FULL)) ] ||
    fail "fewer signatures than h2load connections: sessions resumed, or signing bypassed offload"

# ---- ab: TLS 1.2 and 1.3, one connection per request ----
for port in $PORT_RSA $PORT_EC; do
    for v in TLS1.2 TLS1.3; do
        timeout 60 ab -q -n 300 -c 16 -f $v "https://127.0.0.1:$port/" >"$DIR/ab.out" 2>&1
        complete=$(awk '/^Complete requests:/ {print $3}' "$DIR/ab.out")
        failed=$(awk '/^Failed requests:/ {print $3}' "$DIR/ab.out")
        # ab counts a failed handshake as a complete request: count the bodies.
        bodies=$(awk '/^HTML transferred:/ {print $3 / 2}' "$DIR/ab.out")
        if [ "${complete:-0}" != 300 ] || [ "${failed:-1}" != 0 ] || [ "${bodies:-0}" != 300 ] ||
            grep -q '^Non-2xx' "$DIR/ab.out" ||
            ! grep -q "^SSL/TLS Protocol: *TLSv${v#TLS}," "$DIR/ab.out"; then
            fail "ab -f $v port $port: complete ${complete:-?}, failed ${failed:-?}," \
                "${bodies:-0} bodies of 300, $(grep '^SSL/TLS Protocol' "$DIR/ab.out")"
        else
            echo "ab -f $v port $port: $(grep -E '^SSL/TLS Protocol' "$DIR/ab.out" | tr -s ' '), 300/300"
        fi
        check_alive ab
    done
done
MID_RSS=$(rss_kb)

# ---- connections dropped mid-handshake ----
# A ClientHello (whole or half) and then a reset, a close, or a reset once
# the server's first flight arrives; in batches, so that many of the
# server's jobs are paused on the provider when their connection goes.
python3 - "$PORT_RSA" "$PORT_EC" "$DROPS" <<'EOF' || fail "drop client failed"
import random, socket, ssl, struct, sys

ports = [int(sys.argv[1]), int(sys.argv[2])]
total = int(sys.argv[3])
random.seed(1)

def hellos(tls12):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    out = []
    for _ in range(8):
        i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
        s = ctx.wrap_bio(i, o, server_hostname="localhost")
        try:
            s.do_handshake()
        except ssl.SSLWantReadError:
            pass
        out.append(o.read())
    return out

pool = hellos(False) + hellos(True)
done = kinds = 0
counts = [0] * 5
while done < total:
    batch = []
    for _ in range(min(32, total - done)):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", random.choice(ports)))
        except OSError as e:
            print("connect:", e)
            sys.exit(1)
        kind = random.randrange(5)
        counts[kind] += 1
        hello = random.choice(pool)
        if kind == 2:
            s.sendall(hello[: len(hello) // 2])
        elif kind != 4:
            s.sendall(hello)
        batch.append((s, kind))
        done += 1
    for s, kind in batch:
        if kind == 3:  # wait for the server's first bytes (its job signed), then reset
            try:
                s.recv(1)
            except OSError:
                pass
        if kind in (0, 3):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
print("dropped %d connections: hello+reset %d, hello+close %d, half hello %d, "
      "reset after server flight %d, no data %d" % (done, *counts))
EOF
check_alive "dropped connections"

# h2load runs killed mid-flight: up to 64 connections cut at any point.
for ((k = 0; k < KILLS; k++)); do
    port=$PORT_RSA
    ((k % 2)) && port=$PORT_EC
    timeout --foreground -s KILL 0.$((2 + k % 5)) h2load --h1 -t 1 -c 64 -n 100000 -H "Connection: close" \
        "https://127.0.0.1:$port/" >/dev/null 2>&1
done
check_alive "killed h2load runs"

# Still serving.
for port in $PORT_RSA $PORT_EC; do
    body=$(curl -sk --max-time 20 "https://127.0.0.1:$port/")
    [ "$body" = ok ] || fail "curl after the drops on port $port: '$body'"
done

# ---- fds back to the baseline, RSS flat ----
for ((i = 0; i < 100; i++)); do
    [ "$(nfds)" -le "$BASE_FDS" ] && [ "$(info_of CurrConns)" = 0 ] && break
    sleep 0.2
done
check_alive "the end"
END_FDS=$(nfds)
END_RSS=$(rss_kb)
fresh_stats
echo "haproxy after $(info_of CumSslConns) TLS connections ($(info_of CumConns) accepted):" \
    "$END_FDS fds (baseline $BASE_FDS); VmRSS $END_RSS kB: $((END_RSS - BASE_RSS)) kB more than" \
    "after the warm-up burst, $((END_RSS - MID_RSS)) kB more than after h2load and ab," \
    "$((END_RSS - BASE1_RSS)) kB more than after one connection"
echo "provider counters:"
grep -E '^offload-(signature|keyexch|keygen)-(offloaded|inline|failed|pauses|queue-full) |^offload-(in-flight|queue-high-water) ' \
    "$DIR/stats" | sed 's/^/    /'
[ "$END_FDS" -eq "$BASE_FDS" ] || {
    fail "haproxy holds $END_FDS fds, $BASE_FDS at the baseline"
    ls -l "/proc/$HAP_PID/fd" | sed 's/^/    /'
}
if [ -n "$SAN_PRELOAD" ]; then
    echo "VmRSS growth not checked under ASan (quarantine, shadow memory)"
elif [ $((END_RSS - BASE_RSS)) -ge "$RSS_SLACK_KB" ]; then
    fail "VmRSS grew by $((END_RSS - BASE_RSS)) kB after the warm-up burst (slack $RSS_SLACK_KB kB)"
fi
[ "$(stat_of offload-signature-offloaded)" -gt 0 ] || fail "offload-signature-offloaded is 0"
if [ "$(stat_of offload-in-flight)" -ne 0 ]; then
    fail "offload-in-flight is $(stat_of offload-in-flight) at rest; the stats file:"
    sed 's/^/    /' "$DIR/stats"
fi
[ "$(stat_of pid)" = "$HAP_PID" ] || fail "the stats file is not haproxy's (pid $(stat_of pid))"
if grep -qiE 'fatal|bug|alert' "$DIR/haproxy.log"; then
    fail "haproxy log:"
    sed 's/^/    /' "$DIR/haproxy.log" | head -20
fi

# ---- a full queue: work runs inline in jobs that may hold a new wait fd ----
# queue_depth = 1 makes most submissions find the queue full. HAProxy
# registers a job's async fds only when SSL_* returns SSL_ERROR_WANT_ASYNC,
# and fd_delete()s every fd of SSL_get_all_async_fds() at close: an fd
# that appeared in a job that did not pause trips its BUG_ON.
if [ "${QUEUE_FULL:-1}" = 1 ]; then
    kill "$HAP_PID" 2>/dev/null
    wait "$HAP_PID" 2>/dev/null
    HAP_PID=
    write_offload_conf "$DIR/offload_q1.cnf" offload.so "queue_depth = 1"
    rm -f "$DIR/stats"
    start_haproxy "$DIR/offload_q1.cnf"
    Q_BASE_FDS=$(nfds)
    for port in $PORT_RSA $PORT_EC; do
        timeout 120 h2load --h1 -t 1 -c 32 -n 1000 -H "Connection: close" \
            "https://127.0.0.1:$port/" >"$DIR/h2load.out" 2>&1
        ok=$(awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i ~ /^succeeded/) print $(i-1)}' \
            "$DIR/h2load.out")
        echo "queue_depth = 1, h2load port $port: ${ok:-0} of 1000 succeeded"
        [ "${ok:-0}" = 1000 ] || fail "queue_depth = 1: h2load port $port: ${ok:-0} of 1000"
        check_alive "h2load with queue_depth = 1"
    done
    for ((i = 0; i < 100; i++)); do
        [ "$(nfds)" -le "$Q_BASE_FDS" ] && [ "$(info_of CurrConns)" = 0 ] && break
        sleep 0.2
    done
    fresh_stats
    echo "queue_depth = 1: offload-queue-full $(stat_of offload-queue-full)," \
        "offload-offloaded $(stat_of offload-offloaded), $(nfds) fds (at start $Q_BASE_FDS)"
    [ "$(stat_of offload-queue-full)" -gt 0 ] || fail "queue_depth = 1: the queue was never full"
    [ "$(nfds)" -eq "$Q_BASE_FDS" ] || fail "queue_depth = 1: $(nfds) fds, $Q_BASE_FDS at start"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "haproxy_test: $FAILS failure(s)"
    exit 1
fi
echo "haproxy_test: passed"

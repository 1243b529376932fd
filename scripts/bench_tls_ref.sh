#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: full TLS 1.3 handshakes per second against the reference
# server (test/tls_ref_server) with RSA-2048 and ECDSA P-256 certificates,
# three ways:
#   default          one process, the default provider, no SSL_MODE_ASYNC
#   offload fd       one process, offload (conf/offload.cnf), SSL_MODE_ASYNC,
#                    woken through the wait ctxs' eventfds
#   default x2       two processes sharing the port with SO_REUSEPORT: the
#                    "just add threads" reference
# The load generator (test/tls_ref_client) runs on the same machine: full
# handshakes (no tickets, no session reuse), X25519 key exchange, and it
# verifies the certificate and the handshake signature, so every handshake
# also costs it one key exchange and one verify. Each run is preceded by a
# short warm-up; runs are interleaved; the table shows medians and ratios
# to the default provider.
#
#   scripts/bench_tls_ref.sh [rsa2048] [p256] [rsa2048+X25519MLKEM768] [mldsa65+X25519MLKEM768]
#     a row is a certificate (rsa2048, p256, mldsa65), and after "+" the
#     client's key-exchange group (X25519 by default); where the OpenSSL
#     offers them, the default rows add X25519MLKEM768 (the hybrid default
#     group of 3.5) with an RSA and an ML-DSA-65 certificate
#   RUNS=5 SECONDS_PER=5 CONNS=64 BUILD=build scripts/bench_tls_ref.sh
#   OFFLOAD_CONF=my.cnf MODULES=dir-of-offload.so scripts/bench_tls_ref.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --werror >/dev/null
meson compile -C "$BUILD" offload tls_ref_server tls_ref_client >/dev/null
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac # BUILD may be given absolute

RUNS=${RUNS:-3}
SECS=${SECONDS_PER:-4}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-0.5}
MODULES=${MODULES:-$BUILD/provider}
CONF=${OFFLOAD_CONF:-$PWD/conf/offload.cnf}
SERVER=$BUILD/test/tls_ref_server
CLIENT=$BUILD/test/tls_ref_client
CERTS=("$@")
if [ ${#CERTS[@]} -eq 0 ]; then
    CERTS=(rsa2048 p256)
    if OPENSSL_CONF=/dev/null openssl list -kem-algorithms 2>/dev/null | grep -q X25519MLKEM768; then
        CERTS+=(rsa2048+X25519MLKEM768)
        OPENSSL_CONF=/dev/null openssl list -signature-algorithms 2>/dev/null | grep -q ML-DSA-65 &&
            CERTS+=(mldsa65+X25519MLKEM768)
    fi
fi
OUT=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$OUT"
}
trap cleanup EXIT

source test/lib.sh
for row in "${CERTS[@]}"; do
    cert=${row%%+*}
    [ -f "$OUT/$cert.crt" ] && continue
    case $cert in
    rsa2048) keyopts=(-newkey rsa:2048) ;;
    p256) keyopts=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    mldsa65) keyopts=(-newkey ML-DSA-65) ;;
    *) echo "unknown certificate: $cert (rsa2048, p256, mldsa65)" >&2 && exit 2 ;;
    esac
    make_cert "$OUT" "$cert" "${keyopts[@]}"
done

# name | server processes | --mode | OPENSSL_CONF
CONFIGS=(
    "default, 1 process|1|sync|/dev/null"
    "offload fd, 1 process|1|fd|$CONF"
    "default x2, SO_REUSEPORT|2|sync|/dev/null"
)

# Starts |n| servers sharing one port (SO_REUSEPORT when n > 1); sets PORT.
start_servers() { # n, mode, conf, cert
    local n=$1 mode=$2 conf=$3 cert=$4 port=0 i k extra=()
    [ "$n" -gt 1 ] && extra=(--reuseport)
    PIDS=()
    for ((i = 0; i < n; i++)); do
        : >"$OUT/server.$i" # now, not in the child: no stale "listening" line
        OPENSSL_MODULES=$MODULES OPENSSL_CONF=$conf "$SERVER" --port "$port" --mode "$mode" \
            --tls1.3 --cert "$OUT/$cert.crt" --key "$OUT/$cert.key" --max-conns 4096 \
            --quiet "${extra[@]}" >"$OUT/server.$i" 2>&1 &
        PIDS+=($!)
        for ((k = 0; k < 400; k++)); do
            grep -q '^listening' "$OUT/server.$i" 2>/dev/null && break
            sleep 0.05
        done
        port=$(awk '/^listening on/ {split($3, a, ":"); print a[2]; exit}' "$OUT/server.$i" 2>/dev/null || true)
        [ -n "$port" ] || { cat "$OUT/server.$i" >&2; return 1; }
    done
    PORT=$port
}

stop_servers() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}

ticks() { # CPU ticks (user + system) of the running servers
    local p t=0
    for p in "${PIDS[@]}"; do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# One measured run: "hs/s server-cores client-cores", or "err".
measure() { # port, cert, seconds, group
    local line t0 t1 hz
    hz=$(getconf CLK_TCK)
    t0=$(ticks)
    if line=$(OPENSSL_CONF=/dev/null "$CLIENT" --port "$1" --conns "$CONNS" --duration "$3" \
        --requests 0 --tls1.3 --groups "$4" --cafile "$OUT/$2.crt" --quiet 2>"$OUT/client.err"); then
        t1=$(ticks)
        awk -v dt="$((t1 - t0))" -v hz="$hz" -v s="$3" '{
            for (i = 1; i < NF; i++) {
                if ($(i + 1) == "hs/s") rate = $i
                if ($(i + 1) == "cores") ccpu = $i
                if ($i == "elapsed") el = $(i + 1)
            }
            printf "%s %.2f %s\n", rate, dt / hz / el, ccpu
        }' <<<"$line"
    else
        echo err
    fi
}

median() { { grep -v err || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "openssl: $(openssl version)"
echo "TLS 1.3 full handshakes, client: $CONNS connections, X25519 unless the row names a group, verifies; $RUNS runs x ${SECS}s, medians; ratios vs default"
for row in "${CERTS[@]}"; do
    cert=${row%%+*}
    group=X25519:P-256
    [ "$row" = "$cert" ] || group=${row#*+}
    for ((r = 1; r <= RUNS; r++)); do
        echo "  $row: run $r of $RUNS" >&2
        for i in "${!CONFIGS[@]}"; do
            IFS='|' read -r name nproc mode conf <<<"${CONFIGS[$i]}"
            if ! start_servers "$nproc" "$mode" "$conf" "$cert"; then
                echo err >>"$OUT/$row.$i"
                stop_servers
                continue
            fi
            measure "$PORT" "$cert" "$WARMUP" "$group" >/dev/null
            measure "$PORT" "$cert" "$SECS" "$group" >>"$OUT/$row.$i"
            if [ "$(tail -n 1 "$OUT/$row.$i")" = err ]; then
                echo "($row, $name: client errors)" >&2
                head -n 4 "$OUT/client.err" >&2
            fi
            stop_servers
        done
    done
    printf '\n%-8s %-26s %9s %7s %8s %8s %9s   %s\n' "$row" "server" "hs/s" "ratio" \
        "srv cpu" "cli cpu" "srv us/hs" "runs (hs/s)"
    base=""
    for i in "${!CONFIGS[@]}"; do
        IFS='|' read -r name nproc mode conf <<<"${CONFIGS[$i]}"
        f=$OUT/$row.$i
        med=$(awk '{print $1}' "$f" | median)
        scpu=$(awk '$1 != "err" {print $2}' "$f" | median)
        ccpu=$(awk '$1 != "err" {print $3}' "$f" | median)
        uspp=$(awk '$1 != "err" && $1 > 0 {print $2 * 1e6 / $1}' "$f" | median)
        runs=$(awk '{printf "%s ", $1}' "$f")
        [ -n "$base" ] || base=$med
        if [ "$med" = nan ] || [ "$base" = nan ]; then
            printf '%-8s %-26s %9s %7s %8s %8s %9s   %s\n' "" "$name" "$med" "-" "-" "-" "-" "$runs"
        else
            printf '%-8s %-26s %9.1f %6.2fx %8.2f %8.2f %9.0f   %s\n' "" "$name" "$med" \
                "$(awk -v a="$med" -v b="$base" 'BEGIN {print a / b}')" "$scpu" "$ccpu" "$uspp" "$runs"
        fi
    done
done
echo
echo "srv cpu / cli cpu: cores used by the server process(es) (all threads) and by the client;"
echo "srv us/hs: server CPU time per handshake. Medians. On 2 cores the client's share"
echo "(key exchange, verify, TCP) caps what any server setup can reach."

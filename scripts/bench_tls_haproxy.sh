#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: full TLS 1.3 handshakes per second against HAProxy on
# 127.0.0.1, with an RSA-2048 and a P-256 certificate, three ways:
#
#   default 1 thread   nbthread 1, default provider, no ssl-mode-async
#   offload async      nbthread 1, ssl-mode-async, offload provider loaded
#   default 2 threads  nbthread 2, default provider ("just add threads")
#
# The load generator is h2load (HTTP/1.1, "Connection: close", one thread):
# every request is a new connection. HAProxy is configured so that no
# session can be resumed (no tickets, no session cache), so every
# connection is a full handshake; in the offload rows this is checked
# against the provider's signature counter (one signature per handshake).
# The load generator shares the machine; the CPU columns say how much of
# it HAProxy and h2load used (100% = one core).
#
#   scripts/bench_tls_haproxy.sh [rsa2048] [p256]
#   RUNS=5 SECONDS_PER=3 CONC=64 scripts/bench_tls_haproxy.sh rsa2048
#   OFFLOAD_OPTS="workers=1 spin_us=0" ...   keys of the provider's openssl.cnf section
#   OFFLOAD_MODULES=/dir    where offload.so is (default: $BUILD/provider)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --werror >/dev/null
meson compile -C "$BUILD" >/dev/null
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac # BUILD may be given absolute

RUNS=${RUNS:-3}
SECS=${SECONDS_PER:-2}
CONC=${CONC:-32}
MODULES=${OFFLOAD_MODULES:-$BUILD/provider}
CERTS=("$@")
[ ${#CERTS[@]} -gt 0 ] || CERTS=(rsa2048 p256)
OUT=$(mktemp -d)
HAP_PID=

cleanup() {
    if [ -n "$HAP_PID" ]; then
        kill "$HAP_PID" 2>/dev/null || true
        wait "$HAP_PID" 2>/dev/null || true
    fi
    rm -rf "$OUT"
}
trap cleanup EXIT

for tool in haproxy h2load openssl; do
    command -v $tool >/dev/null || { echo "bench_tls_haproxy: $tool not found" >&2; exit 1; }
done

# ---- keys, certificates, provider config ----
source test/lib.sh
make_cert "$OUT" rsa2048 -newkey rsa:2048
make_cert "$OUT" p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
for c in rsa2048 p256; do cat "$OUT/$c.crt" "$OUT/$c.key" >"$OUT/$c.pem"; done

# Extra keys of the provider's section, e.g. OFFLOAD_OPTS="workers=1 spin_us=0".
bench_offload_conf "$OUT/offload.cnf" "$MODULES"

# mode name | nbthread | ssl-mode-async (0/1) | OPENSSL_CONF
MODES=(
    "default 1 thread|1|0|/dev/null"
    "offload async|1|1|$OUT/offload.cnf"
    "default 2 threads|2|0|/dev/null"
)

start_haproxy() { # conf, stats file
    OPENSSL_MODULES=$MODULES OPENSSL_CONF=$1 OFFLOAD_STATS_FILE=$2 \
        haproxy -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
    HAP_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        kill -0 "$HAP_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench_tls_haproxy: haproxy did not start:" >&2
    cat "$OUT/haproxy.log" >&2
    return 1
}

stop_haproxy() {
    kill "$HAP_PID" 2>/dev/null || true
    wait "$HAP_PID" 2>/dev/null || true
    HAP_PID=
}

cpu_ticks() { # utime+stime (clock ticks) of a process, all threads, or of one thread
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}


# One h2load run of $1 connections. Prints: rate, succeeded, CPU% of
# HAProxy (all threads), of its main thread (the event loop; in the offload
# rows the provider's workers are the other threads), of h2load, then the
# CPU microseconds per handshake of HAProxy and of its main thread.
h2run() {
    local n=$1 t0 t1 c0 c1 m0 m1 rate ok
    c0=$(cpu_ticks "$HAP_PID")
    m0=$(cpu_ticks "$HAP_PID/task/$HAP_PID")
    t0=$(date +%s%N)
    local TIMEFORMAT='%U %S'
    { time h2load --h1 -t 1 -c "$CONC" -n "$n" -H "Connection: close" \
        "https://127.0.0.1:$PORT/" >"$OUT/h2load.out" 2>&1; } 2>"$OUT/h2load.time" || true
    t1=$(date +%s%N)
    c1=$(cpu_ticks "$HAP_PID")
    m1=$(cpu_ticks "$HAP_PID/task/$HAP_PID")
    rate=$(awk '/^finished in/ {print $4}' "$OUT/h2load.out")
    ok=$(awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i ~ /^succeeded/) print $(i-1)}' \
        "$OUT/h2load.out")
    awk -v r="${rate:-0}" -v ok="${ok:-0}" -v c="$((c1 - c0))" -v m="$((m1 - m0))" \
        -v hz="$(getconf CLK_TCK)" -v t="$((t1 - t0))" -v g="$(cat "$OUT/h2load.time")" \
        'BEGIN {split(g, u, " "); s = t / 1e9; k = ok > 0 ? ok : 1
                printf "%s %s %.0f %.0f %.0f %.0f %.0f\n", r, ok, c / hz / s * 100, m / hz / s * 100,
                       (u[1] + u[2]) / s * 100, c / hz / k * 1e6, m / hz / k * 1e6}'
}

PORT=$(free_port)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "haproxy: $(haproxy -v | head -1 | awk '{print $3}')   openssl: $(openssl version | awk '{print $2}')" \
    "  h2load: $(h2load --version | awk '{print $2}')"
echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo "full TLS 1.3 handshakes/s, h2load -c $CONC, ~${SECS}s per run, medians of $RUNS runs;" \
    "ratios vs default 1 thread"

for cert in "${CERTS[@]}"; do
    [ -f "$OUT/$cert.pem" ] || { echo "unknown certificate $cert (rsa2048, p256)" >&2; exit 1; }
    for ((r = 1; r <= RUNS; r++)); do
        for i in "${!MODES[@]}"; do
            IFS='|' read -r name threads async conf <<<"${MODES[$i]}"
            haproxy_cfg "$OUT/haproxy.cfg" "$threads" "$async" "$OUT/$cert.pem" "$PORT"
            start_haproxy "$conf" "$OUT/stats"
            # Warm-up, which also sizes the run to about SECS seconds.
            read -r rate ok _ < <(h2run $((CONC * 8)))
            n=$(awk -v r="$rate" -v s="$SECS" -v c="$CONC" \
                'BEGIN {n = int(r * s / c) * c; if (n < 8 * c) n = 8 * c; print n}')
            sig0=$(stat_in "$OUT/stats" offload-signature-offloaded)
            sig0=$((sig0 + $(stat_in "$OUT/stats" offload-signature-inline)))
            read -r rate ok hcpu mcpu gcpu hus mus < <(h2run "$n")
            note=
            if [ "$ok" != "$n" ]; then
                note="only $ok of $n succeeded"
                rate=0
            fi
            if ! kill -0 "$HAP_PID" 2>/dev/null; then
                note="haproxy died: $(grep -m1 -i 'fatal\|bug\|error' "$OUT/haproxy.log" || true)"
                rate=0
            fi
            if [ "$conf" != /dev/null ] && [ -z "$note" ]; then
                sleep 0.7 # the stats file is rewritten twice a second
                sig1=$(stat_in "$OUT/stats" offload-signature-offloaded)
                sig1=$((sig1 + $(stat_in "$OUT/stats" offload-signature-inline)))
                [ $((sig1 - sig0)) -ge "$n" ] ||
                    note="only $((sig1 - sig0)) signatures for $n connections: resumed sessions?"
            fi
            stop_haproxy
            echo "$rate" >>"$OUT/$cert.$i.rate"
            for v in hcpu mcpu gcpu hus mus; do echo "${!v}" >>"$OUT/$cert.$i.$v"; done
            [ -z "$note" ] || echo "$cert / $name, run $r: $note" | tee -a "$OUT/notes" >&2
        done
    done
    printf '\n%-8s %-18s %10s %6s  %-16s %6s  %-17s %s\n' "$cert" "mode" "hs/s" "ratio" \
        "CPU% haproxy" "h2load" "us/hs haproxy" "runs (hs/s)"
    printf '%-8s %-18s %10s %6s  %-16s %6s  %-17s\n' "" "" "" "" "(main thread)" "" "(main thread)"
    base=$(median <"$OUT/$cert.0.rate")
    for i in "${!MODES[@]}"; do
        IFS='|' read -r name _ _ _ <<<"${MODES[$i]}"
        med=$(median <"$OUT/$cert.$i.rate")
        m() { median <"$OUT/$cert.$i.$1"; }
        printf '%-8s %-18s %10.0f %5sx  %-16s %6s  %-17s %s\n' "" "$name" "$med" \
            "$(ratio "$med" "$base")" "$(m hcpu) ($(m mcpu))" "$(m gcpu)" "$(m hus) ($(m mus))" \
            "$(tr '\n' ' ' <"$OUT/$cert.$i.rate")"
    done
    one=$(median <"$OUT/$cert.1.rate")
    two=$(median <"$OUT/$cert.2.rate")
    printf '%-8s offload async vs default 2 threads: %sx\n' "" "$(ratio "$one" "$two")"
done
if [ -s "$OUT/notes" ]; then
    echo
    echo "failed runs (counted as 0):"
    cat "$OUT/notes"
fi

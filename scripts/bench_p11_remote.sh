#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark (scripts/bench p11-remote): what paused jobs buy with a remote
# token. A SoftHSM2 token (test/pkcs11_token.sh, in a scratch dir) is
# served by `p11-kit server`; offload loads p11-kit-client.so as its
# pkcs11_module and reaches the server either directly or through
# test/p11_relay, which holds every chunk DELAY_MS (1) in each direction:
# a round trip of 2 ms per token call (tc netem needs root).
#
#   A  test/p11_bench: a token key by URI (OSSL_STORE), EVP_PKEY_sign one
#      at a time on one thread ("sync") versus JOBS (32) ASYNC_JOBs driven
#      by poll() on their wait fds ("jobs 32"); signs/s, the client's CPU
#      per signature, and the CPU of the server's process for this client
#      (`p11-kit server` forks one `p11-kit-remote` per connection).
#   B  Debian's HAProxy, nbthread 1, a TLS 1.3 listener on 127.0.0.1 whose
#      certificate is for the token's key, the key named by a PEM file
#      that holds its URI (scripts/p11uri-pem);
#      offload loaded in both rows, without and with ssl-mode-async; full
#      handshakes/s with h2load -c CONC (32), "Connection: close", checked
#      against the provider's signature counters. offload needs a decoder
#      for that PEM label: without one, B prints "decoder not available"
#      and is skipped.
#
# Each run starts the relay afresh; its counters (chunks held at once)
# are shown for the last run of each row. Medians of RUNS runs.
#
#   scripts/bench_p11_remote.sh            A and B, keys rsa and ec
#   RUNS=5 SECONDS_PER=3 DELAY_MS=1 KEYS=rsa PARTS=A scripts/bench_p11_remote.sh
#   OFFLOAD_OPTS="pkcs11_threads=64"       more keys of the provider's section
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --werror >/dev/null
meson compile -C "$BUILD" >/dev/null
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
source test/lib.sh

RUNS=${RUNS:-3}
SECS=${SECONDS_PER:-3}
DELAY=${DELAY_MS:-1}
JOBS=${JOBS:-32}
CONC=${CONC:-32}
read -r -a KEYS <<<"${KEYS:-rsa ec}"
PARTS=${PARTS:-A B}
SOFTHSM=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
CLIENT=${P11_CLIENT_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
MODULES=$BUILD/provider
RELAY_BIN=$BUILD/test/p11_relay
BENCH_BIN=$BUILD/test/p11_bench
PIN=1234
OUT=$(mktemp -d /tmp/offload-p11remote-XXXXXX)
SRV_PID= RELAY_PID= HAP_PID=

stop_pid() { # kills and reaps one process we started, by its pid
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    stop_pid "$HAP_PID"
    stop_pid "$RELAY_PID"
    stop_pid "$SRV_PID"
    rm -rf "$OUT"
}
trap cleanup EXIT

for f in "$SOFTHSM" "$CLIENT"; do
    [ -f "$f" ] || { echo "bench_p11_remote: $f is missing" >&2; exit 1; }
done
for tool in p11-kit haproxy h2load openssl; do
    command -v $tool >/dev/null || { echo "bench_p11_remote: $tool not found" >&2; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
child_ticks() { awk '{print $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
now_ns() { date +%s%N; }

# ---- the token, its server, the provider's config ----
bash test/pkcs11_token.sh "$OUT"
export SOFTHSM2_CONF=$OUT/softhsm2.conf
XDG_RUNTIME_DIR=$OUT p11-kit server -f --provider "$SOFTHSM" -n "$OUT/p11.sock" \
    "pkcs11:token=edge" >"$OUT/server.log" 2>&1 &
SRV_PID=$!
for ((i = 0; i < 100; i++)); do
    [ -S "$OUT/p11.sock" ] && break
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
done
[ -S "$OUT/p11.sock" ] || { echo "bench_p11_remote: p11-kit server did not start:" >&2; cat "$OUT/server.log" >&2; exit 1; }

bench_offload_conf "$OUT/offload.cnf" "$MODULES" "pkcs11_module = $CLIENT"
export OPENSSL_MODULES=$MODULES OPENSSL_CONF=$OUT/offload.cnf

uri_of() { echo "pkcs11:token=edge;object=tls-$1;type=private?pin-value=$PIN"; }
addr_of() { # path name -> P11_KIT_SERVER_ADDRESS
    case $1 in
    direct) echo "unix:path=$OUT/p11.sock" ;;
    relay) echo "unix:path=$OUT/relay.sock" ;;
    esac
}
start_relay() {
    "$RELAY_BIN" "$OUT/relay.sock" "$OUT/p11.sock" "$DELAY" 2>"$OUT/relay.log" &
    RELAY_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$OUT/relay.sock" ] && return 0
        sleep 0.02
    done
    echo "bench_p11_remote: the relay did not start:" >&2
    cat "$OUT/relay.log" >&2
    exit 1
}
stop_relay() { # $1: where its counters go
    stop_pid "$RELAY_PID"
    RELAY_PID=
    cp "$OUT/relay.log" "$1"
}
# Waits until `p11-kit server` has reaped its children (their CPU then
# shows in its cutime/cstime).
wait_server_idle() {
    for ((i = 0; i < 100; i++)); do
        [ -z "$(pgrep -P "$SRV_PID" || true)" ] && return 0
        sleep 0.02
    done
}
# Column $1 of the runs file $2 (a run a line: rate, then two CPU figures).
col() { awk -v c="$1" '{print $c}' "$2"; }
# A table row, CPU columns $1 wide: key, path, mode label, runs file, base rate.
table_row() {
    local med
    med=$(col 1 "$5" | median)
    printf "%-4s %-12s %-8s %10.0f %6sx  %${1}s %${1}s  %s\n" "$2" "$(path_label "$3")" "$4" \
        "$med" "$(ratio "$med" "$6")" "$(col 2 "$5" | median)" "$(col 3 "$5" | median)" \
        "$(awk '{printf "%.0f ", $1}' "$5")"
}
# "<what> through the relay: <ratio of the medians of two runs files>x"
relay_ratio() {
    printf '%s, through the relay: %sx\n' "$1" "$(ratio "$(col 1 "$2" | median)" "$(col 1 "$3" | median)")"
}
path_label() { [ "$1" = direct ] && echo "direct" || echo "relay $(awk -v d="$DELAY" 'BEGIN {print 2 * d}') ms"; }

virt=$(systemd-detect-virt 2>/dev/null || true)
[ -n "$virt" ] || virt=$(grep -qw hypervisor /proc/cpuinfo && echo "a VM" || echo "no VM seen")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $virt"
echo "openssl: $(openssl version | awk '{print $2}')   p11-kit: $(p11-kit --version 2>/dev/null | head -1 | awk '{print $NF}')" \
    "  softhsm2: $(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null)   haproxy: $(haproxy -v | head -1 | awk '{print $3}')"
echo "token: SoftHSM2 behind p11-kit server, offload's pkcs11_module = p11-kit-client.so;" \
    "relay: ${DELAY} ms each way; medians of $RUNS runs of ${SECS}s"
echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"

# ---- A: p11_bench ----
A_PATHS=(direct relay)
A_MODES=(sync jobs)
if [[ " $PARTS " == *" A "* ]]; then
    total=$((RUNS * ${#KEYS[@]} * ${#A_PATHS[@]} * ${#A_MODES[@]})) k=0
    for ((r = 1; r <= RUNS; r++)); do
        for key in "${KEYS[@]}"; do
            for path in "${A_PATHS[@]}"; do
                for mode in "${A_MODES[@]}"; do
                    k=$((k + 1))
                    echo "[A $k/$total] $key, $(path_label "$path"), $mode$([ "$mode" = jobs ] && echo " $JOBS"): run $r of $RUNS" >&2
                    [ "$path" = relay ] && start_relay
                    wait_server_idle
                    s0=$(child_ticks "$SRV_PID") t0=$(now_ns)
                    if ! P11_KIT_SERVER_ADDRESS=$(addr_of "$path") "$BENCH_BIN" -s "$SECS" \
                        -j "$JOBS" -m "$mode" "$(uri_of "$key")" >"$OUT/a.out" 2>&1; then
                        echo "A: $key $path $mode run $r failed:" >&2
                        cat "$OUT/a.out" >&2
                        echo "0 0 0" >>"$OUT/A.$key.$path.$mode"
                        [ "$path" = relay ] && stop_relay "$OUT/A.$key.$path.$mode.relay"
                        continue
                    fi
                    t1=$(now_ns)
                    [ "$path" = relay ] && stop_relay "$OUT/A.$key.$path.$mode.relay"
                    wait_server_idle
                    s1=$(child_ticks "$SRV_PID")
                    rate=$(awk -v m="$mode" '/^RESULT/ {for (i = 2; i <= NF; i++) {split($i, a, "=")
                                   if (a[1] == m) print a[2]}}' "$OUT/a.out")
                    us=$(awk '/signs\/s/ {for (i = 1; i <= NF; i++) if ($i == "us") print $(i - 1)}' "$OUT/a.out")
                    scpu=$(awk -v s="$((s1 - s0))" -v hz="$HZ" -v t="$((t1 - t0))" \
                        'BEGIN {printf "%.0f", s / hz / (t / 1e9) * 100}')
                    echo "${rate:-0} ${us:-0} $scpu" >>"$OUT/A.$key.$path.$mode"
                    cp "$OUT/a.out" "$OUT/A.$key.$path.$mode.last"
                done
            done
        done
    done
    echo
    echo "A: EVP_PKEY_sign with the token key (SHA-256; RSA PKCS#1 v1.5, ECDSA P-256), test/p11_bench -s $SECS"
    printf '%-4s %-12s %-8s %10s %7s  %10s %10s  %s\n' key path mode "signs/s" ratio \
        "us CPU/sig" "server" "runs (signs/s)"
    printf '%-4s %-12s %-8s %10s %7s  %10s %10s\n' "" "" "" "" "" "(client)" "CPU%"
    for key in "${KEYS[@]}"; do
        for path in "${A_PATHS[@]}"; do
            f=$OUT/A.$key.$path
            base=$(col 1 "$f.sync" | median)
            for mode in "${A_MODES[@]}"; do
                table_row 10 "$key" "$path" "$mode$([ "$mode" = jobs ] && echo " $JOBS")" \
                    "$f.$mode" "$base"
            done
            if [ "$path" = relay ] && [ -f "$f.jobs.relay" ]; then
                sed "s/^p11_relay: /     relay, last jobs run: /" "$f.jobs.relay"
            fi
        done
    done
    for key in "${KEYS[@]}"; do
        relay_ratio "A $key: jobs $JOBS vs sync" "$OUT/A.$key.relay.jobs" "$OUT/A.$key.relay.sync"
    done
fi

# ---- B: HAProxy ----
start_haproxy() { # $1 P11_KIT_SERVER_ADDRESS
    P11_KIT_SERVER_ADDRESS=$1 OFFLOAD_STATS_FILE=$OUT/stats \
        haproxy -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
    HAP_PID=$!
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        kill -0 "$HAP_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench_p11_remote: haproxy did not start:" >&2
    cat "$OUT/haproxy.log" >&2
    return 1
}
stop_haproxy() {
    stop_pid "$HAP_PID"
    HAP_PID=
}
# One h2load run of $1 connections: rate, succeeded, CPU% of HAProxy, of
# the server's process for HAProxy's connection (pid $2).
h2run() {
    local n=$1 t0 t1 c0 c1 s0 s1 rate ok
    c0=$(cpu_ticks "$HAP_PID") s0=$(cpu_ticks "$2") t0=$(now_ns)
    h2load --h1 -t 1 -c "$CONC" -n "$n" -H "Connection: close" \
        "https://127.0.0.1:$PORT/" >"$OUT/h2load.out" 2>&1 || true
    t1=$(now_ns) c1=$(cpu_ticks "$HAP_PID") s1=$(cpu_ticks "$2")
    rate=$(awk '/^finished in/ {print $4}' "$OUT/h2load.out")
    ok=$(awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i ~ /^succeeded/) print $(i-1)}' \
        "$OUT/h2load.out")
    awk -v r="${rate:-0}" -v ok="${ok:-0}" -v c="$((c1 - c0))" -v s="$((s1 - s0))" \
        -v hz="$HZ" -v t="$((t1 - t0))" \
        'BEGIN {w = t / 1e9; printf "%s %s %.0f %.0f\n", r, ok, c / hz / w * 100, s / hz / w * 100}'
}

B_PATHS=(direct relay)
B_MODES=("sync|0" "async|1")
if [[ " $PARTS " == *" B "* ]]; then
    echo
    b_ok=1
    for key in "${KEYS[@]}"; do
        # The certificate: self-signed by the token key itself (offload, sync).
        if ! P11_KIT_SERVER_ADDRESS=$(addr_of direct) openssl req -x509 -new -key "$(uri_of "$key")" \
            -subj /CN=localhost -days 2 -out "$OUT/$key.crt" >"$OUT/req.log" 2>&1; then
            echo "B: cannot make the certificate of the token's $key key:" >&2
            cat "$OUT/req.log" >&2
            exit 1
        fi
        bash scripts/p11uri-pem "$(uri_of "$key")" "$OUT/$key.uri.pem"
        cat "$OUT/$key.crt" "$OUT/$key.uri.pem" >"$OUT/$key.pem"
        if ! P11_KIT_SERVER_ADDRESS=$(addr_of direct) openssl pkey -in "$OUT/$key.uri.pem" \
            -pubout -out "$OUT/$key.pub" >"$OUT/pkey.log" 2>&1; then
            echo "B: decoder not available: offload cannot load a \"PKCS#11 PROVIDER URI\" PEM" \
                "key file ($key): $(grep -m1 -v '^ *$' "$OUT/pkey.log" || true); HAProxy skipped"
            b_ok=0
            break
        fi
    done
    if [ "$b_ok" -eq 1 ]; then
        PORT=$(free_port)
        total=$((RUNS * ${#KEYS[@]} * ${#B_PATHS[@]} * ${#B_MODES[@]})) k=0
        for ((r = 1; r <= RUNS; r++)); do
            for key in "${KEYS[@]}"; do
                for path in "${B_PATHS[@]}"; do
                    for m in "${B_MODES[@]}"; do
                        IFS='|' read -r mode async <<<"$m"
                        k=$((k + 1))
                        echo "[B $k/$total] haproxy $key, $(path_label "$path"), $mode: run $r of $RUNS" >&2
                        f=$OUT/B.$key.$path.$mode
                        [ "$path" = relay ] && start_relay
                        wait_server_idle
                        haproxy_cfg "$OUT/haproxy.cfg" 1 "$async" "$OUT/$key.pem" "$PORT"
                        start_haproxy "$(addr_of "$path")"
                        remote=$(pgrep -P "$SRV_PID" | head -1 || true)
                        # Warm-up, which also sizes the run to about SECS seconds.
                        read -r rate ok _ < <(h2run $((CONC * 4)) "${remote:-0}")
                        n=$(awk -v r="$rate" -v s="$SECS" -v c="$CONC" \
                            'BEGIN {n = int(r * s / c) * c; if (n < 4 * c) n = 4 * c; print n}')
                        sleep 0.6 # the stats file is rewritten twice a second
                        sig0=$(($(stat_in "$OUT/stats" offload-signature-offloaded) + \
                            $(stat_in "$OUT/stats" offload-signature-inline)))
                        read -r rate ok hcpu scpu < <(h2run "$n" "${remote:-0}")
                        note=
                        [ "$ok" = "$n" ] || { note="only $ok of $n succeeded"; rate=0; }
                        kill -0 "$HAP_PID" 2>/dev/null || { note="haproxy died"; rate=0; }
                        if [ -z "$note" ]; then
                            sleep 0.6
                            sig1=$(($(stat_in "$OUT/stats" offload-signature-offloaded) + \
                                $(stat_in "$OUT/stats" offload-signature-inline)))
                            [ $((sig1 - sig0)) -ge "$n" ] ||
                                note="only $((sig1 - sig0)) signatures for $n connections"
                        fi
                        stop_haproxy
                        [ "$path" = relay ] && stop_relay "$f.relay"
                        echo "$rate $hcpu $scpu" >>"$f"
                        [ -z "$note" ] || echo "$key / $path / $mode, run $r: $note" | tee -a "$OUT/notes" >&2
                    done
                done
            done
        done
        echo "B: HAProxy nbthread 1, full TLS 1.3 handshakes/s, h2load -c $CONC, offload loaded in both rows"
        printf '%-4s %-12s %-8s %10s %7s  %8s %8s  %s\n' key path mode "hs/s" ratio "haproxy" "server" "runs (hs/s)"
        printf '%-4s %-12s %-8s %10s %7s  %8s %8s\n' "" "" "" "" "" "CPU%" "CPU%"
        for key in "${KEYS[@]}"; do
            for path in "${B_PATHS[@]}"; do
                base=$(col 1 "$OUT/B.$key.$path.sync" | median)
                for m in "${B_MODES[@]}"; do
                    IFS='|' read -r mode _ <<<"$m"
                    table_row 8 "$key" "$path" "$mode" "$OUT/B.$key.$path.$mode" "$base"
                done
                if [ "$path" = relay ] && [ -f "$OUT/B.$key.relay.async.relay" ]; then
                    sed "s/^p11_relay: /     relay, last async run: /" "$OUT/B.$key.relay.async.relay"
                fi
            done
        done
        for key in "${KEYS[@]}"; do
            relay_ratio "B $key: ssl-mode-async vs without" "$OUT/B.$key.relay.async" \
                "$OUT/B.$key.relay.sync"
        done
        if [ -s "$OUT/notes" ]; then
            echo "failed runs (counted as 0):"
            cat "$OUT/notes"
        fi
    fi
fi
echo "load average after: $(cut -d" " -f1-3 /proc/loadavg)"

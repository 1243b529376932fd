#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: tail latency of requests on established keep-alive TLS 1.3
# connections while a storm of new full handshakes hits the same listener.
#
# What an event loop that signs inline costs its open connections: every
# RSA-2048 signature holds HAProxy's only thread for ~0.3 ms, and requests
# on connections already open wait behind the handshakes of a burst.
#
#   probe  test/latency_probe (built by meson), at real-time priority
#          (chrt -f 1; nice -5 without it): PROBE_CONNS keep-alive connections, one small request every PROBE_INTERVAL_MS
#          on each, every response checked; a request's latency runs from the
#          time it was due (a stalled server is not hidden by the probe
#          waiting for it)
#   storm  at nice STORM_NICE (19), STORMS concurrent connections of full handshakes, no
#          resumption, spread over STORM_PROCS client processes (one per
#          core): HAProxy: `ab -f TLS1.3 -c N/procs` (one request per
#          connection); reference server: test/tls_ref_client --requests 0;
#          storm 0 is the idle baseline (the probe alone). Both clients are
#          single-threaded: one of them alone at nice 19 on these cores is
#          what limits the handshakes/s of a server that uses both (perf
#          sched: the scheduler packs it onto the event loop's core, its
#          weight of 15 hides it from the load balancer, and the other core
#          idles), so the server would not be what the figure measures
#
# Servers, each with an RSA-2048 and a P-256 certificate, three ways:
#   haproxy  Debian's HAProxy: nbthread 1 default provider; nbthread 1
#            ssl-mode-async with offload, its workers at the default
#            worker_policy and at worker_policy = idle (SCHED_IDLE);
#            nbthread 2 default provider
#   ref      test/tls_ref_server: one process default (--mode sync); one
#            process --mode fd with offload, both worker policies; two
#            processes SO_REUSEPORT
#
# Each round runs every configuration once, alternated, for each
# certificate and storm; the table gives medians over RUNS rounds of each
# run's p50, p99, p99.9 and max (ms) and of the storm's handshakes/s; the
# CDF plots pool every run's latencies. Results go to RESULTS (default
# $BUILD/tls-latency): tls-latency.md (the table), tls-latency-<server>-
# <cert>.png (gnuplot: the CDF and its complement, log x, one curve per
# configuration, one column per storm), raw/ (latencies, ms, one a line).
#
#   scripts/bench_tls_latency.sh [haproxy] [ref]
#   RUNS=3 SECONDS_PER=2 STORMS="0 32 128" CERTS="rsa2048 p256" scripts/bench_tls_latency.sh
#                                            (the defaults: 144 runs, about 8 minutes)
#   PROBE_CONNS=4 PROBE_INTERVAL_MS=5 WARMUP=0.5 RESULTS=/tmp/lat ...
#   OFFLOAD_OPTS="workers=1 spin_us=0" ...   keys of the provider's openssl.cnf section
#   STORM_NICE=0 ...                         the storm clients' nice value (default 19)
#   STORM_PROCS=1 ...                        storm client processes, sharing its connections
#                                            (default: one per core)
#   HAPROXY_TUNE="tune.maxpollevents=4" ...  more lines of HAProxy's global section
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --werror >/dev/null
meson compile -C "$BUILD" offload tls_ref_server tls_ref_client latency_probe >/dev/null
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac # BUILD may be given absolute

RUNS=${RUNS:-3}
SECS=${SECONDS_PER:-2}
WARMUP=${WARMUP:-0.5}
read -r -a STORMS <<<"${STORMS:-0 32 128}"
read -r -a CERTS <<<"${CERTS:-rsa2048 p256}"
PCONNS=${PROBE_CONNS:-4}
PINT=${PROBE_INTERVAL_MS:-5}
STORM_NICE=${STORM_NICE:-19}
STORM_PROCS=${STORM_PROCS:-$(nproc)}
for st in "${STORMS[@]}"; do
    [ $((st % STORM_PROCS)) -eq 0 ] ||
        { echo "bench_tls_latency: storm $st does not split over STORM_PROCS=$STORM_PROCS clients" >&2; exit 2; }
done
MODULES=${OFFLOAD_MODULES:-$BUILD/provider}
RESULTS=${RESULTS:-$BUILD/tls-latency}
PROBE=$BUILD/test/latency_probe
REF_SERVER=$BUILD/test/tls_ref_server
REF_CLIENT=$BUILD/test/tls_ref_client
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(haproxy ref)
for s in "${SERVERS[@]}"; do
    case $s in
    haproxy | ref) ;;
    *) echo "bench_tls_latency: unknown server $s (haproxy, ref)" >&2 && exit 2 ;;
    esac
done
tools=(gnuplot openssl)
[[ " ${SERVERS[*]} " = *" haproxy "* ]] && tools+=(haproxy ab)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "bench_tls_latency: $tool not found (scripts/bootstrap)" >&2; exit 1; }
done

OUT=$(mktemp -d)
PIDS=() # servers
JOBS=() # probe and storm of the current run
cleanup() {
    local p
    for p in "${JOBS[@]}" "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${JOBS[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS/raw"
rm -f "$RESULTS"/raw/*.txt "$RESULTS"/*.png "$RESULTS/tls-latency.md"

# ---- keys, certificates, provider config ----
source test/lib.sh
export OPENSSL_CONF=/dev/null # the probe and the storm: the default provider
make_cert "$OUT" rsa2048 -newkey rsa:2048
make_cert "$OUT" p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
for c in rsa2048 p256; do cat "$OUT/$c.crt" "$OUT/$c.key" >"$OUT/$c.pem"; done
for c in "${CERTS[@]}"; do
    [ -f "$OUT/$c.pem" ] || { echo "unknown certificate $c (rsa2048, p256)" >&2; exit 2; }
done
bench_offload_conf "$OUT/offload.cnf" "$MODULES"
bench_offload_conf "$OUT/offload-idle.cnf" "$MODULES" "worker_policy = idle"

# The probe above the servers, the storm below them. The probe stands for
# clients on other machines: its own scheduling delay is not the server's.
# A negative nice is not enough on EEVDF kernels (6.6+): a woken task does
# not preempt the running one before its slice ends, at the next tick (up
# to 4 ms at HZ=250), even behind the storm at nice 19 (perf sched
# timehist). A real-time priority (root only) preempts at once.
if chrt -f 1 true 2>/dev/null; then
    PROBE_NICE=(chrt -f 1)
elif nice -n -5 true 2>/dev/null && [ "$(nice -n -5 nice)" -lt "$(nice)" ]; then
    echo "bench_tls_latency: no real-time priority for the probe: it runs at nice -5" >&2
    PROBE_NICE=(nice -n -5)
else
    echo "bench_tls_latency: cannot raise the probe's priority (not root): it runs at nice 0" >&2
    PROBE_NICE=()
fi

# name | nbthread (haproxy) or processes (ref) | async: 1 / --mode | OPENSSL_CONF
HAPROXY_MODES=(
    "default 1 thread|1|0|/dev/null"
    "offload async|1|1|$OUT/offload.cnf"
    "offload async, idle workers|1|1|$OUT/offload-idle.cnf"
    "default 2 threads|2|0|/dev/null"
)
REF_MODES=(
    "default 1 process|1|sync|/dev/null"
    "offload fd|1|fd|$OUT/offload.cnf"
    "offload fd, idle workers|1|fd|$OUT/offload-idle.cnf"
    "default x2 SO_REUSEPORT|2|sync|/dev/null"
)

start_haproxy() { # nbthread, async, conf, cert
    local i
    rm -f "$OUT/stats"
    PORT=$(free_port)
    haproxy_cfg "$OUT/haproxy.cfg" "$1" "$2" "$OUT/$4.pem" "$PORT" 30s
    OPENSSL_MODULES=$MODULES OPENSSL_CONF=$3 OFFLOAD_STATS_FILE=$OUT/stats \
        haproxy -f "$OUT/haproxy.cfg" -db >"$OUT/server.log" 2>&1 </dev/null &
    PIDS=($!)
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        kill -0 "${PIDS[0]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench_tls_latency: haproxy did not start:" >&2
    cat "$OUT/server.log" >&2
    return 1
}

start_ref() { # processes, mode, conf, cert
    local n=$1 port=0 i k extra=()
    [ "$n" -gt 1 ] && extra=(--reuseport)
    PIDS=()
    rm -f "$OUT/stats"
    for ((i = 0; i < n; i++)); do
        : >"$OUT/server.$i"
        OPENSSL_MODULES=$MODULES OPENSSL_CONF=$3 OFFLOAD_STATS_FILE=$OUT/stats \
            "$REF_SERVER" --port "$port" --mode "$2" --tls1.3 --cert "$OUT/$4.crt" \
            --key "$OUT/$4.key" --max-conns 4096 --quiet "${extra[@]}" \
            >"$OUT/server.$i" 2>&1 </dev/null &
        PIDS+=($!)
        for ((k = 0; k < 200; k++)); do
            grep -q '^listening' "$OUT/server.$i" 2>/dev/null && break
            sleep 0.05
        done
        port=$(awk '/^listening on/ {split($3, a, ":"); print a[2]; exit}' "$OUT/server.$i")
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

# The machine's CPU counters (/proc/stat): "idle busy" in ticks.
cpu_ticks() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }

# One measurement: the probe, and (storm > 0) the storm. Prints
# "p50 p99 p99.9 max probe-errors storm-hs/s storm-errors inline-signs
# offloaded-signs cpu-idle-%" (the signatures "-" without offload; the idle
# share of both cores from the probe's start to the storm's end);
# appends the recorded latencies to $5.
measure() { # server, cert, storm, conf, raw file
    local server=$1 cert=$2 storm=$3 conf=$4 raw=$5 i sp=0 ppid spid
    local tsec rate=0 serr=0 inl=- off=-
    local s1 o1 t0 t1 idle
    : >"$OUT/probe.out"
    rm -f "$OUT"/storm.*.out
    t0=$(cpu_ticks)
    "${PROBE_NICE[@]}" "$PROBE" --port "$PORT" --conns "$PCONNS" --interval-ms "$PINT" \
        --duration "$SECS" --warmup "$WARMUP" --proto "$([ "$server" = haproxy ] && echo http || echo ref)" \
        --cafile "$OUT/$cert.crt" --raw "$OUT/raw.txt" >"$OUT/probe.out" 2>"$OUT/probe.err" &
    ppid=$!
    JOBS=("$ppid")
    for ((i = 0; i < 200; i++)); do
        grep -q '^ready' "$OUT/probe.out" && break
        kill -0 "$ppid" 2>/dev/null || break
        sleep 0.02
    done
    if [ "$storm" -gt 0 ]; then
        # The storm covers the probe's warm-up and its recorded seconds;
        # STORM_PROCS clients share its connections.
        local per=$((storm / STORM_PROCS)) j spids=()
        if [ "$server" = haproxy ]; then # ab -t takes whole seconds
            tsec=$(awk -v w="$WARMUP" -v s="$SECS" 'BEGIN {t = w + s + 0.3; printf "%d", t == int(t) ? t : int(t) + 1}')
        else
            tsec=$(awk -v w="$WARMUP" -v s="$SECS" 'BEGIN {print w + s + 0.3}')
        fi
        for ((j = 0; j < STORM_PROCS; j++)); do
            if [ "$server" = haproxy ]; then
                nice -n "$STORM_NICE" ab -q -f TLS1.3 -c "$per" -t "$tsec" -n 100000000 \
                    "https://127.0.0.1:$PORT/" >"$OUT/storm.$j.out" 2>&1 &
            else
                nice -n "$STORM_NICE" "$REF_CLIENT" --port "$PORT" --conns "$per" --duration "$tsec" \
                    --requests 0 --tls1.3 --groups X25519:P-256 --cafile "$OUT/$cert.crt" \
                    --quiet >"$OUT/storm.$j.out" 2>&1 &
            fi
            spids+=($!)
            JOBS+=($!)
        done
        for spid in "${spids[@]}"; do wait "$spid" || sp=$?; done
    fi
    local pr=0
    wait "$ppid" || pr=$?
    JOBS=()
    t1=$(cpu_ticks)
    idle=$(awk -v a="$t0" -v b="$t1" 'BEGIN {split(a, x, " "); split(b, y, " "); i = y[1] - x[1]
        t = i + y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * i / t : 0)}')
    if [ "$storm" -gt 0 ]; then
        if [ "$server" = haproxy ]; then
            rate=$(awk '/^Requests per second:/ {s += $4} END {print s}' "$OUT"/storm.*.out)
            # ab counts a failed handshake as complete: failed + non-2xx + exit status.
            serr=$(awk '/^Failed requests:/ {f += $3} /^Non-2xx responses:/ {n += $3}
                        END {print f + n}' "$OUT"/storm.*.out)
        else
            rate=$(awk '/^tls_ref_client: handshakes/ {for (i = 1; i < NF; i++) if ($(i + 1) == "hs/s") s += $i}
                        END {print s}' "$OUT"/storm.*.out)
            serr=$(awk '/^tls_ref_client: handshakes/ {for (i = 1; i < NF; i++) if ($i == "errors") e += $(i + 1)}
                        END {print e}' "$OUT"/storm.*.out)
        fi
        [ "$sp" -eq 0 ] || serr=$((${serr:-0} > 0 ? ${serr:-0} : 1))
        rate=${rate:-0}
        serr=${serr:-?}
    fi
    if [ "$conf" != /dev/null ]; then
        sleep 0.6 # the provider rewrites its stats file twice a second
        s1=$(stat_in "$OUT/stats" offload-signature-inline)
        o1=$(stat_in "$OUT/stats" offload-signature-offloaded)
        inl=$s1 off=$o1 # the server started for this run: its counters are the run's
    fi
    [ -f "$OUT/raw.txt" ] && cat "$OUT/raw.txt" >>"$raw"
    rm -f "$OUT/raw.txt"
    if [ "$pr" -ne 0 ]; then
        { echo "probe exit $pr:"; head -n 5 "$OUT/probe.err"; } | sed 's/^/    /' >&2
    fi
    awk -v rate="$rate" -v serr="$serr" -v inl="$inl" -v off="$off" -v pr="$pr" -v idle="$idle" '
        /^latency_probe:/ {for (i = 2; i < NF; i++) v[$i] = $(i + 1)}
        END {if (!("p50_ms" in v)) {print "nan nan nan nan 1", rate, serr, inl, off, idle; exit}
             e = v["errors"] + (pr != 0 && v["errors"] == 0)
             print v["p50_ms"], v["p99_ms"], v["p99.9_ms"], v["max_ms"], e, rate, serr, inl, off, idle}' \
        "$OUT/probe.out"
}

median() { { grep -v -e nan -e '^-$' -e '?' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
sum() { awk '$1 ~ /^[0-9]+$/ {s += $1; n++} $1 != "-" && $1 !~ /^[0-9]+$/ {bad = 1}
             END {print bad ? "?" : (n ? s : "-")}'; }

storm_name() { [ "$1" -eq 0 ] && echo idle || echo "$1 new"; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
    "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
echo "openssl: $(openssl version | awk '{print $2}')" \
    "$(command -v haproxy >/dev/null && echo "  haproxy: $(haproxy -v | head -1 | awk '{print $3}')")" \
    "$(command -v ab >/dev/null && echo "  ab: $(ab -V | awk '/^This is ApacheBench/ {print $5}' | tr -d ,)")"
echo "probe: $PCONNS keep-alive TLS 1.3 connections, a request every $PINT ms each (${PROBE_NICE[*]:-nice 0})," \
    "${SECS}s recorded after ${WARMUP}s; storms: ${STORMS[*]} concurrent full handshakes over $STORM_PROCS clients (nice $STORM_NICE);" \
    "$RUNS rounds, configurations alternated; medians"

total=0
for server in "${SERVERS[@]}"; do
    if [ "$server" = haproxy ]; then n=${#HAPROXY_MODES[@]}; else n=${#REF_MODES[@]}; fi
    total=$((total + RUNS * ${#CERTS[@]} * ${#STORMS[@]} * n))
done
step=0
for server in "${SERVERS[@]}"; do
    if [ "$server" = haproxy ]; then MODES=("${HAPROXY_MODES[@]}"); else MODES=("${REF_MODES[@]}"); fi
    for ((r = 1; r <= RUNS; r++)); do
        for cert in "${CERTS[@]}"; do
            for storm in "${STORMS[@]}"; do
                for i in "${!MODES[@]}"; do
                    IFS='|' read -r name nthr async conf <<<"${MODES[$i]}"
                    step=$((step + 1))
                    printf '[%d/%d] %s %s, %s: %s (round %d of %d) ... ' "$step" "$total" \
                        "$server" "$cert" "$(storm_name "$storm")" "$name" "$r" "$RUNS" >&2
                    key=$server-$cert-$storm-$i
                    if [ "$server" = haproxy ]; then
                        start_haproxy "$nthr" "$async" "$conf" "$cert" || { stop_servers; continue; }
                    else
                        start_ref "$nthr" "$async" "$conf" "$cert" || { stop_servers; continue; }
                    fi
                    # Not in $(...): the probe and the storm stay this shell's children (cleanup).
                    measure "$server" "$cert" "$storm" "$conf" "$RESULTS/raw/$key.txt" >"$OUT/line"
                    line=$(cat "$OUT/line")
                    alive=1
                    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || alive=0; done
                    stop_servers
                    [ "$alive" -eq 1 ] || { line="nan nan nan nan 1 0 ? - - -"; echo "(server died)" >&2; }
                    echo "$line" >>"$OUT/$key"
                    read -r p50 p99 p999 pmax perr rate serr inl off idle <<<"$line"
                    printf 'p50 %s p99 %s p99.9 %s max %s ms, errors %s%s%s, CPU idle %s%%\n' "$p50" "$p99" \
                        "$p999" "$pmax" "$perr" "$([ "$storm" -gt 0 ] && echo ", storm $rate hs/s, $serr failed")" \
                        "$([ "$inl" != - ] && echo ", signatures $off offloaded $inl inline")" "$idle" >&2
                done
            done
        done
    done
done

# ---- the table ----
{
    echo "# TLS tail latency under a handshake storm"
    echo
    echo "$(date -u +%Y-%m-%d) · $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores ·" \
        "OpenSSL $(openssl version | awk '{print $2}')$(command -v haproxy >/dev/null &&
            echo " · HAProxy $(haproxy -v | head -1 | awk '{print $3}')")"
    echo
    echo "Probe: $PCONNS keep-alive TLS 1.3 connections, one request every $PINT ms on each, latency from" \
        "the time each request was due, ${SECS} s recorded per run. Storm: N concurrent connections of" \
        "new full TLS 1.3 handshakes (HAProxy: ab -f TLS1.3; reference server: tls_ref_client)." \
        "Medians of $RUNS interleaved runs; errors summed over the runs."
    for server in "${SERVERS[@]}"; do
        if [ "$server" = haproxy ]; then MODES=("${HAPROXY_MODES[@]}"); title="HAProxy"
        else MODES=("${REF_MODES[@]}"); title="Reference server (test/tls_ref_server)"; fi
        for cert in "${CERTS[@]}"; do
            echo
            echo "## $title, $cert"
            echo
            echo "| storm | configuration | p50 ms | p99 ms | p99.9 ms | max ms | storm hs/s | CPU idle % | probe errors | storm failed | signatures offloaded / inline |"
            echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            for storm in "${STORMS[@]}"; do
                for i in "${!MODES[@]}"; do
                    IFS='|' read -r name _ _ _ <<<"${MODES[$i]}"
                    f=$OUT/$server-$cert-$storm-$i
                    [ -f "$f" ] || { echo "| $(storm_name "$storm") | $name | - | - | - | - | - | - | - | - | - |"; continue; }
                    col() { awk -v c="$1" '{print $c}' "$f"; }
                    rate=-
                    [ "$storm" -eq 0 ] || rate=$(col 6 | median)
                    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(storm_name "$storm")" \
                        "$name" "$(col 1 | median)" "$(col 2 | median)" "$(col 3 | median)" \
                        "$(col 4 | median)" "$rate" "$(col 10 | median)" "$(col 5 | sum)" \
                        "$([ "$storm" -eq 0 ] && echo - || col 7 | sum)" \
                        "$(o=$(col 9 | sum); [ "$o" = - ] && echo - || echo "$o / $(col 8 | sum)")"
                done
            done
        done
    done
    echo
    echo "signatures offloaded / inline: the provider's offload-signature-offloaded and -inline, summed over the" \
        "runs (offload rows only); inline ones ran on the event loop's thread. CPU idle: the share of both" \
        "cores idle (/proc/stat) from the probe's start to the storm's end; a storm that leaves the cores idle" \
        "is limited by its client, not by the server. Storm: $STORM_PROCS client processes at nice $STORM_NICE, sharing its connections."
} >"$RESULTS/tls-latency.md"

# ---- the plots: CDF and 1 - CDF, one curve per configuration, a column per storm ----
cdf() { # raw file -> "ms F 1-F" (pooled runs, sorted; at most ~4000 points)
    sort -g "$1" | awk '{a[NR] = $1} END {n = NR; step = n > 4000 ? n / 4000 : 1
        for (k = 1; k <= n; k += step) {i = int(k); printf "%s %.6f %.6g\n", a[i], i / n, 1 - (i - 1) / n}
        if (n) printf "%s 1 %.6g\n", a[n], 1 / n}'
}
for server in "${SERVERS[@]}"; do
    if [ "$server" = haproxy ]; then MODES=("${HAPROXY_MODES[@]}"); title="HAProxy"
    else MODES=("${REF_MODES[@]}"); title="tls_ref_server"; fi
    for cert in "${CERTS[@]}"; do
        png=$RESULTS/tls-latency-$server-$cert.png
        gp=$OUT/plot.gp
        ns=${#STORMS[@]}
        {
            echo "set terminal pngcairo noenhanced size $((ns * 520)),760 font ',10'"
            echo "set output '$png'"
            echo "set multiplot layout 2,$ns title '$title, $cert: keep-alive request latency ($PCONNS connections, every $PINT ms)'"
            echo "set logscale x"
            echo "set grid xtics ytics mxtics"
            echo "set key bottom right"
            for row in cdf ccdf; do
                for storm in "${STORMS[@]}"; do
                    if [ $row = cdf ]; then
                        echo "unset logscale y; set yrange [0:1]; set ylabel 'fraction of requests (CDF)'; set key bottom right"
                        ycol=2
                    else
                        echo "set logscale y; set yrange [1e-4:1]; set ylabel 'fraction slower (1 - CDF)'; set key top right"
                        ycol=3
                    fi
                    echo "set xlabel 'latency (ms)'"
                    echo "set title '$(storm_name "$storm")$([ "$storm" -gt 0 ] && echo " handshakes at once")'"
                    plots=()
                    for i in "${!MODES[@]}"; do
                        IFS='|' read -r name _ _ _ <<<"${MODES[$i]}"
                        d=$OUT/cdf-$server-$cert-$storm-$i
                        [ -s "$RESULTS/raw/$server-$cert-$storm-$i.txt" ] || continue
                        [ -f "$d" ] || cdf "$RESULTS/raw/$server-$cert-$storm-$i.txt" >"$d"
                        plots+=("'$d' using 1:$ycol with lines lw 2 title '$name'")
                    done
                    if [ ${#plots[@]} -gt 0 ]; then
                        (IFS=,; echo "plot ${plots[*]}")
                    else
                        echo "set label 1 'no data' at graph 0.5,0.5 center; plot NaN notitle; unset label 1"
                    fi
                done
            done
            echo "unset multiplot"
        } >"$gp"
        gnuplot "$gp" 2>"$OUT/gnuplot.err" || { echo "gnuplot failed:" >&2; cat "$OUT/gnuplot.err" >&2; }
    done
done

echo
cat "$RESULTS/tls-latency.md"
echo
echo "table: $RESULTS/tls-latency.md; plots: $(printf '%s ' "$RESULTS"/*.png)"
echo "raw latencies (ms, pooled runs): $RESULTS/raw/<server>-<cert>-<storm>-<configuration index>.txt"

# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2034 # SAN_ENV, SAN_PRELOAD, FAILS: the sourcing script's
# Shared by the shell tests and the TLS benchmarks: source it, then call.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# SAN_ENV: a command prefix (an array) for uninstrumented programs that load
# an offload.so built with sanitizers (scripts/test's second pass): their
# runtimes preloaded, and those programs' own leaks not ours to report.
# Empty for a plain build. $1: the directory of offload.so.
san_env_for() {
    local preload
    SAN_ENV=()
    preload=$(ldd "$1/offload.so" 2>/dev/null |
        awk '/lib(asan|ubsan)\.so/ {print $3}' | paste -sd: -)
    SAN_PRELOAD=$preload
    if [ -n "$preload" ]; then
        SAN_ENV=(env "LD_PRELOAD=$preload" "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
        echo "offload.so is instrumented: preloading $preload"
    fi
}

# Writes an openssl.cnf that loads default + offload and prefers offload,
# as conf/offload.cnf does. $1: the file; $2: the module (a name found in
# OPENSSL_MODULES, or a path); further arguments: "key = value" lines for
# the provider's section.
write_offload_conf() {
    local file=$1 module=$2
    shift 2
    {
        cat <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = algorithm_sect
[provider_sect]
default = default_sect
offload = offload_sect
[default_sect]
activate = 1
[offload_sect]
module = $module
activate = 1
EOF
        local kv
        for kv in "$@"; do echo "$kv"; done
        cat <<EOF
[algorithm_sect]
default_properties = ?provider=offload
EOF
    }>"$file"
}

# A benchmark's offload configuration: write_offload_conf FILE offload.so
# with the keys given after FILE and MODULES ("key = value" each) and then
# those of OFFLOAD_OPTS ("key=value ...", no spaces around "="). Exits
# unless the file activates offload from MODULES: an "offload" row that
# silently ran the default provider would be a lie.
bench_offload_conf() {
    local file=$1 modules=$2 kv opts=()
    shift 2
    opts=("$@")
    for kv in ${OFFLOAD_OPTS:-}; do
        [[ $kv =~ ^[a-z0-9_]+=[^=]+$ ]] ||
            { echo "OFFLOAD_OPTS: \"$kv\" is not key=value (no spaces around =)" >&2; exit 2; }
        opts+=("${kv%%=*} = ${kv#*=}")
    done
    write_offload_conf "$file" offload.so "${opts[@]}"
    if ! OPENSSL_MODULES=$modules OPENSSL_CONF=$file openssl list -providers 2>&1 |
        awk '/^  offload$/ { ours = 1 } ours && /status: active/ { ok = 1 } END { exit !ok }'; then
        echo "$file does not activate offload from $modules:" >&2
        sed 's/^/    /' "$file" >&2
        exit 1
    fi
}

# A self-signed certificate made by the default provider alone:
# $1/$2.key and $1/$2.crt (CN=localhost). Further arguments: openssl req's
# key options (-newkey rsa:2048, -newkey ec -pkeyopt ...). Exits on failure.
make_cert() {
    local dir=$1 name=$2
    shift 2
    if ! OPENSSL_CONF=/dev/null openssl req -x509 -nodes -days 2 -subj /CN=localhost "$@" \
        -keyout "$dir/$name.key" -out "$dir/$name.crt" >"$dir/req.log" 2>&1; then
        echo "FAIL: cannot make the $name certificate:"
        cat "$dir/req.log"
        exit 1
    fi
}

# The value of counter $2 in the provider's stats file $1 ("name value"
# lines, rewritten twice a second); 0 when absent.
stat_in() {
    local v
    v=$(awk -v k="$2" '$1 == k {print $2}' "$1" 2>/dev/null)
    echo "${v:-0}"
}

# stats_settle FILE: returns once the provider has replaced FILE twice since
# the call (the first replacement may hold counters read before it), so the
# counters read next include everything done before the call; gives up after
# 15 s. A fixed sleep is not enough on a loaded machine (sanitizer legs).
stats_settle() {
    local f=$1 last now seen=0 i
    last=$(stat -c %.9Y "$f" 2>/dev/null || echo none)
    for ((i = 0; i < 300 && seen < 2; i++)); do
        sleep 0.05
        now=$(stat -c %.9Y "$f" 2>/dev/null || echo none)
        if [ "$now" != "$last" ]; then
            seen=$((seen + 1))
            last=$now
        fi
    done
}

# fail MESSAGE: prints it and counts it in FAILS.
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}

# wait_ready PID CMD...: runs CMD every 0.05 s, for up to 5 s, while
# process PID lives; 0 as soon as CMD succeeds, 1 when PID died or time ran out.
wait_ready() {
    local pid=$1 i
    shift
    for ((i = 0; i < 100; i++)); do
        "$@" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# s_server_start LOG CONF STATS ARGS...: openssl s_server -async on a
# random port of 127.0.0.1 with OPENSSL_CONF=CONF, OFFLOAD_STATS_FILE=STATS,
# the sanitizer environment (SAN_ENV) and ARGS; its output in LOG. Sets
# PORT and SRV_PID once it prints ACCEPT; tries another port when the
# chosen one is taken; 1 (LOG printed) when it does not start.
s_server_start() {
    local log=$1 conf=$2 stats=$3 try
    shift 3
    for ((try = 0; try < 10; try++)); do
        PORT=$((20000 + RANDOM % 30000))
        # Emptied here, before the server starts: the loop below must not
        # read the last server's ACCEPT while this one is still starting.
        : >"$log"
        OPENSSL_CONF=$conf OFFLOAD_STATS_FILE=$stats "${SAN_ENV[@]}" \
            openssl s_server -async -accept "127.0.0.1:$PORT" "$@" >"$log" 2>&1 </dev/null &
        SRV_PID=$!
        wait_ready "$SRV_PID" grep -q '^ACCEPT' "$log" && return 0
        s_server_stop
        grep -q 'Address already in use' "$log" || break
    done
    echo "FAIL: s_server did not start:"
    cat "$log"
    return 1
}

# s_server_stop: ends the server s_server_start started, if any.
s_server_stop() {
    if [ -n "${SRV_PID:-}" ]; then
        kill "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
    fi
    SRV_PID=
}

# ---- for the benchmarks (scripts/bench_*.sh) ----

# A free port on 127.0.0.1 (bash /dev/tcp: refused means nobody listens).
free_port() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# The median of the numbers on stdin, one a line; "nan" when there are none.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# $1 / $2 to two places; "-" when $2 is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }

# The median of the paired ratios of column $3 in files $1 and $2: line i of
# $1 over line i of $2 (rates of two configurations measured side by side in
# run i), to two places; "-" when no pair has a positive denominator. A
# machine whose speed drifts between runs moves both halves of a pair alike.
paired_ratio() {
    paste -d' ' "$1" "$2" | awk -v c="$3" '{n = NF / 2; if ($(n + c) > 0) print $c / $(n + c)}' |
        median | awk '{if ($1 == "nan") print "-"; else printf "%.2f", $1}'
}

# haproxy_cfg FILE NBTHREAD ASYNC(0/1) CRT PORT [TIMEOUT]: the benchmarks'
# HAProxy, one TLS listener on 127.0.0.1 that answers "ok"; no session cache
# and no tickets, so every connection is a full handshake. TIMEOUT (default
# 10s) for client, server and keep-alive. HAPROXY_TUNE ("keyword=value ...")
# adds lines to the global section ("tune.maxpollevents=4").
haproxy_cfg() {
    local t=${6:-10s}
    {
        echo "global"
        echo "    nbthread $2"
        [ "$3" -eq 1 ] && echo "    ssl-mode-async"
        echo "    ssl-server-verify none"
        echo "    tune.ssl.cachesize 0"
        echo "    ssl-default-bind-options no-tls-tickets"
        echo "    maxconn 4096"
        local g
        for g in ${HAPROXY_TUNE:-}; do echo "    ${g/=/ }"; done
        echo "defaults"
        echo "    mode http"
        echo "    timeout connect 5s"
        echo "    timeout client $t"
        echo "    timeout server $t"
        echo "    timeout http-keep-alive $t"
        echo "frontend fe"
        echo "    bind 127.0.0.1:$5 ssl crt $4"
        echo "    http-request return status 200 content-type text/plain string ok"
    } >"$1"
}

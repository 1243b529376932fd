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

# fail MESSAGE: prints it and counts it in FAILS.
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}

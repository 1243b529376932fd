#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `openssl speed -async_jobs` through offload: the program most people
# measure an async provider with. Each row runs with offload loaded from a
# generated openssl.cnf; it must exit 0, print a rate, and the provider's
# stats file must show the work offloaded (signatures, key exchanges and
# 16 KiB cipher records went to the workers while speed's jobs paused).
#
# Needs OPENSSL_MODULES pointing at the directory of offload.so (meson
# sets it, and puts the build's OpenSSL first in PATH).
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
san_env_for "$OPENSSL_MODULES"

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
write_offload_conf "$DIR/offload.cnf" offload.so "busy_inline = 0"
echo "openssl: $(openssl version)"

# row: a name, the family whose offloaded counter must grow, speed's arguments.
row() {
    local name=$1 family=$2 after rate out=$DIR/$1.out
    shift 2
    rm -f "$DIR/stats"
    OPENSSL_CONF=$DIR/offload.cnf OFFLOAD_STATS_FILE=$DIR/stats timeout 120 \
        "${SAN_ENV[@]}" openssl speed -elapsed -seconds 1 -async_jobs 8 "$@" \
        >"$out" 2>"$DIR/$name.err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$name: openssl speed exited with $rc"
        sed 's/^/    /' "$DIR/$name.err" | tail -5
        return
    fi
    # The rate: under its column header (sign/s, op/s), or a cipher's k-bytes/s.
    rate=$(awk '{for (i = 1; i <= NF; i++) if ($i == "sign/s" || $i == "op/s") {r = NF - i; want = 1; next}}
                want && !done && NF > r + 1 {print $(NF - r); done = 1}
                /^(AES|aes)-128-(GCM|gcm) / && $NF ~ /k$/ && !done {sub(/k$/, "", $NF); print $NF; done = 1}' "$out")
    awk -v r="${rate:-0}" 'BEGIN {exit !(r > 0)}' || fail "$name: no rate in the output"
    # The stats file is rewritten twice a second and once more at unload.
    after=$(stat_in "$DIR/stats" "offload-$family-offloaded")
    [ "$after" -gt 0 ] || fail "$name: offload-$family-offloaded is $after"
    printf '  %-18s %12s/s, %s offloaded %s, pauses %s\n' "$name" "$rate" "$family" "$after" \
        "$(stat_in "$DIR/stats" "offload-$family-pauses")"
}

row rsa2048 signature rsa2048
row ecdsap256 signature ecdsap256
row ed25519 signature ed25519
row ecdhx25519 keyexch ecdhx25519
row aes-128-gcm-16k cipher -evp aes-128-gcm -bytes 16384

if [ "$FAILS" -ne 0 ]; then
    echo "speed_test: $FAILS failure(s)"
    exit 1
fi
echo "speed_test: every row ran through offload"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tls_ref: the reference async TLS server (test/tls_ref_server.c) under
# load from test/tls_ref_client.c, with the offload provider loaded from a
# generated openssl.cnf (module from $OPENSSL_MODULES, set by meson).
#
#   tls_ref_test.sh SERVER CLIENT
#
# For fd mode and callback mode, TLS 1.3 (RSA-2048, ECDSA P-256, Ed25519)
# and TLS 1.2 (RSA-2048, ECDSA P-256): hundreds of concurrent full
# handshakes with replies checked byte by byte, ~10% of the clients
# vanishing after their ClientHello. Each case asserts:
#   - the client saw no error (exit 0: every handshake, every byte),
#   - the server saw no TLS error of its own and exits cleanly on SIGTERM
#     (under ASan: no sanitizer report, no leak),
#   - the provider offloaded signatures (server --stats, and the
#     OFFLOAD_STATS_FILE the provider rewrites twice a second),
#   - the server's open fds (/proc/PID/fd) are back to the count measured
#     after startup, and its own fd table holds no async fd.
# Across each mode, some connections must have been freed while their job
# was paused (the case the provider must survive).
#
# Then, with a lighter load, the key exchanges beyond (EC)DHE: TLS 1.3 with
# ffdhe2048, TLS 1.2 DHE and RSA key transport, and where this OpenSSL
# offers them X25519MLKEM768 with an RSA and an ML-DSA-65 certificate; each
# asserts that its family's operations were offloaded and none failed.
#
# TLS_REF_CONNS and TLS_REF_HANDSHAKES scale the load (default 200 / 600),
# TLS_REF_KX_CONNS and TLS_REF_KX_HANDSHAKES that of the key exchanges
# (50 / 200).
set -euo pipefail

SERVER=${1:?usage: tls_ref_test.sh SERVER CLIENT}
CLIENT=${2:?usage: tls_ref_test.sh SERVER CLIENT}
: "${OPENSSL_MODULES:?OPENSSL_MODULES: the directory of offload.so}"
MODULE=$OPENSSL_MODULES/offload.so
CONNS=${TLS_REF_CONNS:-200}
HANDSHAKES=${TLS_REF_HANDSHAKES:-600}
KX_CONNS=${TLS_REF_KX_CONNS:-50}
KX_HANDSHAKES=${TLS_REF_KX_HANDSHAKES:-200}
[ -f "$MODULE" ] || { echo "tls_ref: no $MODULE"; exit 1; }

TMP=$(mktemp -d /tmp/tls_ref.XXXXXX)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export OPENSSL_CONF=/dev/null
make_cert "$TMP" rsa -newkey rsa:2048
make_cert "$TMP" ecdsa -newkey ec -pkeyopt ec_paramgen_curve:P-256
make_cert "$TMP" ed25519 -newkey ed25519
# The post-quantum cases where the default provider offers them (3.5+):
# decided by what this OpenSSL has, never by its version number.
HAVE_MLKEM=0
HAVE_MLDSA=0
openssl list -kem-algorithms 2>/dev/null | grep -q X25519MLKEM768 && HAVE_MLKEM=1
if openssl list -signature-algorithms 2>/dev/null | grep -q ML-DSA-65; then
    HAVE_MLDSA=1
    make_cert "$TMP" mldsa65 -newkey ML-DSA-65
fi
write_offload_conf "$TMP/offload.cnf" "$MODULE"

declare -A FREED_PAUSED=([fd]=0 [callback]=0)
CASE=0

stat_of() { # name, file: the value of a "name value" line, or empty
    awk -v k="$1" '$1 == k {print $2; exit}' "$2" 2>/dev/null || true
}
# shellcheck disable=SC2012 # fd numbers: ls | wc -l is exact here
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
sanitizer_report() { # files...
    grep -E -l "ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:" "$@" 2>/dev/null || true
}

# run_case MODE TLS CERT BYTES VANISH [GROUPS [CIPHERS [FAMILY]]]: the
# client offers GROUPS (its default when empty) and the TLS 1.2 suites
# CIPHERS; FAMILY (signature when absent) is the family whose offloaded
# counter must move on the server: kem for an ML-KEM group (the server
# encapsulates), keyexch for FFDHE, asymcipher for TLS 1.2 RSA key
# transport (whose server signs nothing).
run_case() {
    local mode=$1 tls=$2 cert=$3 bytes=$4 vanish=$5 groups=${6:-} ciphers=${7:-}
    local fam=${8:-signature} copts=()
    local name="$mode tls$tls $cert bytes=$bytes vanish=$vanish${groups:+ groups=$groups}${ciphers:+ ciphers=$ciphers}"
    [ -n "$groups" ] && copts+=(--groups "$groups")
    [ -n "$ciphers" ] && copts+=(--ciphers "$ciphers")
    local out=$TMP/server.$CASE.out err=$TMP/server.$CASE.err stats=$TMP/stats.$CASE
    local cout=$TMP/client.$CASE.out cerr=$TMP/client.$CASE.err
    local port="" i base n rc v offl sfile
    CASE=$((CASE + 1))

    OPENSSL_CONF=$TMP/offload.cnf OFFLOAD_STATS_FILE=$stats \
        "$SERVER" --port 0 --mode "$mode" "--tls$tls" --cert "$TMP/$cert.crt" \
        --key "$TMP/$cert.key" --max-conns 512 --vanish "$vanish" --stats >"$out" 2>"$err" &
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        port=$(awk '/^listening on/ {split($3, a, ":"); print a[2]; exit}' "$out" 2>/dev/null || true)
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        fail "$name: the server did not start"
        cat "$err"
        return
    fi
    if ! grep -q "offload yes" "$out"; then
        fail "$name: the offload provider is not loaded"
        cat "$err"
    fi
    # Baseline after startup: the least of a few looks (the provider's
    # stats thread holds a file open for an instant twice a second).
    base=$(nfds "$SERVER_PID")
    for ((i = 0; i < 4; i++)); do
        sleep 0.05
        n=$(nfds "$SERVER_PID")
        [ "$n" -lt "$base" ] && base=$n
    done

    rc=0
    timeout 150 "$CLIENT" --port "$port" --conns "$CONNS" --handshakes "$HANDSHAKES" \
        --requests 2 --bytes "$bytes" --vanish 0.1 "--tls$tls" "${copts[@]}" \
        --cafile "$TMP/$cert.crt" >"$cout" 2>"$cerr" || rc=$?
    echo "  $name: $(sed 's/^tls_ref_client: //' "$cout")"
    if [ "$rc" -ne 0 ]; then
        fail "$name: client exit $rc"
        head -n 30 "$cerr"
    fi

    # The server must be alive and back to its baseline of fds.
    n=-1
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        n=$(nfds "$SERVER_PID")
        [ "$n" -eq "$base" ] && break
        sleep 0.1
    done
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        fail "$name: the server died"
    elif [ "$n" -ne "$base" ]; then
        fail "$name: the server holds $n fds after the load, $base after startup"
        ls -l "/proc/$SERVER_PID/fd"
    fi

    # The provider's own stats file: rewritten twice a second.
    sfile=""
    for ((i = 0; i < 30; i++)); do
        sfile=$(stat_of "offload-$fam-offloaded" "$stats")
        [ -n "$sfile" ] && [ "$sfile" -gt 0 ] && break
        sleep 0.1
    done

    kill -TERM "$SERVER_PID" 2>/dev/null || true
    rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    if [ "$rc" -ne 0 ]; then
        fail "$name: server exit $rc"
        tail -n 40 "$err"
    fi

    offl=$(stat_of "offload-$fam-offloaded" "$out")
    if [ -z "$offl" ] || [ "$offl" -eq 0 ]; then
        fail "$name: no $fam operation offloaded (server --stats: '${offl}')"
    fi
    if [ -z "$sfile" ] || [ "$sfile" -eq 0 ]; then
        fail "$name: no $fam operation offloaded in OFFLOAD_STATS_FILE ('${sfile}')"
    fi
    v=$(stat_of "offload-$fam-failed" "$out")
    [ "${v:-0}" -eq 0 ] || fail "$name: $v $fam operations failed on the server"
    for v in server-ssl_errors server-live server-bad_requests server-idle_timeouts; do
        if [ "$(stat_of "$v" "$out")" != 0 ]; then
            fail "$name: $v = $(stat_of "$v" "$out")"
            head -n 20 "$err"
        fi
    done
    if [ "$(stat_of server-async_fd_adds "$out")" != "$(stat_of server-async_fd_dels "$out")" ]; then
        fail "$name: async fds added $(stat_of server-async_fd_adds "$out"), removed $(stat_of server-async_fd_dels "$out")"
    fi
    if [ "$(stat_of server-handshakes "$out")" -lt "$((HANDSHAKES * 8 / 10))" ]; then
        fail "$name: only $(stat_of server-handshakes "$out") handshakes on the server"
    fi
    v=$(stat_of server-freed_paused "$out")
    FREED_PAUSED[$mode]=$((FREED_PAUSED[$mode] + ${v:-0}))
    echo "    server: handshakes $(stat_of server-handshakes "$out")" \
        "pauses $(stat_of server-async_pauses "$out")" \
        "freed-paused $(stat_of server-freed_paused "$out")" \
        "finished-paused $(stat_of server-finished_paused "$out")" \
        "callbacks $(stat_of server-callbacks "$out");" \
        "offloaded: signature $(stat_of offload-signature-offloaded "$out")" \
        "keyexch $(stat_of offload-keyexch-offloaded "$out")" \
        "kem $(stat_of offload-kem-offloaded "$out")" \
        "asymcipher $(stat_of offload-asymcipher-offloaded "$out")" \
        "keygen $(stat_of offload-keygen-offloaded "$out")" \
        "cipher $(stat_of offload-cipher-offloaded "$out")"
    if [ -n "$(sanitizer_report "$err" "$cerr")" ]; then
        fail "$name: sanitizer report"
        cat "$err" "$cerr"
    fi
}

for mode in fd callback; do
    echo "== mode $mode"
    run_case "$mode" 1.3 rsa 4096 free
    run_case "$mode" 1.3 ecdsa 40000 free
    run_case "$mode" 1.3 ed25519 4096 free
    run_case "$mode" 1.2 rsa 40000 free
    run_case "$mode" 1.2 ecdsa 4096 free
    run_case "$mode" 1.3 rsa 4096 finish
    # Key exchanges beyond (EC)DHE, with a lighter load each.
    HANDSHAKES=$KX_HANDSHAKES CONNS=$KX_CONNS run_case "$mode" 1.3 rsa 1024 free ffdhe2048 "" keyexch
    HANDSHAKES=$KX_HANDSHAKES CONNS=$KX_CONNS run_case "$mode" 1.2 rsa 1024 free "" \
        DHE-RSA-AES128-GCM-SHA256 keyexch
    HANDSHAKES=$KX_HANDSHAKES CONNS=$KX_CONNS run_case "$mode" 1.2 rsa 1024 free "" \
        AES128-GCM-SHA256 asymcipher
    if [ "$HAVE_MLKEM" = 1 ]; then
        HANDSHAKES=$KX_HANDSHAKES CONNS=$KX_CONNS run_case "$mode" 1.3 rsa 1024 free \
            X25519MLKEM768 "" kem
    fi
    if [ "$HAVE_MLDSA" = 1 ]; then
        HANDSHAKES=$KX_HANDSHAKES CONNS=$KX_CONNS run_case "$mode" 1.3 mldsa65 1024 free \
            X25519MLKEM768 "" signature
    fi
    if [ "${FREED_PAUSED[$mode]}" -eq 0 ]; then
        fail "mode $mode: no connection was freed while its job was paused"
    fi
done

if [ "$FAILS" -ne 0 ]; then
    if grep -q "no suitable key share" "$TMP"/server.*.err 2>/dev/null; then
        echo "hint: the server found no TLS group: with default_properties ?provider=offload"
        echo "      libssl takes a group only from the provider whose keymgmt it fetches,"
        echo "      so offload must publish the TLS-GROUP capability (get_capabilities)."
    fi
    echo "tls_ref: FAILED"
    exit 1
fi
echo "tls_ref: all cases passed"

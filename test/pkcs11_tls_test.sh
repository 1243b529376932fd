#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# TLS with token keys: openssl s_server -async through offload (an
# openssl.cnf with pkcs11_module and pkcs11_pin_file), its -key a key-URI
# file (scripts/p11uri-pem) of the token's RSA key and -dkey one of its
# P-256 key, its certificates self-signed with those very files by
# `openssl req -x509` through offload. TLS 1.3 handshakes from s_client
# with rsa_pss_rsae_sha256 and ecdsa_secp256r1_sha256 complete and get
# the -www page; the server's stats file shows the signatures offloaded
# to the token threads while its jobs were paused (signature offloaded
# and pauses > 0, failed 0). Twice: with SoftHSM2 loaded in the server,
# then with the same token served by `p11-kit server` and offload loading
# p11-kit-client.so (test/p11_remote.sh).
#
# softhsm2, opensc, p11-kit or its client module missing: the test fails.
# Needs OPENSSL_MODULES pointing at the directory of offload.so (meson
# sets it); servers listen on 127.0.0.1 only, started and stopped here by pid.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES
HERE=$(dirname "${BASH_SOURCE[0]}")
P11URI_PEM=${OFFLOAD_P11URI_PEM:-$HERE/../scripts/p11uri-pem}
REPS=${REPS:-2}

# shellcheck source=test/lib.sh
source "$HERE/lib.sh"
san_env_for "$OPENSSL_MODULES"
# shellcheck source=test/p11_remote.sh
source "$HERE/p11_remote.sh"

DIR=$(mktemp -d)
SRV_PID=
cleanup() {
    s_server_stop
    p11_remote_stop
    rm -rf "$DIR"
}
trap cleanup EXIT
echo "openssl: $(openssl version)"

# ---- the local token, its key-URI files, certificates signed by the token ----
bash "$HERE/pkcs11_token.sh" "$DIR" || { echo "FAIL: cannot make the token"; exit 1; }
export SOFTHSM2_CONF=$DIR/softhsm2.conf
write_offload_conf "$DIR/local.cnf" offload.so \
    "pkcs11_module = $P11_SOFTHSM" "pkcs11_pin_file = $DIR/pin"
for k in rsa ec; do
    "$P11URI_PEM" "pkcs11:token=edge;object=tls-$k;type=private" "$DIR/$k.key.pem" ||
        { echo "FAIL: scripts/p11uri-pem"; exit 1; }
    if ! OPENSSL_CONF=$DIR/local.cnf "${SAN_ENV[@]}" openssl req -x509 -new -key "$DIR/$k.key.pem" \
        -subj /CN=localhost -days 2 -sha256 -out "$DIR/$k.crt" 2>"$DIR/err"; then
        echo "FAIL: openssl req -x509 -key $k.key.pem (signed by the token) failed:"
        cat "$DIR/err"
        exit 1
    fi
    # The certificate's key is the token's, and its self-signature verifies.
    OPENSSL_CONF=/dev/null openssl verify -CAfile "$DIR/$k.crt" "$DIR/$k.crt" >/dev/null ||
        fail "$k.crt: its self-signature (made by the token) does not verify"
done
echo "certificates self-signed by the token's keys through their key-URI files"

# start_server CONF STATS: s_server -async with config CONF (stats into STATS),
# the token keys' URI files: the RSA certificate, and P-256 as -dcert.
start_server() {
    s_server_start "$DIR/server.log" "$1" "$2" -www \
        -cert "$DIR/rsa.crt" -key "$DIR/rsa.key.pem" \
        -dcert "$DIR/ec.crt" -dkey "$DIR/ec.key.pem" || {
        FAILS=$((FAILS + 1))
        return 1
    }
}

# handshakes WHAT: REPS TLS 1.3 handshakes per signature scheme, each a -www request.
handshakes() {
    local what=$1 sigalg r ok=0 ca
    for ((r = 0; r < REPS; r++)); do
        for sigalg in rsa_pss_rsae_sha256 ecdsa_secp256r1_sha256; do
            ca=$DIR/rsa.crt
            [ "$sigalg" = ecdsa_secp256r1_sha256 ] && ca=$DIR/ec.crt
            printf 'GET / HTTP/1.0\r\n\r\n' |
                OPENSSL_CONF=/dev/null timeout 20 openssl s_client -brief -ign_eof -tls1_3 \
                    -sigalgs "$sigalg" -connect "127.0.0.1:$PORT" -servername localhost \
                    -verify_return_error -CAfile "$ca" \
                    >"$DIR/client.out" 2>"$DIR/client.err"
            local rc=$?
            if [ $rc -ne 0 ] || ! grep -aq '^HTTP/1.0 200 ok' "$DIR/client.out" ||
                ! grep -aq '^New, TLSv1.3, Cipher is' "$DIR/client.out"; then
                fail "$what: TLS 1.3 $sigalg: s_client rc $rc"
                sed 's/^/    /' "$DIR/client.err" | head -8
            else
                ok=$((ok + 1))
            fi
        done
    done
    echo "  $what: $ok TLS 1.3 handshakes completed (verified against the token-signed certificates)"
    HANDSHAKES=$ok
}

# check_stats WHAT FILE N: the server's counters after N handshakes.
check_stats() {
    local what=$1 stats=$2 n=$3 off inl
    stats_settle "$stats"
    off=$(stat_in "$stats" offload-signature-offloaded)
    inl=$(stat_in "$stats" offload-signature-inline)
    echo "  $what: signature offloaded=$off inline=$inl" \
        "completed=$(stat_in "$stats" offload-signature-completed)" \
        "pauses=$(stat_in "$stats" offload-signature-pauses)" \
        "failed=$(stat_in "$stats" offload-signature-failed)"
    [ "$off" -ge "$n" ] || fail "$what: $off signatures offloaded for $n handshakes"
    [ "$(stat_in "$stats" offload-signature-pauses)" -gt 0 ] || fail "$what: no job paused"
    [ "$(stat_in "$stats" offload-signature-failed)" -eq 0 ] || fail "$what: signatures failed"
    [ "$(stat_in "$stats" pid)" = "$SRV_PID" ] || fail "$what: the stats file is not the server's"
}

# ---- 1. SoftHSM2 in the server ----
if start_server "$DIR/local.cnf" "$DIR/local.stats"; then
    echo "s_server -async (pid $SRV_PID, 127.0.0.1:$PORT), keys on the local token"
    handshakes "local token"
    check_stats "local token" "$DIR/local.stats" "$HANDSHAKES"
    kill -0 "$SRV_PID" 2>/dev/null || fail "local token: s_server exited"
    s_server_stop
fi

# ---- 2. the same token through p11-kit server / p11-kit-client.so ----
mkdir -p "$DIR/remote"
if p11_remote_start "$DIR/remote" "$DIR"; then
    write_offload_conf "$DIR/remote.cnf" offload.so \
        "pkcs11_module = $P11_CLIENT" "pkcs11_pin_file = $DIR/pin"
    if start_server "$DIR/remote.cnf" "$DIR/remote.stats"; then
        echo "s_server -async (pid $SRV_PID, 127.0.0.1:$PORT), keys on the remote token" \
            "(p11-kit server pid $P11_SERVER_PID)"
        handshakes "remote token"
        check_stats "remote token" "$DIR/remote.stats" "$HANDSHAKES"
        kill -0 "$SRV_PID" 2>/dev/null || fail "remote token: s_server exited"
        s_server_stop
    fi
    p11_remote_stop
else
    fail "no remote token"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "server log:"
    sed 's/^/    /' "$DIR/server.log" | tail -20
    echo "pkcs11_tls_test: $FAILS failure(s)"
    exit 1
fi
echo "pkcs11_tls_test: TLS 1.3 with token keys from key-URI files, local and remote"

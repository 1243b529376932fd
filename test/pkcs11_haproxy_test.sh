#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HAProxy with token keys: Debian's HAProxy (linked to the system's
# OpenSSL 3.0), nbthread 1, ssl-mode-async, offload loaded through
# OPENSSL_CONF with pkcs11_module and pkcs11_pin_file; each frontend's
# `crt` is one PEM file holding a certificate and, after it, the key-URI
# file (scripts/p11uri-pem) of the token key it was signed with (the
# certificates are self-signed by the token through offload, `openssl req
# -x509 -key <key-URI file>`). HAProxy reads the key with
# PEM_read_bio_PrivateKey, i.e. through offload's decoder. TLS 1.3
# handshakes from curl and openssl s_client on the RSA-2048 and the P-256
# frontend complete and are answered; the stats file shows the signatures
# offloaded to the token threads (offloaded, pauses > 0, failed 0). Twice:
# SoftHSM2 in HAProxy, then the same token through p11-kit server and
# p11-kit-client.so.
#
# haproxy, curl, softhsm2, opensc, p11-kit missing: the test fails. Needs
# OPENSSL_MODULES (meson sets it); HAProxy listens on 127.0.0.1 only and
# is started and stopped here by pid. Registered only for a build against
# the OpenSSL HAProxy is linked to (3.0 here), like test/haproxy_test.sh.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES
HERE=$(dirname "${BASH_SOURCE[0]}")
P11URI_PEM=${OFFLOAD_P11URI_PEM:-$HERE/../scripts/p11uri-pem}
REPS=${REPS:-3}

# shellcheck source=test/lib.sh
source "$HERE/lib.sh"
san_env_for "$OPENSSL_MODULES"
# shellcheck source=test/p11_remote.sh
source "$HERE/p11_remote.sh"

for tool in haproxy curl openssl; do
    command -v $tool >/dev/null || { echo "FAIL: $tool not found (scripts/bootstrap installs it)"; exit 1; }
done

DIR=$(mktemp -d)
HAP_PID=
stop_haproxy() {
    if [ -n "$HAP_PID" ]; then
        kill "$HAP_PID" 2>/dev/null
        wait "$HAP_PID" 2>/dev/null
    fi
    HAP_PID=
}
cleanup() {
    stop_haproxy
    p11_remote_stop
    rm -rf "$DIR"
}
trap cleanup EXIT
echo "$(haproxy -v | head -1)"

# ---- the token, key-URI files, certificates signed by the token, crt files ----
bash "$HERE/pkcs11_token.sh" "$DIR" || { echo "FAIL: cannot make the token"; exit 1; }
export SOFTHSM2_CONF=$DIR/softhsm2.conf
write_offload_conf "$DIR/local.cnf" offload.so \
    "pkcs11_module = $P11_SOFTHSM" "pkcs11_pin_file = $DIR/pin"
for k in rsa ec; do
    "$P11URI_PEM" "pkcs11:token=edge;object=tls-$k;type=private" "$DIR/$k.key.pem" ||
        { echo "FAIL: scripts/p11uri-pem"; exit 1; }
    OPENSSL_CONF=$DIR/local.cnf "${SAN_ENV[@]}" openssl req -x509 -new -key "$DIR/$k.key.pem" \
        -subj /CN=localhost -days 2 -sha256 -out "$DIR/$k.crt" 2>"$DIR/err" ||
        { echo "FAIL: openssl req -x509 -key $k.key.pem:"; cat "$DIR/err"; exit 1; }
    cat "$DIR/$k.crt" "$DIR/$k.key.pem" >"$DIR/$k.pem" # HAProxy's crt: certificate, then key
done
echo "crt files: a token-signed certificate and the key-URI file of its key"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
listening_both() { listening "$PORT_RSA" && listening "$PORT_EC"; }

# Starts HAProxy with OPENSSL_CONF=$1, stats file $2: RSA frontend on
# PORT_RSA, P-256 on PORT_EC.
start_haproxy() {
    local conf=$1 stats=$2 try
    for ((try = 0; try < 10; try++)); do
        PORT_RSA=$((20000 + RANDOM % 30000))
        PORT_EC=$((PORT_RSA + 1))
        listening $PORT_RSA || listening $PORT_EC && continue
        cat >"$DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    ssl-mode-async
    tune.ssl.cachesize 0
    ssl-default-bind-options no-tls-tickets

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
        OPENSSL_CONF=$conf OFFLOAD_STATS_FILE=$stats \
            "${SAN_ENV[@]}" haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 </dev/null &
        HAP_PID=$!
        wait_ready "$HAP_PID" listening_both && return 0
        stop_haproxy
        grep -qi 'address already in use\|cannot bind' "$DIR/haproxy.log" || break
    done
    fail "haproxy did not start:"
    sed 's/^/    /' "$DIR/haproxy.log" | head -20
    return 1
}

# handshakes WHAT: REPS curl and REPS s_client TLS 1.3 requests per frontend.
handshakes() {
    local what=$1 port name r body rc
    N=0
    for name in rsa ec; do
        port=$PORT_RSA
        [ $name = ec ] && port=$PORT_EC
        for ((r = 0; r < REPS; r++)); do
            body=$(curl -sS --tlsv1.3 --max-time 20 --cacert "$DIR/$name.crt" \
                --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/" 2>"$DIR/curl.err")
            rc=$?
            if [ $rc -eq 0 ] && [ "$body" = ok ]; then
                N=$((N + 1))
            else
                fail "$what: curl TLS 1.3 $name: rc $rc, body '$body'"
                head -3 "$DIR/curl.err"
            fi
            printf 'GET / HTTP/1.0\r\n\r\n' |
                OPENSSL_CONF=/dev/null timeout 20 openssl s_client -brief -ign_eof -tls1_3 \
                    -servername localhost -verify_return_error -CAfile "$DIR/$name.crt" \
                    -connect "127.0.0.1:$port" >"$DIR/sc.out" 2>"$DIR/sc.err"
            rc=$?
            if [ $rc -eq 0 ] && grep -aq '^HTTP/1\.[01] 200' "$DIR/sc.out" &&
                grep -q 'Protocol version: TLSv1.3' "$DIR/sc.err"; then
                N=$((N + 1))
            else
                fail "$what: s_client TLS 1.3 $name: rc $rc"
                sed 's/^/    /' "$DIR/sc.err" | head -8
            fi
        done
        echo "  $what, $name frontend: $(grep -m1 '^Signature type' "$DIR/sc.err"), $(grep -m1 '^Ciphersuite' "$DIR/sc.err")"
    done
    echo "  $what: $N TLS 1.3 handshakes completed, certificates verified"
}

check_stats() {
    local what=$1 stats=$2 off
    stats_settle "$stats"
    off=$(stat_in "$stats" offload-signature-offloaded)
    echo "  $what: signature offloaded=$off inline=$(stat_in "$stats" offload-signature-inline)" \
        "pauses=$(stat_in "$stats" offload-signature-pauses)" \
        "failed=$(stat_in "$stats" offload-signature-failed)"
    [ "$off" -ge "$N" ] || fail "$what: $off signatures offloaded for $N handshakes"
    [ "$(stat_in "$stats" offload-signature-pauses)" -gt 0 ] || fail "$what: no job paused"
    [ "$(stat_in "$stats" offload-signature-failed)" -eq 0 ] || fail "$what: signatures failed"
    [ "$(stat_in "$stats" pid)" = "$HAP_PID" ] || fail "$what: the stats file is not HAProxy's"
}

run_leg() { # WHAT CONF STATS
    if start_haproxy "$2" "$3"; then
        echo "haproxy pid $HAP_PID on 127.0.0.1:$PORT_RSA (RSA-2048) and :$PORT_EC (P-256), $1"
        handshakes "$1"
        check_stats "$1" "$3"
        kill -0 "$HAP_PID" 2>/dev/null || fail "$1: haproxy exited: $(tail -3 "$DIR/haproxy.log")"
        stop_haproxy
    fi
}

run_leg "local token" "$DIR/local.cnf" "$DIR/local.stats"
mkdir -p "$DIR/remote"
if p11_remote_start "$DIR/remote" "$DIR"; then
    write_offload_conf "$DIR/remote.cnf" offload.so \
        "pkcs11_module = $P11_CLIENT" "pkcs11_pin_file = $DIR/pin"
    run_leg "remote token" "$DIR/remote.cnf" "$DIR/remote.stats"
    p11_remote_stop
else
    fail "no remote token"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "haproxy log:"
    sed 's/^/    /' "$DIR/haproxy.log" | tail -20
    echo "pkcs11_haproxy_test: $FAILS failure(s)"
    exit 1
fi
echo "pkcs11_haproxy_test: HAProxy serves TLS 1.3 with token keys from key-URI files"

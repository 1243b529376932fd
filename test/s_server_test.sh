#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# openssl s_server -async with the offload provider: TLS 1.2 and 1.3
# handshakes with an RSA-2048 and a P-256 certificate complete with every
# signature scheme and group offered alone and with the client's default
# groups, an HTTP request gets its page back, and the
# server's stats file shows signatures made on a worker while the
# server's job was paused (offload-signature-offloaded > 0); TLS 1.2 RSA
# key transport, DHE and TLS 1.3 ffdhe2048 offload their decryption and
# derives, and where the client's default group is the ML-KEM hybrid
# (3.5) the server's encapsulations go through offload's KEM.
#
# Needs OPENSSL_MODULES pointing at the directory of offload.so (meson
# sets it); the server listens on 127.0.0.1 only and is killed on exit.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
san_env_for "$OPENSSL_MODULES"
REPS=${REPS:-3}

DIR=$(mktemp -d)
SRV_PID=
cleanup() {
    s_server_stop
    rm -rf "$DIR"
}
trap cleanup EXIT

write_offload_conf "$DIR/offload.cnf" offload.so

# Keys and certificates come from the default provider alone.
make_cert "$DIR" rsa -newkey rsa:2048
make_cert "$DIR" ec -newkey ec -pkeyopt ec_paramgen_curve:P-256

# The provider must load from this config at all.
if ! OPENSSL_CONF=$DIR/offload.cnf "${SAN_ENV[@]}" openssl list -providers 2>&1 | grep -q 'offload'; then
    OPENSSL_CONF=$DIR/offload.cnf "${SAN_ENV[@]}" openssl list -providers
    echo "FAIL: openssl does not load the offload provider from the generated config"
    exit 1
fi

stat_of() { stat_in "$DIR/stats" "$1"; } # counter -> value from the server's stats file

# Starts s_server on a free port: RSA certificate first, P-256 one as the
# second (-dcert), chosen by the client's signature algorithms.
s_server_start "$DIR/server.log" "$DIR/offload.cnf" "$DIR/stats" -www \
    -cert "$DIR/rsa.crt" -key "$DIR/rsa.key" -dcert "$DIR/ec.crt" -dkey "$DIR/ec.key" || exit 1
echo "s_server -async on 127.0.0.1:$PORT (pid $SRV_PID)"

# Groups every request cycles through: the client's defaults (OpenSSL 3.5
# puts the hybrid X25519MLKEM768 first), and single groups, each of which
# the server must accept as offered (a group libssl dropped, because the
# provider that advertises it lacks its key manager, would fail the
# handshake). The hybrid is tried where the default provider offers it.
GROUPS13=(default X25519 P-256)
GROUPS12=(default X25519 P-256)
if openssl list -kem-algorithms 2>/dev/null | grep -q 'X25519MLKEM768'; then
    GROUPS13+=(X25519MLKEM768)
fi

# One request: protocol (1.2/1.3), certificate (rsa/ec), the one signature
# scheme the client offers, its groups, and the client's config. The
# client is an async one too. What was negotiated is decided by what the
# client offers, not read back from s_client's wording (which changes
# between OpenSSL versions): success proves it.
request() {
    local proto=$1 cert=$2 sigalg=$3 group=$4 cconf=$5 out=$DIR/client.out err=$DIR/client.err rc
    shift 5 # the rest: further s_client options
    local gopt=()
    [ "$group" = default ] || gopt=(-groups "$group")
    printf 'GET / HTTP/1.0\r\n\r\n' |
        OPENSSL_CONF=$cconf timeout 20 "${SAN_ENV[@]}" openssl s_client -async -brief -ign_eof \
            "-tls${proto/./_}" -sigalgs "$sigalg" "${gopt[@]}" "$@" -connect "127.0.0.1:$PORT" \
            -servername localhost >"$out" 2>"$err"
    rc=$?
    local what="TLS $proto, $cert certificate, $sigalg, groups $group${*:+, $*}, client conf $(basename "$cconf")"
    if [ $rc -ne 0 ]; then
        fail "$what: s_client exited with $rc"
        sed 's/^/    /' "$err"
        return
    fi
    grep -aq '^HTTP/1.0 200 ok' "$out" || fail "$what: no HTTP/1.0 200 from the server"
    # -www's page names the connection it was served on.
    grep -aq "^New, TLSv$proto, Cipher is" "$out" || fail "$what: page does not show a new TLSv$proto session"
    grep -aq '^</pre></BODY></HTML>' "$out" || fail "$what: page is truncated"
}

n=0
for ((r = 0; r < REPS; r++)); do
    for proto in 1.2 1.3; do
        if [ "$proto" = 1.2 ]; then
            groups=("${GROUPS12[@]}")
            rsa_sigalgs=(rsa_pkcs1_sha256 rsa_pss_rsae_sha256)
        else
            groups=("${GROUPS13[@]}")
            rsa_sigalgs=(rsa_pss_rsae_sha256)
        fi
        for cert in rsa ec; do
            if [ "$cert" = rsa ]; then sigalgs=("${rsa_sigalgs[@]}"); else sigalgs=(ecdsa_secp256r1_sha256); fi
            for sigalg in "${sigalgs[@]}"; do
                group=${groups[n % ${#groups[@]}]}
                # TLS 1.2 signs with an ECDSA certificate only on a curve
                # the client lists among its groups.
                if [ "$proto" = 1.2 ] && [ "$cert" = ec ] && [ "$group" = X25519 ]; then
                    group=X25519:P-256
                fi
                if ((n++ % 2)); then cconf=$DIR/offload.cnf; else cconf=/dev/null; fi
                request "$proto" "$cert" "$sigalg" "$group" "$cconf"
            done
        done
    done
done

# The key exchanges of the other families, with the client's config
# alternating as above: TLS 1.2 RSA key transport (the server decrypts the
# premaster secret, family asymcipher), TLS 1.2 DHE and TLS 1.3 ffdhe2048
# (keyexch, keygen). Counted before and after, from the stats file.
stats_settle "$DIR/stats"
kx_before_asym=$(stat_of offload-asymcipher-offloaded)
kx_before_dh=$(stat_of offload-keyexch-offloaded)
kem_ops=$(($(stat_of offload-kem-offloaded) + $(stat_of offload-kem-inline)))
for ((r = 0; r < REPS; r++)); do
    if ((n++ % 2)); then cconf=$DIR/offload.cnf; else cconf=/dev/null; fi
    request 1.2 rsa rsa_pss_rsae_sha256 default "$cconf" -cipher AES128-GCM-SHA256
    request 1.2 rsa rsa_pss_rsae_sha256 default "$cconf" -cipher DHE-RSA-AES128-GCM-SHA256
    request 1.3 rsa rsa_pss_rsae_sha256 ffdhe2048 "$cconf"
done
echo "$n requests made"

stats_settle "$DIR/stats"
kill -0 "$SRV_PID" 2>/dev/null || fail "s_server exited: $(tail -5 "$DIR/server.log")"
accepts=$(grep -c '^ACCEPT' "$DIR/server.log")
echo "server stats file:"
grep -E '^offload-(signature|keyexch|keygen|kem|asymcipher)-(offloaded|inline|failed|pauses) ' "$DIR/stats" |
    sed 's/^/    /'
off=$(stat_of offload-signature-offloaded)
inl=$(stat_of offload-signature-inline)
[ "$off" -gt 0 ] || fail "offload-signature-offloaded is $off: no signature ran on a worker"
[ $((off + inl)) -ge "$n" ] || fail "only $((off + inl)) signatures for $n handshakes"
[ "$(stat_of offload-signature-failed)" -eq 0 ] || fail "offload-signature-failed is not 0"
[ "$(stat_of offload-signature-pauses)" -gt 0 ] || fail "offload-signature-pauses is 0"
[ "$(stat_of pid)" = "$SRV_PID" ] || fail "stats file is not the server's (pid $(stat_of pid))"
[ "$accepts" -ge 1 ] || fail "no ACCEPT in the server log"
[ "$(stat_of offload-asymcipher-offloaded)" -ge $((kx_before_asym + REPS)) ] ||
    fail "RSA key transport: $(( $(stat_of offload-asymcipher-offloaded) - kx_before_asym )) decryptions offloaded for $REPS handshakes"
[ "$(stat_of offload-keyexch-offloaded)" -ge $((kx_before_dh + 2 * REPS)) ] ||
    fail "FFDHE: $(( $(stat_of offload-keyexch-offloaded) - kx_before_dh )) derives offloaded for $((2 * REPS)) handshakes"
for f in asymcipher keyexch kem keygen; do
    [ "$(stat_of "offload-$f-failed")" -eq 0 ] || fail "offload-$f-failed is not 0"
done
# OpenSSL 3.5's client offers X25519MLKEM768 first: the server encapsulates
# to the client's share through offload's KEM. One connection at a time, a
# cheap encapsulation is alone and runs inline (tls_ref_test shows them
# offloaded under concurrency).
if [ ${#GROUPS13[@]} -gt 3 ]; then
    [ "$kem_ops" -gt 0 ] ||
        fail "offload's KEM counters are 0: no ML-KEM encapsulation went through offload"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "server log:"
    sed 's/^/    /' "$DIR/server.log" | tail -30
    echo "s_server_test: $FAILS failure(s)"
    exit 1
fi
echo "s_server_test: all $n requests passed"

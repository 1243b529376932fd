#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The openssl commands with token keys through offload: a SoftHSM2 token
# (test/pkcs11_token.sh) and an openssl.cnf with pkcs11_module. pkeyutl
# -sign with pkcs11: URIs (RSA PKCS#1 v1.5 and ECDSA of a SHA-256 digest),
# dgst -sign with RSA-PSS, pkey -pubin -pubout of the public halves, every
# signature checked by the default provider alone (OPENSSL_CONF=/dev/null);
# the same with key-URI files (scripts/p11uri-pem) for -inkey and -in;
# the counters (stats file) show the signatures; a wrong PIN, a missing
# token and a bad URI fail with the reason on stderr. softhsm2 or opensc
# missing: the test fails.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
san_env_for "$OPENSSL_MODULES"

DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
bash "$(dirname "${BASH_SOURCE[0]}")/pkcs11_token.sh" "$DIR" || exit 1
export SOFTHSM2_CONF=$DIR/softhsm2.conf
write_offload_conf "$DIR/offload.cnf" offload.so \
    "pkcs11_module = ${PKCS11_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" \
    "pkcs11_pin_file = $DIR/pin"
echo "openssl: $(openssl version)"
head -c 32 /dev/urandom >"$DIR/dig"
echo "a message for the token" >"$DIR/msg"

# ours ARGS...: openssl with offload and the token
ours() { OPENSSL_CONF=$DIR/offload.cnf OFFLOAD_STATS_FILE=$DIR/stats "${SAN_ENV[@]}" openssl "$@"; }
# theirs ARGS...: openssl with the default provider alone
theirs() { OPENSSL_CONF=/dev/null openssl "$@"; }

for k in tls-rsa tls-ec; do
    ours pkey -pubin -pubout -in "pkcs11:token=edge;object=$k;type=public" -out "$DIR/$k.pub" \
        2>"$DIR/err" || { fail "$k: pkey -pubout"; cat "$DIR/err"; }
    # The PIN from pkcs11_pin_file: the URI carries none.
    if ours pkeyutl -sign -inkey "pkcs11:token=edge;object=$k;type=private" \
        -pkeyopt digest:sha256 -in "$DIR/dig" -out "$DIR/$k.sig" 2>"$DIR/err"; then
        theirs pkeyutl -verify -pubin -inkey "$DIR/$k.pub" -pkeyopt digest:sha256 \
            -in "$DIR/dig" -sigfile "$DIR/$k.sig" >/dev/null ||
            fail "$k: the token's signature does not verify"
        echo "  pkeyutl -sign $k: $(stat -c %s "$DIR/$k.sig") bytes, verified;" \
            "signature inline $(stat_in "$DIR/stats" offload-signature-inline)"
        [ "$(stat_in "$DIR/stats" offload-signature-inline)" -ge 1 ] ||
            fail "$k: the signature is not counted"
    else
        fail "$k: pkeyutl -sign"
        cat "$DIR/err"
    fi
done

if ours dgst -sha384 -sign "pkcs11:token=edge;object=tls-rsa?pin-value=1234" \
    -sigopt rsa_padding_mode:pss -out "$DIR/pss.sig" "$DIR/msg" 2>"$DIR/err"; then
    theirs dgst -sha384 -verify "$DIR/tls-rsa.pub" -sigopt rsa_padding_mode:pss \
        -signature "$DIR/pss.sig" "$DIR/msg" >/dev/null || fail "RSA-PSS: does not verify"
    echo "  dgst -sha384 -sign, RSA-PSS: verified"
else
    fail "dgst -sign RSA-PSS"
    cat "$DIR/err"
fi

# Key-URI files (PEM "PKCS#11 PROVIDER URI", scripts/p11uri-pem): what a
# program that reads only PEM key files is given instead of the URI.
P11URI_PEM=${OFFLOAD_P11URI_PEM:-$(dirname "${BASH_SOURCE[0]}")/../scripts/p11uri-pem}
for k in tls-rsa tls-ec; do
    if ! "$P11URI_PEM" "pkcs11:token=edge;object=$k;type=private" "$DIR/$k.key.pem"; then
        fail "$k: scripts/p11uri-pem"
        continue
    fi
    ours pkey -in "$DIR/$k.key.pem" -pubout -out "$DIR/$k.file.pub" 2>"$DIR/err" ||
        { fail "$k: pkey -in key-URI file -pubout"; cat "$DIR/err"; }
    cmp -s "$DIR/$k.file.pub" "$DIR/$k.pub" ||
        fail "$k: the key-URI file's public key is not the token's"
    if ours pkeyutl -sign -inkey "$DIR/$k.key.pem" -pkeyopt digest:sha256 \
        -in "$DIR/dig" -out "$DIR/$k.file.sig" 2>"$DIR/err"; then
        theirs pkeyutl -verify -pubin -inkey "$DIR/$k.pub" -pkeyopt digest:sha256 \
            -in "$DIR/dig" -sigfile "$DIR/$k.file.sig" >/dev/null &&
            echo "  pkeyutl -sign -inkey $k.key.pem (key-URI file): verified" ||
            fail "$k: the key-URI file's signature does not verify"
    else
        fail "$k: pkeyutl -sign -inkey key-URI file"
        cat "$DIR/err"
    fi
done
# A bad one fails cleanly. OSSL_STORE's file: loader (the commands' -inkey)
# drops a decoder's errors ("unsupported"): the reason is in the debug log.
"$P11URI_PEM" "pkcs11:token=nope;object=tls-rsa" "$DIR/nope.key.pem"
if OFFLOAD_DEBUG=1 ours pkeyutl -sign -inkey "$DIR/nope.key.pem" -in "$DIR/dig" \
    -out "$DIR/x" 2>"$DIR/err"; then
    fail "key-URI file of a missing token: signed"
elif [ $? -gt 1 ] || ! grep -q "error: no such PKCS#11 token: token=nope" "$DIR/err"; then
    fail "key-URI file of a missing token: no clean failure with the reason in the log"
    grep -v 'cipher AES' "$DIR/err" | tail -5
else
    echo "  key-URI file of a missing token: $(grep -o 'error: no such PKCS#11 token: token=nope[^(]*' "$DIR/err" | head -1)"
fi
if "$P11URI_PEM" "file:/etc/passwd" "$DIR/x.pem" 2>"$DIR/err"; then
    fail "scripts/p11uri-pem wrote a file for a file: URI"
else
    echo "  scripts/p11uri-pem file:/etc/passwd: $(cat "$DIR/err")"
fi

# expect_error WHAT TEXT URI: signing with URI fails, stderr says TEXT.
expect_error() {
    if ours pkeyutl -sign -inkey "$3" -in "$DIR/dig" -out "$DIR/x" 2>"$DIR/err"; then
        fail "$1: signed"
    elif ! grep -q "$2" "$DIR/err"; then
        fail "$1: stderr does not say \"$2\""
        cat "$DIR/err"
    else
        echo "  $1: $(grep -o "$2.*" "$DIR/err" | head -1)"
    fi
}
# Another process: not logged in yet, so the wrong PIN is tried.
expect_error "wrong PIN" "CKR_PIN_INCORRECT" "pkcs11:token=edge;object=tls-rsa?pin-value=9999"
expect_error "missing token" "no such PKCS#11 token" "pkcs11:token=nope;object=tls-rsa"
expect_error "bad URI" "unknown path attribute" "pkcs11:token=edge;colour=red"

if [ "$FAILS" -ne 0 ]; then
    echo "pkcs11_pkeyutl_test: $FAILS failure(s)"
    exit 1
fi
echo "pkcs11_pkeyutl_test: token keys work from the openssl commands"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Token keys over the network: the SoftHSM2 token of test/pkcs11_token.sh
# exported by `p11-kit server` on a unix socket in the scratch dir, and
# offload loading p11-kit-client.so (PKCS#11 over p11-kit's RPC) instead
# of SoftHSM. Through offload, with pkcs11_module = p11-kit-client.so:
#
#   - openssl pkeyutl -sign (RSA PKCS#1 v1.5, ECDSA P-256), dgst -sign
#     (RSA-PSS), each verified with the exported public key by the
#     default provider alone;
#   - pkeyutl -decrypt of what the default provider encrypted to the
#     public key: PKCS#1 v1.5 and OAEP (SHA-1: SoftHSM's only OAEP);
#   - pkeyutl -derive (ECDH P-256) against a fresh peer, compared with the
#     peer's derive; p11-kit 0.24's RPC cannot carry CKM_ECDH1_DERIVE's
#     parameters (the client module does not list the mechanism): then the
#     derive must fail with the CKR named, and that is what is checked;
#   - test_pkcs11 ($1) against the remote module: the store, signatures,
#     decryptions (and the ECDH refusal) out of and INSIDE jobs, in fd and
#     callback mode, on the token threads; fork; and last the server (its
#     process group: it forks a p11-kit-remote per connection) killed
#     mid-run, after which signing fails at once with the module's CKR,
#     out of a job and in jobs (no crash, no hang);
#   - a fresh openssl after the server is gone fails with a readable error.
#
# p11-kit, p11-kit-client.so, softhsm2 or opensc missing: the test FAILS.
# Needs OPENSSL_MODULES pointing at the directory of offload.so (meson
# sets it); the server is started and stopped here, by its pid.
set -uo pipefail

: "${OPENSSL_MODULES:?set OPENSSL_MODULES to the directory of offload.so}"
export OPENSSL_MODULES
TEST_PKCS11=${1:?usage: pkcs11_remote_test.sh path/to/test_pkcs11}
HERE=$(dirname "${BASH_SOURCE[0]}")

# shellcheck source=test/lib.sh
source "$HERE/lib.sh"
san_env_for "$OPENSSL_MODULES"
# shellcheck source=test/p11_remote.sh
source "$HERE/p11_remote.sh"

DIR=$(mktemp -d)
cleanup() {
    p11_remote_stop
    rm -rf "$DIR"
}
trap cleanup EXIT

p11_remote_start "$DIR" || exit 1
echo "p11-kit server (pid $P11_SERVER_PID) serves token edge on $DIR/p11.sock"
write_offload_conf "$DIR/offload.cnf" offload.so \
    "pkcs11_module = $P11_CLIENT" "pkcs11_pin_file = $DIR/pin"
echo "openssl: $(openssl version)"

ours() { OPENSSL_CONF=$DIR/offload.cnf OFFLOAD_STATS_FILE=$DIR/stats "${SAN_ENV[@]}" openssl "$@"; }
theirs() { OPENSSL_CONF=/dev/null openssl "$@"; }
TOK="pkcs11:token=edge;object"

head -c 32 /dev/urandom >"$DIR/dig"
echo "a message for the remote token" >"$DIR/msg"

# ---- public halves, signatures ----
for k in tls-rsa tls-ec; do
    ours pkey -pubin -pubout -in "$TOK=$k;type=public" -out "$DIR/$k.pub" 2>"$DIR/err" ||
        { fail "$k: pkey -pubout through the remote token"; cat "$DIR/err"; }
    if ours pkeyutl -sign -inkey "$TOK=$k;type=private" -pkeyopt digest:sha256 \
        -in "$DIR/dig" -out "$DIR/$k.sig" 2>"$DIR/err"; then
        if theirs pkeyutl -verify -pubin -inkey "$DIR/$k.pub" -pkeyopt digest:sha256 \
            -in "$DIR/dig" -sigfile "$DIR/$k.sig" >/dev/null; then
            echo "  pkeyutl -sign $k (remote): verified by the default provider"
        else
            fail "$k: the remote token's signature does not verify"
        fi
    else
        fail "$k: pkeyutl -sign through the remote token"
        cat "$DIR/err"
    fi
done
if ours dgst -sha256 -sign "$TOK=tls-rsa;type=private" -sigopt rsa_padding_mode:pss \
    -out "$DIR/pss.sig" "$DIR/msg" 2>"$DIR/err"; then
    theirs dgst -sha256 -verify "$DIR/tls-rsa.pub" -sigopt rsa_padding_mode:pss \
        -signature "$DIR/pss.sig" "$DIR/msg" >/dev/null &&
        echo "  dgst -sha256 -sign RSA-PSS (remote): verified" ||
        fail "RSA-PSS: the remote token's signature does not verify"
else
    fail "dgst -sign RSA-PSS through the remote token"
    cat "$DIR/err"
fi
sleep 0.7 # the stats file is rewritten twice a second, and at exit
[ "$(stat_in "$DIR/stats" offload-signature-inline)" -ge 1 ] ||
    fail "the last signature is not counted in the stats file"

# ---- decryption ----
for pad in pkcs1 oaep; do
    theirs pkeyutl -encrypt -pubin -inkey "$DIR/tls-rsa.pub" -pkeyopt rsa_padding_mode:$pad \
        -in "$DIR/dig" -out "$DIR/ct.$pad" || fail "$pad: the default cannot encrypt"
    if ours pkeyutl -decrypt -inkey "$TOK=tls-rsa;type=private" -pkeyopt rsa_padding_mode:$pad \
        -in "$DIR/ct.$pad" -out "$DIR/pt.$pad" 2>"$DIR/err"; then
        cmp -s "$DIR/dig" "$DIR/pt.$pad" && echo "  pkeyutl -decrypt $pad (remote): plaintext matches" ||
            fail "$pad: the remote token's plaintext differs"
    else
        fail "$pad: pkeyutl -decrypt through the remote token"
        cat "$DIR/err"
    fi
done

# ---- ECDH ----
theirs genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DIR/peer.key" 2>/dev/null
theirs pkey -in "$DIR/peer.key" -pubout -out "$DIR/peer.pub"
theirs pkeyutl -derive -inkey "$DIR/peer.key" -peerkey "$DIR/tls-ec.pub" -out "$DIR/z.peer" ||
    fail "ECDH: the peer cannot derive"
if [ "$P11_ECDH" = yes ]; then
    if ours pkeyutl -derive -inkey "$TOK=tls-ec;type=private" -peerkey "$DIR/peer.pub" \
        -out "$DIR/z.ours" 2>"$DIR/err"; then
        cmp -s "$DIR/z.ours" "$DIR/z.peer" && echo "  pkeyutl -derive ECDH (remote): equal to the peer's" ||
            fail "ECDH: the remote token's secret differs from the peer's"
    else
        fail "ECDH: pkeyutl -derive through the remote token"
        cat "$DIR/err"
    fi
else
    if ours pkeyutl -derive -inkey "$TOK=tls-ec;type=private" -peerkey "$DIR/peer.pub" \
        -out "$DIR/z.ours" 2>"$DIR/err"; then
        fail "ECDH: derived although $P11_CLIENT does not list CKM_ECDH1_DERIVE"
    elif grep -q "C_DeriveKey: CKR_MECHANISM_INVALID" "$DIR/err"; then
        echo "  pkeyutl -derive ECDH (remote): refused, as p11-kit $(p11_kit_version) must:" \
            "$(grep -o 'C_DeriveKey: CKR_MECHANISM_INVALID.*' "$DIR/err" | head -1)"
    else
        fail "ECDH: the refusal does not name C_DeriveKey and CKR_MECHANISM_INVALID"
        cat "$DIR/err"
    fi
fi

# ---- in jobs, and the server killed mid-run: test_pkcs11 against the remote module ----
echo "test_pkcs11 against $P11_CLIENT:"
noecdh=()
[ "$P11_ECDH" = yes ] || noecdh=(OFFLOAD_PKCS11_NO_ECDH=1)
env OFFLOAD_PKCS11_MODULE="$P11_CLIENT" OFFLOAD_PKCS11_TOKEN_DIR="$DIR" \
    OFFLOAD_PKCS11_SERVER_PID="$P11_SERVER_PID" "${noecdh[@]}" \
    timeout 240 "$TEST_PKCS11" >"$DIR/unit.log" 2>&1
rc=$?
grep -E '^\[ *(RUN|OK|FAILED|PASSED|ERROR) *\]|->|^module' "$DIR/unit.log" | sed 's/^/    /'
[ $rc -eq 0 ] || { fail "test_pkcs11 against the remote token exited with $rc"; tail -40 "$DIR/unit.log"; }
grep -q '^\[       OK \] test_server_gone' "$DIR/unit.log" ||
    fail "test_pkcs11: test_server_gone did not pass"
grep -q 'server gone   -> PKCS#11 call failed' "$DIR/unit.log" ||
    fail "test_pkcs11: no readable error once the server was gone"

# The server is gone (test_server_gone killed it): a new process fails cleanly.
p11_remote_stop
if timeout 30 env OPENSSL_CONF="$DIR/offload.cnf" "${SAN_ENV[@]}" openssl pkeyutl -sign \
    -inkey "$TOK=tls-rsa;type=private" -in "$DIR/dig" -out "$DIR/x" 2>"$DIR/err"; then
    fail "signed with no server"
else
    rc=$?
    [ $rc -eq 124 ] && fail "openssl hung with no server"
    [ $rc -gt 128 ] && fail "openssl died of signal $((rc - 128)) with no server"
    echo "  no server, a new process: exit $rc, $(grep -m1 -o 'offload.*' "$DIR/err" || head -1 "$DIR/err")"
fi

if [ "$FAILS" -ne 0 ]; then
    echo "pkcs11_remote_test: $FAILS failure(s)"
    exit 1
fi
echo "pkcs11_remote_test: the remote token works through offload, in and out of jobs"

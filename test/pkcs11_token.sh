#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes a SoftHSM2 token for the pkcs11 tests in scratch directory $1:
# $1/softhsm2.conf (point SOFTHSM2_CONF at it), the token "edge" (user
# PIN 1234, SO PIN 5678) in $1/tokens, and in it the key pairs tls-rsa
# (RSA-2048, id 01), tls-ec (P-256, id 02) and tls-ec384 (P-384, id 03);
# $1/pin holds the PIN. softhsm2-util and pkcs11-tool (opensc) missing:
# exits 1 (the tests fail, they do not skip).
set -euo pipefail
dir=$1
module=${PKCS11_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for tool in softhsm2-util pkcs11-tool; do
    command -v "$tool" >/dev/null ||
        { echo "pkcs11_token.sh: $tool is missing (scripts/bootstrap installs it)" >&2; exit 1; }
done
[ -f "$module" ] || { echo "pkcs11_token.sh: $module is missing (softhsm2)" >&2; exit 1; }
rm -rf "$dir/tokens"
mkdir -p "$dir/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$dir/tokens" >"$dir/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf
softhsm2-util --init-token --free --label edge --pin 1234 --so-pin 5678 >/dev/null
p11() { pkcs11-tool --module "$module" --token-label edge --login --pin 1234 "$@" >/dev/null 2>&1; }
p11 --keypairgen --key-type rsa:2048 --label tls-rsa --id 01
p11 --keypairgen --key-type EC:prime256v1 --label tls-ec --id 02
p11 --keypairgen --key-type EC:secp384r1 --label tls-ec384 --id 03
printf '1234\n' >"$dir/pin"

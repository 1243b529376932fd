/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prints the version of the libcrypto this build loads at run time (not
 * the one its headers named): scripts/test says which OpenSSL each leg ran.
 */
#include <stdio.h>
#include <openssl/crypto.h>

int main(void)
{
    printf("%s (%s)\n", OpenSSL_version(OPENSSL_VERSION),
           OpenSSL_version(OPENSSL_MODULES_DIR));
    return 0;
}

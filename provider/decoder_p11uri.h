/* SPDX-License-Identifier: Apache-2.0 */
/* Decoders of key-URI files (PEM "PKCS#11 PROVIDER URI"), decoder_p11uri.c. */
#ifndef OFFLOAD_DECODER_P11URI_H
#define OFFLOAD_DECODER_P11URI_H

#include <openssl/core.h>

/* The table: "DER" (input=pem), "RSA" and "EC" (input=der, structure=pk11-uri). */
const OSSL_ALGORITHM *offload_decoder_algorithms(void);

/*
 * The first init: a library context that knows the core's BIO functions
 * (|in|), to read libcrypto's OSSL_CORE_BIOs; 0 when it cannot be made.
 * The last teardown frees it.
 */
int offload_decoder_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in);
void offload_decoder_release(void);

#endif

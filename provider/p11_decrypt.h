/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RSA decryption with a token key (p11_key.h): PKCS#1 v1.5 (CKM_RSA_PKCS),
 * OAEP (CKM_RSA_PKCS_OAEP, its digest, MGF1 digest and label from the
 * default's context) and no padding (CKM_RSA_X_509), through p11_call.h.
 * Not (yet): PKCS#1 v1.5 with implicit rejection (the token reports a bad
 * padding as an error) and the TLS premaster padding.
 */
#ifndef OFFLOAD_P11_DECRYPT_H
#define OFFLOAD_P11_DECRYPT_H

#include <stddef.h>
#include <openssl/core_dispatch.h>

#include "p11_key.h"

/*
 * Decrypts |in| with token key |k|, the padding and its parameters read
 * from the default context |ctx| with |get_ctx_params|; |need| is the
 * default's size answer (the modulus size), |outsize| the room at |out|.
 * 1, or 0 after raising.
 */
int offload_p11_decrypt(struct offload_p11_key *k, void *ctx,
                        OSSL_FUNC_asym_cipher_get_ctx_params_fn *get_ctx_params,
                        unsigned char *out, size_t *outlen, size_t outsize, size_t need,
                        const unsigned char *in, size_t inlen, const char *alg);

/* A context's token key, as struct offload_ctxstate's ext. */
void offload_p11_key_ext_free(void *k);
void *offload_p11_key_ext_dup(const void *k);

#endif

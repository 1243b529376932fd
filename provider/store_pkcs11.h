/* SPDX-License-Identifier: Apache-2.0 */
/* The OSSL_STORE loader of pkcs11: URIs (store_pkcs11.c). */
#ifndef OFFLOAD_STORE_PKCS11_H
#define OFFLOAD_STORE_PKCS11_H

#include <openssl/core.h>

/* The loader's table: scheme "pkcs11", "provider=offload". */
const OSSL_ALGORITHM *offload_store_algorithms(void);

/*
 * For the decoder of key-URI files (decoder_p11uri.c): opens |uri| as the
 * store does, and hands the first key of data type |type| ("RSA", "EC")
 * to |cb| with the very params (an OSSL_OBJECT_PKEY by reference) the
 * store gives libcrypto; keys of another type are skipped. 1 when |cb|
 * took one and succeeded; 0 when |cb| failed or after raising (a bad URI,
 * no module, no token, a wrong PIN, no such object); -1 when the URI
 * names keys, but none of |type| (nothing raised).
 */
int offload_store_p11_load_uri(const char *uri, const char *type, OSSL_CALLBACK *cb,
                               void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                               void *pw_cbarg);

#endif

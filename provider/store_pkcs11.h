/* SPDX-License-Identifier: Apache-2.0 */
/* The OSSL_STORE loader of pkcs11: URIs (store_pkcs11.c). */
#ifndef OFFLOAD_STORE_PKCS11_H
#define OFFLOAD_STORE_PKCS11_H

#include <openssl/core.h>

/* The loader's table: scheme "pkcs11", "provider=offload". */
const OSSL_ALGORITHM *offload_store_algorithms(void);

#endif

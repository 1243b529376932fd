/* SPDX-License-Identifier: Apache-2.0 */
/* Each operation family binds to the soft engine at init and offers its table. */
#ifndef OFFLOAD_FAMILIES_H
#define OFFLOAD_FAMILIES_H

#include <stddef.h>
#include <openssl/core.h>

#include "keymgmt.h"

size_t offload_signature_bind(void);
void offload_signature_unbind(void);
const OSSL_ALGORITHM *offload_signature_algorithms(void);

size_t offload_keyexch_bind(void);
void offload_keyexch_unbind(void);
const OSSL_ALGORITHM *offload_keyexch_algorithms(void);

size_t offload_kem_bind(void);
void offload_kem_unbind(void);
const OSSL_ALGORITHM *offload_kem_algorithms(void);

size_t offload_asym_cipher_bind(void);
void offload_asym_cipher_unbind(void);
const OSSL_ALGORITHM *offload_asym_cipher_algorithms(void);

/* Ciphers and (3.5) symmetric key management, both mirrored. */
size_t offload_cipher_bind(void);
void offload_cipher_unbind(void);
const OSSL_ALGORITHM *offload_cipher_algorithms(void);
const OSSL_ALGORITHM *offload_skeymgmt_algorithms(void);

#endif

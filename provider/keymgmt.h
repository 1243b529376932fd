/* SPDX-License-Identifier: Apache-2.0 */
/* Our key objects: the soft engine's key data plus which algorithm made it. */
#ifndef OFFLOAD_KEYMGMT_H
#define OFFLOAD_KEYMGMT_H

#include <openssl/core.h>

#include "prov.h"

struct offload_keymgmt_alg;

typedef struct offload_key {
    const struct offload_keymgmt_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *kd;         /* the default keymgmt's key data */
    _Atomic int cost; /* enum key_cost in keymgmt.c, known once asked */
} OFFLOAD_KEY;

/* The key algorithm's first name ("RSA", "EC", ...). */
const char *offload_key_type(const OFFLOAD_KEY *key);

/*
 * 1 when operations with |key| cost tens of microseconds (P-256, Ed25519,
 * X25519), 0 for the expensive ones (RSA, P-384, P-521, other curves,
 * Ed448, X448). The request policy (async.c) and the workers' batching
 * treat the two differently.
 */
int offload_key_cheap(OFFLOAD_KEY *key);

/* Binds every key type the soft engine offers; returns how many. */
size_t offload_keymgmt_bind(void);
const OSSL_ALGORITHM *offload_keymgmt_algorithms(void);

#endif

/* Our key objects: the soft engine's key data plus which algorithm made it. */
#ifndef OFFLOAD_KEYMGMT_H
#define OFFLOAD_KEYMGMT_H

#include <openssl/core.h>

#include "prov.h"

struct offload_keymgmt_alg;

typedef struct offload_key {
    const struct offload_keymgmt_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *kd; /* the default keymgmt's key data */
} OFFLOAD_KEY;

/* The key algorithm's first name ("RSA", "EC", ...). */
const char *offload_key_type(const OFFLOAD_KEY *key);

/* Binds every key type the soft engine offers; returns how many. */
size_t offload_keymgmt_bind(void);
const OSSL_ALGORITHM *offload_keymgmt_algorithms(void);

#endif

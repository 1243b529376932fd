/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key management: the default provider's, mirrored (mirror.h). Keys are
 * the default keymgmt's key data, untouched; only generation is ours
 * (offloaded in a job for the key types whose generation never calls
 * back), and the cost class of keys is decided here.
 */
#ifndef OFFLOAD_KEYMGMT_H
#define OFFLOAD_KEYMGMT_H

#include <openssl/core.h>

#include "prov.h"

/* How the keys an algorithm takes are classed (offload_cost_rule). */
enum offload_cost_rule {
    OFFLOAD_COST_DEAR,     /* RSA, DH, DSA, P-384, Ed448, X448, ML-DSA, ...: expensive */
    OFFLOAD_COST_CHEAP,    /* Ed25519, X25519: every key is cheap */
    OFFLOAD_COST_EC_GROUP, /* EC keys: cheap for P-256 only */
    /*
     * MAC signatures (HMAC, SIPHASH, POLY1305, CMAC) and the TLS KDFs
     * (TLS1-PRF, HKDF): a microsecond or less, on hot paths (libssl 3.0
     * MACs every TLS 1.2 CBC record with an HMAC EVP_PKEY): never
     * offloaded, and their steps are not even intercepted.
     */
    OFFLOAD_COST_TRIVIAL
};

/* The rule for the keys of the algorithm whose names are |names| (its first name). */
enum offload_cost_rule offload_cost_rule(const char *names);

/*
 * 1 when operations with key data |kd| (the default keymgmt's) cost tens
 * of microseconds (P-256, Ed25519, X25519), 0 for the expensive ones. The
 * request policy (async.c) and the workers' batching treat the two
 * differently. An EC key's group is read through the default EC keymgmt's
 * get_params.
 */
int offload_key_cheap(enum offload_cost_rule rule, void *kd);

/*
 * 1 when the default's operation contexts for keys of |names| (its first
 * name) keep a bare pointer to the key data, no reference: 3.5's ML-KEM,
 * the ML-KEM hybrids, ML-DSA and SLH-DSA. Their inits pin the key
 * (ctxstate.h), and the FREE of such a key comes through us and waits
 * for the last pin.
 */
int offload_key_unowned(const char *names);

/* Binds every key type the default provider offers; returns how many. */
size_t offload_keymgmt_bind(void);
void offload_keymgmt_unbind(void);
const OSSL_ALGORITHM *offload_keymgmt_algorithms(void);

#endif

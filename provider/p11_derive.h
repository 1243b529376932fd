/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ECDH with a token key (p11_key.h): CKM_ECDH1_DERIVE (or the cofactor
 * variant) with the peer's encoded point, through p11_call.h; the shared
 * secret is a session object on the token, read and destroyed at once.
 * The plain derive only: a context with an X9.63 KDF set is refused.
 */
#ifndef OFFLOAD_P11_DERIVE_H
#define OFFLOAD_P11_DERIVE_H

#include <stddef.h>
#include <openssl/core_dispatch.h>

#include "p11_key.h"

/* A key exchange context's token state (struct offload_ctxstate's ext). */
struct offload_p11_kexctx {
    struct offload_p11_key *key; /* a reference */
    unsigned char *peer;         /* the peer's encoded point; NULL: none set yet */
    size_t peerlen;
};

/* The state for |k| (its reference taken over); NULL out of memory (|k| dropped). */
struct offload_p11_kexctx *offload_p11_kexctx_new(struct offload_p11_key *k);
void offload_p11_kexctx_free(void *c);
void *offload_p11_kexctx_dup(const void *c);
/* The peer (default EC key data) was set: its point is kept. 1, or 0 after raising. */
int offload_p11_kexctx_peer(struct offload_p11_kexctx *c, void *peer);

/*
 * The shared secret of |c|'s token key and peer into |secret| (room
 * |outlen|); |need| is the default's size answer. The KDF and cofactor
 * mode are read from the default context |ctx|. 1, or 0 after raising.
 */
int offload_p11_derive(struct offload_p11_kexctx *c, void *ctx,
                       OSSL_FUNC_keyexch_get_ctx_params_fn *get_ctx_params,
                       unsigned char *secret, size_t *secretlen, size_t outlen,
                       size_t need, const char *alg);

#endif

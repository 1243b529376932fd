/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing with a token key (p11_key.h): RSA PKCS#1 v1.5 (CKM_RSA_PKCS
 * over a DigestInfo built here), RSA-PSS (CKM_RSA_PKCS_PSS) and ECDSA
 * (CKM_ECDSA, its r || s turned into a DER ECDSA-Sig-Value). Inside a job
 * the call goes to the token pool and the job pauses; outside, it runs
 * on the calling thread's session. The digest of a digest-sign is made
 * here, with the private library context's EVP_MD.
 */
#ifndef OFFLOAD_P11_SIGN_H
#define OFFLOAD_P11_SIGN_H

#include <stddef.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "p11_key.h"

/* A signature context's token state (struct offload_ctxstate's ext). */
struct offload_p11_sigctx {
    struct offload_p11_key *key; /* a reference */
    EVP_MD_CTX *md;              /* a digest-sign's running digest; NULL for sign */
};

/* The state for |k| (its reference taken over); NULL out of memory (|k| dropped). */
struct offload_p11_sigctx *offload_p11_sigctx_new(struct offload_p11_key *k);
void offload_p11_sigctx_free(void *c);
void *offload_p11_sigctx_dup(const void *c);
/* A digest-sign init: the running digest of |mdname|. 1, or 0 after raising. */
int offload_p11_sigctx_digest_init(struct offload_p11_sigctx *c, const char *mdname);

/*
 * Signs with the token key of |c|: |tbs| is the input of EVP_PKEY_sign
 * (a digest when the context has one set), or for a digest-sign
 * (|final|) the digest is that of the data hashed so far (then |tbs|,
 * when not NULL, is hashed first: the one-shot digest-sign).
 * |get_ctx_params| is the default context |ctx|'s: the digest, the RSA
 * padding, the PSS salt length and MGF1 digest come from it. |sigsize|
 * is the room at |sig|. Returns 1, or 0 after raising.
 */
int offload_p11_sign(struct offload_p11_sigctx *c, void *ctx,
                     OSSL_FUNC_signature_get_ctx_params_fn *get_ctx_params, int final,
                     const unsigned char *tbs, size_t tbslen, unsigned char *sig,
                     size_t *siglen, size_t sigsize, const char *alg, const char *op);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key exchange: every algorithm the default provider offers (ECDH,
 * X25519, X448, DH, and the KDF-backed TLS1-PRF, HKDF and SCRYPT).
 *
 * Each table is the default's, copied entry by entry (mirror.h); its
 * contexts are the default's. Intercepted, once per slot: INIT (records
 * the cost class of the key), DERIVE (offloaded when the caller runs
 * inside an ASYNC_JOB and is not alone: a lone cheap derive costs less
 * inline than the wake-up it would need), FREECTX (deferred while a
 * request holds the context) and DUPCTX (copies our per-context state).
 * The request owns its output buffer and holds a reference on the context.
 * TLS1-PRF and HKDF (microseconds) are the default's tables unchanged;
 * SCRYPT, expensive by design, is offloaded like a derive. ECDH's SET_PEER
 * is intercepted too: with a token key (p11_derive.h) the peer's point is
 * kept, and DERIVE runs on the token.
 */
#include <string.h>
#include <openssl/crypto.h>

#include "async.h"
#include "ctxstate.h"
#include "keymgmt.h"
#include "mirror.h"
#include "p11_derive.h"

struct kex_alg {
    char name[32]; /* its first name, for the log and the reasons */
    enum offload_cost_rule rule;
    OSSL_FUNC_keyexch_init_fn *init;
    OSSL_FUNC_keyexch_derive_fn *derive;
    OSSL_FUNC_keyexch_freectx_fn *freectx;
    OSSL_FUNC_keyexch_dupctx_fn *dupctx;
    OSSL_FUNC_keyexch_set_peer_fn *set_peer;
    OSSL_FUNC_keyexch_get_ctx_params_fn *get_ctx_params;
    int token; /* ECDH: its keys may be token keys (p11_derive.h) */
};

static struct kex_alg kex_algs[OFFLOAD_SLOTS];
static struct offload_mirror kex_mirror = {.description = "offload key exchange"};

struct kex_job {
    struct offload_ctxstate *s; /* the default's context, held */
    const struct kex_alg *alg;
    unsigned char *out;
    size_t outlen, outsize;
};

static int kex_job_run(struct offload_req *req)
{
    struct kex_job *j = (struct kex_job *)req->payload;

    j->outlen = j->outsize;
    return j->alg->derive(j->s->ctx, j->out, &j->outlen, j->outsize);
}

static void kex_job_release(struct offload_req *req)
{
    struct kex_job *j = (struct kex_job *)req->payload;

    OPENSSL_cleanse(j->out, j->outsize);
    offload_ctxstate_release(j->s);
}

static void kex_freectx(size_t slot, void *ctx)
{
    offload_ctxstate_free(ctx, kex_algs[slot].freectx);
}

static void *kex_dupctx(size_t slot, void *ctx)
{
    const struct kex_alg *alg = &kex_algs[slot];

    return offload_ctxstate_dup(ctx, alg->dupctx(ctx), alg->freectx, 0,
                                "key exchange context");
}

static int kex_init(size_t slot, void *ctx, void *key, const OSSL_PARAM params[])
{
    const struct kex_alg *alg = &kex_algs[slot];
    struct offload_ctxstate *s;

    if (!offload_is_running())
        return 0;
    if (key == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NO_KEY, "%s: no private key", alg->name);
        return 0;
    }
    if ((s = offload_ctxstate_get(ctx, alg->freectx)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "key exchange context");
        return 0;
    }
    s->cheap = offload_key_cheap(alg->rule, key);
    if (alg->token) {
        struct offload_p11_key *k = offload_p11_key_get(key);
        struct offload_p11_kexctx *c = NULL;

        if (k != NULL && (c = offload_p11_kexctx_new(k)) == NULL) {
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s: a token key's state", alg->name);
            return 0;
        }
        offload_ctxstate_set_ext(s, c, offload_p11_kexctx_free, offload_p11_kexctx_dup);
    }
    return alg->init(ctx, key, params);
}

/* A token key's context keeps the peer's point: the token derives with it. */
static int kex_set_peer(size_t slot, void *ctx, void *peer)
{
    struct offload_ctxstate *s;

    if (!kex_algs[slot].set_peer(ctx, peer))
        return 0;
    if ((s = offload_ctxstate_find(ctx)) != NULL && s->ext != NULL)
        return offload_p11_kexctx_peer(s->ext, peer);
    return 1;
}

static int kex_derive(size_t slot, void *ctx, unsigned char *secret, size_t *secretlen,
                      size_t outlen)
{
    const struct kex_alg *alg = &kex_algs[slot];
    struct offload_ctxstate *s;
    struct offload_req *req = NULL;
    struct kex_job *j;
    enum offload_path p;
    size_t need = 0;
    int ret;

    /* Refused before it starts, or a size query: counted nowhere. */
    if (!offload_is_running())
        return 0;
    if (secretlen == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NULL_ARGUMENT, "secret length pointer");
        return 0;
    }
    if (secret == NULL)
        return alg->derive(ctx, NULL, secretlen, outlen);
    s = offload_ctxstate_get(ctx, alg->freectx);
    if (s != NULL && s->ext != NULL) { /* a token key: derived there */
        if (alg->derive(ctx, NULL, &need, 0) <= 0 || need == 0)
            return offload_op_done(OFFLOAD_FAM_KEYEXCH, 0, alg->name, "derive");
        return offload_p11_derive(s->ext, ctx, alg->get_ctx_params, secret, secretlen,
                                  outlen, need, alg->name);
    }
    /* A short buffer gets the default's own error, inline. */
    p = s != NULL ? offload_async_path(OFFLOAD_FAM_KEYEXCH, s->cheap)
                  : OFFLOAD_PATH_NO_MEMORY;
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (alg->derive(ctx, NULL, &need, 0) <= 0 || need == 0 || need > outlen))
        p = OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED) {
        req = offload_req_new(kex_job_run, kex_job_release, OFFLOAD_FAM_KEYEXCH,
                              sizeof(*j) + need);
        if (req == NULL)
            p = OFFLOAD_PATH_NO_MEMORY;
    }
    if (p != OFFLOAD_PATH_OFFLOADED) {
        offload_op_path(OFFLOAD_FAM_KEYEXCH, p, alg->name, "derive");
        return offload_op_done(OFFLOAD_FAM_KEYEXCH,
                               alg->derive(ctx, secret, secretlen, outlen), alg->name,
                               "derive");
    }
    j = (struct kex_job *)req->payload;
    req->cheap = s->cheap;
    req->alg = alg->name;
    req->op = "derive";
    offload_ctxstate_hold(s);
    j->s = s;
    j->alg = alg;
    j->out = req->payload + sizeof(*j);
    j->outsize = need;
    ret = offload_async_run(req);
    if (ret > 0) {
        memcpy(secret, j->out, j->outlen);
        *secretlen = j->outlen;
    }
    offload_req_put(req);
    return ret;
}

OFFLOAD_TRAMPOLINES(OSSL_FUNC_keyexch_init_fn, int, kex_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keyexch_derive_fn, int, kex_derive,
                    (void *ctx, unsigned char *secret, size_t *secretlen, size_t outlen),
                    (ctx, secret, secretlen, outlen))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_keyexch_freectx_fn, kex_freectx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keyexch_dupctx_fn, void *, kex_dupctx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keyexch_set_peer_fn, int, kex_set_peer,
                    (void *ctx, void *peer), (ctx, peer))

/* ---- binding ---- */

static size_t kex_intercepts(size_t i, const OSSL_ALGORITHM *a,
                             struct offload_intercept *ic)
{
    struct kex_alg *alg = &kex_algs[i];
    size_t n = 0;

    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->rule = offload_cost_rule(a->algorithm_names);
    alg->init = OFFLOAD_FN(OSSL_FUNC_keyexch_init_fn, OSSL_FUNC_KEYEXCH_INIT);
    alg->derive = OFFLOAD_FN(OSSL_FUNC_keyexch_derive_fn, OSSL_FUNC_KEYEXCH_DERIVE);
    alg->freectx = OFFLOAD_FN(OSSL_FUNC_keyexch_freectx_fn, OSSL_FUNC_KEYEXCH_FREECTX);
    alg->dupctx = OFFLOAD_FN(OSSL_FUNC_keyexch_dupctx_fn, OSSL_FUNC_KEYEXCH_DUPCTX);
    alg->set_peer = OFFLOAD_FN(OSSL_FUNC_keyexch_set_peer_fn, OSSL_FUNC_KEYEXCH_SET_PEER);
    alg->get_ctx_params =
        OFFLOAD_FN(OSSL_FUNC_keyexch_get_ctx_params_fn, OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS);
    alg->token = alg->set_peer != NULL && alg->get_ctx_params != NULL &&
                 offload_first_name_is(a->algorithm_names, "ECDH");
    /* Without a free of its own, a context cannot be kept alive for a worker. */
    if (alg->freectx == NULL || alg->init == NULL || alg->derive == NULL)
        return 0;
    if (alg->rule == OFFLOAD_COST_TRIVIAL) /* TLS1-PRF, HKDF: the default's alone */
        return 0;
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYEXCH_INIT, kex_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYEXCH_DERIVE, kex_derive_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYEXCH_FREECTX, kex_freectx_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYEXCH_DUPCTX, kex_dupctx_slot[i]);
    if (alg->token)
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYEXCH_SET_PEER, kex_set_peer_slot[i]);
    return n;
}

size_t offload_keyexch_bind(void)
{
    return offload_mirror_bind(&kex_mirror, OSSL_OP_KEYEXCH, kex_intercepts);
}

void offload_keyexch_unbind(void)
{
    offload_mirror_unbind(&kex_mirror);
}

const OSSL_ALGORITHM *offload_keyexch_algorithms(void)
{
    return kex_mirror.algs;
}

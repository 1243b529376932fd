/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key exchange: ECDH (cofactor mode, X9.63 KDF params), X25519 and X448.
 *
 * Our context holds the soft engine's; init, peer and params are
 * forwarded inline, derive is offloaded when the caller runs inside an
 * ASYNC_JOB and is not alone (a lone derive costs less inline than the
 * wake-up it would need). The request owns its output buffer and holds a
 * reference on our context.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "async.h"
#include "keymgmt.h"
#include "soft.h"

struct kex_alg {
    const char *name;
    const char *keytype;
    const char *names;
    const OSSL_DISPATCH *soft;
    OSSL_FUNC_keyexch_newctx_fn *newctx;
    OSSL_FUNC_keyexch_init_fn *init;
    OSSL_FUNC_keyexch_derive_fn *derive;
    OSSL_FUNC_keyexch_set_peer_fn *set_peer;
    OSSL_FUNC_keyexch_freectx_fn *freectx;
    OSSL_FUNC_keyexch_dupctx_fn *dupctx;
    OSSL_FUNC_keyexch_set_ctx_params_fn *set_ctx_params;
    OSSL_FUNC_keyexch_settable_ctx_params_fn *settable_ctx_params;
    OSSL_FUNC_keyexch_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_keyexch_gettable_ctx_params_fn *gettable_ctx_params;
};

enum { KEX_ECDH, KEX_X25519, KEX_X448, KEX_COUNT };

static struct kex_alg kex_algs[KEX_COUNT] = {
    [KEX_ECDH] = {.name = "ECDH", .keytype = "EC"},
    [KEX_X25519] = {.name = "X25519", .keytype = "X25519"},
    [KEX_X448] = {.name = "X448", .keytype = "X448"},
};

typedef struct kex_ctx {
    _Atomic unsigned refs;
    const struct kex_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *inner;
    int cheap; /* the key set at init is (offload_key_cheap) */
} KEX_CTX;

struct kex_job {
    KEX_CTX *ctx;
    unsigned char *out;
    size_t outlen, outsize;
};

static void kex_ctx_put(KEX_CTX *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    ctx->alg->freectx(ctx->inner);
    free(ctx);
}

static KEX_CTX *kex_ctx_new(OFFLOAD_PROVCTX *pctx, const struct kex_alg *alg, void *inner)
{
    KEX_CTX *ctx;

    if (inner == NULL)
        return NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        alg->freectx(inner);
        OFFLOAD_RAISE(pctx, OFFLOAD_R_ALLOC, "key exchange context");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    ctx->alg = alg;
    ctx->pctx = pctx;
    ctx->inner = inner;
    return ctx;
}

static int key_fits(const KEX_CTX *ctx, const OFFLOAD_KEY *key, const char *role)
{
    if (key == NULL) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_NO_KEY, "%s: no %s key", ctx->alg->name, role);
        return 0;
    }
    if (strcmp(offload_key_type(key), ctx->alg->keytype) != 0) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_WRONG_KEY_TYPE, "%s cannot use a %s %s key",
                      ctx->alg->name, offload_key_type(key), role);
        return 0;
    }
    return 1;
}

static int kex_job_run(struct offload_req *req)
{
    struct kex_job *j = (struct kex_job *)req->payload;

    j->outlen = j->outsize;
    return j->ctx->alg->derive(j->ctx->inner, j->out, &j->outlen, j->outsize);
}

static void kex_job_release(struct offload_req *req)
{
    struct kex_job *j = (struct kex_job *)req->payload;

    OPENSSL_cleanse(j->out, j->outsize);
    kex_ctx_put(j->ctx);
}

static OSSL_FUNC_keyexch_init_fn kex_init;
static OSSL_FUNC_keyexch_set_peer_fn kex_set_peer;
static OSSL_FUNC_keyexch_derive_fn kex_derive;
static OSSL_FUNC_keyexch_freectx_fn kex_freectx;
static OSSL_FUNC_keyexch_dupctx_fn kex_dupctx;
static OSSL_FUNC_keyexch_set_ctx_params_fn kex_set_ctx_params;
static OSSL_FUNC_keyexch_get_ctx_params_fn kex_get_ctx_params;

static void *kex_newctx(void *provctx, const struct kex_alg *alg)
{
    if (!offload_is_running()) {
        OFFLOAD_RAISE(provctx, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    return kex_ctx_new(provctx, alg, alg->newctx(offload_soft_provctx()));
}

static void kex_freectx(void *vctx)
{
    kex_ctx_put(vctx);
}

static void *kex_dupctx(void *vctx)
{
    KEX_CTX *src = vctx, *dst;

    dst = kex_ctx_new(src->pctx, src->alg, src->alg->dupctx(src->inner));
    if (dst != NULL)
        dst->cheap = src->cheap;
    return dst;
}

static int kex_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    KEX_CTX *ctx = vctx;

    if (!offload_is_running() || !key_fits(ctx, provkey, "private"))
        return 0;
    ctx->cheap = offload_key_cheap(provkey);
    return ctx->alg->init(ctx->inner, ((OFFLOAD_KEY *)provkey)->kd, params);
}

static int kex_set_peer(void *vctx, void *provkey)
{
    KEX_CTX *ctx = vctx;

    if (!key_fits(ctx, provkey, "peer"))
        return 0;
    return ctx->alg->set_peer(ctx->inner, ((OFFLOAD_KEY *)provkey)->kd);
}

static int kex_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    KEX_CTX *ctx = vctx;
    struct offload_req *req;
    struct kex_job *j;
    enum offload_path p;
    size_t need = 0;
    int ret;

    /* Refused before it starts, or a size query: counted nowhere. */
    if (!offload_is_running())
        return 0;
    if (secretlen == NULL) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_NULL_ARGUMENT, "secret length pointer");
        return 0;
    }
    if (secret == NULL)
        return ctx->alg->derive(ctx->inner, NULL, secretlen, outlen);
    /* A short buffer gets the soft engine's own error, inline. */
    p = offload_async_path(OFFLOAD_FAM_KEYEXCH, ctx->cheap);
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (ctx->alg->derive(ctx->inner, NULL, &need, 0) <= 0 || need == 0 || need > outlen))
        p = OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED) {
        req = offload_req_new(kex_job_run, kex_job_release, OFFLOAD_FAM_KEYEXCH,
                              sizeof(*j) + need);
        if (req == NULL)
            p = OFFLOAD_PATH_NO_MEMORY;
    }
    if (p != OFFLOAD_PATH_OFFLOADED) {
        offload_op_path(OFFLOAD_FAM_KEYEXCH, p, ctx->alg->name, "derive");
        return offload_op_done(OFFLOAD_FAM_KEYEXCH,
                               ctx->alg->derive(ctx->inner, secret, secretlen, outlen),
                               ctx->alg->name, "derive");
    }
    j = (struct kex_job *)req->payload;
    req->cheap = ctx->cheap;
    req->alg = ctx->alg->name;
    req->op = "derive";
    atomic_fetch_add(&ctx->refs, 1);
    j->ctx = ctx;
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

static int kex_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KEX_CTX *ctx = vctx;

    return ctx->alg->set_ctx_params(ctx->inner, params);
}

static int kex_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    KEX_CTX *ctx = vctx;

    return ctx->alg->get_ctx_params(ctx->inner, params);
}

/* ---- functions that may be called without a context: one per algorithm ---- */

struct kex_tramp {
    OSSL_FUNC_keyexch_newctx_fn *newctx;
    OSSL_FUNC_keyexch_settable_ctx_params_fn *settable_ctx_params;
    OSSL_FUNC_keyexch_gettable_ctx_params_fn *gettable_ctx_params;
};

#define KEX_INNER(vctx) ((vctx) != NULL ? ((KEX_CTX *)(vctx))->inner : NULL)
#define KEX_TRAMPOLINES(i)                                                               \
    static void *kex_newctx_##i(void *provctx)                                           \
    {                                                                                    \
        return kex_newctx(provctx, &kex_algs[i]);                                        \
    }                                                                                    \
    static const OSSL_PARAM *kex_settable_##i(void *vctx, void *provctx)                 \
    {                                                                                    \
        (void)provctx;                                                                   \
        return kex_algs[i].settable_ctx_params(KEX_INNER(vctx), offload_soft_provctx()); \
    }                                                                                    \
    static const OSSL_PARAM *kex_gettable_##i(void *vctx, void *provctx)                 \
    {                                                                                    \
        (void)provctx;                                                                   \
        return kex_algs[i].gettable_ctx_params(KEX_INNER(vctx), offload_soft_provctx()); \
    }
#define KEX_TRAMP(i)                                                                     \
    {                                                                                    \
        kex_newctx_##i, kex_settable_##i, kex_gettable_##i                               \
    }

KEX_TRAMPOLINES(0)
KEX_TRAMPOLINES(1)
KEX_TRAMPOLINES(2)

static const struct kex_tramp kex_tramps[KEX_COUNT] = {KEX_TRAMP(0), KEX_TRAMP(1),
                                                       KEX_TRAMP(2)};

#define KEX_MAX_FNS 12
static OSSL_DISPATCH kex_dispatch[KEX_COUNT][KEX_MAX_FNS];
static OSSL_ALGORITHM kex_table[KEX_COUNT + 1];

#define BIND(field, id, ours) OFFLOAD_SOFT_BIND(alg, d, field, id, ours)

size_t offload_keyexch_bind(void)
{
    size_t i, n = 0;

    for (i = 0; i < KEX_COUNT; i++) {
        struct kex_alg *alg = &kex_algs[i];
        const struct kex_tramp *t = &kex_tramps[i];
        OSSL_DISPATCH *d = kex_dispatch[i];

        alg->soft = offload_soft_find(OSSL_OP_KEYEXCH, alg->name, &alg->names);
        if (alg->soft == NULL)
            continue;
        BIND(newctx, OSSL_FUNC_KEYEXCH_NEWCTX, t->newctx);
        BIND(init, OSSL_FUNC_KEYEXCH_INIT, kex_init);
        BIND(derive, OSSL_FUNC_KEYEXCH_DERIVE, kex_derive);
        BIND(set_peer, OSSL_FUNC_KEYEXCH_SET_PEER, kex_set_peer);
        BIND(freectx, OSSL_FUNC_KEYEXCH_FREECTX, kex_freectx);
        BIND(dupctx, OSSL_FUNC_KEYEXCH_DUPCTX, kex_dupctx);
        BIND(set_ctx_params, OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, kex_set_ctx_params);
        BIND(settable_ctx_params, OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS,
             t->settable_ctx_params);
        BIND(get_ctx_params, OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, kex_get_ctx_params);
        BIND(gettable_ctx_params, OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS,
             t->gettable_ctx_params);
        *d = (OSSL_DISPATCH){0, NULL};
        if (alg->newctx == NULL || alg->freectx == NULL || alg->init == NULL ||
            alg->derive == NULL) {
            alg->soft = NULL;
            continue;
        }
        kex_table[n++] = (OSSL_ALGORITHM){alg->names, "provider=offload", kex_dispatch[i],
                                          "offload key exchange"};
    }
    kex_table[n] = (OSSL_ALGORITHM){NULL, NULL, NULL, NULL};
    return n;
}

const OSSL_ALGORITHM *offload_keyexch_algorithms(void)
{
    return kex_table;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signatures: RSA (PKCS#1 v1.5, PSS, X9.31, no padding), ECDSA, Ed25519
 * and Ed448.
 *
 * Our context holds the soft engine's signature context. Parameters,
 * init and the digest updates are forwarded inline; the expensive step
 * (sign, digest-sign final, one-shot digest-sign) is offloaded when the
 * caller runs inside an ASYNC_JOB. The request owns a copy of the input
 * and its own output buffer and holds a reference on our context, so a
 * job abandoned while paused leaves nothing for the worker to trip on.
 *
 * Verification stays inline: see README ("Why verify runs inline").
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "keymgmt.h"
#include "soft.h"

struct sig_alg {
    const char *name;     /* first name in the default provider's table */
    const char *keytypes; /* key types it accepts, ':'-separated */
    const char *names;
    const OSSL_DISPATCH *soft;
    OSSL_FUNC_signature_newctx_fn *newctx;
    OSSL_FUNC_signature_freectx_fn *freectx;
    OSSL_FUNC_signature_dupctx_fn *dupctx;
    OSSL_FUNC_signature_sign_init_fn *sign_init;
    OSSL_FUNC_signature_sign_fn *sign;
    OSSL_FUNC_signature_verify_init_fn *verify_init;
    OSSL_FUNC_signature_verify_fn *verify;
    OSSL_FUNC_signature_verify_recover_init_fn *verify_recover_init;
    OSSL_FUNC_signature_verify_recover_fn *verify_recover;
    OSSL_FUNC_signature_digest_sign_init_fn *digest_sign_init;
    OSSL_FUNC_signature_digest_sign_update_fn *digest_sign_update;
    OSSL_FUNC_signature_digest_sign_final_fn *digest_sign_final;
    OSSL_FUNC_signature_digest_sign_fn *digest_sign;
    OSSL_FUNC_signature_digest_verify_init_fn *digest_verify_init;
    OSSL_FUNC_signature_digest_verify_update_fn *digest_verify_update;
    OSSL_FUNC_signature_digest_verify_final_fn *digest_verify_final;
    OSSL_FUNC_signature_digest_verify_fn *digest_verify;
    OSSL_FUNC_signature_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_signature_gettable_ctx_params_fn *gettable_ctx_params;
    OSSL_FUNC_signature_set_ctx_params_fn *set_ctx_params;
    OSSL_FUNC_signature_settable_ctx_params_fn *settable_ctx_params;
    OSSL_FUNC_signature_get_ctx_md_params_fn *get_ctx_md_params;
    OSSL_FUNC_signature_gettable_ctx_md_params_fn *gettable_ctx_md_params;
    OSSL_FUNC_signature_set_ctx_md_params_fn *set_ctx_md_params;
    OSSL_FUNC_signature_settable_ctx_md_params_fn *settable_ctx_md_params;
};

enum { SIG_RSA, SIG_ECDSA, SIG_ED25519, SIG_ED448, SIG_COUNT };

static struct sig_alg sig_algs[SIG_COUNT] = {
    [SIG_RSA] = {.name = "RSA", .keytypes = "RSA:RSA-PSS"},
    [SIG_ECDSA] = {.name = "ECDSA", .keytypes = "EC"},
    [SIG_ED25519] = {.name = "ED25519", .keytypes = "ED25519"},
    [SIG_ED448] = {.name = "ED448", .keytypes = "ED448"},
};

typedef struct sig_ctx {
    _Atomic unsigned refs; /* the EVP side's, plus one per request in flight */
    const struct sig_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *inner;   /* the soft engine's context */
    size_t maxsig; /* signature size for the key set at init; 0: ask the soft engine */
    int cheap;     /* the key set at init is (offload_key_cheap) */
} SIG_CTX;

/* What a request for one signing step carries. */
enum sig_step { STEP_SIGN, STEP_DIGEST_SIGN_FINAL, STEP_DIGEST_SIGN };

struct sig_job {
    SIG_CTX *ctx;
    enum sig_step step;
    unsigned char *out;
    size_t outlen, outsize;
    const unsigned char *in; /* points into the request's own copy */
    size_t inlen;
};

static void sig_ctx_put(SIG_CTX *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    ctx->alg->freectx(ctx->inner);
    free(ctx);
}

static SIG_CTX *sig_ctx_new(OFFLOAD_PROVCTX *pctx, const struct sig_alg *alg, void *inner)
{
    SIG_CTX *ctx;

    if (inner == NULL)
        return NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        alg->freectx(inner);
        OFFLOAD_RAISE(pctx, OFFLOAD_R_ALLOC, "signature context");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    ctx->alg = alg;
    ctx->pctx = pctx;
    ctx->inner = inner;
    return ctx;
}

/* 1 when |key| is one of the types |ctx|'s algorithm signs with; raises otherwise. */
static int key_fits(const SIG_CTX *ctx, const OFFLOAD_KEY *key)
{
    const char *t, *p = ctx->alg->keytypes;
    size_t n;

    if (key == NULL)
        return 1; /* re-init with the key already set */
    t = offload_key_type(key);
    n = strlen(t);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, t, n) == 0 && (p[n] == ':' || p[n] == '\0'))
            return 1;
        p = strchr(p, ':');
        p = p != NULL ? p + 1 : NULL;
    }
    OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_WRONG_KEY_TYPE, "%s cannot use a %s key",
                  ctx->alg->name, t);
    return 0;
}

/*
 * Sign or digest-sign init: checks |key| and forgets what the previous key
 * told us. NULL re-inits with the key already set, whose cost stays.
 */
static int signing_key(SIG_CTX *ctx, OFFLOAD_KEY *key)
{
    if (!offload_is_running() || !key_fits(ctx, key))
        return 0;
    ctx->maxsig = 0;
    if (key != NULL)
        ctx->cheap = offload_key_cheap(key);
    return 1;
}

static void *kd_of(const OFFLOAD_KEY *key)
{
    return key != NULL ? key->kd : NULL;
}

/* ---- the offloaded step ---- */

static int sig_job_run(struct offload_req *req)
{
    struct sig_job *j = (struct sig_job *)req->payload;
    const struct sig_alg *alg = j->ctx->alg;

    j->outlen = j->outsize;
    switch (j->step) {
    case STEP_SIGN:
        return alg->sign(j->ctx->inner, j->out, &j->outlen, j->outsize, j->in, j->inlen);
    case STEP_DIGEST_SIGN_FINAL:
        return alg->digest_sign_final(j->ctx->inner, j->out, &j->outlen, j->outsize);
    case STEP_DIGEST_SIGN:
        return alg->digest_sign(j->ctx->inner, j->out, &j->outlen, j->outsize, j->in,
                                j->inlen);
    }
    return 0;
}

static void sig_job_release(struct offload_req *req)
{
    struct sig_job *j = (struct sig_job *)req->payload;

    sig_ctx_put(j->ctx);
}

static const char *const step_names[] = {
    [STEP_SIGN] = "sign",
    [STEP_DIGEST_SIGN_FINAL] = "digest-sign-final",
    [STEP_DIGEST_SIGN] = "digest-sign",
};

/*
 * Offloads one signing step through |req| (payload room for the job, the
 * |need| bytes of output, the soft engine's own size answer, and a copy of
 * the input). Called only inside a job with sig != NULL.
 */
static int sig_offload(SIG_CTX *ctx, struct offload_req *req, enum sig_step step,
                       unsigned char *sig, size_t *siglen, size_t need,
                       const unsigned char *tbs, size_t tbslen)
{
    struct sig_job *j = (struct sig_job *)req->payload;
    int ret;

    req->cheap = ctx->cheap;
    req->alg = ctx->alg->name;
    req->op = step_names[step];
    atomic_fetch_add(&ctx->refs, 1);
    j->ctx = ctx;
    j->step = step;
    j->out = req->payload + sizeof(*j);
    j->outsize = need;
    if (tbslen > 0)
        memcpy(j->out + need, tbs, tbslen);
    j->in = j->out + need;
    j->inlen = tbslen;

    ret = offload_async_run(req);
    if (ret > 0) {
        memcpy(sig, j->out, j->outlen);
        *siglen = j->outlen;
    } else if (req->nerrs == 0 && ERR_peek_last_error() == 0) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_ENGINE_FAILED,
                      "%s signing failed (input of %zu bytes)", ctx->alg->name, tbslen);
    }
    OPENSSL_cleanse(j->out, need);
    offload_req_put(req);
    return ret;
}

/* ---- entry points ---- */

static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_verify_init_fn sig_verify_init;
static OSSL_FUNC_signature_verify_fn sig_verify;
static OSSL_FUNC_signature_verify_recover_init_fn sig_verify_recover_init;
static OSSL_FUNC_signature_verify_recover_fn sig_verify_recover;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_sign_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_update_fn sig_digest_verify_update;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_digest_verify_fn sig_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_get_ctx_md_params_fn sig_get_ctx_md_params;
static OSSL_FUNC_signature_set_ctx_md_params_fn sig_set_ctx_md_params;

static void *sig_newctx(void *provctx, const char *propq, const struct sig_alg *alg)
{
    (void)propq; /* the soft engine fetches its digests from its own context */
    if (!offload_is_running()) {
        OFFLOAD_RAISE(provctx, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    return sig_ctx_new(provctx, alg, alg->newctx(offload_soft_provctx(), NULL));
}

static void sig_freectx(void *vctx)
{
    sig_ctx_put(vctx);
}

static void *sig_dupctx(void *vctx)
{
    SIG_CTX *src = vctx, *dst;

    dst = sig_ctx_new(src->pctx, src->alg, src->alg->dupctx(src->inner));
    if (dst != NULL) {
        dst->maxsig = src->maxsig;
        dst->cheap = src->cheap;
    }
    return dst;
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!signing_key(ctx, provkey))
        return 0;
    return ctx->alg->sign_init(ctx->inner, kd_of(provkey), params);
}

static int soft_step(SIG_CTX *ctx, enum sig_step step, unsigned char *sig, size_t *siglen,
                     size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    switch (step) {
    case STEP_SIGN:
        return ctx->alg->sign(ctx->inner, sig, siglen, sigsize, tbs, tbslen);
    case STEP_DIGEST_SIGN_FINAL:
        return ctx->alg->digest_sign_final(ctx->inner, sig, siglen, sigsize);
    case STEP_DIGEST_SIGN:
        return ctx->alg->digest_sign(ctx->inner, sig, siglen, sigsize, tbs, tbslen);
    }
    return 0;
}

static int sig_step(SIG_CTX *ctx, enum sig_step step, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    size_t need = 0;
    unsigned long last;
    enum offload_path p;
    int ret;

    /* Refused before it starts (not running, bad arguments): counted nowhere. */
    if (!offload_is_running())
        return 0;
    if (siglen == NULL) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_NULL_ARGUMENT, "signature length pointer");
        return 0;
    }
    if (sig == NULL) /* size query */
        return soft_step(ctx, step, NULL, siglen, 0, tbs, tbslen);
    /* The size depends on the key only: ask once per init (ECDSA's answer costs an
     * encode). */
    if (ctx->maxsig == 0 && soft_step(ctx, step, NULL, &need, 0, tbs, tbslen) > 0)
        ctx->maxsig = need;
    need = ctx->maxsig;
    if (need > sigsize) {
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "%s signature needs %zu bytes, buffer has %zu", ctx->alg->name,
                      need, sigsize);
        return 0;
    }
    p = need > 0 ? offload_async_path(OFFLOAD_FAM_SIGNATURE, ctx->cheap)
                 : OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED) {
        struct offload_req *req =
            offload_req_new(sig_job_run, sig_job_release, OFFLOAD_FAM_SIGNATURE,
                            sizeof(struct sig_job) + need + tbslen);

        if (req != NULL)
            return sig_offload(ctx, req, step, sig, siglen, need, tbs, tbslen);
        p = OFFLOAD_PATH_NO_MEMORY;
    }
    offload_op_path(OFFLOAD_FAM_SIGNATURE, p, ctx->alg->name, step_names[step]);
    last = ERR_peek_last_error();
    ret = soft_step(ctx, step, sig, siglen, sigsize, tbs, tbslen);
    if (ret <= 0 && ERR_peek_last_error() == last) /* the soft engine said nothing */
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_ENGINE_FAILED,
                      "%s signing failed (input of %zu bytes)", ctx->alg->name, tbslen);
    return offload_op_done(OFFLOAD_FAM_SIGNATURE, ret, ctx->alg->name, step_names[step]);
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    return sig_step(vctx, STEP_SIGN, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!offload_is_running() || !key_fits(ctx, provkey))
        return 0;
    return ctx->alg->verify_init(ctx->inner, kd_of(provkey), params);
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->verify(ctx->inner, sig, siglen, tbs, tbslen);
}

static int sig_verify_recover_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!offload_is_running() || !key_fits(ctx, provkey))
        return 0;
    return ctx->alg->verify_recover_init(ctx->inner, kd_of(provkey), params);
}

static int sig_verify_recover(void *vctx, unsigned char *rout, size_t *routlen,
                              size_t routsize, const unsigned char *sig, size_t siglen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->verify_recover(ctx->inner, rout, routlen, routsize, sig, siglen);
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!signing_key(ctx, provkey))
        return 0;
    return ctx->alg->digest_sign_init(ctx->inner, mdname, kd_of(provkey), params);
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data, size_t datalen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->digest_sign_update(ctx->inner, data, datalen);
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen,
                                 size_t sigsize)
{
    return sig_step(vctx, STEP_DIGEST_SIGN_FINAL, sig, siglen, sigsize, NULL, 0);
}

static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    return sig_step(vctx, STEP_DIGEST_SIGN, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!offload_is_running() || !key_fits(ctx, provkey))
        return 0;
    return ctx->alg->digest_verify_init(ctx->inner, mdname, kd_of(provkey), params);
}

static int sig_digest_verify_update(void *vctx, const unsigned char *data, size_t datalen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->digest_verify_update(ctx->inner, data, datalen);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->digest_verify_final(ctx->inner, sig, siglen);
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->digest_verify(ctx->inner, sig, siglen, tbs, tbslen);
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->get_ctx_params(ctx->inner, params);
}

/*
 * The default provider reads a few string params leniently (an unknown
 * pad mode is ignored, a salt length goes through atoi): check their
 * shape first so that garbage fails with a reason instead of being used.
 */
static int check_string_params(const SIG_CTX *ctx, const OSSL_PARAM params[])
{
    static const char *const pads[] = {
        OSSL_PKEY_RSA_PAD_MODE_NONE, OSSL_PKEY_RSA_PAD_MODE_PKCSV15,
        OSSL_PKEY_RSA_PAD_MODE_X931, OSSL_PKEY_RSA_PAD_MODE_PSS, NULL};
    static const char *const salts[] = {OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST,
                                        OSSL_PKEY_RSA_PSS_SALT_LEN_MAX,
                                        OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO, NULL};
    const OSSL_PARAM *p;
    const char *v;
    size_t i;

    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL && p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v))
            goto bad_pad;
        for (i = 0; pads[i] != NULL && strcmp(v, pads[i]) != 0; i++)
            ;
        if (pads[i] == NULL)
            goto bad_pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && p->data_type == OSSL_PARAM_UTF8_STRING) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &v) || v[0] == '\0')
            goto bad_salt;
        for (i = 0; salts[i] != NULL && strcmp(v, salts[i]) != 0; i++)
            ;
        if (salts[i] == NULL && strspn(v, "0123456789") != strlen(v))
            goto bad_salt;
    }
    return 1;
bad_pad:
    OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_BAD_PARAM,
                  "pad-mode \"%s\": expected none, pkcs1, x931 or pss",
                  p->data_type == OSSL_PARAM_UTF8_STRING ? (const char *)p->data : "?");
    return 0;
bad_salt:
    OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_BAD_PARAM,
                  "saltlen \"%s\": expected digest, max, auto or a number",
                  p->data_type == OSSL_PARAM_UTF8_STRING ? (const char *)p->data : "?");
    return 0;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (!check_string_params(ctx, params))
        return 0;
    return ctx->alg->set_ctx_params(ctx->inner, params);
}

static int sig_get_ctx_md_params(void *vctx, OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->get_ctx_md_params(ctx->inner, params);
}

static int sig_set_ctx_md_params(void *vctx, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    return ctx->alg->set_ctx_md_params(ctx->inner, params);
}

/* ---- functions that may be called without a context: one per algorithm ---- */

struct sig_tramp {
    OSSL_FUNC_signature_newctx_fn *newctx;
    OSSL_FUNC_signature_gettable_ctx_params_fn *gettable_ctx_params;
    OSSL_FUNC_signature_settable_ctx_params_fn *settable_ctx_params;
    OSSL_FUNC_signature_gettable_ctx_md_params_fn *gettable_ctx_md_params;
    OSSL_FUNC_signature_settable_ctx_md_params_fn *settable_ctx_md_params;
};

#define INNER(vctx) ((vctx) != NULL ? ((SIG_CTX *)(vctx))->inner : NULL)
#define SIG_TRAMPOLINES(i)                                                               \
    static void *sig_newctx_##i(void *provctx, const char *propq)                        \
    {                                                                                    \
        return sig_newctx(provctx, propq, &sig_algs[i]);                                 \
    }                                                                                    \
    static const OSSL_PARAM *sig_gettable_##i(void *vctx, void *provctx)                 \
    {                                                                                    \
        (void)provctx;                                                                   \
        return sig_algs[i].gettable_ctx_params(INNER(vctx), offload_soft_provctx());     \
    }                                                                                    \
    static const OSSL_PARAM *sig_settable_##i(void *vctx, void *provctx)                 \
    {                                                                                    \
        (void)provctx;                                                                   \
        return sig_algs[i].settable_ctx_params(INNER(vctx), offload_soft_provctx());     \
    }                                                                                    \
    static const OSSL_PARAM *sig_gettable_md_##i(void *vctx)                             \
    {                                                                                    \
        return sig_algs[i].gettable_ctx_md_params(INNER(vctx));                          \
    }                                                                                    \
    static const OSSL_PARAM *sig_settable_md_##i(void *vctx)                             \
    {                                                                                    \
        return sig_algs[i].settable_ctx_md_params(INNER(vctx));                          \
    }
#define SIG_TRAMP(i)                                                                     \
    {                                                                                    \
        sig_newctx_##i, sig_gettable_##i, sig_settable_##i, sig_gettable_md_##i,         \
            sig_settable_md_##i                                                          \
    }

SIG_TRAMPOLINES(0)
SIG_TRAMPOLINES(1)
SIG_TRAMPOLINES(2)
SIG_TRAMPOLINES(3)

static const struct sig_tramp sig_tramps[SIG_COUNT] = {
    SIG_TRAMP(0),
    SIG_TRAMP(1),
    SIG_TRAMP(2),
    SIG_TRAMP(3),
};

/* ---- binding and the algorithm table ---- */

#define SIG_MAX_FNS 32
static OSSL_DISPATCH sig_dispatch[SIG_COUNT][SIG_MAX_FNS];
static OSSL_ALGORITHM sig_table[SIG_COUNT + 1];

#define BIND(field, id, ours) OFFLOAD_SOFT_BIND(alg, d, field, id, ours)

size_t offload_signature_bind(void)
{
    size_t i, n = 0;

    for (i = 0; i < SIG_COUNT; i++) {
        struct sig_alg *alg = &sig_algs[i];
        const struct sig_tramp *t = &sig_tramps[i];
        OSSL_DISPATCH *d = sig_dispatch[i];

        alg->soft = offload_soft_find(OSSL_OP_SIGNATURE, alg->name, &alg->names);
        if (alg->soft == NULL)
            continue;
        BIND(newctx, OSSL_FUNC_SIGNATURE_NEWCTX, t->newctx);
        BIND(freectx, OSSL_FUNC_SIGNATURE_FREECTX, sig_freectx);
        BIND(dupctx, OSSL_FUNC_SIGNATURE_DUPCTX, sig_dupctx);
        BIND(sign_init, OSSL_FUNC_SIGNATURE_SIGN_INIT, sig_sign_init);
        BIND(sign, OSSL_FUNC_SIGNATURE_SIGN, sig_sign);
        BIND(verify_init, OSSL_FUNC_SIGNATURE_VERIFY_INIT, sig_verify_init);
        BIND(verify, OSSL_FUNC_SIGNATURE_VERIFY, sig_verify);
        BIND(verify_recover_init, OSSL_FUNC_SIGNATURE_VERIFY_RECOVER_INIT,
             sig_verify_recover_init);
        BIND(verify_recover, OSSL_FUNC_SIGNATURE_VERIFY_RECOVER, sig_verify_recover);
        BIND(digest_sign_init, OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
             sig_digest_sign_init);
        BIND(digest_sign_update, OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
             sig_digest_sign_update);
        BIND(digest_sign_final, OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
             sig_digest_sign_final);
        BIND(digest_sign, OSSL_FUNC_SIGNATURE_DIGEST_SIGN, sig_digest_sign);
        BIND(digest_verify_init, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
             sig_digest_verify_init);
        BIND(digest_verify_update, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
             sig_digest_verify_update);
        BIND(digest_verify_final, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
             sig_digest_verify_final);
        BIND(digest_verify, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, sig_digest_verify);
        BIND(get_ctx_params, OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, sig_get_ctx_params);
        BIND(gettable_ctx_params, OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
             t->gettable_ctx_params);
        BIND(set_ctx_params, OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sig_set_ctx_params);
        BIND(settable_ctx_params, OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
             t->settable_ctx_params);
        BIND(get_ctx_md_params, OSSL_FUNC_SIGNATURE_GET_CTX_MD_PARAMS,
             sig_get_ctx_md_params);
        BIND(gettable_ctx_md_params, OSSL_FUNC_SIGNATURE_GETTABLE_CTX_MD_PARAMS,
             t->gettable_ctx_md_params);
        BIND(set_ctx_md_params, OSSL_FUNC_SIGNATURE_SET_CTX_MD_PARAMS,
             sig_set_ctx_md_params);
        BIND(settable_ctx_md_params, OSSL_FUNC_SIGNATURE_SETTABLE_CTX_MD_PARAMS,
             t->settable_ctx_md_params);
        *d = (OSSL_DISPATCH){0, NULL};
        if (alg->newctx == NULL || alg->freectx == NULL) {
            alg->soft = NULL;
            continue;
        }
        sig_table[n++] = (OSSL_ALGORITHM){alg->names, "provider=offload", sig_dispatch[i],
                                          "offload signature"};
    }
    sig_table[n] = (OSSL_ALGORITHM){NULL, NULL, NULL, NULL};
    return n;
}

const OSSL_ALGORITHM *offload_signature_algorithms(void)
{
    return sig_table;
}

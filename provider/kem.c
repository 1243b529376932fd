/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key encapsulation: every KEM the default provider offers (RSA's RSASVE;
 * on 3.2+ the DHKEMs of EC, X25519 and X448; on 3.5 ML-KEM-512/768/1024
 * and the hybrids X25519MLKEM768, SecP256r1MLKEM768, ...).
 *
 * Each table is the default's, copied entry by entry (mirror.h); its
 * contexts are the default's. Intercepted, once per slot: the four inits
 * (record the cost class of the key: ML-KEM and the P-256 and X25519
 * hybrids cost tens of microseconds, keymgmt.h), ENCAPSULATE and
 * DECAPSULATE (offloaded when the caller runs inside an ASYNC_JOB; a
 * cheap one stays inline when alone or when the workers are busy),
 * FREECTX (deferred while a request holds the context) and DUPCTX.
 *
 * A call the default would refuse (a length pointer missing, a buffer
 * shorter than the output) runs inline, so it gets the default's own
 * error. An offloaded one works on the request's own buffers (a copy of
 * the ciphertext in, the outputs sized by the default's size query),
 * which are wiped when the request goes.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "async.h"
#include "ctxstate.h"
#include "families.h"
#include "mirror.h"

#ifndef OSSL_FUNC_KEM_AUTH_ENCAPSULATE_INIT /* 3.2+, decided at run time */
#define OSSL_FUNC_KEM_AUTH_ENCAPSULATE_INIT 12
#define OSSL_FUNC_KEM_AUTH_DECAPSULATE_INIT 13
#endif
typedef int kem_auth_init_fn(void *ctx, void *key, void *authkey,
                             const OSSL_PARAM params[]);

struct kem_alg {
    char name[32]; /* its first name, for the log and the reasons */
    enum offload_cost_rule rule;
    int unowned; /* its contexts keep no reference on the key: we pin it */
    OSSL_FUNC_kem_encapsulate_init_fn *encapsulate_init;
    OSSL_FUNC_kem_decapsulate_init_fn *decapsulate_init;
    kem_auth_init_fn *auth_encapsulate_init;
    kem_auth_init_fn *auth_decapsulate_init;
    OSSL_FUNC_kem_encapsulate_fn *encapsulate;
    OSSL_FUNC_kem_decapsulate_fn *decapsulate;
    OSSL_FUNC_kem_freectx_fn *freectx;
    OSSL_FUNC_kem_dupctx_fn *dupctx;
};

static struct kem_alg kem_algs[OFFLOAD_SLOTS];
static struct offload_mirror kem_mirror = {.description = "offload kem"};

struct kem_job {
    struct offload_ctxstate *s; /* the default's context, held */
    const struct kem_alg *alg;
    int encaps;
    unsigned char *out; /* encapsulate: the ciphertext; decapsulate: the secret */
    size_t outlen, outsize;
    unsigned char *sec; /* encapsulate: the secret */
    size_t seclen, secsize;
    const unsigned char *in; /* decapsulate: the request's copy of the ciphertext */
    size_t inlen;
};

static int kem_job_run(struct offload_req *req)
{
    struct kem_job *j = (struct kem_job *)req->payload;

    j->outlen = j->outsize;
    j->seclen = j->secsize;
    if (j->encaps)
        return j->alg->encapsulate(j->s->ctx, j->out, &j->outlen, j->sec, &j->seclen);
    return j->alg->decapsulate(j->s->ctx, j->out, &j->outlen, j->in, j->inlen);
}

static void kem_job_release(struct offload_req *req)
{
    struct kem_job *j = (struct kem_job *)req->payload;

    OPENSSL_cleanse(j->out, j->outsize + j->secsize);
    offload_ctxstate_release(j->s);
}

/*
 * Where a well-formed call goes. Only a call bound for a worker asks the
 * default for its output sizes (|need|, |secneed|: the request's buffers),
 * so the inline paths cost what the default costs; one whose sizes are
 * unknown or larger than the caller's buffers (|have|, |sechave|) runs
 * inline, for the default's own error.
 */
static enum offload_path kem_path(const struct kem_alg *alg, struct offload_ctxstate *s,
                                  int encaps, void *ctx, const unsigned char *in,
                                  size_t inlen, size_t *need, size_t have,
                                  size_t *secneed, size_t sechave)
{
    enum offload_path p;
    int ok;

    if (s == NULL)
        return OFFLOAD_PATH_NO_MEMORY;
    if ((p = offload_async_path(OFFLOAD_FAM_KEM, s->cheap)) != OFFLOAD_PATH_OFFLOADED)
        return p;
    ok = encaps ? alg->encapsulate(ctx, NULL, need, NULL, secneed)
                : alg->decapsulate(ctx, NULL, need, in, inlen);
    if (ok <= 0 || *need == 0 || *need > have || *secneed > sechave)
        return OFFLOAD_PATH_NO_SIZE;
    return OFFLOAD_PATH_OFFLOADED;
}

/* Runs the job in |req| (filled in but for the context) and copies its outputs. */
static int kem_offload(struct offload_req *req, struct offload_ctxstate *s,
                       unsigned char *out, size_t *outlen, unsigned char *sec,
                       size_t *seclen)
{
    struct kem_job *j = (struct kem_job *)req->payload;
    unsigned long before = ERR_peek_last_error();
    int ret;

    req->cheap = s->cheap;
    req->alg = j->alg->name;
    req->op = j->encaps ? "encapsulate" : "decapsulate";
    offload_ctxstate_hold(s);
    j->s = s;
    ret = offload_failed_why(offload_async_run(req), before, j->alg->name, req->op,
                             j->inlen);
    if (ret > 0) {
        memcpy(out, j->out, j->outlen);
        *outlen = j->outlen;
        if (j->encaps) {
            memcpy(sec, j->sec, j->seclen);
            *seclen = j->seclen;
        }
    }
    offload_req_put(req);
    return ret;
}

static int kem_encapsulate(size_t slot, void *ctx, unsigned char *out, size_t *outlen,
                           unsigned char *secret, size_t *secretlen)
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct offload_ctxstate *s;
    struct offload_req *req = NULL;
    struct kem_job *j;
    size_t need = 0, secneed = 0;
    enum offload_path p;
    int ret;

    if (!offload_is_running())
        return 0;
    if (out == NULL) /* a size query: counted nowhere */
        return alg->encapsulate(ctx, NULL, outlen, secret, secretlen);
    s = offload_ctxstate_get(ctx, alg->freectx);
    if (secret == NULL || outlen == NULL || secretlen == NULL)
        p = OFFLOAD_PATH_NO_SIZE; /* the default's own error */
    else
        p = kem_path(alg, s, 1, ctx, NULL, 0, &need, *outlen, &secneed, *secretlen);
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (req = offload_req_new(kem_job_run, kem_job_release, OFFLOAD_FAM_KEM,
                               sizeof(*j) + need + secneed)) == NULL)
        p = OFFLOAD_PATH_NO_MEMORY;
    if (p != OFFLOAD_PATH_OFFLOADED) {
        unsigned long before = ERR_peek_last_error();

        offload_op_path(OFFLOAD_FAM_KEM, p, alg->name, "encapsulate");
        ret = alg->encapsulate(ctx, out, outlen, secret, secretlen);
        return offload_op_done(
            OFFLOAD_FAM_KEM, offload_failed_why(ret, before, alg->name, "encapsulate", 0),
            alg->name, "encapsulate");
    }
    j = (struct kem_job *)req->payload;
    j->alg = alg;
    j->encaps = 1;
    j->out = req->payload + sizeof(*j);
    j->outsize = need;
    j->sec = j->out + need;
    j->secsize = secneed;
    return kem_offload(req, s, out, outlen, secret, secretlen);
}

static int kem_decapsulate(size_t slot, void *ctx, unsigned char *out, size_t *outlen,
                           const unsigned char *in, size_t inlen)
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct offload_ctxstate *s;
    struct offload_req *req = NULL;
    struct kem_job *j;
    size_t need = 0, secneed = 0;
    enum offload_path p;
    int ret;

    if (!offload_is_running())
        return 0;
    if (out == NULL) /* a size query: counted nowhere */
        return alg->decapsulate(ctx, NULL, outlen, in, inlen);
    s = offload_ctxstate_get(ctx, alg->freectx);
    if (outlen == NULL || (in == NULL && inlen > 0))
        p = OFFLOAD_PATH_NO_SIZE; /* the default's own answer */
    else
        p = kem_path(alg, s, 0, ctx, in, inlen, &need, *outlen, &secneed, 0);
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (req = offload_req_new(kem_job_run, kem_job_release, OFFLOAD_FAM_KEM,
                               sizeof(*j) + need + inlen)) == NULL)
        p = OFFLOAD_PATH_NO_MEMORY;
    if (p != OFFLOAD_PATH_OFFLOADED) {
        unsigned long before = ERR_peek_last_error();

        offload_op_path(OFFLOAD_FAM_KEM, p, alg->name, "decapsulate");
        ret = alg->decapsulate(ctx, out, outlen, in, inlen);
        return offload_op_done(
            OFFLOAD_FAM_KEM,
            offload_failed_why(ret, before, alg->name, "decapsulate", inlen), alg->name,
            "decapsulate");
    }
    j = (struct kem_job *)req->payload;
    j->alg = alg;
    j->encaps = 0;
    j->out = req->payload + sizeof(*j);
    j->outsize = need;
    j->sec = NULL;
    j->secsize = 0;
    if (inlen > 0)
        memcpy(j->out + need, in, inlen);
    j->in = j->out + need;
    j->inlen = inlen;
    return kem_offload(req, s, out, outlen, NULL, NULL);
}

/* ---- contexts and the inits that take a key ---- */

/* What an init learns and keeps: the context's entry, and the pin on the key. */
struct kem_init {
    struct offload_ctxstate *s;
    struct offload_keyref *ref;
};

/*
 * Every init: the context's entry learns the cost of |key|, which is
 * pinned when the context keeps no reference on it. Returns 1, or 0 after
 * raising why.
 */
static int kem_begin(const struct kem_alg *alg, void *ctx, void *key, struct kem_init *in)
{
    if (!offload_is_running())
        return 0;
    if (key == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NO_KEY, "%s: no key", alg->name);
        return 0;
    }
    if ((in->s = offload_ctxstate_get(ctx, alg->freectx)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "kem context");
        return 0;
    }
    in->s->cheap = offload_key_cheap(alg->rule, key);
    in->ref = NULL;
    if (!alg->unowned)
        return 1;
    if ((in->ref = offload_keyref_pin(key)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s: a pin on the key", alg->name);
        return 0;
    }
    return 1;
}

/* The default's init returned |ok|: the entry keeps the pin. */
static int kem_end(struct kem_init *in, int ok)
{
    offload_ctxstate_set_key(in->s, in->ref, ok > 0);
    return ok;
}

static int kem_encapsulate_init(size_t slot, void *ctx, void *key,
                                const OSSL_PARAM params[])
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct kem_init in;

    return kem_begin(alg, ctx, key, &in) &&
           kem_end(&in, alg->encapsulate_init(ctx, key, params));
}

static int kem_decapsulate_init(size_t slot, void *ctx, void *key,
                                const OSSL_PARAM params[])
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct kem_init in;

    return kem_begin(alg, ctx, key, &in) &&
           kem_end(&in, alg->decapsulate_init(ctx, key, params));
}

static int kem_auth_encapsulate_init(size_t slot, void *ctx, void *key, void *authkey,
                                     const OSSL_PARAM params[])
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct kem_init in;

    return kem_begin(alg, ctx, key, &in) &&
           kem_end(&in, alg->auth_encapsulate_init(ctx, key, authkey, params));
}

static int kem_auth_decapsulate_init(size_t slot, void *ctx, void *key, void *authkey,
                                     const OSSL_PARAM params[])
{
    const struct kem_alg *alg = &kem_algs[slot];
    struct kem_init in;

    return kem_begin(alg, ctx, key, &in) &&
           kem_end(&in, alg->auth_decapsulate_init(ctx, key, authkey, params));
}

static void kem_freectx(size_t slot, void *ctx)
{
    offload_ctxstate_free(ctx, kem_algs[slot].freectx);
}

static void *kem_dupctx(size_t slot, void *ctx)
{
    const struct kem_alg *alg = &kem_algs[slot];

    return offload_ctxstate_dup(ctx, alg->dupctx(ctx), alg->freectx, 0, "kem context");
}

OFFLOAD_TRAMPOLINES(OSSL_FUNC_kem_encapsulate_init_fn, int, kem_encapsulate_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_kem_decapsulate_init_fn, int, kem_decapsulate_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(kem_auth_init_fn, int, kem_auth_encapsulate_init,
                    (void *ctx, void *key, void *authkey, const OSSL_PARAM params[]),
                    (ctx, key, authkey, params))
OFFLOAD_TRAMPOLINES(kem_auth_init_fn, int, kem_auth_decapsulate_init,
                    (void *ctx, void *key, void *authkey, const OSSL_PARAM params[]),
                    (ctx, key, authkey, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_kem_encapsulate_fn, int, kem_encapsulate,
                    (void *ctx, unsigned char *out, size_t *outlen, unsigned char *secret,
                     size_t *secretlen),
                    (ctx, out, outlen, secret, secretlen))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_kem_decapsulate_fn, int, kem_decapsulate,
                    (void *ctx, unsigned char *out, size_t *outlen,
                     const unsigned char *in, size_t inlen),
                    (ctx, out, outlen, in, inlen))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_kem_freectx_fn, kem_freectx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_kem_dupctx_fn, void *, kem_dupctx, (void *ctx), (ctx))

/* ---- binding ---- */

static size_t kem_intercepts(size_t i, const OSSL_ALGORITHM *a,
                             struct offload_intercept *ic)
{
    struct kem_alg *alg = &kem_algs[i];
    size_t n = 0;

    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->rule = offload_cost_rule(a->algorithm_names);
    alg->unowned = offload_key_unowned(a->algorithm_names);
    alg->encapsulate_init =
        OFFLOAD_FN(OSSL_FUNC_kem_encapsulate_init_fn, OSSL_FUNC_KEM_ENCAPSULATE_INIT);
    alg->decapsulate_init =
        OFFLOAD_FN(OSSL_FUNC_kem_decapsulate_init_fn, OSSL_FUNC_KEM_DECAPSULATE_INIT);
    alg->auth_encapsulate_init =
        OFFLOAD_FN(kem_auth_init_fn, OSSL_FUNC_KEM_AUTH_ENCAPSULATE_INIT);
    alg->auth_decapsulate_init =
        OFFLOAD_FN(kem_auth_init_fn, OSSL_FUNC_KEM_AUTH_DECAPSULATE_INIT);
    alg->encapsulate =
        OFFLOAD_FN(OSSL_FUNC_kem_encapsulate_fn, OSSL_FUNC_KEM_ENCAPSULATE);
    alg->decapsulate =
        OFFLOAD_FN(OSSL_FUNC_kem_decapsulate_fn, OSSL_FUNC_KEM_DECAPSULATE);
    alg->freectx = OFFLOAD_FN(OSSL_FUNC_kem_freectx_fn, OSSL_FUNC_KEM_FREECTX);
    alg->dupctx = OFFLOAD_FN(OSSL_FUNC_kem_dupctx_fn, OSSL_FUNC_KEM_DUPCTX);
    /* Without a free of its own, a context cannot be kept alive for a worker. */
    if (alg->freectx == NULL || alg->encapsulate == NULL || alg->decapsulate == NULL)
        return 0;
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_ENCAPSULATE_INIT, kem_encapsulate_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_DECAPSULATE_INIT, kem_decapsulate_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_AUTH_ENCAPSULATE_INIT,
                          kem_auth_encapsulate_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_AUTH_DECAPSULATE_INIT,
                          kem_auth_decapsulate_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_ENCAPSULATE, kem_encapsulate_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_DECAPSULATE, kem_decapsulate_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_FREECTX, kem_freectx_slot[i]);
    if (alg->dupctx != NULL)
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEM_DUPCTX, kem_dupctx_slot[i]);
    return n;
}

size_t offload_kem_bind(void)
{
    return offload_mirror_bind(&kem_mirror, OSSL_OP_KEM, kem_intercepts);
}

void offload_kem_unbind(void)
{
    offload_mirror_unbind(&kem_mirror);
}

const OSSL_ALGORITHM *offload_kem_algorithms(void)
{
    return kem_mirror.algs;
}

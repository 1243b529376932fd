/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signatures: every algorithm the default provider offers (RSA, ECDSA,
 * Ed25519, Ed448, DSA, SM2, the MAC signatures, and on 3.4+ the
 * composites RSA-SHA256, ECDSA-SHA256, ..., ED25519ph, ED448ph, ML-DSA,
 * SLH-DSA).
 *
 * Each table is the default's, copied entry by entry (mirror.h); its
 * contexts are the default's contexts. Intercepted, once per slot:
 *   NEWCTX          the property query is dropped: the default fetches its
 *                   digests in our private library context, which holds
 *                   the default provider alone
 *   FREECTX         deferred while a request holds the context
 *   DUPCTX          copies our per-context state (ctxstate.h)
 *   SIGN_INIT, DIGEST_SIGN_INIT, SIGN_MESSAGE_INIT
 *                   record the cost class of the key
 *   SIGN, DIGEST_SIGN_FINAL, DIGEST_SIGN, SIGN_MESSAGE_FINAL
 *                   the expensive steps: offloaded when the caller runs
 *                   inside an ASYNC_JOB. The request owns a copy of the
 *                   input and its own output buffer and holds a reference
 *                   on the context, so a job abandoned while paused leaves
 *                   nothing for the worker to trip on.
 *   SET_CTX_PARAMS  RSA only: its lenient string params are checked first
 *   DIGEST_SIGN_UPDATE
 *                   RSA and ECDSA: with a token key (p11_key.h) the digest
 *                   is made here and the steps sign it on the token
 *                   (p11_sign.h); other keys go straight to the default's
 * The MAC signatures (HMAC, SIPHASH, POLY1305, CMAC) get the NEWCTX
 * intercept alone: a microsecond each, on the TLS record path (keymgmt.h).
 * Everything else (verification, digest updates, params, key types) is
 * the default's function, called by libcrypto directly. Verification
 * stays inline: see README ("Why verify runs inline").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "ctxstate.h"
#include "keymgmt.h"
#include "mirror.h"
#include "p11_sign.h"

struct sig_alg {
    char name[48]; /* its first name, for the log and the reasons */
    enum offload_cost_rule rule;
    int unowned; /* its contexts keep no reference on the key: we pin it */
    OSSL_FUNC_signature_newctx_fn *newctx;
    OSSL_FUNC_signature_freectx_fn *freectx;
    OSSL_FUNC_signature_dupctx_fn *dupctx;
    OSSL_FUNC_signature_sign_init_fn *sign_init;
    OSSL_FUNC_signature_digest_sign_init_fn *digest_sign_init;
    OSSL_FUNC_signature_sign_init_fn *sign_message_init; /* the same signature */
    OSSL_FUNC_signature_sign_fn *sign;
    OSSL_FUNC_signature_digest_sign_final_fn *digest_sign_final;
    OSSL_FUNC_signature_digest_sign_fn *digest_sign;
    OSSL_FUNC_signature_digest_sign_final_fn *sign_message_final; /* likewise */
    OSSL_FUNC_signature_set_ctx_params_fn *set_ctx_params;
    OSSL_FUNC_signature_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_signature_digest_sign_update_fn *digest_sign_update;
    int token; /* RSA, ECDSA: its keys may be token keys (p11_sign.h) */
};

static struct sig_alg sig_algs[OFFLOAD_SLOTS];
static struct offload_mirror sig_mirror = {.description = "offload signature"};

/* What a request for one signing step carries. */
enum sig_step {
    STEP_SIGN,
    STEP_DIGEST_SIGN_FINAL,
    STEP_DIGEST_SIGN,
    STEP_SIGN_MESSAGE_FINAL
};

static const char *const step_names[] = {
    [STEP_SIGN] = "sign",
    [STEP_DIGEST_SIGN_FINAL] = "digest-sign-final",
    [STEP_DIGEST_SIGN] = "digest-sign",
    [STEP_SIGN_MESSAGE_FINAL] = "sign-message-final",
};

struct sig_job {
    struct offload_ctxstate *s; /* the default's context, held */
    const struct sig_alg *alg;
    enum sig_step step;
    unsigned char *out;
    size_t outlen, outsize;
    const unsigned char *in; /* points into the request's own copy */
    size_t inlen;
};

/* The default's step on its context |ctx|. */
static int soft_step(const struct sig_alg *alg, void *ctx, enum sig_step step,
                     unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *tbs, size_t tbslen)
{
    switch (step) {
    case STEP_SIGN:
        return alg->sign(ctx, sig, siglen, sigsize, tbs, tbslen);
    case STEP_DIGEST_SIGN_FINAL:
        return alg->digest_sign_final(ctx, sig, siglen, sigsize);
    case STEP_DIGEST_SIGN:
        return alg->digest_sign(ctx, sig, siglen, sigsize, tbs, tbslen);
    case STEP_SIGN_MESSAGE_FINAL:
        return alg->sign_message_final(ctx, sig, siglen, sigsize);
    }
    return 0;
}

/* ---- the offloaded step ---- */

static int sig_job_run(struct offload_req *req)
{
    struct sig_job *j = (struct sig_job *)req->payload;

    j->outlen = j->outsize;
    return soft_step(j->alg, j->s->ctx, j->step, j->out, &j->outlen, j->outsize, j->in,
                     j->inlen);
}

static void sig_job_release(struct offload_req *req)
{
    struct sig_job *j = (struct sig_job *)req->payload;

    offload_ctxstate_release(j->s);
}

/*
 * Offloads one signing step through |req| (payload room for the job, the
 * |need| bytes of output, and a copy of the input). Called only inside a
 * job with sig != NULL.
 */
static int sig_offload(const struct sig_alg *alg, struct offload_ctxstate *s,
                       struct offload_req *req, enum sig_step step, unsigned char *sig,
                       size_t *siglen, size_t need, const unsigned char *tbs,
                       size_t tbslen)
{
    struct sig_job *j = (struct sig_job *)req->payload;
    int ret;

    req->cheap = s->cheap;
    req->alg = alg->name;
    req->op = step_names[step];
    offload_ctxstate_hold(s);
    j->s = s;
    j->alg = alg;
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
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED,
                      "%s signing failed (input of %zu bytes)", alg->name, tbslen);
    }
    OPENSSL_cleanse(j->out, need);
    offload_req_put(req);
    return ret;
}

/* A signing step with a token key: on the token (p11_sign.h), the job paused meanwhile.
 */
static int token_step(const struct sig_alg *alg, struct offload_ctxstate *s, void *ctx,
                      enum sig_step step, unsigned char *sig, size_t *siglen, size_t need,
                      const unsigned char *tbs, size_t tbslen)
{
    if (step == STEP_SIGN_MESSAGE_FINAL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                      "%s: the message-signing API (use EVP_DigestSign or EVP_PKEY_sign)",
                      alg->name);
        return offload_op_done(OFFLOAD_FAM_SIGNATURE, 0, alg->name, step_names[step]);
    }
    return offload_p11_sign(s->ext, ctx, alg->get_ctx_params, step != STEP_SIGN,
                            step == STEP_DIGEST_SIGN_FINAL ? NULL : tbs, tbslen, sig,
                            siglen, need, alg->name, step_names[step]);
}

static int sig_step(size_t slot, enum sig_step step, void *ctx, unsigned char *sig,
                    size_t *siglen, size_t sigsize, const unsigned char *tbs,
                    size_t tbslen)
{
    const struct sig_alg *alg = &sig_algs[slot];
    struct offload_ctxstate *s;
    size_t need = 0;
    unsigned long last;
    enum offload_path p;
    int ret;

    /* Refused before it starts (not running, bad arguments): counted nowhere. */
    if (!offload_is_running())
        return 0;
    if (siglen == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NULL_ARGUMENT, "signature length pointer");
        return 0;
    }
    if (sig == NULL) /* size query */
        return soft_step(alg, ctx, step, NULL, siglen, 0, tbs, tbslen);
    s = offload_ctxstate_get(ctx, alg->freectx);
    if (s == NULL) {
        p = OFFLOAD_PATH_NO_MEMORY;
        goto run_here;
    }
    /* The size depends on the key only: ask once per init (ECDSA's answer costs an
     * encode). */
    if (s->maxsig == 0 && soft_step(alg, ctx, step, NULL, &need, 0, tbs, tbslen) > 0)
        s->maxsig = need;
    need = s->maxsig;
    if (need > sigsize) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "%s signature needs %zu bytes, buffer has %zu", alg->name, need,
                      sigsize);
        return 0;
    }
    if (s->ext != NULL && need > 0)
        return token_step(alg, s, ctx, step, sig, siglen, need, tbs, tbslen);
    p = need > 0 ? offload_async_path(OFFLOAD_FAM_SIGNATURE, s->cheap)
                 : OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED) {
        struct offload_req *req =
            offload_req_new(sig_job_run, sig_job_release, OFFLOAD_FAM_SIGNATURE,
                            sizeof(struct sig_job) + need + tbslen);

        if (req != NULL)
            return sig_offload(alg, s, req, step, sig, siglen, need, tbs, tbslen);
        p = OFFLOAD_PATH_NO_MEMORY;
    }
run_here:
    offload_op_path(OFFLOAD_FAM_SIGNATURE, p, alg->name, step_names[step]);
    last = ERR_peek_last_error();
    ret = soft_step(alg, ctx, step, sig, siglen, sigsize, tbs, tbslen);
    if (ret <= 0 && ERR_peek_last_error() == last) /* the default said nothing */
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED,
                      "%s signing failed (input of %zu bytes)", alg->name, tbslen);
    return offload_op_done(OFFLOAD_FAM_SIGNATURE, ret, alg->name, step_names[step]);
}

static int sig_sign(size_t slot, void *ctx, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    return sig_step(slot, STEP_SIGN, ctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_digest_sign_final(size_t slot, void *ctx, unsigned char *sig,
                                 size_t *siglen, size_t sigsize)
{
    return sig_step(slot, STEP_DIGEST_SIGN_FINAL, ctx, sig, siglen, sigsize, NULL, 0);
}

static int sig_digest_sign(size_t slot, void *ctx, unsigned char *sig, size_t *siglen,
                           size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    return sig_step(slot, STEP_DIGEST_SIGN, ctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_sign_message_final(size_t slot, void *ctx, unsigned char *sig,
                                  size_t *siglen, size_t sigsize)
{
    return sig_step(slot, STEP_SIGN_MESSAGE_FINAL, ctx, sig, siglen, sigsize, NULL, 0);
}

/* ---- contexts and the inits that take a key ---- */

static void *sig_newctx(size_t slot, void *provctx, const char *propq)
{
    (void)propq; /* the default fetches its digests from our private context */
    if (!offload_is_running()) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    return sig_algs[slot].newctx(provctx, NULL);
}

static void sig_freectx(size_t slot, void *ctx)
{
    offload_ctxstate_free(ctx, sig_algs[slot].freectx);
}

static void *sig_dupctx(size_t slot, void *ctx)
{
    const struct sig_alg *alg = &sig_algs[slot];

    return offload_ctxstate_dup(ctx, alg->dupctx(ctx), alg->freectx, 0,
                                "signature context");
}

/* What a signing init learns and keeps: the context's entry, and the pin on the key. */
struct sig_init {
    struct offload_ctxstate *s;
    struct offload_keyref *ref;
};

/*
 * A signing init: forgets what the previous key told us and learns the
 * cost of |key|. NULL re-inits with the key already set, whose cost stays.
 * A key that the context keeps no reference on is pinned. Returns 1, or 0
 * after raising.
 */
static int signing_key(const struct sig_alg *alg, void *ctx, void *key,
                       struct sig_init *in)
{
    if (!offload_is_running())
        return 0;
    if ((in->s = offload_ctxstate_get(ctx, alg->freectx)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "signature context");
        return 0;
    }
    in->s->maxsig = 0;
    in->ref = NULL;
    if (key == NULL) {
        struct offload_p11_sigctx *c = in->s->ext;

        if (c != NULL) { /* the same token key: a digest-sign init starts a new digest */
            EVP_MD_CTX_free(c->md);
            c->md = NULL;
        }
        return 1;
    }
    in->s->cheap = offload_key_cheap(alg->rule, key);
    if (alg->token) {
        struct offload_p11_key *k = offload_p11_key_get(key);
        struct offload_p11_sigctx *c = NULL;

        if (k != NULL && (c = offload_p11_sigctx_new(k)) == NULL) {
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s: a token key's state", alg->name);
            return 0;
        }
        offload_ctxstate_set_ext(in->s, c, offload_p11_sigctx_free,
                                 offload_p11_sigctx_dup);
    }
    if (alg->unowned) {
        if ((in->ref = offload_keyref_pin(key)) == NULL) {
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s: a pin on the key", alg->name);
            return 0;
        }
    }
    return 1;
}

/* The default's init returned |ok|: the entry keeps the copy it was given. */
static int signing_done(struct sig_init *in, int ok)
{
    offload_ctxstate_set_key(in->s, in->ref, ok > 0);
    return ok;
}

static int sig_sign_init(size_t slot, void *ctx, void *key, const OSSL_PARAM params[])
{
    const struct sig_alg *alg = &sig_algs[slot];
    struct sig_init in;

    if (!signing_key(alg, ctx, key, &in))
        return 0;
    return signing_done(&in, alg->sign_init(ctx, key, params));
}

static int sig_sign_message_init(size_t slot, void *ctx, void *key,
                                 const OSSL_PARAM params[])
{
    const struct sig_alg *alg = &sig_algs[slot];
    struct sig_init in;

    if (!signing_key(alg, ctx, key, &in))
        return 0;
    return signing_done(&in, alg->sign_message_init(ctx, key, params));
}

static int sig_digest_sign_init(size_t slot, void *ctx, const char *mdname, void *key,
                                const OSSL_PARAM params[])
{
    const struct sig_alg *alg = &sig_algs[slot];
    struct sig_init in;

    if (!signing_key(alg, ctx, key, &in))
        return 0;
    if (!signing_done(&in, alg->digest_sign_init(ctx, mdname, key, params)))
        return 0;
    if (in.s->ext != NULL) { /* a token key: the digest is made here, then signed there */
        char md[64] = "";
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, md, sizeof(md)),
            OSSL_PARAM_END};

        if (alg->get_ctx_params == NULL || !alg->get_ctx_params(ctx, p) || md[0] == '\0')
            snprintf(md, sizeof(md), "%s", mdname != NULL ? mdname : "SHA256");
        return offload_p11_sigctx_digest_init(in.s->ext, md);
    }
    return 1;
}

/* A token key's digest-sign hashes here (the default's own digest stays empty). */
static int sig_digest_sign_update(size_t slot, void *ctx, const unsigned char *data,
                                  size_t datalen)
{
    struct offload_ctxstate *s = offload_ctxstate_find(ctx);
    struct offload_p11_sigctx *c = s != NULL ? s->ext : NULL;

    if (c != NULL && c->md != NULL)
        return EVP_DigestUpdate(c->md, data, datalen);
    return sig_algs[slot].digest_sign_update(ctx, data, datalen);
}

/*
 * The default provider reads a few string params leniently (an unknown
 * pad mode is ignored, a salt length goes through atoi): check their
 * shape first so that garbage fails with a reason instead of being used.
 */
static int check_string_params(const OSSL_PARAM params[])
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
    OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM,
                  "pad-mode \"%s\": expected none, pkcs1, x931 or pss",
                  p->data_type == OSSL_PARAM_UTF8_STRING ? (const char *)p->data : "?");
    return 0;
bad_salt:
    OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM,
                  "saltlen \"%s\": expected digest, max, auto or a number",
                  p->data_type == OSSL_PARAM_UTF8_STRING ? (const char *)p->data : "?");
    return 0;
}

static int sig_set_ctx_params(size_t slot, void *ctx, const OSSL_PARAM params[])
{
    if (!check_string_params(params))
        return 0;
    return sig_algs[slot].set_ctx_params(ctx, params);
}

/* ---- one of each per slot ---- */

OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_newctx_fn, void *, sig_newctx,
                    (void *provctx, const char *propq), (provctx, propq))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_signature_freectx_fn, sig_freectx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_dupctx_fn, void *, sig_dupctx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_sign_init_fn, int, sig_sign_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_sign_init_fn, int, sig_sign_message_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_digest_sign_init_fn, int, sig_digest_sign_init,
                    (void *ctx, const char *mdname, void *key, const OSSL_PARAM params[]),
                    (ctx, mdname, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_sign_fn, int, sig_sign,
                    (void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *tbs, size_t tbslen),
                    (ctx, sig, siglen, sigsize, tbs, tbslen))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_digest_sign_final_fn, int, sig_digest_sign_final,
                    (void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize),
                    (ctx, sig, siglen, sigsize))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_digest_sign_fn, int, sig_digest_sign,
                    (void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *tbs, size_t tbslen),
                    (ctx, sig, siglen, sigsize, tbs, tbslen))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_digest_sign_final_fn, int, sig_sign_message_final,
                    (void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize),
                    (ctx, sig, siglen, sigsize))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_set_ctx_params_fn, int, sig_set_ctx_params,
                    (void *ctx, const OSSL_PARAM params[]), (ctx, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_digest_sign_update_fn, int,
                    sig_digest_sign_update,
                    (void *ctx, const unsigned char *data, size_t datalen),
                    (ctx, data, datalen))

/* ---- binding ---- */

static size_t sig_intercepts(size_t i, const OSSL_ALGORITHM *a,
                             struct offload_intercept *ic)
{
    struct sig_alg *alg = &sig_algs[i];
    size_t n = 0;

    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->rule = offload_cost_rule(a->algorithm_names);
    alg->unowned = offload_key_unowned(a->algorithm_names);
    alg->newctx = OFFLOAD_FN(OSSL_FUNC_signature_newctx_fn, OSSL_FUNC_SIGNATURE_NEWCTX);
    alg->freectx =
        OFFLOAD_FN(OSSL_FUNC_signature_freectx_fn, OSSL_FUNC_SIGNATURE_FREECTX);
    alg->dupctx = OFFLOAD_FN(OSSL_FUNC_signature_dupctx_fn, OSSL_FUNC_SIGNATURE_DUPCTX);
    alg->sign_init =
        OFFLOAD_FN(OSSL_FUNC_signature_sign_init_fn, OSSL_FUNC_SIGNATURE_SIGN_INIT);
    alg->digest_sign_init = OFFLOAD_FN(OSSL_FUNC_signature_digest_sign_init_fn,
                                       OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT);
    alg->sign_message_init = OFFLOAD_FN(OSSL_FUNC_signature_sign_init_fn,
                                        OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT);
    alg->sign = OFFLOAD_FN(OSSL_FUNC_signature_sign_fn, OSSL_FUNC_SIGNATURE_SIGN);
    alg->digest_sign_final = OFFLOAD_FN(OSSL_FUNC_signature_digest_sign_final_fn,
                                        OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL);
    alg->digest_sign =
        OFFLOAD_FN(OSSL_FUNC_signature_digest_sign_fn, OSSL_FUNC_SIGNATURE_DIGEST_SIGN);
    alg->sign_message_final = OFFLOAD_FN(OSSL_FUNC_signature_digest_sign_final_fn,
                                         OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL);
    alg->set_ctx_params = OFFLOAD_FN(OSSL_FUNC_signature_set_ctx_params_fn,
                                     OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS);
    alg->get_ctx_params = OFFLOAD_FN(OSSL_FUNC_signature_get_ctx_params_fn,
                                     OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS);
    alg->digest_sign_update = OFFLOAD_FN(OSSL_FUNC_signature_digest_sign_update_fn,
                                         OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE);
    alg->token = alg->get_ctx_params != NULL && alg->digest_sign_update != NULL &&
                 (offload_first_name_is(a->algorithm_names, "RSA") ||
                  offload_first_name_is(a->algorithm_names, "ECDSA"));
    /* Without a free of its own, a context cannot be kept alive for a worker. */
    if (alg->newctx == NULL || alg->freectx == NULL)
        return 0;
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_NEWCTX, sig_newctx_slot[i]);
    if (alg->rule == OFFLOAD_COST_TRIVIAL) /* a MAC: its steps are the default's */
        return n;
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_FREECTX, sig_freectx_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_DUPCTX, sig_dupctx_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_SIGN_INIT, sig_sign_init_slot[i]);
    ic[n++] =
        OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, sig_digest_sign_init_slot[i]);
    ic[n++] =
        OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT, sig_sign_message_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_SIGN, sig_sign_slot[i]);
    ic[n++] =
        OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, sig_digest_sign_final_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_DIGEST_SIGN, sig_digest_sign_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL,
                          sig_sign_message_final_slot[i]);
    if (offload_first_name_is(a->algorithm_names, "RSA"))
        ic[n++] =
            OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sig_set_ctx_params_slot[i]);
    if (alg->token)
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
                              sig_digest_sign_update_slot[i]);
    return n;
}

size_t offload_signature_bind(void)
{
    return offload_mirror_bind(&sig_mirror, OSSL_OP_SIGNATURE, sig_intercepts);
}

void offload_signature_unbind(void)
{
    offload_mirror_unbind(&sig_mirror);
}

const OSSL_ALGORITHM *offload_signature_algorithms(void)
{
    return sig_mirror.algs;
}

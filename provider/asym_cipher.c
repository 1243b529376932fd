/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asymmetric ciphers: every one the default provider offers (RSA: no
 * padding, PKCS#1 v1.5 with implicit rejection, OAEP with any digest and
 * label, and the TLS 1.2 premaster padding; SM2).
 *
 * Each table is the default's, copied entry by entry (mirror.h); its
 * contexts are the default's, with their padding, digests, label and TLS
 * versions. Intercepted, once per slot: DECRYPT_INIT (records the cost
 * class of the key), DECRYPT (offloaded when the caller runs inside an
 * ASYNC_JOB: a private-key operation of hundreds of microseconds),
 * FREECTX (deferred while a request holds the context) and DUPCTX.
 * Encryption, a public-key operation, stays the default's alone, as
 * verification does. An RSA token key (p11_decrypt.h) decrypts on the token.
 *
 * An offloaded decryption works on the request's copy of the ciphertext
 * and its own output buffer of the default's size answer; the caller's
 * buffer sees only the plaintext, copied when the job resumes, and the
 * request's buffer is wiped. A buffer shorter than that answer runs
 * inline, so the caller gets the default's own answer.
 */
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "async.h"
#include "ctxstate.h"
#include "families.h"
#include "mirror.h"
#include "p11_decrypt.h"

struct acip_alg {
    char name[32]; /* its first name, for the log and the reasons */
    enum offload_cost_rule rule;
    OSSL_FUNC_asym_cipher_decrypt_init_fn *decrypt_init;
    OSSL_FUNC_asym_cipher_decrypt_fn *decrypt;
    OSSL_FUNC_asym_cipher_freectx_fn *freectx;
    OSSL_FUNC_asym_cipher_dupctx_fn *dupctx;
    OSSL_FUNC_asym_cipher_get_ctx_params_fn *get_ctx_params;
    int token; /* RSA: its keys may be token keys (p11_decrypt.h) */
};

static struct acip_alg acip_algs[OFFLOAD_SLOTS];
static struct offload_mirror acip_mirror = {.description = "offload asym cipher"};

struct acip_job {
    struct offload_ctxstate *s; /* the default's context, held */
    const struct acip_alg *alg;
    unsigned char *out;
    size_t outlen, outsize;
    const unsigned char *in; /* the request's copy */
    size_t inlen;
};

static int acip_job_run(struct offload_req *req)
{
    struct acip_job *j = (struct acip_job *)req->payload;

    j->outlen = 0;
    return j->alg->decrypt(j->s->ctx, j->out, &j->outlen, j->outsize, j->in, j->inlen);
}

static void acip_job_release(struct offload_req *req)
{
    struct acip_job *j = (struct acip_job *)req->payload;

    OPENSSL_cleanse(j->out, j->outsize);
    offload_ctxstate_release(j->s);
}

static int acip_decrypt(size_t slot, void *ctx, unsigned char *out, size_t *outlen,
                        size_t outsize, const unsigned char *in, size_t inlen)
{
    const struct acip_alg *alg = &acip_algs[slot];
    struct offload_ctxstate *s;
    struct offload_req *req = NULL;
    struct acip_job *j;
    enum offload_path p;
    size_t need = 0;
    unsigned long before;
    int ret;

    if (!offload_is_running())
        return 0;
    if (outlen == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NULL_ARGUMENT, "plaintext length pointer");
        return 0;
    }
    if (out == NULL) /* a size query: counted nowhere */
        return alg->decrypt(ctx, NULL, outlen, 0, in, inlen);
    s = offload_ctxstate_get(ctx, alg->freectx);
    if (s != NULL && s->ext != NULL) { /* a token key: decrypted there */
        if (alg->decrypt(ctx, NULL, &need, 0, in, inlen) <= 0 || need == 0)
            return offload_op_done(OFFLOAD_FAM_ASYMCIPHER, 0, alg->name, "decrypt");
        return offload_p11_decrypt(s->ext, ctx, alg->get_ctx_params, out, outlen, outsize,
                                   need, in, inlen, alg->name);
    }
    p = s != NULL ? offload_async_path(OFFLOAD_FAM_ASYMCIPHER, s->cheap)
                  : OFFLOAD_PATH_NO_MEMORY;
    if (p == OFFLOAD_PATH_OFFLOADED && (in == NULL && inlen > 0))
        p = OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (alg->decrypt(ctx, NULL, &need, 0, in, inlen) <= 0 || need == 0 ||
         need > outsize))
        p = OFFLOAD_PATH_NO_SIZE;
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (req = offload_req_new(acip_job_run, acip_job_release, OFFLOAD_FAM_ASYMCIPHER,
                               sizeof(*j) + need + inlen)) == NULL)
        p = OFFLOAD_PATH_NO_MEMORY;
    before = ERR_peek_last_error();
    if (p != OFFLOAD_PATH_OFFLOADED) {
        offload_op_path(OFFLOAD_FAM_ASYMCIPHER, p, alg->name, "decrypt");
        ret = alg->decrypt(ctx, out, outlen, outsize, in, inlen);
        return offload_op_done(
            OFFLOAD_FAM_ASYMCIPHER,
            offload_failed_why(ret, before, alg->name, "decrypt", inlen), alg->name,
            "decrypt");
    }
    j = (struct acip_job *)req->payload;
    req->cheap = s->cheap;
    req->alg = alg->name;
    req->op = "decrypt";
    offload_ctxstate_hold(s);
    j->s = s;
    j->alg = alg;
    j->out = req->payload + sizeof(*j);
    j->outsize = need;
    if (inlen > 0)
        memcpy(j->out + need, in, inlen);
    j->in = j->out + need;
    j->inlen = inlen;
    ret = offload_failed_why(offload_async_run(req), before, alg->name, "decrypt", inlen);
    if (ret > 0) {
        memcpy(out, j->out, j->outlen);
        *outlen = j->outlen;
    }
    offload_req_put(req);
    return ret;
}

static int acip_decrypt_init(size_t slot, void *ctx, void *key, const OSSL_PARAM params[])
{
    const struct acip_alg *alg = &acip_algs[slot];
    struct offload_ctxstate *s;

    if (!offload_is_running())
        return 0;
    if (key == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NO_KEY, "%s: no private key", alg->name);
        return 0;
    }
    if ((s = offload_ctxstate_get(ctx, alg->freectx)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "asym cipher context");
        return 0;
    }
    s->cheap = offload_key_cheap(alg->rule, key);
    offload_ctxstate_set_ext(s, alg->token ? offload_p11_key_get(key) : NULL,
                             offload_p11_key_ext_free, offload_p11_key_ext_dup);
    return alg->decrypt_init(ctx, key, params);
}

static void acip_freectx(size_t slot, void *ctx)
{
    offload_ctxstate_free(ctx, acip_algs[slot].freectx);
}

static void *acip_dupctx(size_t slot, void *ctx)
{
    const struct acip_alg *alg = &acip_algs[slot];

    return offload_ctxstate_dup(ctx, alg->dupctx(ctx), alg->freectx, 0,
                                "asym cipher context");
}

OFFLOAD_TRAMPOLINES(OSSL_FUNC_asym_cipher_decrypt_init_fn, int, acip_decrypt_init,
                    (void *ctx, void *key, const OSSL_PARAM params[]), (ctx, key, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_asym_cipher_decrypt_fn, int, acip_decrypt,
                    (void *ctx, unsigned char *out, size_t *outlen, size_t outsize,
                     const unsigned char *in, size_t inlen),
                    (ctx, out, outlen, outsize, in, inlen))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_asym_cipher_freectx_fn, acip_freectx, (void *ctx),
                         (ctx))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_asym_cipher_dupctx_fn, void *, acip_dupctx, (void *ctx),
                    (ctx))

/* ---- binding ---- */

static size_t acip_intercepts(size_t i, const OSSL_ALGORITHM *a,
                              struct offload_intercept *ic)
{
    struct acip_alg *alg = &acip_algs[i];
    size_t n = 0;

    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->rule = offload_cost_rule(a->algorithm_names);
    alg->decrypt_init = OFFLOAD_FN(OSSL_FUNC_asym_cipher_decrypt_init_fn,
                                   OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT);
    alg->decrypt =
        OFFLOAD_FN(OSSL_FUNC_asym_cipher_decrypt_fn, OSSL_FUNC_ASYM_CIPHER_DECRYPT);
    alg->freectx =
        OFFLOAD_FN(OSSL_FUNC_asym_cipher_freectx_fn, OSSL_FUNC_ASYM_CIPHER_FREECTX);
    alg->dupctx =
        OFFLOAD_FN(OSSL_FUNC_asym_cipher_dupctx_fn, OSSL_FUNC_ASYM_CIPHER_DUPCTX);
    alg->get_ctx_params = OFFLOAD_FN(OSSL_FUNC_asym_cipher_get_ctx_params_fn,
                                     OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS);
    alg->token =
        alg->get_ctx_params != NULL && offload_first_name_is(a->algorithm_names, "RSA");
    /* Without a free of its own, a context cannot be kept alive for a worker. */
    if (alg->freectx == NULL || alg->decrypt_init == NULL || alg->decrypt == NULL)
        return 0;
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, acip_decrypt_init_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_ASYM_CIPHER_DECRYPT, acip_decrypt_slot[i]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_ASYM_CIPHER_FREECTX, acip_freectx_slot[i]);
    if (alg->dupctx != NULL)
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_ASYM_CIPHER_DUPCTX, acip_dupctx_slot[i]);
    return n;
}

size_t offload_asym_cipher_bind(void)
{
    return offload_mirror_bind(&acip_mirror, OSSL_OP_ASYM_CIPHER, acip_intercepts);
}

void offload_asym_cipher_unbind(void)
{
    offload_mirror_unbind(&acip_mirror);
}

const OSSL_ALGORITHM *offload_asym_cipher_algorithms(void)
{
    return acip_mirror.algs;
}

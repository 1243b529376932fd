/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ciphers: AES-128/192/256-GCM, AES-128/256-CBC, ChaCha20-Poly1305, and
 * the stitched AES-CBC-HMAC-SHA1/SHA256 ciphers TLS 1.2 uses.
 *
 * Our context holds the soft engine's cipher context: init, params, AAD,
 * final and every small update run inline through one function-pointer
 * call. A data update of at least inline_below bytes inside an ASYNC_JOB
 * (with other jobs in flight) goes to a worker: the request owns a copy
 * of the input, the worker transforms it in place, and the resumed job
 * copies the result out, so a job abandoned mid-record never has a worker
 * reading or writing the application's buffers.
 *
 * CBC in TLS mode ("tls-version" set) always runs inline: the default
 * implementation then hands back the record's MAC as a pointer into the
 * output buffer ("tls-mac"), which must be the application's own.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "soft.h"

struct ciph_alg {
    const char *name;
    int tls_cbc_capable; /* "tls-version" makes updates return MAC pointers */
    int never_offload;   /* stitched TLS ciphers: records of at most 16 KiB */
    const char *names;
    const OSSL_DISPATCH *soft;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init;
    OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_cipher_fn *cipher;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_dupctx_fn *dupctx;
    OSSL_FUNC_cipher_get_params_fn *get_params;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_ctx_params;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
    OSSL_FUNC_cipher_gettable_params_fn *gettable_params;
    OSSL_FUNC_cipher_gettable_ctx_params_fn *gettable_ctx_params;
    OSSL_FUNC_cipher_settable_ctx_params_fn *settable_ctx_params;
};

enum {
    CIPH_AES128GCM,
    CIPH_AES192GCM,
    CIPH_AES256GCM,
    CIPH_AES128CBC,
    CIPH_AES256CBC,
    CIPH_CHACHAPOLY,
    CIPH_AES128CBC_SHA1,
    CIPH_AES256CBC_SHA1,
    CIPH_AES128CBC_SHA256,
    CIPH_AES256CBC_SHA256,
    CIPH_COUNT
};

/*
 * The stitched AES-CBC-HMAC ciphers exist for libssl's TLS 1.2 CBC suites
 * without encrypt-then-MAC (and only where the CPU has AES-NI): without
 * them here, libssl would pick the default provider's and bypass us.
 */
static struct ciph_alg ciph_algs[CIPH_COUNT] = {
    [CIPH_AES128GCM] = {.name = "AES-128-GCM"},
    [CIPH_AES192GCM] = {.name = "AES-192-GCM"},
    [CIPH_AES256GCM] = {.name = "AES-256-GCM"},
    [CIPH_AES128CBC] = {.name = "AES-128-CBC", .tls_cbc_capable = 1},
    [CIPH_AES256CBC] = {.name = "AES-256-CBC", .tls_cbc_capable = 1},
    [CIPH_CHACHAPOLY] = {.name = "ChaCha20-Poly1305"},
    [CIPH_AES128CBC_SHA1] = {.name = "AES-128-CBC-HMAC-SHA1", .never_offload = 1},
    [CIPH_AES256CBC_SHA1] = {.name = "AES-256-CBC-HMAC-SHA1", .never_offload = 1},
    [CIPH_AES128CBC_SHA256] = {.name = "AES-128-CBC-HMAC-SHA256", .never_offload = 1},
    [CIPH_AES256CBC_SHA256] = {.name = "AES-256-CBC-HMAC-SHA256", .never_offload = 1},
};

typedef struct ciph_ctx {
    _Atomic unsigned refs; /* the EVP side's, plus one per request in flight */
    const struct ciph_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *inner;
    int tls_cbc; /* CBC with "tls-version" set: stays inline */
    int enc;     /* set by the last init */
} CIPH_CTX;

struct ciph_job {
    CIPH_CTX *ctx;
    int one_shot;       /* OSSL_FUNC_cipher_cipher rather than update */
    int secret;         /* the buffer may hold plaintext when released */
    unsigned char *buf; /* output (and input when the caller works in place) */
    unsigned char *in;  /* the input: buf, or a copy apart */
    size_t inl, outl, outsize;
};

static void ciph_ctx_put(CIPH_CTX *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    ctx->alg->freectx(ctx->inner);
    free(ctx);
}

static CIPH_CTX *ciph_ctx_new(OFFLOAD_PROVCTX *pctx, const struct ciph_alg *alg,
                              void *inner)
{
    CIPH_CTX *ctx;

    if (inner == NULL)
        return NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        alg->freectx(inner);
        OFFLOAD_RAISE(pctx, OFFLOAD_R_ALLOC, "cipher context");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    ctx->alg = alg;
    ctx->pctx = pctx;
    ctx->inner = inner;
    return ctx;
}

/* Notes whether |params| switch CBC into (or out of) TLS record mode. */
static void note_tls(CIPH_CTX *ctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    unsigned int v;

    if (params == NULL || !ctx->alg->tls_cbc_capable)
        return;
    p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_TLS_VERSION);
    if (p != NULL && OSSL_PARAM_get_uint(p, &v))
        ctx->tls_cbc = v != 0;
}

static int ciph_job_run(struct offload_req *req)
{
    struct ciph_job *j = (struct ciph_job *)req->payload;
    const struct ciph_alg *alg = j->ctx->alg;

    if (j->one_shot)
        return alg->cipher(j->ctx->inner, j->buf, &j->outl, j->outsize, j->in, j->inl);
    return alg->update(j->ctx->inner, j->buf, &j->outl, j->outsize, j->in, j->inl);
}

static void ciph_job_release(struct offload_req *req)
{
    struct ciph_job *j = (struct ciph_job *)req->payload;

    /*
     * Ciphertext needs no wiping; plaintext (decrypting, or a failed
     * encrypt) does. explicit_bzero is glibc's memset that the compiler may
     * not drop: 16 KiB in 147 ns here, against 575 ns for OPENSSL_cleanse's
     * byte loop, on the calling thread of every offloaded record.
     */
    if (j->secret || req->result <= 0)
        explicit_bzero(j->buf, j->outsize);
    if (j->in != j->buf && !j->secret) /* the plaintext given to encrypt */
        explicit_bzero(j->in, j->inl);
    ciph_ctx_put(j->ctx);
}

/* Room a single update may need beyond its input (a held-back block and padding). */
#define CIPH_SLACK 64

/* For the log: [enc][what], what 0 update, 1 one-shot cipher, 2 final. */
static const char *const ciph_ops[2][3] = {
    {"decrypt update", "decrypt cipher", "decrypt final"},
    {"encrypt update", "encrypt cipher", "encrypt final"},
};
#define CIPH_OP(ctx, what) ciph_ops[(ctx)->enc != 0][what]

/* In place only when the caller is (TLS AEAD records must be). */
static size_t ciph_payload(const unsigned char *out, const unsigned char *in, size_t inl)
{
    return sizeof(struct ciph_job) + inl + CIPH_SLACK + (out == in ? 0 : inl);
}

/*
 * Offloads one update through |req| (ciph_payload bytes of payload);
 * nothing reaches |out| unless the worker succeeded.
 */
static int ciph_offload(CIPH_CTX *ctx, struct offload_req *req, int one_shot,
                        unsigned char *out, size_t *outl, size_t outsize,
                        const unsigned char *in, size_t inl)
{
    struct ciph_job *j = (struct ciph_job *)req->payload;
    /* A block cipher holding buffered bytes writes ahead of its input. */
    int inplace = out == in;
    int ret;

    req->cheap = 1;
    req->prompt = 1;
    req->alg = ctx->alg->name;
    req->op = CIPH_OP(ctx, one_shot);
    atomic_fetch_add(&ctx->refs, 1);
    j->ctx = ctx;
    j->one_shot = one_shot;
    j->secret = !ctx->enc;
    j->buf = req->payload + sizeof(*j);
    j->inl = inl;
    /* The caller's limit, within what our buffer holds. */
    j->outsize = outsize < inl + CIPH_SLACK ? outsize : inl + CIPH_SLACK;
    j->in = inplace ? j->buf : j->buf + inl + CIPH_SLACK;
    memcpy(j->in, in, inl);
    ret = offload_async_run(req);
    if (ret > 0) {
        memcpy(out, j->buf, j->outl);
        *outl = j->outl;
    }
    offload_req_put(req);
    return ret;
}

/* One data update on this thread, taking path |p|: counted once, failure too. */
static inline int ciph_here(CIPH_CTX *ctx, enum offload_path p, int one_shot,
                            unsigned char *out, size_t *outl, size_t outsize,
                            const unsigned char *in, size_t inl)
{
    int ret;

    offload_op_path(OFFLOAD_FAM_CIPHER, p, ctx->alg->name, CIPH_OP(ctx, one_shot));
    ret = one_shot ? ctx->alg->cipher(ctx->inner, out, outl, outsize, in, inl)
                   : ctx->alg->update(ctx->inner, out, outl, outsize, in, inl);
    return offload_op_done(OFFLOAD_FAM_CIPHER, ret, ctx->alg->name,
                           CIPH_OP(ctx, one_shot));
}

/* A small record while the log is on: the same, with its line. */
static __attribute__((cold, noinline)) int
ciph_small_logged(CIPH_CTX *ctx, int one_shot, unsigned char *out, size_t *outl,
                  size_t outsize, const unsigned char *in, size_t inl)
{
    return ciph_here(ctx, OFFLOAD_PATH_SMALL, one_shot, out, outl, outsize, in, inl);
}

static __attribute__((cold, noinline)) void ciph_small_failed(CIPH_CTX *ctx, int one_shot)
{
    offload_op_failed(OFFLOAD_FAM_CIPHER, ctx->alg->name, CIPH_OP(ctx, one_shot));
}

/*
 * The hot path is a small record: one compare, a flag, a counter, the
 * soft engine's call, a compare of its result. Everything about
 * offloading, the log and failures lives out of line.
 */
static inline int big_update(const unsigned char *out, const unsigned char *in,
                             size_t inl)
{
    return inl >= offload_async_inline_below() && inl > 0 && out != NULL && in != NULL;
}

static __attribute__((noinline)) int ciph_big(CIPH_CTX *ctx, int one_shot,
                                              unsigned char *out, size_t *outl,
                                              size_t outsize, const unsigned char *in,
                                              size_t inl)
{
    enum offload_path p = ctx->tls_cbc ? OFFLOAD_PATH_TLS_CBC
                          : ctx->alg->never_offload
                              ? OFFLOAD_PATH_STITCHED
                              : offload_async_path(OFFLOAD_FAM_CIPHER, 1);

    if (p == OFFLOAD_PATH_OFFLOADED) {
        struct offload_req *req =
            offload_req_new(ciph_job_run, ciph_job_release, OFFLOAD_FAM_CIPHER,
                            ciph_payload(out, in, inl));

        if (req != NULL)
            return ciph_offload(ctx, req, one_shot, out, outl, outsize, in, inl);
        p = OFFLOAD_PATH_NO_MEMORY;
    }
    return ciph_here(ctx, p, one_shot, out, outl, outsize, in, inl);
}

/*
 * A final failed (a refused AEAD tag, bad CBC padding): it counts as a
 * failure of the cipher family. |say| raises our reason too: the default
 * provider fails an AEAD tag check silently.
 */
static __attribute__((cold, noinline)) void ciph_final_failed(CIPH_CTX *ctx, int say)
{
    /*
     * The error queue is looked at only on failure (each look fetches the
     * thread's error state, a visible share of a 16-byte record); an error
     * already queued then means the soft engine (or the application,
     * before) said something.
     */
    if (say && ERR_peek_last_error() == 0)
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_TAG_MISMATCH,
                      "%s final (no tag set, or it does not match)", ctx->alg->name);
    else if (say)
        OFFLOAD_RAISE(ctx->pctx, OFFLOAD_R_ENGINE_FAILED, "%s final failed",
                      ctx->alg->name);
    offload_op_failed(OFFLOAD_FAM_CIPHER, ctx->alg->name, CIPH_OP(ctx, 2));
}

/* ---- entry points ---- */

static OSSL_FUNC_cipher_encrypt_init_fn ciph_encrypt_init;
static OSSL_FUNC_cipher_decrypt_init_fn ciph_decrypt_init;
static OSSL_FUNC_cipher_update_fn ciph_update;
static OSSL_FUNC_cipher_final_fn ciph_final;
static OSSL_FUNC_cipher_cipher_fn ciph_cipher;
static OSSL_FUNC_cipher_freectx_fn ciph_freectx;
static OSSL_FUNC_cipher_dupctx_fn ciph_dupctx;
static OSSL_FUNC_cipher_get_ctx_params_fn ciph_get_ctx_params;
static OSSL_FUNC_cipher_set_ctx_params_fn ciph_set_ctx_params;

static void *ciph_newctx(void *provctx, const struct ciph_alg *alg)
{
    if (!offload_is_running()) {
        OFFLOAD_RAISE(provctx, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    return ciph_ctx_new(provctx, alg, alg->newctx(offload_soft_provctx()));
}

static void ciph_freectx(void *vctx)
{
    ciph_ctx_put(vctx);
}

static void *ciph_dupctx(void *vctx)
{
    CIPH_CTX *src = vctx, *dst;

    dst = ciph_ctx_new(src->pctx, src->alg, src->alg->dupctx(src->inner));
    if (dst != NULL) {
        dst->tls_cbc = src->tls_cbc;
        dst->enc = src->enc;
    }
    return dst;
}

static int ciph_encrypt_init(void *vctx, const unsigned char *key, size_t keylen,
                             const unsigned char *iv, size_t ivlen,
                             const OSSL_PARAM params[])
{
    CIPH_CTX *ctx = vctx;

    if (!offload_is_running())
        return 0;
    note_tls(ctx, params);
    ctx->enc = 1;
    return ctx->alg->encrypt_init(ctx->inner, key, keylen, iv, ivlen, params);
}

static int ciph_decrypt_init(void *vctx, const unsigned char *key, size_t keylen,
                             const unsigned char *iv, size_t ivlen,
                             const OSSL_PARAM params[])
{
    CIPH_CTX *ctx = vctx;

    if (!offload_is_running())
        return 0;
    note_tls(ctx, params);
    ctx->enc = 0;
    return ctx->alg->decrypt_init(ctx->inner, key, keylen, iv, ivlen, params);
}

static int ciph_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                       const unsigned char *in, size_t inl)
{
    CIPH_CTX *ctx = vctx;

    int ret;

    if (big_update(out, in, inl))
        return ciph_big(ctx, 0, out, outl, outsize, in, inl);
    /* AAD (no output buffer) or nothing: not a counted operation. */
    if (out == NULL || inl == 0)
        return ctx->alg->update(ctx->inner, out, outl, outsize, in, inl);
    /* A small record (the one-shot TLS record's tag is checked here too). */
    if (offload_log_enabled())
        return ciph_small_logged(ctx, 0, out, outl, outsize, in, inl);
    offload_count_inline(OFFLOAD_FAM_CIPHER);
    ret = ctx->alg->update(ctx->inner, out, outl, outsize, in, inl);
    if (ret <= 0)
        ciph_small_failed(ctx, 0);
    return ret;
}

static int ciph_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    CIPH_CTX *ctx = vctx;
    int ret = ctx->alg->final(ctx->inner, out, outl, outsize);

    if (ret <= 0)
        ciph_final_failed(ctx, 1);
    return ret;
}

static int ciph_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize,
                       const unsigned char *in, size_t inl)
{
    CIPH_CTX *ctx = vctx;
    int ret;

    if (big_update(out, in, inl))
        return ciph_big(ctx, 1, out, outl, outsize, in, inl);
    if (out != NULL && inl > 0) {
        if (offload_log_enabled())
            return ciph_small_logged(ctx, 1, out, outl, outsize, in, inl);
        offload_count_inline(OFFLOAD_FAM_CIPHER);
        ret = ctx->alg->cipher(ctx->inner, out, outl, outsize, in, inl);
        if (ret <= 0)
            ciph_small_failed(ctx, 1);
        return ret;
    }
    /*
     * AAD, or (no input) the final EVP_Cipher() asks for: only a failed
     * final counts, as from ciph_final (the error queue stays the default's).
     */
    ret = ctx->alg->cipher(ctx->inner, out, outl, outsize, in, inl);
    if (ret <= 0 && in == NULL)
        ciph_final_failed(ctx, 0);
    return ret;
}

static int ciph_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    CIPH_CTX *ctx = vctx;

    return ctx->alg->get_ctx_params(ctx->inner, params);
}

static int ciph_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    CIPH_CTX *ctx = vctx;

    note_tls(ctx, params);
    return ctx->alg->set_ctx_params(ctx->inner, params);
}

/* ---- functions called without a context: one per algorithm ---- */

struct ciph_tramp {
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_get_params_fn *get_params;
    OSSL_FUNC_cipher_gettable_params_fn *gettable_params;
    OSSL_FUNC_cipher_gettable_ctx_params_fn *gettable_ctx_params;
    OSSL_FUNC_cipher_settable_ctx_params_fn *settable_ctx_params;
};

#define CIPH_INNER(vctx) ((vctx) != NULL ? ((CIPH_CTX *)(vctx))->inner : NULL)
#define CIPH_TRAMPOLINES(i)                                                              \
    static void *ciph_newctx_##i(void *provctx)                                          \
    {                                                                                    \
        return ciph_newctx(provctx, &ciph_algs[i]);                                      \
    }                                                                                    \
    static int ciph_get_params_##i(OSSL_PARAM params[])                                  \
    {                                                                                    \
        return ciph_algs[i].get_params(params);                                          \
    }                                                                                    \
    static const OSSL_PARAM *ciph_gettable_##i(void *provctx)                            \
    {                                                                                    \
        (void)provctx;                                                                   \
        return ciph_algs[i].gettable_params(offload_soft_provctx());                     \
    }                                                                                    \
    static const OSSL_PARAM *ciph_gettable_ctx_##i(void *vctx, void *provctx)            \
    {                                                                                    \
        (void)provctx;                                                                   \
        return ciph_algs[i].gettable_ctx_params(CIPH_INNER(vctx),                        \
                                                offload_soft_provctx());                 \
    }                                                                                    \
    static const OSSL_PARAM *ciph_settable_ctx_##i(void *vctx, void *provctx)            \
    {                                                                                    \
        (void)provctx;                                                                   \
        return ciph_algs[i].settable_ctx_params(CIPH_INNER(vctx),                        \
                                                offload_soft_provctx());                 \
    }
#define CIPH_TRAMP(i)                                                                    \
    {                                                                                    \
        ciph_newctx_##i, ciph_get_params_##i, ciph_gettable_##i, ciph_gettable_ctx_##i,  \
            ciph_settable_ctx_##i                                                        \
    }

CIPH_TRAMPOLINES(0)
CIPH_TRAMPOLINES(1)
CIPH_TRAMPOLINES(2)
CIPH_TRAMPOLINES(3)
CIPH_TRAMPOLINES(4)
CIPH_TRAMPOLINES(5)
CIPH_TRAMPOLINES(6)
CIPH_TRAMPOLINES(7)
CIPH_TRAMPOLINES(8)
CIPH_TRAMPOLINES(9)

static const struct ciph_tramp ciph_tramps[CIPH_COUNT] = {
    CIPH_TRAMP(0), CIPH_TRAMP(1), CIPH_TRAMP(2), CIPH_TRAMP(3), CIPH_TRAMP(4),
    CIPH_TRAMP(5), CIPH_TRAMP(6), CIPH_TRAMP(7), CIPH_TRAMP(8), CIPH_TRAMP(9),
};

#define CIPH_MAX_FNS 16
static OSSL_DISPATCH ciph_dispatch[CIPH_COUNT][CIPH_MAX_FNS];
static OSSL_ALGORITHM ciph_table[CIPH_COUNT + 1];

#define BIND(field, id, ours) OFFLOAD_SOFT_BIND(alg, d, field, id, ours)

size_t offload_cipher_bind(void)
{
    size_t i, n = 0;

    for (i = 0; i < CIPH_COUNT; i++) {
        struct ciph_alg *alg = &ciph_algs[i];
        const struct ciph_tramp *t = &ciph_tramps[i];
        OSSL_DISPATCH *d = ciph_dispatch[i];

        alg->soft = offload_soft_find(OSSL_OP_CIPHER, alg->name, &alg->names);
        if (alg->soft == NULL)
            continue;
        BIND(newctx, OSSL_FUNC_CIPHER_NEWCTX, t->newctx);
        BIND(encrypt_init, OSSL_FUNC_CIPHER_ENCRYPT_INIT, ciph_encrypt_init);
        BIND(decrypt_init, OSSL_FUNC_CIPHER_DECRYPT_INIT, ciph_decrypt_init);
        BIND(update, OSSL_FUNC_CIPHER_UPDATE, ciph_update);
        BIND(final, OSSL_FUNC_CIPHER_FINAL, ciph_final);
        BIND(cipher, OSSL_FUNC_CIPHER_CIPHER, ciph_cipher);
        BIND(freectx, OSSL_FUNC_CIPHER_FREECTX, ciph_freectx);
        BIND(dupctx, OSSL_FUNC_CIPHER_DUPCTX, ciph_dupctx);
        BIND(get_params, OSSL_FUNC_CIPHER_GET_PARAMS, t->get_params);
        BIND(get_ctx_params, OSSL_FUNC_CIPHER_GET_CTX_PARAMS, ciph_get_ctx_params);
        BIND(set_ctx_params, OSSL_FUNC_CIPHER_SET_CTX_PARAMS, ciph_set_ctx_params);
        BIND(gettable_params, OSSL_FUNC_CIPHER_GETTABLE_PARAMS, t->gettable_params);
        BIND(gettable_ctx_params, OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS,
             t->gettable_ctx_params);
        BIND(settable_ctx_params, OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS,
             t->settable_ctx_params);
        *d = (OSSL_DISPATCH){0, NULL};
        if (alg->newctx == NULL || alg->freectx == NULL || alg->update == NULL ||
            alg->final == NULL || alg->encrypt_init == NULL ||
            alg->decrypt_init == NULL) {
            alg->soft = NULL;
            continue;
        }
        ciph_table[n++] = (OSSL_ALGORITHM){alg->names, "provider=offload",
                                           ciph_dispatch[i], "offload cipher"};
    }
    ciph_table[n] = (OSSL_ALGORITHM){NULL, NULL, NULL, NULL};
    return n;
}

const OSSL_ALGORITHM *offload_cipher_algorithms(void)
{
    return ciph_table;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ciphers: every cipher the default provider offers, mirrored (mirror.h):
 * the table is the default's, copied entry by entry, and its contexts are
 * the default's contexts. AES-128/192/256-GCM, AES-128/256-CBC,
 * ChaCha20-Poly1305 and the stitched AES-CBC-HMAC-SHA1/SHA256 ciphers TLS
 * 1.2 uses are intercepted, in slots of their own:
 *   NEWCTX          refused while not running; makes the context's entry
 *                   (ctxstate.h), so that no later step needs the mutex
 *   FREECTX         deferred while a request holds the context
 *   DUPCTX          copies the direction and the TLS mode
 *   ENCRYPT_INIT, DECRYPT_INIT, ENCRYPT_SKEY_INIT, DECRYPT_SKEY_INIT
 *                   record the direction (and "tls-version" of CBC)
 *   SET_CTX_PARAMS  the TLS-capable CBC ciphers: notes "tls-version"
 *   UPDATE, CIPHER  a data update of at least inline_below bytes inside an
 *                   ASYNC_JOB (with other jobs in flight) goes to a worker
 *                   when the gate (cipher_gate.h) has measured that to
 *                   cost this thread less than running it here:
 *                   the request owns a copy of the input, the worker
 *                   transforms it in place, and the resumed job copies the
 *                   result out, so a job abandoned mid-record never has a
 *                   worker reading or writing the application's buffers
 *   FINAL           a failure (refused tag, bad padding) is counted
 * Everything else (params, gettables, the pipeline functions) and every
 * other cipher (ECB, CTR, CCM, OCB, SIV, ARIA, Camellia, ...) is the
 * default's function, called by libcrypto directly: never counted, never
 * offloaded, no cost.
 *
 * The small-record hot path touches no per-context state: the entry (the
 * direction, which decides the buffers to wipe, and the TLS mode) is read
 * on the offload path and on failures, and written by the inits through
 * ctxstate's lock-free lookup.
 *
 * CBC in TLS mode ("tls-version" set) always runs inline: the default
 * implementation then hands back the record's MAC as a pointer into the
 * output buffer ("tls-mac"), which must be the application's own.
 *
 * Symmetric key management (OSSL_OP_SKEYMGMT, 3.5) is mirrored as it is,
 * so that EVP_CipherInit_SKEY finds key data our ciphers understand.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "cipher_gate.h"
#include "ctxstate.h"
#include "mirror.h"

/* The ciphers with intercepts. */
static const struct {
    const char *name;
    int tls_cbc_capable; /* "tls-version" makes updates return MAC pointers */
    int never_offload;   /* stitched TLS ciphers: records of at most 16 KiB */
} ciph_known[] = {
    {"AES-128-GCM", 0, 0},
    {"AES-192-GCM", 0, 0},
    {"AES-256-GCM", 0, 0},
    {"AES-128-CBC", 1, 0},
    {"AES-256-CBC", 1, 0},
    {"ChaCha20-Poly1305", 0, 0},
    /*
     * The stitched AES-CBC-HMAC ciphers exist for libssl's TLS 1.2 CBC
     * suites without encrypt-then-MAC (and only where the CPU has AES-NI):
     * they are never offloaded, but counted like the others.
     */
    {"AES-128-CBC-HMAC-SHA1", 0, 1},
    {"AES-256-CBC-HMAC-SHA1", 0, 1},
    {"AES-128-CBC-HMAC-SHA256", 0, 1},
    {"AES-256-CBC-HMAC-SHA256", 0, 1},
};
#define CIPH_KNOWN (sizeof(ciph_known) / sizeof(ciph_known[0]))
#define CIPH_SLOTS 16
_Static_assert(CIPH_SLOTS <= OFFLOAD_GATE_SLOTS, "a gate cell per cipher slot");

struct ciph_alg {
    char name[48]; /* its first name, for the log and the reasons */
    int tls_cbc_capable;
    int never_offload;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_dupctx_fn *dupctx;
    OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init;
    OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init;
    OSSL_FUNC_cipher_encrypt_skey_init_fn *encrypt_skey_init;
    OSSL_FUNC_cipher_decrypt_skey_init_fn *decrypt_skey_init;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_cipher_fn *cipher;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
};

static struct ciph_alg ciph_algs[CIPH_SLOTS];
static size_t ciph_nslots;
static struct offload_mirror ciph_mirror = {.description = "offload cipher",
                                            .own_slots = 1};
static struct offload_mirror skm_mirror = {.description = "offload skeymgmt"};

struct ciph_job {
    struct offload_ctxstate *s; /* the default's context, held */
    const struct ciph_alg *alg;
    int one_shot;       /* OSSL_FUNC_cipher_cipher rather than update */
    int secret;         /* the buffer may hold plaintext when released */
    unsigned char *buf; /* output (and input when the caller works in place) */
    unsigned char *in;  /* the input: buf, or a copy apart */
    size_t inl, outl, outsize;
};

/* The direction of |ctx|'s last init, for the log and the wipe (0 without an entry). */
static int ciph_enc(void *ctx)
{
    struct offload_ctxstate *s = offload_ctxstate_find(ctx);

    return s != NULL && s->enc;
}

/* Notes whether |params| switch CBC into (or out of) TLS record mode. */
static void note_tls(const struct ciph_alg *alg, struct offload_ctxstate *s,
                     const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    unsigned int v;

    if (params == NULL || !alg->tls_cbc_capable)
        return;
    p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_TLS_VERSION);
    if (p != NULL && OSSL_PARAM_get_uint(p, &v))
        s->tls_cbc = v != 0;
}

static int ciph_job_run(struct offload_req *req)
{
    struct ciph_job *j = (struct ciph_job *)req->payload;
    void *ctx = j->s->ctx;

    if (j->one_shot)
        return j->alg->cipher(ctx, j->buf, &j->outl, j->outsize, j->in, j->inl);
    return j->alg->update(ctx, j->buf, &j->outl, j->outsize, j->in, j->inl);
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
    offload_ctxstate_release(j->s);
}

/* Room a single update may need beyond its input (a held-back block and padding). */
#define CIPH_SLACK 64

/* For the log: [enc][what], what 0 update, 1 one-shot cipher, 2 final. */
static const char *const ciph_ops[2][3] = {
    {"decrypt update", "decrypt cipher", "decrypt final"},
    {"encrypt update", "encrypt cipher", "encrypt final"},
};
#define CIPH_OP(enc, what) ciph_ops[(enc) != 0][what]

/* In place only when the caller is (TLS AEAD records must be). */
static size_t ciph_payload(const unsigned char *out, const unsigned char *in, size_t inl)
{
    return sizeof(struct ciph_job) + inl + CIPH_SLACK + (out == in ? 0 : inl);
}

/*
 * Offloads one update through |req| (ciph_payload bytes of payload);
 * nothing reaches |out| unless the worker succeeded. A timed request
 * reports how long its job was paused in *paused.
 */
static int ciph_offload(const struct ciph_alg *alg, struct offload_ctxstate *s,
                        struct offload_req *req, int one_shot, unsigned char *out,
                        size_t *outl, size_t outsize, const unsigned char *in, size_t inl,
                        uint64_t *paused)
{
    struct ciph_job *j = (struct ciph_job *)req->payload;
    /* A block cipher holding buffered bytes writes ahead of its input. */
    int inplace = out == in;
    int ret;

    req->cheap = 1;
    req->prompt = 1;
    req->alg = alg->name;
    req->op = CIPH_OP(s->enc, one_shot);
    offload_ctxstate_hold(s);
    j->s = s;
    j->alg = alg;
    j->one_shot = one_shot;
    j->secret = !s->enc;
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
    *paused = req->paused_ns;
    offload_req_put(req);
    return ret;
}

/* One data update on this thread, taking path |p|: counted once, failure too. */
static inline int ciph_here(const struct ciph_alg *alg, void *ctx, int enc,
                            enum offload_path p, int one_shot, unsigned char *out,
                            size_t *outl, size_t outsize, const unsigned char *in,
                            size_t inl)
{
    int ret;

    offload_op_path(OFFLOAD_FAM_CIPHER, p, alg->name, CIPH_OP(enc, one_shot));
    ret = one_shot ? alg->cipher(ctx, out, outl, outsize, in, inl)
                   : alg->update(ctx, out, outl, outsize, in, inl);
    return offload_op_done(OFFLOAD_FAM_CIPHER, ret, alg->name, CIPH_OP(enc, one_shot));
}

/* A small record while the log is on: the same, with its line. */
static __attribute__((cold, noinline)) int
ciph_small_logged(const struct ciph_alg *alg, void *ctx, int one_shot, unsigned char *out,
                  size_t *outl, size_t outsize, const unsigned char *in, size_t inl)
{
    return ciph_here(alg, ctx, ciph_enc(ctx), OFFLOAD_PATH_SMALL, one_shot, out, outl,
                     outsize, in, inl);
}

static __attribute__((cold, noinline)) void ciph_small_failed(const struct ciph_alg *alg,
                                                              void *ctx, int one_shot)
{
    offload_op_failed(OFFLOAD_FAM_CIPHER, alg->name, CIPH_OP(ciph_enc(ctx), one_shot));
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

/* The log's line when a size class's choice changes. */
static __attribute__((cold, noinline)) void
ciph_log_gate(const struct ciph_alg *alg, int enc, size_t inl,
              const struct offload_gate_pick *g)
{
    uint32_t here, off;
    size_t lo = offload_gate_class_bytes(g);

    offload_gate_estimates((unsigned)(alg - ciph_algs), enc, inl, &here, &off);
    offload_log("cipher %s %s updates of %zu..%zu bytes: %" PRIu32 " ns here, %" PRIu32
                " ns offloaded: %s from now on",
                alg->name, enc ? "encrypt" : "decrypt", lo, 2 * lo - 1, here, off,
                g->offload ? "offloaded" : "inline");
}

static __attribute__((noinline)) int ciph_big(const struct ciph_alg *alg, void *ctx,
                                              int one_shot, unsigned char *out,
                                              size_t *outl, size_t outsize,
                                              const unsigned char *in, size_t inl)
{
    struct offload_ctxstate *s = offload_ctxstate_find(ctx);
    enum offload_path p = s == NULL    ? OFFLOAD_PATH_NO_MEMORY
                          : s->tls_cbc ? OFFLOAD_PATH_TLS_CBC
                          : alg->never_offload
                              ? OFFLOAD_PATH_STITCHED
                              : offload_async_path(OFFLOAD_FAM_CIPHER, 1);
    struct offload_gate_pick g = {.offload = 1};
    uint64_t t0 = 0, paused = 0;
    int ret;

    /* A worker could take it: the gate says whether that is the cheaper way. */
    if (p == OFFLOAD_PATH_OFFLOADED && offload_gate_enabled()) {
        offload_gate_choose((unsigned)(alg - ciph_algs), s->enc, inl, &g);
        if (g.changed && offload_log_enabled())
            ciph_log_gate(alg, s->enc, inl, &g);
        if (!g.offload)
            p = OFFLOAD_PATH_CHEAPER;
        if (g.timed)
            t0 = offload_now_ns();
    }
    if (p == OFFLOAD_PATH_OFFLOADED) {
        struct offload_req *req =
            offload_req_new(ciph_job_run, ciph_job_release, OFFLOAD_FAM_CIPHER,
                            ciph_payload(out, in, inl));

        if (req != NULL) {
            req->timed = g.timed;
            ret =
                ciph_offload(alg, s, req, one_shot, out, outl, outsize, in, inl, &paused);
            goto done;
        }
        p = OFFLOAD_PATH_NO_MEMORY;
        g.timed = 0;
    }
    ret = ciph_here(alg, ctx, s != NULL && s->enc, p, one_shot, out, outl, outsize, in,
                    inl);
done:
    if (g.timed)
        offload_gate_note(&g, offload_now_ns() - t0 - paused);
    return ret;
}

/*
 * A final failed (a refused AEAD tag, bad CBC padding): it counts as a
 * failure of the cipher family. |say| raises our reason too: the default
 * provider fails an AEAD tag check silently.
 */
static __attribute__((cold, noinline)) void ciph_final_failed(const struct ciph_alg *alg,
                                                              void *ctx, int say)
{
    /*
     * The error queue is looked at only on failure (each look fetches the
     * thread's error state, a visible share of a 16-byte record); an error
     * already queued then means the soft engine (or the application,
     * before) said something.
     */
    if (say && ERR_peek_last_error() == 0)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_TAG_MISMATCH,
                      "%s final (no tag set, or it does not match)", alg->name);
    else if (say)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED, "%s final failed", alg->name);
    offload_op_failed(OFFLOAD_FAM_CIPHER, alg->name, CIPH_OP(ciph_enc(ctx), 2));
}

/*
 * The hot entry points are written once per slot (their trampolines): with
 * the slot as a seventh argument, a call would pass the last one on the
 * stack and could not be a jump; inlined, ciph_algs[slot] is a constant.
 */
#define CIPH_HOT inline __attribute__((always_inline))

/* ---- contexts ---- */

static void *ciph_newctx(size_t slot, void *provctx)
{
    const struct ciph_alg *alg = &ciph_algs[slot];
    void *ctx;

    if (!offload_is_running()) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    if ((ctx = alg->newctx(provctx)) == NULL)
        return NULL;
    if (offload_ctxstate_get(ctx, alg->freectx) == NULL) {
        alg->freectx(ctx);
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "cipher context");
        return NULL;
    }
    return ctx;
}

static void ciph_freectx(size_t slot, void *ctx)
{
    offload_ctxstate_free(ctx, ciph_algs[slot].freectx);
}

/* Every cipher context has its entry (made by NEWCTX): a duplicate too. */
static void *ciph_dupctx(size_t slot, void *ctx)
{
    const struct ciph_alg *alg = &ciph_algs[slot];

    return offload_ctxstate_dup(ctx, alg->dupctx(ctx), alg->freectx, 1, "cipher context");
}

/*
 * Every init: the direction (and CBC's TLS mode) go to the context's
 * entry, made by NEWCTX and found without a lock; made here only when
 * NEWCTX could not.
 */
static inline int ciph_note_init(const struct ciph_alg *alg, void *ctx, int enc,
                                 const OSSL_PARAM params[])
{
    struct offload_ctxstate *s;

    if (!offload_is_running())
        return 0;
    s = offload_ctxstate_find(ctx);
    if (s == NULL && (s = offload_ctxstate_get(ctx, alg->freectx)) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "cipher context");
        return 0;
    }
    note_tls(alg, s, params);
    s->enc = enc;
    return 1;
}

static CIPH_HOT int ciph_encrypt_init(size_t slot, void *ctx, const unsigned char *key,
                                      size_t keylen, const unsigned char *iv,
                                      size_t ivlen, const OSSL_PARAM params[])
{
    const struct ciph_alg *alg = &ciph_algs[slot];

    if (!ciph_note_init(alg, ctx, 1, params))
        return 0;
    return alg->encrypt_init(ctx, key, keylen, iv, ivlen, params);
}

static CIPH_HOT int ciph_decrypt_init(size_t slot, void *ctx, const unsigned char *key,
                                      size_t keylen, const unsigned char *iv,
                                      size_t ivlen, const OSSL_PARAM params[])
{
    const struct ciph_alg *alg = &ciph_algs[slot];

    if (!ciph_note_init(alg, ctx, 0, params))
        return 0;
    return alg->decrypt_init(ctx, key, keylen, iv, ivlen, params);
}

static CIPH_HOT int ciph_encrypt_skey_init(size_t slot, void *ctx, void *skeydata,
                                           const unsigned char *iv, size_t ivlen,
                                           const OSSL_PARAM params[])
{
    const struct ciph_alg *alg = &ciph_algs[slot];

    if (!ciph_note_init(alg, ctx, 1, params))
        return 0;
    return alg->encrypt_skey_init(ctx, skeydata, iv, ivlen, params);
}

static CIPH_HOT int ciph_decrypt_skey_init(size_t slot, void *ctx, void *skeydata,
                                           const unsigned char *iv, size_t ivlen,
                                           const OSSL_PARAM params[])
{
    const struct ciph_alg *alg = &ciph_algs[slot];

    if (!ciph_note_init(alg, ctx, 0, params))
        return 0;
    return alg->decrypt_skey_init(ctx, skeydata, iv, ivlen, params);
}

static int ciph_set_ctx_params(size_t slot, void *ctx, const OSSL_PARAM params[])
{
    const struct ciph_alg *alg = &ciph_algs[slot];
    struct offload_ctxstate *s;

    if (params != NULL && (s = offload_ctxstate_find(ctx)) != NULL)
        note_tls(alg, s, params);
    return alg->set_ctx_params(ctx, params);
}

/* ---- data ---- */

static CIPH_HOT int ciph_update(size_t slot, void *ctx, unsigned char *out, size_t *outl,
                                size_t outsize, const unsigned char *in, size_t inl)
{
    const struct ciph_alg *alg = &ciph_algs[slot];
    int ret;

    if (big_update(out, in, inl))
        return ciph_big(alg, ctx, 0, out, outl, outsize, in, inl);
    /* AAD (no output buffer) or nothing: not a counted operation. */
    if (out == NULL || inl == 0)
        return alg->update(ctx, out, outl, outsize, in, inl);
    /* A small record (the one-shot TLS record's tag is checked here too). */
    if (offload_log_enabled())
        return ciph_small_logged(alg, ctx, 0, out, outl, outsize, in, inl);
    offload_count_inline(OFFLOAD_FAM_CIPHER);
    ret = alg->update(ctx, out, outl, outsize, in, inl);
    if (ret <= 0)
        ciph_small_failed(alg, ctx, 0);
    return ret;
}

static CIPH_HOT int ciph_final(size_t slot, void *ctx, unsigned char *out, size_t *outl,
                               size_t outsize)
{
    const struct ciph_alg *alg = &ciph_algs[slot];
    int ret = alg->final(ctx, out, outl, outsize);

    if (ret <= 0)
        ciph_final_failed(alg, ctx, 1);
    return ret;
}

static CIPH_HOT int ciph_cipher(size_t slot, void *ctx, unsigned char *out, size_t *outl,
                                size_t outsize, const unsigned char *in, size_t inl)
{
    const struct ciph_alg *alg = &ciph_algs[slot];
    int ret;

    if (big_update(out, in, inl))
        return ciph_big(alg, ctx, 1, out, outl, outsize, in, inl);
    if (out != NULL && inl > 0) {
        if (offload_log_enabled())
            return ciph_small_logged(alg, ctx, 1, out, outl, outsize, in, inl);
        offload_count_inline(OFFLOAD_FAM_CIPHER);
        ret = alg->cipher(ctx, out, outl, outsize, in, inl);
        if (ret <= 0)
            ciph_small_failed(alg, ctx, 1);
        return ret;
    }
    /*
     * AAD, or (no input) the final EVP_Cipher() asks for: only a failed
     * final counts, as from ciph_final (the error queue stays the default's).
     */
    ret = alg->cipher(ctx, out, outl, outsize, in, inl);
    if (ret <= 0 && in == NULL)
        ciph_final_failed(alg, ctx, 0);
    return ret;
}

/* ---- one of each per slot ---- */

OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_newctx_fn, void *, ciph_newctx, (void *provctx),
                      (provctx))
OFFLOAD_TRAMPOLINES16_VOID(OSSL_FUNC_cipher_freectx_fn, ciph_freectx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_dupctx_fn, void *, ciph_dupctx, (void *ctx), (ctx))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_encrypt_init_fn, int, ciph_encrypt_init,
                      (void *ctx, const unsigned char *key, size_t keylen,
                       const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[]),
                      (ctx, key, keylen, iv, ivlen, params))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_decrypt_init_fn, int, ciph_decrypt_init,
                      (void *ctx, const unsigned char *key, size_t keylen,
                       const unsigned char *iv, size_t ivlen, const OSSL_PARAM params[]),
                      (ctx, key, keylen, iv, ivlen, params))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_encrypt_skey_init_fn, int, ciph_encrypt_skey_init,
                      (void *ctx, void *skeydata, const unsigned char *iv, size_t ivlen,
                       const OSSL_PARAM params[]),
                      (ctx, skeydata, iv, ivlen, params))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_decrypt_skey_init_fn, int, ciph_decrypt_skey_init,
                      (void *ctx, void *skeydata, const unsigned char *iv, size_t ivlen,
                       const OSSL_PARAM params[]),
                      (ctx, skeydata, iv, ivlen, params))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_set_ctx_params_fn, int, ciph_set_ctx_params,
                      (void *ctx, const OSSL_PARAM params[]), (ctx, params))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_update_fn, int, ciph_update,
                      (void *ctx, unsigned char *out, size_t *outl, size_t outsize,
                       const unsigned char *in, size_t inl),
                      (ctx, out, outl, outsize, in, inl))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_final_fn, int, ciph_final,
                      (void *ctx, unsigned char *out, size_t *outl, size_t outsize),
                      (ctx, out, outl, outsize))
OFFLOAD_TRAMPOLINES16(OSSL_FUNC_cipher_cipher_fn, int, ciph_cipher,
                      (void *ctx, unsigned char *out, size_t *outl, size_t outsize,
                       const unsigned char *in, size_t inl),
                      (ctx, out, outl, outsize, in, inl))

/* ---- binding ---- */

static size_t ciph_intercepts(size_t i, const OSSL_ALGORITHM *a,
                              struct offload_intercept *ic)
{
    struct ciph_alg *alg;
    size_t k, n = 0, slot = ciph_nslots;

    (void)i;
    for (k = 0; k < CIPH_KNOWN; k++)
        if (offload_first_name_is(a->algorithm_names, ciph_known[k].name))
            break;
    if (k == CIPH_KNOWN || slot == CIPH_SLOTS)
        return 0;
    alg = &ciph_algs[slot];
    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->tls_cbc_capable = ciph_known[k].tls_cbc_capable;
    alg->never_offload = ciph_known[k].never_offload;
    alg->newctx = OFFLOAD_FN(OSSL_FUNC_cipher_newctx_fn, OSSL_FUNC_CIPHER_NEWCTX);
    alg->freectx = OFFLOAD_FN(OSSL_FUNC_cipher_freectx_fn, OSSL_FUNC_CIPHER_FREECTX);
    alg->dupctx = OFFLOAD_FN(OSSL_FUNC_cipher_dupctx_fn, OSSL_FUNC_CIPHER_DUPCTX);
    alg->encrypt_init =
        OFFLOAD_FN(OSSL_FUNC_cipher_encrypt_init_fn, OSSL_FUNC_CIPHER_ENCRYPT_INIT);
    alg->decrypt_init =
        OFFLOAD_FN(OSSL_FUNC_cipher_decrypt_init_fn, OSSL_FUNC_CIPHER_DECRYPT_INIT);
    alg->encrypt_skey_init = OFFLOAD_FN(OSSL_FUNC_cipher_encrypt_skey_init_fn,
                                        OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT);
    alg->decrypt_skey_init = OFFLOAD_FN(OSSL_FUNC_cipher_decrypt_skey_init_fn,
                                        OSSL_FUNC_CIPHER_DECRYPT_SKEY_INIT);
    alg->update = OFFLOAD_FN(OSSL_FUNC_cipher_update_fn, OSSL_FUNC_CIPHER_UPDATE);
    alg->final = OFFLOAD_FN(OSSL_FUNC_cipher_final_fn, OSSL_FUNC_CIPHER_FINAL);
    alg->cipher = OFFLOAD_FN(OSSL_FUNC_cipher_cipher_fn, OSSL_FUNC_CIPHER_CIPHER);
    alg->set_ctx_params =
        OFFLOAD_FN(OSSL_FUNC_cipher_set_ctx_params_fn, OSSL_FUNC_CIPHER_SET_CTX_PARAMS);
    /*
     * Without these the direction cannot be learnt or the context kept
     * alive for a worker: the default's table as it is.
     */
    if (alg->newctx == NULL || alg->freectx == NULL || alg->update == NULL ||
        alg->final == NULL || alg->encrypt_init == NULL || alg->decrypt_init == NULL)
        return 0;
    ciph_nslots++;
    /* An id the default lacks is dropped by offload_mirror_bind. */
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_NEWCTX, ciph_newctx_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_FREECTX, ciph_freectx_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_DUPCTX, ciph_dupctx_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_ENCRYPT_INIT, ciph_encrypt_init_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_DECRYPT_INIT, ciph_decrypt_init_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT,
                          ciph_encrypt_skey_init_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_DECRYPT_SKEY_INIT,
                          ciph_decrypt_skey_init_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_UPDATE, ciph_update_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_FINAL, ciph_final_slot[slot]);
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_CIPHER_CIPHER, ciph_cipher_slot[slot]);
    if (alg->tls_cbc_capable)
        ic[n++] =
            OFFLOAD_ICP(OSSL_FUNC_CIPHER_SET_CTX_PARAMS, ciph_set_ctx_params_slot[slot]);
    return n;
}

/* Symmetric key management: the default's, nothing intercepted. */
static size_t skm_intercepts(size_t i, const OSSL_ALGORITHM *a,
                             struct offload_intercept *ic)
{
    (void)i;
    (void)a;
    (void)ic;
    return 0;
}

size_t offload_cipher_bind(void)
{
    size_t n;

    ciph_nslots = 0;
    n = offload_mirror_bind(&ciph_mirror, OSSL_OP_CIPHER, ciph_intercepts);
    /* 3.5 and later; nothing on 3.0 (decided by what the default offers). */
    offload_mirror_bind(&skm_mirror, OSSL_OP_SKEYMGMT, skm_intercepts);
    OFFLOAD_DEBUG("%zu ciphers mirrored, %zu of them intercepted; %zu symmetric key "
                  "types",
                  n, ciph_nslots, skm_mirror.n);
    return n;
}

void offload_cipher_unbind(void)
{
    offload_mirror_unbind(&ciph_mirror);
    offload_mirror_unbind(&skm_mirror);
}

const OSSL_ALGORITHM *offload_cipher_algorithms(void)
{
    return ciph_mirror.algs;
}

const OSSL_ALGORITHM *offload_skeymgmt_algorithms(void)
{
    return skm_mirror.algs;
}

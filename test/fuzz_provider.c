/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: the offload provider's ciphers and signature
 * verification, differentially against the default provider.
 *
 * The provider's sources are compiled into the fuzzer (instrumented, so
 * libFuzzer sees their coverage) and registered as the built-in provider
 * "offload" of a library context whose configuration sets inline_below = 0
 * and cipher_gate = 0 (every data update inside a job may go to a worker,
 * whatever it costs). scripts/test builds
 * and runs it:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *       -Iprovider test/fuzz_provider.c provider/(star).c provider/accel/(star).c \
 *       $(pkg-config --cflags --libs libcrypto) -lpthread -o build-fuzz/fuzz_provider
 *   build-fuzz/fuzz_provider -runs=20000 test/fuzz_corpus
 *
 * One input is one operation:
 *   - a cipher (AES-128/192/256-GCM, AES-128/256-CBC, ChaCha20-Poly1305):
 *     direction, padding, IV length, key, IV, AAD in pieces, data in
 *     updates of sizes taken from the input, in place or not, final, the
 *     tag got (encrypt) or set from the input or the right one (decrypt),
 *     or a TLS record (GCM with the TLS AAD, CBC with "tls-version");
 *   - a signature check with one of four fixed keys (RSA-2048, P-256,
 *     Ed25519, Ed448) made once: padding, digest and salt length chosen by
 *     the input, message and signature from the input; sometimes signed
 *     first by offload (and then maybe corrupted) so that verification
 *     also sees valid signatures.
 * The offload side runs outside any job or inside an ASYNC_JOB (two wait
 * ctxs in turn, so requests really reach the workers) resumed by poll(),
 * also spuriously before anything is ready, or by the wait ctx's
 * callback, or with pauses blocked; a cipher context may be duplicated
 * mid-stream, a signature asked for in too small a buffer.
 * Every step's result, the output and the tag must equal the default
 * provider's; a signature offload made must verify with the default
 * provider; else abort(). A wake-up that never comes aborts after 10 s.
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include "offload.h"

OSSL_provider_init_fn OSSL_provider_init;

#define PROPQ    "provider=" OFFLOAD_PROVIDER_NAME
#define MAX_DATA 4096
#define MAX_SIG  1024
#define WAIT_MS  10000

static struct {
    OSSL_LIB_CTX *off, *def; /* offload (plus default), default alone */
    OSSL_PROVIDER *offprov, *offdef, *defprov;
    EVP_PKEY *key[4], *refkey[4];
    EVP_CIPHER *ciph[6], *refciph[6];
    ASYNC_WAIT_CTX *wctx[2];
    unsigned turn;
} F;

static const char *const cipher_names[6] = {"AES-128-GCM", "AES-192-GCM",
                                            "AES-256-GCM", "AES-128-CBC",
                                            "AES-256-CBC", "ChaCha20-Poly1305"};
static const char *const key_types[4] = {"RSA", "EC", "ED25519", "ED448"};

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_provider: %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            ERR_print_errors_fp(stderr);                                                 \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* ---- reading the input ---- */

struct in {
    const uint8_t *p;
    size_t n;
};

static unsigned u8(struct in *in)
{
    unsigned v;

    if (in->n == 0)
        return 0;
    v = in->p[0];
    in->p++;
    in->n--;
    return v;
}

static unsigned u16(struct in *in)
{
    return u8(in) | (u8(in) << 8);
}

/* Up to |want| bytes into |out| (zero-filled beyond the input); returns |want|. */
static size_t bytes(struct in *in, uint8_t *out, size_t want)
{
    size_t k = want < in->n ? want : in->n;

    memcpy(out, in->p, k);
    memset(out + k, 0, want - k);
    in->p += k;
    in->n -= k;
    return want;
}

/* ---- running something inside a job ---- */

/* Callback mode: the worker's callback posts here. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned posted;
} CB = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static int wake_cb(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&CB.lock);
    CB.posted++;
    pthread_cond_signal(&CB.cond);
    pthread_mutex_unlock(&CB.lock);
    return 1;
}

static void wait_cb(void)
{
    struct timespec dl;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&CB.lock);
    while (CB.posted == 0 && rc == 0)
        rc = pthread_cond_timedwait(&CB.cond, &CB.lock, &dl);
    CHECK(CB.posted > 0); /* a lost callback */
    CB.posted--;
    pthread_mutex_unlock(&CB.lock);
}

struct call {
    int (*fn)(void *);
    void *arg;
    int block; /* ASYNC_block_pause around fn: the job may not pause */
};

static int call_fn(void *arg)
{
    struct call *c = *(struct call **)arg;
    int ret;

    if (c->block)
        ASYNC_block_pause();
    ret = c->fn(c->arg);
    if (c->block)
        ASYNC_unblock_pause();
    return ret;
}

/*
 * fn(arg) inside an ASYNC_JOB, driven per |style|:
 *   0: resumed when its wait fd is readable (poll);
 *   1: also resumed once at once, before anything is ready (a spurious
 *      resume, as s_server does), then as in 0;
 *   2: callback mode: resumed when the wait ctx's callback comes;
 *   3: with pauses blocked: the provider must finish without pausing.
 */
static int in_job(int (*fn)(void *), void *arg, unsigned style)
{
    ASYNC_WAIT_CTX *w = F.wctx[F.turn++ & 1];
    struct call c = {fn, arg, (style & 3) == 3}, *cp = &c;
    ASYNC_JOB *job = NULL;
    int ret = 0, r, early = (style & 3) == 1;

    style &= 3;
    if (style == 2) {
        CHECK(ASYNC_WAIT_CTX_set_callback(w, wake_cb, NULL));
        pthread_mutex_lock(&CB.lock);
        CB.posted = 0;
        pthread_mutex_unlock(&CB.lock);
    }
    while ((r = ASYNC_start_job(&job, w, &ret, call_fn, &cp, sizeof(cp))) ==
           ASYNC_PAUSE) {
        OSSL_ASYNC_FD fd;
        size_t n = 0;
        struct pollfd p;

        CHECK(style != 3);
        if (style == 2) {
            CHECK(ASYNC_WAIT_CTX_get_status(w) == ASYNC_STATUS_OK);
            wait_cb();
            continue;
        }
        if (early) {
            early = 0;
            continue;
        }
        CHECK(ASYNC_WAIT_CTX_get_all_fds(w, NULL, &n) && n == 1);
        CHECK(ASYNC_WAIT_CTX_get_all_fds(w, &fd, &n));
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, WAIT_MS) == 1); /* a lost wake-up hangs here */
    }
    CHECK(r == ASYNC_FINISH);
    if (style == 2) {
        CHECK(ASYNC_WAIT_CTX_set_callback(w, NULL, NULL));
        pthread_mutex_lock(&CB.lock);
        CHECK(CB.posted == 0); /* no callback beyond the pauses it resumed */
        pthread_mutex_unlock(&CB.lock);
    } else {
        /* No token left behind for the next job on this ctx. */
        OSSL_ASYNC_FD fd;
        size_t n = 0;
        struct pollfd p;

        if (ASYNC_WAIT_CTX_get_all_fds(w, NULL, &n) && n == 1 &&
            ASYNC_WAIT_CTX_get_all_fds(w, &fd, &n)) {
            p = (struct pollfd){.fd = fd, .events = POLLIN};
            CHECK(poll(&p, 1, 0) == 0);
        }
    }
    return ret;
}

/* ---- ciphers ---- */

struct cspec {
    int alg, enc, pad, inplace, tls, settag, dup;
    size_t keylen, ivlen, aadlen, datalen, taglen;
    size_t aadcut, cuts[8];
    unsigned ncuts;
    uint8_t key[64], iv[32], aad[64], tag[16];
    uint8_t data[MAX_DATA + 64];
};

struct cres {
    int rc[16]; /* each step's result, -2: not reached */
    size_t outl;
    uint8_t out[MAX_DATA + 128];
    uint8_t tag[16];
};

struct crun {
    const struct cspec *s;
    const EVP_CIPHER *c;
    struct cres *r;
};

static int is_aead(int alg)
{
    return alg != 3 && alg != 4;
}

/* One cipher run: every step recorded, stopping at the first failure. */
static int cipher_run(void *arg)
{
    struct crun *cr = arg;
    const struct cspec *s = cr->s;
    struct cres *r = cr->r;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    OSSL_PARAM params[3];
    unsigned k = 0, i;
    size_t off = 0;
    int outl = 0;

    for (i = 0; i < sizeof(r->rc) / sizeof(r->rc[0]); i++)
        r->rc[i] = -2;
    r->outl = 0;
#define STEP(expr) ((r->rc[k++] = (expr)) > 0)
    if (!STEP(ctx != NULL && EVP_CipherInit_ex2(ctx, cr->c, NULL, NULL, s->enc, NULL)))
        goto out;
    if (is_aead(s->alg)) {
        size_t ivlen = s->ivlen;

        params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
        params[1] = OSSL_PARAM_construct_end();
        if (!STEP(EVP_CIPHER_CTX_set_params(ctx, params)))
            goto out;
    } else {
        unsigned int pad = (unsigned)s->pad, tlsv = 0x0303;

        params[0] = OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_PADDING, &pad);
        params[1] = s->tls
                        ? OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_TLS_VERSION, &tlsv)
                        : OSSL_PARAM_construct_end();
        params[2] = OSSL_PARAM_construct_end();
        if (!STEP(EVP_CIPHER_CTX_set_params(ctx, params)))
            goto out;
    }
    if (!STEP(EVP_CipherInit_ex2(ctx, NULL, s->key, s->iv, s->enc, NULL)))
        goto out;
    if (s->tls && is_aead(s->alg) && s->alg != 5) {
        /* A TLS 1.2 GCM record: fixed IV, the record's AAD, one in-place call. */
        uint8_t aad[13];

        /* The record's length as libssl states it: without the tag when encrypting. */
        size_t alen = s->enc && s->datalen >= 16 ? s->datalen - 16 : s->datalen;

        memcpy(aad, s->aad, 11);
        aad[11] = (uint8_t)(alen >> 8);
        aad[12] = (uint8_t)alen;
        memcpy(r->out, s->data, s->datalen);
        if (!STEP(
                EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, 4, (void *)s->iv)) ||
            !STEP(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_TLS1_AAD, 13, aad)))
            goto out;
        r->rc[k++] = EVP_Cipher(ctx, r->out, r->out, (unsigned)s->datalen);
        r->outl = r->rc[k - 1] > 0 ? (size_t)r->rc[k - 1] : 0;
        goto out;
    }
    if (is_aead(s->alg) && s->aadlen > 0) {
        /* The AAD in two pieces. */
        if (!STEP(EVP_CipherUpdate(ctx, NULL, &outl, s->aad, (int)s->aadcut)) ||
            !STEP(EVP_CipherUpdate(ctx, NULL, &outl, s->aad + s->aadcut,
                                   (int)(s->aadlen - s->aadcut))))
            goto out;
    }
    if (is_aead(s->alg) && !s->enc && s->settag &&
        !STEP(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)s->taglen,
                                  (void *)s->tag)))
        goto out;
    for (i = 0; i <= s->ncuts; i++) {
        size_t end = i < s->ncuts ? s->cuts[i] : s->datalen;
        const uint8_t *src = s->data + off;

        if (end < off)
            continue;
        if (s->inplace) {
            /* In place: the input sits where this update's output goes. */
            memmove(r->out + r->outl, s->data + off, end - off);
            src = r->out + r->outl;
        }
        outl = 0;
        if (!STEP(EVP_CipherUpdate(ctx, r->out + r->outl, &outl, src, (int)(end - off))))
            goto out;
        CHECK(outl >= 0 && (size_t)outl <= end - off + 32);
        r->outl += (size_t)outl;
        off = end;
        if (s->dup && i == 0) {
            /* Carry on with a copy of the context (dupctx), the original freed. */
            EVP_CIPHER_CTX *copy = EVP_CIPHER_CTX_new();

            if (!STEP(copy != NULL && EVP_CIPHER_CTX_copy(copy, ctx))) {
                EVP_CIPHER_CTX_free(copy);
                goto out;
            }
            EVP_CIPHER_CTX_free(ctx);
            ctx = copy;
        }
        if (k >= 12)
            k = 12; /* the last updates share a slot */
    }
    outl = 0;
    k = 13;
    if (!STEP(EVP_CipherFinal_ex(ctx, r->out + r->outl, &outl)))
        goto out;
    r->outl += (size_t)outl;
    if (is_aead(s->alg) && s->enc)
        STEP(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)s->taglen, r->tag));
#undef STEP
out:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return 1;
}

static void fuzz_cipher(struct in *in, unsigned sel)
{
    struct cspec *s = calloc(1, sizeof(*s));
    struct cres *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct crun ra, rb;
    unsigned flags, style, i;

    CHECK(s != NULL && a != NULL && b != NULL);
    s->alg = (int)(sel % 6);
    style = (sel / 6) % 4;
    flags = u8(in);
    s->enc = flags & 1;
    s->pad = (flags >> 1) & 1;
    s->inplace = (flags >> 2) & 1;
    s->tls = (flags >> 3) & 1 && s->alg != 5;
    s->settag = (flags >> 4) & 1;
    s->dup = (flags >> 7) & 1;
    s->keylen = (size_t)EVP_CIPHER_get_key_length(F.ciph[s->alg]);
    s->ivlen = is_aead(s->alg) ? 1 + u8(in) % 16 : 16;
    /*
     * TLS GCM records use a 12-byte IV. (Shorter ones reach a heap overflow
     * in OpenSSL 3.0's own GCM code, setivfixed(): "ctx->ivlen - (int)len"
     * is unsigned, so an IV shorter than the fixed part passes the check
     * and RAND_bytes_ex() writes past the context, default provider alone.)
     */
    if (s->tls && is_aead(s->alg))
        s->ivlen = 12;
    s->taglen = 1 + u8(in) % 16;
    bytes(in, s->key, s->keylen);
    bytes(in, s->iv, s->ivlen < 16 ? 16 : s->ivlen);
    s->aadlen = u8(in) % 48;
    s->aadcut = s->aadlen > 0 ? u8(in) % (s->aadlen + 1) : 0;
    bytes(in, s->aad, s->aadlen < 13 ? 13 : s->aadlen);
    bytes(in, s->tag, 16);
    s->datalen = u16(in) % (MAX_DATA + 1);
    if (s->tls && !is_aead(s->alg))
        s->datalen -= s->datalen % 16; /* CBC records are whole blocks */
    s->ncuts = u8(in) % 8;
    for (i = 0; i < s->ncuts; i++)
        s->cuts[i] = s->datalen > 0 ? u16(in) % (s->datalen + 1) : 0;
    bytes(in, s->data, s->datalen);

    /* Decrypting: half the time with the right tag (from an encryption). */
    if (is_aead(s->alg) && !s->enc && !s->tls && (flags & 0x20)) {
        struct cspec *e = malloc(sizeof(*e));

        CHECK(e != NULL);
        memcpy(e, s, sizeof(*e));
        e->enc = 1;
        ra = (struct crun){e, F.refciph[s->alg], a};
        cipher_run(&ra);
        if (a->rc[13] > 0) {
            memcpy(s->tag, a->tag, s->taglen);
            memcpy(s->data, a->out, s->datalen);
            s->settag = 1;
        }
        free(e);
    }

    ra = (struct crun){s, F.ciph[s->alg], a};
    rb = (struct crun){s, F.refciph[s->alg], b};
    if (flags & 0x40)
        in_job(cipher_run, &ra, style);
    else
        cipher_run(&ra);
    cipher_run(&rb);
    for (i = 0; i < sizeof(a->rc) / sizeof(a->rc[0]); i++) {
        if ((a->rc[i] > 0) != (b->rc[i] > 0))
            fprintf(stderr, "step %u: offload %d, default %d (%s, %s)\n", i, a->rc[i],
                    b->rc[i], cipher_names[s->alg], s->enc ? "encrypt" : "decrypt");
        CHECK((a->rc[i] > 0) == (b->rc[i] > 0));
    }
    CHECK(a->outl == b->outl);
    if (s->tls && is_aead(s->alg) && s->enc) {
        /*
         * A TLS GCM record's explicit nonce is random: the default provider
         * must decrypt offload's record back to the payload instead.
         */
        if (a->rc[5] > 0) {
            struct cspec *d = malloc(sizeof(*d));

            CHECK(d != NULL);
            memcpy(d, s, sizeof(*d));
            d->enc = 0;
            memcpy(d->data, a->out, a->outl);
            rb = (struct crun){d, F.refciph[s->alg], b};
            cipher_run(&rb);
            /* [explicit nonce 8][payload][tag 16], the payload back in place. */
            CHECK(b->rc[5] > 0 && s->datalen >= 24);
            CHECK(memcmp(b->out + 8, s->data + 8, s->datalen - 24) == 0);
            free(d);
        }
    } else if (a->rc[13] > 0 || s->enc) {
        /* A failed decryption's output is whatever it is; anything else must match. */
        CHECK(memcmp(a->out, b->out, a->outl) == 0);
    }
    if (s->enc && is_aead(s->alg) && a->rc[14] > 0)
        CHECK(memcmp(a->tag, b->tag, s->taglen) == 0);
    free(s);
    free(a);
    free(b);
}

/* ---- signatures ---- */

struct sspec {
    int k, mode, pad, md, salt, sign_first, corrupt, short_buf;
    size_t msglen, siglen;
    uint8_t msg[512];
    uint8_t sig[MAX_SIG];
};

struct srun {
    struct sspec *s;
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *key;
    const char *propq;
    int verify; /* else sign into s->sig */
    int rc;
};

static const char *const mds[] = {"SHA256", "SHA1", "SHA384", "SHA512", NULL};
static const char *const pads[] = {
    OSSL_PKEY_RSA_PAD_MODE_PKCSV15, OSSL_PKEY_RSA_PAD_MODE_PSS,
    OSSL_PKEY_RSA_PAD_MODE_X931, OSSL_PKEY_RSA_PAD_MODE_NONE};
static const char *const salts[] = {OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST,
                                    OSSL_PKEY_RSA_PSS_SALT_LEN_MAX,
                                    OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO,
                                    "0",
                                    "20",
                                    "300"};

/* Signs or verifies per |r|: a digest-sign/verify (mode 0) or a raw one (mode 1). */
static int sig_run(void *arg)
{
    struct srun *r = arg;
    struct sspec *s = r->s;
    const char *md = s->k >= 2 ? NULL : mds[s->md % 5];
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    OSSL_PARAM params[4], *p = params;
    char padbuf[16], saltbuf[16];
    int raw = s->mode == 1 && s->k < 2;

    if (s->k == 0) {
        snprintf(padbuf, sizeof(padbuf), "%s", pads[s->pad % 4]);
        snprintf(saltbuf, sizeof(saltbuf), "%s", salts[s->salt % 6]);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, padbuf, 0);
        if (s->pad % 4 == 1)
            *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                                                    saltbuf, 0);
    }
    *p = OSSL_PARAM_construct_end();
    r->rc = 0;
    if (raw) {
        pctx = EVP_PKEY_CTX_new_from_pkey(r->libctx, r->key, r->propq);
        if (pctx == NULL ||
            (r->verify ? EVP_PKEY_verify_init_ex(pctx, params)
                       : EVP_PKEY_sign_init_ex(pctx, params)) <= 0 ||
            (md != NULL &&
             EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(md)) <= 0))
            goto out;
        if (r->verify) {
            r->rc = EVP_PKEY_verify(pctx, s->sig, s->siglen, s->msg, s->msglen);
        } else {
            size_t n = s->short_buf ? 16 : sizeof(s->sig);

            r->rc = EVP_PKEY_sign(pctx, s->sig, &n, s->msg, s->msglen);
            s->siglen = r->rc > 0 ? n : 0;
        }
    } else {
        mctx = EVP_MD_CTX_new();
        if (mctx == NULL ||
            (r->verify ? EVP_DigestVerifyInit_ex(mctx, NULL, md, r->libctx, r->propq,
                                                 r->key, params)
                       : EVP_DigestSignInit_ex(mctx, NULL, md, r->libctx, r->propq,
                                               r->key, params)) <= 0)
            goto out;
        if (r->verify) {
            r->rc = EVP_DigestVerify(mctx, s->sig, s->siglen, s->msg, s->msglen);
        } else {
            size_t n = s->short_buf ? 16 : sizeof(s->sig);

            r->rc = EVP_DigestSign(mctx, s->sig, &n, s->msg, s->msglen);
            s->siglen = r->rc > 0 ? n : 0;
        }
    }
out:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
    return 1;
}

static void fuzz_sig(struct in *in, unsigned sel)
{
    struct sspec *s = calloc(1, sizeof(*s));
    struct srun a, b;
    unsigned flags, style;

    CHECK(s != NULL);
    s->k = (int)(sel % 4);
    style = (sel / 4) % 4;
    flags = u8(in);
    s->mode = flags & 1;
    s->sign_first = (flags >> 1) & 1;
    s->corrupt = (flags >> 2) & 1;
    s->short_buf = (flags >> 5) & 1;
    s->pad = (int)u8(in);
    s->md = (int)u8(in);
    s->salt = (int)u8(in);
    s->msglen = u16(in) % (sizeof(s->msg) + 1);
    bytes(in, s->msg, s->msglen);
    s->siglen = u16(in) % (sizeof(s->sig) + 1);
    bytes(in, s->sig, s->siglen);

    if (s->sign_first) {
        /*
         * offload signs (in a job or not), and so does the default
         * provider: both succeed or both fail, deterministic schemes give
         * the same bytes, and the default provider judges offload's
         * signature as it judges its own.
         */
        struct sspec *t = malloc(sizeof(*t));
        struct srun c, d;
        int deterministic = s->k >= 2 || (s->k == 0 && s->pad % 4 != 1);

        CHECK(t != NULL);
        memcpy(t, s, sizeof(*t));
        a = (struct srun){s, F.off, F.key[s->k], PROPQ, 0, 0};
        b = (struct srun){t, F.def, F.refkey[s->k], NULL, 0, 0};
        if (flags & 8)
            in_job(sig_run, &a, style);
        else
            sig_run(&a);
        sig_run(&b);
        CHECK((a.rc > 0) == (b.rc > 0));
        if (a.rc > 0) {
            if (deterministic)
                CHECK(s->siglen == t->siglen && memcmp(s->sig, t->sig, s->siglen) == 0);
            c = (struct srun){s, F.def, F.refkey[s->k], NULL, 1, 0};
            d = (struct srun){t, F.def, F.refkey[s->k], NULL, 1, 0};
            sig_run(&c);
            sig_run(&d);
            if ((c.rc == 1) != (d.rc == 1))
                fprintf(stderr,
                        "offload's %s signature (pad %d, md %d, mode %d): %d, the "
                        "default's: %d\n",
                        key_types[s->k], s->pad % 4, s->md % 5, s->mode, c.rc, d.rc);
            CHECK((c.rc == 1) == (d.rc == 1));
            if (s->corrupt && s->siglen > 0)
                s->sig[u16(in) % s->siglen] ^= (uint8_t)(1 + u8(in) % 255);
        }
        free(t);
    }
    a = (struct srun){s, F.off, F.key[s->k], PROPQ, 1, 0};
    b = (struct srun){s, F.def, F.refkey[s->k], NULL, 1, 0};
    if (flags & 16)
        in_job(sig_run, &a, style);
    else
        sig_run(&a);
    sig_run(&b);
    if ((a.rc == 1) != (b.rc == 1))
        fprintf(stderr, "verify %s: offload %d, default %d\n", key_types[s->k], a.rc,
                b.rc);
    CHECK((a.rc == 1) == (b.rc == 1));
    free(s);
}

/* ---- libFuzzer ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/offload-fuzz-XXXXXX";
    int fd, i;
    FILE *f;

    (void)argc;
    (void)argv;
    /* The configuration: offload built in, every data update offloadable. */
    F.off = OSSL_LIB_CTX_new();
    CHECK(F.off != NULL);
    CHECK(OSSL_PROVIDER_add_builtin(F.off, OFFLOAD_PROVIDER_NAME, OSSL_provider_init));
    fd = mkstemp(path);
    CHECK(fd >= 0 && (f = fdopen(fd, "w")) != NULL);
    fprintf(f, "openssl_conf = init\n[init]\nproviders = provs\n"
               "[provs]\ndefault = dflt\noffload = offl\n[dflt]\nactivate = 1\n"
               "[offl]\nactivate = 1\ninline_below = 0\ncipher_gate = 0\nworkers = 2\n"
               "queue_depth = 64\n");
    fclose(f);
    CHECK(OSSL_LIB_CTX_load_config(F.off, path) > 0);
    unlink(path);
    CHECK(OSSL_PROVIDER_available(F.off, OFFLOAD_PROVIDER_NAME));
    F.offprov = OSSL_PROVIDER_load(F.off, OFFLOAD_PROVIDER_NAME);
    F.offdef = OSSL_PROVIDER_load(F.off, "default");
    F.def = OSSL_LIB_CTX_new();
    F.defprov = F.def != NULL ? OSSL_PROVIDER_load(F.def, "default") : NULL;
    CHECK(F.offprov != NULL && F.offdef != NULL && F.defprov != NULL);
    for (i = 0; i < 6; i++) {
        F.ciph[i] = EVP_CIPHER_fetch(F.off, cipher_names[i], PROPQ);
        F.refciph[i] = EVP_CIPHER_fetch(F.def, cipher_names[i], NULL);
        CHECK(F.ciph[i] != NULL && F.refciph[i] != NULL);
    }
    /* Fixed keys, made once by the default provider and imported into offload. */
    F.refkey[0] = EVP_PKEY_Q_keygen(F.def, NULL, "RSA", (size_t)2048);
    F.refkey[1] = EVP_PKEY_Q_keygen(F.def, NULL, "EC", "P-256");
    F.refkey[2] = EVP_PKEY_Q_keygen(F.def, NULL, "ED25519");
    F.refkey[3] = EVP_PKEY_Q_keygen(F.def, NULL, "ED448");
    for (i = 0; i < 4; i++) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(F.off, key_types[i], PROPQ);
        OSSL_PARAM *params = NULL;

        CHECK(F.refkey[i] != NULL && ctx != NULL);
        CHECK(EVP_PKEY_todata(F.refkey[i], EVP_PKEY_KEYPAIR, &params) > 0);
        CHECK(EVP_PKEY_fromdata_init(ctx) > 0);
        CHECK(EVP_PKEY_fromdata(ctx, &F.key[i], EVP_PKEY_KEYPAIR, params) > 0);
        CHECK(strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(F.key[i])),
                     OFFLOAD_PROVIDER_NAME) == 0);
        OSSL_PARAM_free(params);
        EVP_PKEY_CTX_free(ctx);
    }
    CHECK(ASYNC_init_thread(4, 0));
    F.wctx[0] = ASYNC_WAIT_CTX_new();
    F.wctx[1] = ASYNC_WAIT_CTX_new();
    CHECK(F.wctx[0] != NULL && F.wctx[1] != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    unsigned sel = u8(&in);

    if (sel < 160)
        fuzz_cipher(&in, sel);
    else
        fuzz_sig(&in, sel);
    ERR_clear_error();
    return 0;
}

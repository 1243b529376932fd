/* SPDX-License-Identifier: Apache-2.0 */
/* Shared parts of the cipher tests (see cipher_util.h). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/prov_ssl.h>

#include "cipher_util.h"
#include "harness.h"

const struct alg algs[NALGS] = {
    {"AES-128-GCM", K_GCM, 16}, {"AES-192-GCM", K_GCM, 24},
    {"AES-256-GCM", K_GCM, 32}, {"AES-128-CBC", K_CBC, 16},
    {"AES-256-CBC", K_CBC, 32}, {"ChaCha20-Poly1305", K_CHACHA, 32},
};

const size_t alg_index[NALGS] = {0, 1, 2, 3, 4, 5};

struct cipher_env CS;

/* ---- helpers ---- */

uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void rnd_fill(uint64_t *s, unsigned char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        b[i] = (unsigned char)rnd(s);
}

void *xmalloc(size_t n)
{
    void *p = calloc(1, n > 0 ? n : 1);

    assert_non_null(p);
    return p;
}

uint64_t counter(const char *name)
{
    uint64_t v = test_counter(CS.env.offload, name);

    assert_true(v != UINT64_MAX);
    return v;
}

/* Waits (bounded) until nothing is in flight, so tests do not overlap. */
void wait_idle(void)
{
    test_wait_idle(CS.env.offload);
}

const char *stage_name(int stage)
{
    static const char *const names[] = {"done", "init", "AAD", "update", "final", "tag"};

    return stage >= 0 && stage <= ST_TAG ? names[stage] : "?";
}

static size_t next_piece(uint64_t *rng, size_t left)
{
    uint64_t r = rnd(rng);
    size_t c;

    switch (r % 4) {
    case 0:
        c = (size_t)((r >> 8) % 17);
        break;
    case 1:
        c = (size_t)((r >> 8) % 257);
        break;
    case 2:
        c = (size_t)((r >> 8) % 4097);
        break;
    default:
        c = (size_t)((r >> 8) % (left + 1));
        break;
    }
    return c > left ? left : c;
}

int set_ivlen(EVP_CIPHER_CTX *ctx, size_t ivlen, int ctrls)
{
    OSSL_PARAM p[2];

    if (ctrls)
        return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL) > 0;
    p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivlen);
    p[1] = OSSL_PARAM_construct_end();
    return EVP_CIPHER_CTX_set_params(ctx, p) > 0;
}

int set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag, size_t len, int ctrls)
{
    OSSL_PARAM p[2];

    if (ctrls)
        return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)len, (void *)tag) > 0;
    p[0] =
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, len);
    p[1] = OSSL_PARAM_construct_end();
    return EVP_CIPHER_CTX_set_params(ctx, p) > 0;
}

int get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag, size_t len, int ctrls)
{
    OSSL_PARAM p[2];

    if (ctrls)
        return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)len, tag) > 0;
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, len);
    p[1] = OSSL_PARAM_construct_end();
    return EVP_CIPHER_CTX_get_params(ctx, p) > 0;
}

int run_op(struct op *op)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const unsigned char *src = op->in;
    int aead = op->kind != K_CBC, l, ok = 0;
    size_t off, n;

    op->outl = 0;
    op->stage = ST_INIT;
    if (ctx == NULL || !EVP_CipherInit_ex2(ctx, op->cipher, NULL, NULL, op->enc, NULL))
        goto out;
    if (aead && op->set_ivlen && !set_ivlen(ctx, op->ivlen, op->ctrls))
        goto out;
    if (aead && !op->enc && !set_tag(ctx, op->tag, op->taglen, op->ctrls))
        goto out;
    if (!EVP_CipherInit_ex2(ctx, NULL, op->key, op->iv, op->enc, NULL))
        goto out;
    op->stage = ST_AAD;
    for (off = 0; aead && off < op->aadlen; off += n) {
        n = op->pieces ? next_piece(&op->rng, op->aadlen - off) : op->aadlen - off;
        if (!EVP_CipherUpdate(ctx, NULL, &l, op->aad + off, (int)n))
            goto out;
    }
    op->stage = ST_UPDATE;
    if (op->inplace) {
        memmove(op->out, op->in, op->inl);
        src = op->out;
    }
    off = 0;
    do {
        n = op->pieces ? next_piece(&op->rng, op->inl - off) : op->inl - off;
        if (!op->pieces && off == 0 && op->first > 0 && op->first < op->inl)
            n = op->first;
        /* In place, the output of an AEAD keeps pace with its input. */
        if (!EVP_CipherUpdate(ctx, op->out + op->outl, &l, src + off, (int)n))
            goto out;
        op->outl += (size_t)l;
        off += n;
    } while (off < op->inl);
    op->stage = ST_FINAL;
    if (!EVP_CipherFinal_ex(ctx, op->out + op->outl, &l))
        goto out;
    op->outl += (size_t)l;
    op->stage = ST_TAG;
    if (aead && op->enc && !get_tag(ctx, op->tag, op->taglen, op->ctrls))
        goto out;
    op->stage = ST_DONE;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

/* ---- 4. the one-shot TLS AEAD record (tlsaad + EVP_Cipher) ---- */

/*
 * The sender (whole IV as fixed part: deterministic) or the receiver
 * (GCM: the 4-byte fixed part; ChaCha20-Poly1305: the 12-byte IV).
 */
int tls_aead_init(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c, enum kind kind, int enc,
                  const unsigned char *key, const unsigned char *fixed)
{
    if (!EVP_CipherInit_ex2(ctx, c, key, NULL, enc, NULL))
        return 0;
    if (kind == K_GCM)
        return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IV_FIXED, enc ? -1 : 4,
                                   (void *)fixed) > 0;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IV_FIXED, 12, (void *)fixed) > 0;
}

/*
 * One TLS 1.2 record in place in |rec| ([explicit nonce] || payload || tag);
 * |plen| is the payload length. Returns EVP_Cipher's answer. Uses the
 * ctrl or, with |params|, "tlsaad" and "tlsaadpad".
 */
int tls_aead_record(EVP_CIPHER_CTX *ctx, enum kind kind, int enc, uint64_t seq,
                    unsigned char *rec, size_t plen, int params)
{
    unsigned char aad[13];
    size_t reclen = TLS_EXPLICIT(kind) + plen + 16;
    size_t len = enc ? TLS_EXPLICIT(kind) + plen : reclen, pad = 0;
    int i;

    for (i = 0; i < 8; i++)
        aad[i] = (unsigned char)(seq >> (56 - 8 * i));
    aad[8] = 23; /* application data */
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(len >> 8);
    aad[12] = (unsigned char)len;
    if (params) {
        OSSL_PARAM s[2] = {OSSL_PARAM_construct_octet_string(
                               OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, aad, sizeof(aad)),
                           OSSL_PARAM_END};
        OSSL_PARAM g[2] = {
            OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, &pad),
            OSSL_PARAM_END};

        if (EVP_CIPHER_CTX_set_params(ctx, s) <= 0 ||
            EVP_CIPHER_CTX_get_params(ctx, g) <= 0)
            return -2;
    } else {
        int r = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_TLS1_AAD, sizeof(aad), aad);

        if (r <= 0)
            return -2;
        pad = (size_t)r;
    }
    if (pad != 16)
        return -3;
    return EVP_Cipher(ctx, rec, rec, (unsigned int)reclen);
}

/* ---- 5. CBC in TLS 1.2 record mode ---- */

/*
 * A TLS 1.2 CBC record built with the default provider: an explicit IV
 * block, then payload || MAC || padding encrypted. Returns its length.
 */
size_t make_cbc_record(const EVP_CIPHER *c, const unsigned char *key,
                       const unsigned char *pt, size_t plen, const unsigned char *mac,
                       unsigned char *rec, uint64_t *rng)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t n = plen + MAC_SIZE, pad = 16 - n % 16 + (size_t)(rnd(rng) % 4) * 16;
    int l = 0, ok;

    rnd_fill(rng, rec, 16);
    memmove(rec + 16, pt, plen);
    memcpy(rec + 16 + plen, mac, MAC_SIZE);
    memset(rec + 16 + n, (int)(pad - 1), pad);
    ok = ctx != NULL && EVP_EncryptInit_ex2(ctx, c, key, rec, NULL) &&
         EVP_CIPHER_CTX_set_padding(ctx, 0) &&
         EVP_EncryptUpdate(ctx, rec + 16, &l, rec + 16, (int)(n + pad)) &&
         (size_t)l == n + pad;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 16 + n + pad : 0;
}

/* A receiver in TLS 1.2 mode ("tls-version", "tls-mac-size"). */
EVP_CIPHER_CTX *cbc_tls_receiver(const EVP_CIPHER *c, const unsigned char *key)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    static const unsigned char zero_iv[16];
    unsigned int version = TLS1_2_VERSION;
    size_t macsize = MAC_SIZE;
    OSSL_PARAM p[3] = {
        OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_TLS_VERSION, &version),
        OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_TLS_MAC_SIZE, &macsize),
        OSSL_PARAM_END};

    if (ctx == NULL || !EVP_DecryptInit_ex2(ctx, c, key, zero_iv, NULL) ||
        !EVP_CIPHER_CTX_set_params(ctx, p)) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Decrypts |rec| in place; *mac receives a copy of "tls-mac". Returns the payload length
 * or -1. */
long cbc_tls_open(EVP_CIPHER_CTX *ctx, unsigned char *rec, size_t reclen,
                  unsigned char *mac)
{
    unsigned char *macp = NULL;
    int l = 0;
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_ptr(OSSL_CIPHER_PARAM_TLS_MAC,
                                                      (void **)&macp, MAC_SIZE),
                       OSSL_PARAM_END};

    if (!EVP_DecryptUpdate(ctx, rec, &l, rec, (int)reclen))
        return -1;
    if (!EVP_CIPHER_CTX_get_params(ctx, p) || macp == NULL)
        return -1;
    memcpy(mac, macp, MAC_SIZE);
    return l;
}

/* ---- setup ---- */

int cipher_group_setup(void **state)
{
    const char *seed = getenv("OFFLOAD_TEST_SEED");
    size_t i;

    (void)state;
    CS.rng = seed != NULL ? strtoull(seed, NULL, 0)
                          : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    print_message("PRNG seed %" PRIu64 " (OFFLOAD_TEST_SEED=%" PRIu64 " replays it)\n",
                  CS.rng, CS.rng);
    if (!ASYNC_init_thread(2 * CIPHER_MAX_JOBS, 0))
        return -1;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule); cipher_gate = 0: every record of 1 KiB or more is offloaded. */
    if (!test_env_open(&CS.env,
                       "inline_below = 1024\nbusy_inline = 0\ncipher_gate = 0\n"))
        return -1;
    if ((CS.defctx = test_ref_open(&CS.defprov)) == NULL)
        return -1;
    for (i = 0; i < NALGS; i++) {
        const OSSL_PROVIDER *p;

        CS.off[i] = EVP_CIPHER_fetch(CS.env.libctx, algs[i].name, OFFLOAD_PROPQ);
        CS.ref[i] = EVP_CIPHER_fetch(CS.defctx, algs[i].name, NULL);
        if (CS.off[i] == NULL || CS.ref[i] == NULL) {
            test_dump_errors(algs[i].name);
            return -1;
        }
        /* Checked with messages in test_fetch; nothing else makes sense without it. */
        p = EVP_CIPHER_get0_provider(CS.off[i]);
        if (p == NULL || strcmp(OSSL_PROVIDER_get0_name(p), OFFLOAD_PROVIDER_NAME) != 0) {
            fprintf(stderr, "%s fetched with \"%s\" is not offload's\n", algs[i].name,
                    OFFLOAD_PROPQ);
            return -1;
        }
    }
    return 0;
}

int cipher_group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < NALGS; i++) {
        EVP_CIPHER_free(CS.off[i]);
        EVP_CIPHER_free(CS.ref[i]);
    }
    test_ref_close(CS.defctx, CS.defprov);
    test_env_close(&CS.env);
    ASYNC_cleanup_thread();
    return 0;
}

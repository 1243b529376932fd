/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the cipher tests (test_cipher_*.c, test_vectors_cipher.c):
 * the ciphers under test (AES-128/192/256-GCM, AES-128/256-CBC,
 * ChaCha20-Poly1305) fetched from offload with "provider=offload" and from
 * the default provider alone (the reference), a seeded PRNG (seed printed,
 * OFFLOAD_TEST_SEED replays it), one streaming operation usable inside a
 * job (run_op), the one-shot TLS AEAD record (tlsaad + EVP_Cipher) and
 * TLS 1.2 CBC records ("tls-version", "tls-mac").
 *
 * inline_below = 1024 (the first instance's configuration rules the
 * process): records of 1 KiB and more are offloaded when jobs are in
 * flight; busy_inline = 0: every cheap job pauses, however deep the queue
 * (test_saturation checks the rule); cipher_gate = 0: whatever the
 * records cost here, they go to the workers (test_unit_gate tests the
 * gate's choice).
 */
#ifndef OFFLOAD_TEST_CIPHER_UTIL_H
#define OFFLOAD_TEST_CIPHER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "common.h"

#define CIPH_COUNTER(s) ("offload-" OFFLOAD_FAMILY_CIPHER "-" s)
#define C_OFFLOADED     CIPH_COUNTER(OFFLOAD_STAT_OFFLOADED)
#define C_INLINE        CIPH_COUNTER(OFFLOAD_STAT_INLINE)
#define C_FAILED        CIPH_COUNTER(OFFLOAD_STAT_FAILED)
#define SLACK           64 /* room beyond the input for padding and tags */
#define CIPHER_MAX_JOBS 64 /* jobs a test may have in flight (ASYNC_init_thread) */

enum kind { K_GCM, K_CBC, K_CHACHA };

struct alg {
    const char *name;
    enum kind kind;
    size_t keylen;
};

#define NALGS 6
extern const struct alg algs[NALGS];
/* Per-algorithm tests get a pointer to their index as state (PER_ALG). */
extern const size_t alg_index[NALGS];

/* A test run once per algorithm: its state points at the index. */
#define PER_ALG(fn, i)                                                                   \
    {                                                                                    \
#fn "/" #i, fn, NULL, NULL, (void *)&alg_index[i]                                \
    }

struct cipher_env {
    test_env env;
    OSSL_LIB_CTX *defctx; /* the default provider alone: the reference */
    OSSL_PROVIDER *defprov;
    EVP_CIPHER *off[NALGS];
    EVP_CIPHER *ref[NALGS];
    uint64_t rng;
};
extern struct cipher_env CS;

/* cmocka group setup and teardown: both contexts, the ciphers, the seed. */
int cipher_group_setup(void **state);
int cipher_group_teardown(void **state);

uint64_t rnd(uint64_t *s);
void rnd_fill(uint64_t *s, unsigned char *b, size_t n);
/* calloc that asserts (not inside a job). */
void *xmalloc(size_t n);
/* Counter |name| of offload; asserts it reads. */
uint64_t counter(const char *name);
/* Waits (bounded) until nothing is in flight, so tests do not overlap. */
void wait_idle(void);

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            test_dump_errors(#cond);                                                     \
            fail_msg(__VA_ARGS__);                                                       \
        }                                                                                \
    } while (0)

/* One streaming operation, usable inside a job (no assertion). */
struct op {
    const EVP_CIPHER *cipher;
    enum kind kind;
    int enc;
    const unsigned char *key;
    const unsigned char *iv;
    size_t ivlen; /* set when set_ivlen, else the cipher's default */
    int set_ivlen;
    size_t taglen; /* AEAD: produced (encrypt) or checked (decrypt) */
    int ctrls;     /* IV length and tag through EVP_CIPHER_CTX_ctrl, else params */
    const unsigned char *aad;
    size_t aadlen;
    const unsigned char *in;
    size_t inl;
    unsigned char *out; /* inl + SLACK bytes */
    size_t outl;
    unsigned char tag[16];
    int pieces;   /* random pieces (op->rng), else one update */
    int inplace;  /* the input is copied to out and transformed there */
    size_t first; /* not in pieces: a first update of this many bytes, then the rest */
    uint64_t rng;
    int stage; /* where it stopped: 1 init, 2 AAD, 3 update, 4 final, 5 tag, 0 done */
};

enum { ST_DONE, ST_INIT, ST_AAD, ST_UPDATE, ST_FINAL, ST_TAG };

const char *stage_name(int stage);
int set_ivlen(EVP_CIPHER_CTX *ctx, size_t ivlen, int ctrls);
int set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag, size_t len, int ctrls);
int get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag, size_t len, int ctrls);
/* Runs |op| (init, AAD, update(s), final, tag): 1 done, 0 failed at op->stage. */
int run_op(struct op *op);

/* ---- the one-shot TLS AEAD record ---- */

#define TLS_EXPLICIT(kind) ((kind) == K_GCM ? 8u : 0u)

/*
 * The sender (whole IV as fixed part: deterministic) or the receiver
 * (GCM: the 4-byte fixed part; ChaCha20-Poly1305: the 12-byte IV).
 */
int tls_aead_init(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c, enum kind kind, int enc,
                  const unsigned char *key, const unsigned char *fixed);
/*
 * One TLS 1.2 record in place in |rec| ([explicit nonce] || payload || tag);
 * |plen| is the payload length. Returns EVP_Cipher's answer. Uses the
 * ctrl or, with |params|, "tlsaad" and "tlsaadpad".
 */
int tls_aead_record(EVP_CIPHER_CTX *ctx, enum kind kind, int enc, uint64_t seq,
                    unsigned char *rec, size_t plen, int params);

/* ---- CBC in TLS 1.2 record mode ---- */

#define MAC_SIZE 32

/*
 * A TLS 1.2 CBC record built with the default provider: an explicit IV
 * block, then payload || MAC || padding encrypted. Returns its length.
 */
size_t make_cbc_record(const EVP_CIPHER *c, const unsigned char *key,
                       const unsigned char *pt, size_t plen, const unsigned char *mac,
                       unsigned char *rec, uint64_t *rng);
/* A receiver in TLS 1.2 mode ("tls-version", "tls-mac-size"). */
EVP_CIPHER_CTX *cbc_tls_receiver(const EVP_CIPHER *c, const unsigned char *key);
/* Decrypts |rec| in place; *mac gets a copy of "tls-mac". The payload length or -1. */
long cbc_tls_open(EVP_CIPHER_CTX *ctx, unsigned char *rec, size_t reclen,
                  unsigned char *mac);

#endif

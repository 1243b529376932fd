/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The counters mean what include/offload.h says. Every family's counted
 * operation adds exactly one to "inline" or "offloaded", a worker's run one
 * to "completed", and a failure one to "failed", wherever it ran:
 *
 *   cipher     AES-GCM decryption whose tag is refused at final: a record
 *              under inline_below (inline, in a job or not), one above it
 *              out of a job (inline) and inside jobs (offloaded)
 *   keyexch    X25519 and X448 with a low-order (all-zero) peer: the soft
 *              engine refuses the all-zero secret
 *   signature  RSA-PSS with a salt longer than the key holds
 *   keygen     EC generation without a group
 *
 * each out of a job and inside jobs that really are offloaded (fd and
 * callback mode), next to the same operation succeeding. The counters of
 * the other families must not move. busy_inline = 0 and a fresh wait ctx
 * for every job (none freed before the end, so no address comes back)
 * keep cheap operations (X25519, cipher records) off the lone-job rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"

#define NJOBS        4
#define BIG_LEN      4096 /* >= inline_below below: offloaded inside a job */
#define SMALL_LEN    16
#define INLINE_BELOW "1024"

enum fam { F_SIGNATURE, F_KEYEXCH, F_CIPHER, F_KEYGEN, F_COUNT };
static const char *const fam_names[F_COUNT] = {
    OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_FAMILY_CIPHER,
    OFFLOAD_FAMILY_KEYGEN};

enum stat { S_INLINE, S_OFFLOADED, S_COMPLETED, S_FAILED, S_COUNT };
static const char *const stat_names[S_COUNT] = {
    OFFLOAD_STAT_INLINE, OFFLOAD_STAT_OFFLOADED, OFFLOAD_STAT_COMPLETED,
    OFFLOAD_STAT_FAILED};

/* A GCM record made with the default provider, and its tag. */
struct record {
    size_t len;
    unsigned char *ct;
    unsigned char tag[16];
};

static struct {
    test_env env;
    EVP_CIPHER *gcm; /* ours */
    EVP_PKEY *rsa, *x25519, *x448, *x25519_zero, *x448_zero;
    unsigned char key[16], iv[12];
    struct record small, big;
    /* Every job set run, freed at the end: no wait ctx address is reused. */
    struct hjob *kept[64];
    size_t nkept;
} S;

/* ---- counters ---- */

struct snap {
    uint64_t v[F_COUNT][S_COUNT];
};

static void take(struct snap *s)
{
    char name[64];
    int f, k;

    for (f = 0; f < F_COUNT; f++)
        for (k = 0; k < S_COUNT; k++) {
            snprintf(name, sizeof(name), "offload-%s-%s", fam_names[f], stat_names[k]);
            s->v[f][k] = test_counter(S.env.offload, name);
            assert_true(s->v[f][k] != UINT64_MAX);
        }
}

static int idle(void *arg)
{
    (void)arg;
    return test_counter(S.env.offload, OFFLOAD_PARAM_IN_FLIGHT) == 0;
}

/*
 * Family |f| moved by exactly |want| (inline, offloaded, completed, failed)
 * since |a|, every other family not at all.
 */
static void expect(const char *what, enum fam f, const struct snap *a,
                   const uint64_t want[S_COUNT])
{
    struct snap b;
    int g, k, bad = 0;

    assert_true(h_wait_until(idle, NULL, POLL_TIMEOUT_MS));
    take(&b);
    for (g = 0; g < F_COUNT; g++)
        for (k = 0; k < S_COUNT; k++) {
            uint64_t d = b.v[g][k] - a->v[g][k], w = g == (int)f ? want[k] : 0;

            if (d != w) {
                print_message("%s: offload-%s-%s moved by %llu, expected %llu\n", what,
                              fam_names[g], stat_names[k], (unsigned long long)d,
                              (unsigned long long)w);
                bad = 1;
            }
        }
    if (!bad)
        print_message("%-52s %s: inline +%llu offloaded +%llu completed +%llu "
                      "failed +%llu\n",
                      what, fam_names[f], (unsigned long long)want[S_INLINE],
                      (unsigned long long)want[S_OFFLOADED],
                      (unsigned long long)want[S_COMPLETED],
                      (unsigned long long)want[S_FAILED]);
    assert_false(bad);
}

/* ---- where an operation runs ---- */

enum where { OUT_OF_JOB, FD_JOBS, CB_JOBS };

/*
 * Runs fn(arg) once out of a job, or in NJOBS jobs at once (fd or callback
 * mode); every run must return 1 (the operation did what was expected).
 * Returns how many runs there were.
 */
static uint64_t run(enum where where, int (*fn)(void *), void *arg)
{
    struct hjob *jobs;
    size_t i;

    if (where == OUT_OF_JOB) {
        assert_int_equal(fn(arg), 1);
        return 1;
    }
    assert_true(S.nkept < sizeof(S.kept) / sizeof(S.kept[0]));
    jobs = hjobs_new(NJOBS);
    assert_non_null(jobs);
    S.kept[S.nkept++] = jobs;
    for (i = 0; i < NJOBS; i++) {
        jobs[i].fn = fn;
        jobs[i].arg = arg;
    }
    if (where == FD_JOBS)
        assert_true(h_run_fd_loop(jobs, NJOBS, POLL_TIMEOUT_MS, NULL, NULL));
    else
        assert_true(h_run_cb_loop(jobs, NJOBS, POLL_TIMEOUT_MS, NULL, NULL, NULL));
    for (i = 0; i < NJOBS; i++) {
        assert_true(jobs[i].done);
        assert_int_equal(jobs[i].ret, 1);
    }
    return NJOBS;
}

static const char *where_name(enum where w)
{
    return w == OUT_OF_JOB ? "out of a job"
           : w == FD_JOBS  ? "in jobs (fd)"
                           : "in jobs (cb)";
}

/*
 * One case: |fn| run |where|; |offloaded| says whether each run goes to a
 * worker, |fails| whether it fails.
 */
static void check(const char *what, enum fam f, enum where where, int (*fn)(void *),
                  void *arg, int offloaded, int fails)
{
    struct snap a;
    uint64_t n, want[S_COUNT];
    char label[128];

    take(&a);
    n = run(where, fn, arg);
    want[S_INLINE] = offloaded ? 0 : n;
    want[S_OFFLOADED] = offloaded ? n : 0;
    want[S_COMPLETED] = offloaded ? n : 0;
    want[S_FAILED] = fails ? n : 0;
    snprintf(label, sizeof(label), "%s, %s", what, where_name(where));
    expect(label, f, &a, want);
}

/* ---- the operations: each returns 1 when it behaved as asked ---- */

struct gcm_case {
    const struct record *rec;
    int bad_tag;
};

/* Decrypts a record with its tag, or with one bit of it flipped. */
static int gcm_decrypt(void *arg)
{
    const struct gcm_case *c = arg;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *out = malloc(c->rec->len + 16), tag[16];
    int outl = 0, finl = 0, ok = 0, fin;

    memcpy(tag, c->rec->tag, sizeof(tag));
    if (c->bad_tag)
        tag[5] ^= 0x10;
    if (ctx == NULL || out == NULL ||
        !EVP_DecryptInit_ex2(ctx, S.gcm, S.key, S.iv, NULL) ||
        !EVP_DecryptUpdate(ctx, out, &outl, c->rec->ct, (int)c->rec->len) ||
        (size_t)outl != c->rec->len ||
        !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag))
        goto out;
    fin = EVP_DecryptFinal_ex(ctx, out + outl, &finl);
    ok = c->bad_tag ? fin <= 0 : fin == 1;
out:
    ERR_clear_error();
    free(out);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

struct kex_case {
    EVP_PKEY **priv, **peer;
    int fails;
};

static int derive(void *arg)
{
    const struct kex_case *c = arg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, *c->priv, NULL);
    unsigned char *secret = malloc(64);
    size_t len = 64;
    int ok = 0, r;

    /* No peer validation: the all-zero point must reach the derive. */
    if (pc == NULL || secret == NULL || EVP_PKEY_derive_init(pc) <= 0 ||
        EVP_PKEY_derive_set_peer_ex(pc, *c->peer, 0) <= 0)
        goto out;
    r = EVP_PKEY_derive(pc, secret, &len);
    ok = c->fails ? r <= 0 : r == 1;
out:
    ERR_clear_error();
    free(secret);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

struct sig_case {
    int saltlen; /* PSS; 0: PKCS#1 v1.5 */
    int fails;
};

static int rsa_sign(void *arg)
{
    const struct sig_case *c = arg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, S.rsa, NULL);
    unsigned char md[32], *sig = malloc(512);
    size_t siglen = 512;
    int ok = 0, r;

    memset(md, 0x5a, sizeof(md));
    if (pc == NULL || sig == NULL || EVP_PKEY_sign_init(pc) <= 0 ||
        EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) <= 0)
        goto out;
    if (c->saltlen > 0 && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0 ||
                           EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, c->saltlen) <= 0))
        goto out;
    r = EVP_PKEY_sign(pc, sig, &siglen, md, sizeof(md));
    ok = c->fails ? r <= 0 : r == 1 && siglen == 256;
out:
    ERR_clear_error();
    free(sig);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

struct gen_case {
    const char *group; /* NULL: none set, which the soft engine refuses */
};

static int ec_keygen(void *arg)
{
    const struct gen_case *c = arg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(S.env.libctx, "EC", NULL);
    EVP_PKEY *key = NULL;
    int ok = 0, r;

    if (pc == NULL || EVP_PKEY_keygen_init(pc) <= 0)
        goto out;
    if (c->group != NULL) {
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->group, 0),
            OSSL_PARAM_END};

        if (EVP_PKEY_CTX_set_params(pc, p) <= 0)
            goto out;
    }
    r = EVP_PKEY_generate(pc, &key);
    ok = c->group == NULL
             ? r <= 0 && key == NULL
             : r == 1 && key != NULL && test_pkey_in(key, OFFLOAD_PROVIDER_NAME);
out:
    ERR_clear_error();
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/*
 * Parameters only, as libssl makes for each TLS 1.3 handshake to hold the
 * peer's key share: a group's name, no key pair, nothing worth a worker.
 */
struct param_case {
    const char *alg, *group;
};

static int paramgen(void *arg)
{
    const struct param_case *c = arg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(S.env.libctx, c->alg, NULL);
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->group, 0),
        OSSL_PARAM_END};
    EVP_PKEY *key = NULL;
    int ok = 0;

    if (pc != NULL && EVP_PKEY_paramgen_init(pc) == 1 &&
        (c->group == NULL || EVP_PKEY_CTX_set_params(pc, p) == 1))
        ok = EVP_PKEY_paramgen(pc, &key) == 1 && key != NULL &&
             test_pkey_in(key, OFFLOAD_PROVIDER_NAME);
    ERR_clear_error();
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/* ---- tests ---- */

static void test_cipher_tag(void **state)
{
    struct gcm_case small_bad = {&S.small, 1}, big_bad = {&S.big, 1},
                    big_good = {&S.big, 0}, small_good = {&S.small, 0};
    enum where w;

    (void)state;
    check("AES-128-GCM 16 B, tag refused", F_CIPHER, OUT_OF_JOB, gcm_decrypt, &small_bad,
          0, 1);
    check("AES-128-GCM 4 KiB, tag refused", F_CIPHER, OUT_OF_JOB, gcm_decrypt, &big_bad,
          0, 1);
    check("AES-128-GCM 4 KiB, tag good", F_CIPHER, OUT_OF_JOB, gcm_decrypt, &big_good, 0,
          0);
    for (w = FD_JOBS; w <= CB_JOBS; w++) {
        /* Under inline_below: inline even in a job. */
        check("AES-128-GCM 16 B, tag refused", F_CIPHER, w, gcm_decrypt, &small_bad, 0,
              1);
        check("AES-128-GCM 16 B, tag good", F_CIPHER, w, gcm_decrypt, &small_good, 0, 0);
        /* The update goes to a worker; the final (tag check) runs in the job. */
        check("AES-128-GCM 4 KiB, tag refused", F_CIPHER, w, gcm_decrypt, &big_bad, 1, 1);
        check("AES-128-GCM 4 KiB, tag good", F_CIPHER, w, gcm_decrypt, &big_good, 1, 0);
    }
}

static void test_keyexch_derive(void **state)
{
    /* A real peer: the key's own public half will do. */
    struct kex_case x25519_bad = {&S.x25519, &S.x25519_zero, 1},
                    x25519_good = {&S.x25519, &S.x25519, 0},
                    x448_bad = {&S.x448, &S.x448_zero, 1};
    enum where w;

    (void)state;
    check("X25519 all-zero peer", F_KEYEXCH, OUT_OF_JOB, derive, &x25519_bad, 0, 1);
    check("X25519", F_KEYEXCH, OUT_OF_JOB, derive, &x25519_good, 0, 0);
    check("X448 all-zero peer", F_KEYEXCH, OUT_OF_JOB, derive, &x448_bad, 0, 1);
    for (w = FD_JOBS; w <= CB_JOBS; w++) {
        check("X25519 all-zero peer", F_KEYEXCH, w, derive, &x25519_bad, 1, 1);
        check("X25519", F_KEYEXCH, w, derive, &x25519_good, 1, 0);
        check("X448 all-zero peer", F_KEYEXCH, w, derive, &x448_bad, 1, 1);
    }
}

static void test_signature_sign(void **state)
{
    /* RSA-2048 with SHA-256 holds a PSS salt of 222 bytes at most. */
    struct sig_case bad = {223, 1}, good = {0, 0}, pss = {32, 0};
    enum where w;

    (void)state;
    check("RSA-2048 PSS salt 223", F_SIGNATURE, OUT_OF_JOB, rsa_sign, &bad, 0, 1);
    check("RSA-2048 PKCS#1", F_SIGNATURE, OUT_OF_JOB, rsa_sign, &good, 0, 0);
    for (w = FD_JOBS; w <= CB_JOBS; w++) {
        check("RSA-2048 PSS salt 223", F_SIGNATURE, w, rsa_sign, &bad, 1, 1);
        check("RSA-2048 PSS salt 32", F_SIGNATURE, w, rsa_sign, &pss, 1, 0);
    }
}

static void test_keygen_generate(void **state)
{
    struct gen_case none = {NULL}, p384 = {"P-384"}, p256 = {"P-256"};
    enum where w;

    (void)state;
    check("EC keygen without a group", F_KEYGEN, OUT_OF_JOB, ec_keygen, &none, 0, 1);
    check("EC keygen P-256", F_KEYGEN, OUT_OF_JOB, ec_keygen, &p256, 0, 0);
    for (w = FD_JOBS; w <= CB_JOBS; w++) {
        check("EC keygen without a group", F_KEYGEN, w, ec_keygen, &none, 1, 1);
        check("EC keygen P-384", F_KEYGEN, w, ec_keygen, &p384, 1, 0);
        check("EC keygen P-256", F_KEYGEN, w, ec_keygen, &p256, 1, 0);
    }
}

static void test_keygen_params_inline(void **state)
{
    struct param_case ec = {"EC", "P-256"}, x25519 = {"X25519", NULL};
    enum where w;

    (void)state;
    for (w = FD_JOBS; w <= CB_JOBS; w++) {
        check("EC parameters P-256", F_KEYGEN, w, paramgen, &ec, 0, 0);
        check("X25519 parameters", F_KEYGEN, w, paramgen, &x25519, 0, 0);
    }
}

/* ---- setup ---- */

static int make_record(OSSL_LIB_CTX *ref, struct record *r, size_t len)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(ref, "AES-128-GCM", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *pt = malloc(len);
    int outl = 0, finl = 0, ok = 0;
    size_t i;

    r->len = len;
    r->ct = malloc(len + 16);
    if (c == NULL || ctx == NULL || pt == NULL || r->ct == NULL)
        goto out;
    for (i = 0; i < len; i++)
        pt[i] = (unsigned char)(i * 7 + 1);
    ok = EVP_EncryptInit_ex2(ctx, c, S.key, S.iv, NULL) &&
         EVP_EncryptUpdate(ctx, r->ct, &outl, pt, (int)len) && (size_t)outl == len &&
         EVP_EncryptFinal_ex(ctx, r->ct + outl, &finl) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, sizeof(r->tag), r->tag);
out:
    free(pt);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return ok;
}

static EVP_PKEY *zero_peer(const char *type, size_t len)
{
    unsigned char zero[56] = {0};

    return EVP_PKEY_new_raw_public_key_ex(S.env.libctx, type, NULL, zero, len);
}

static int group_setup(void **state)
{
    OSSL_PROVIDER *refprov;
    OSSL_LIB_CTX *ref;
    int ok;

    (void)state;
    if (!test_env_open(&S.env,
                       "busy_inline = 0\ncipher_gate = 0\ninline_below = " INLINE_BELOW
                       "\n"))
        return -1;
    memset(S.key, 0x11, sizeof(S.key));
    memset(S.iv, 0x22, sizeof(S.iv));
    if ((ref = test_ref_open(&refprov)) == NULL)
        return -1;
    ok = make_record(ref, &S.small, SMALL_LEN) && make_record(ref, &S.big, BIG_LEN);
    test_ref_close(ref, refprov);
    if (!ok)
        return -1;
    S.gcm = EVP_CIPHER_fetch(S.env.libctx, "AES-128-GCM", OFFLOAD_PROPQ);
    S.rsa = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "RSA", (size_t)2048);
    S.x25519 = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "X25519");
    S.x448 = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "X448");
    S.x25519_zero = zero_peer("X25519", 32);
    S.x448_zero = zero_peer("X448", 56);
    if (S.gcm == NULL || S.rsa == NULL || S.x25519 == NULL || S.x448 == NULL ||
        S.x25519_zero == NULL || S.x448_zero == NULL) {
        test_dump_errors("setup");
        return -1;
    }
    if (!test_pkey_in(S.rsa, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(S.x25519_zero, OFFLOAD_PROVIDER_NAME))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < S.nkept; i++)
        hjobs_free(S.kept[i], NJOBS);
    EVP_PKEY_free(S.rsa);
    EVP_PKEY_free(S.x25519);
    EVP_PKEY_free(S.x448);
    EVP_PKEY_free(S.x25519_zero);
    EVP_PKEY_free(S.x448_zero);
    EVP_CIPHER_free(S.gcm);
    free(S.small.ct);
    free(S.big.ct);
    test_env_close(&S.env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cipher_tag),
        cmocka_unit_test(test_keyexch_derive),
        cmocka_unit_test(test_signature_sign),
        cmocka_unit_test(test_keygen_generate),
        cmocka_unit_test(test_keygen_params_inline),
    };

    return cmocka_run_group_tests_name("counters", tests, group_setup, group_teardown);
}

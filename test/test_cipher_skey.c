/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EVP_CipherInit_SKEY (OpenSSL 3.5's opaque symmetric keys) with offload's
 * ciphers: AES-128-CBC, AES-256-CBC, AES-128-GCM and ChaCha20-Poly1305,
 * each encrypted by offload through an EVP_SKEY of offload's symmetric
 * key management and decrypted by the default provider alone (raw key),
 * and the reverse; then 16 KiB updates of SKEY-initialised AES-128-GCM
 * contexts inside jobs, which must be offloaded (the cipher counters) and
 * equal the default provider's result, encrypting and decrypting.
 *
 * The 3.5 functions are reached through dlsym(RTLD_DEFAULT, ...), so this
 * builds against 3.0 headers; with a libcrypto that lacks
 * EVP_CipherInit_SKEY it says so and runs nothing, with one that has it
 * every case runs.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common.h"
#include "harness.h"

/* EVP_SKEY, declared by 3.5's headers only. */
struct evp_skey_st;
typedef int cipher_init_skey_fn(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher,
                                struct evp_skey_st *skey, const unsigned char *iv,
                                size_t iv_len, int enc, const OSSL_PARAM params[]);
typedef struct evp_skey_st *skey_import_raw_fn(OSSL_LIB_CTX *libctx, const char *mgmt,
                                               unsigned char *key, size_t keylen,
                                               const char *propq);
typedef void skey_free_fn(struct evp_skey_st *skey);
typedef const char *skey_provider_name_fn(const struct evp_skey_st *skey);

static struct {
    cipher_init_skey_fn *init_skey;
    skey_import_raw_fn *import_raw;
    skey_free_fn *free;
    skey_provider_name_fn *provider_name;
} F;

static test_env env;
static OSSL_LIB_CTX *ref;
static OSSL_PROVIDER *ref_prov;

struct skalg {
    const char *name;
    size_t keylen, ivlen;
    int aead;
};

static const struct skalg skalgs[] = {
    {"AES-128-CBC", 16, 16, 0},
    {"AES-256-CBC", 32, 16, 0},
    {"AES-128-GCM", 16, 12, 1},
    {"ChaCha20-Poly1305", 32, 12, 1},
};
#define NSKALGS (sizeof(skalgs) / sizeof(skalgs[0]))

#define MSG_LEN 1000
#define BIG_LEN 16384
#define AAD_LEN 13
#define TAG_LEN 16
#define NJOBS   4

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

/*
 * One whole message through |ctx|, initialised already: AAD (AEAD), the
 * data, the final, and the tag (got when encrypting, set before when
 * decrypting). Returns the output length, or -1.
 */
static long run_msg(EVP_CIPHER_CTX *ctx, const struct skalg *a, int enc,
                    const unsigned char *aad, const unsigned char *in, size_t inl,
                    unsigned char *out, unsigned char *tag)
{
    int l1 = 0, l2 = 0, al = 0;

    if (a->aead && !enc &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) <= 0)
        return -1;
    if (a->aead && EVP_CipherUpdate(ctx, NULL, &al, aad, AAD_LEN) <= 0)
        return -1;
    if (EVP_CipherUpdate(ctx, out, &l1, in, (int)inl) <= 0 ||
        EVP_CipherFinal_ex(ctx, out + l1, &l2) <= 0)
        return -1;
    if (a->aead && enc &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) <= 0)
        return -1;
    return (long)l1 + l2;
}

/* The default provider alone, raw key. */
static long run_ref(const struct skalg *a, int enc, const unsigned char *key,
                    const unsigned char *iv, const unsigned char *aad,
                    const unsigned char *in, size_t inl, unsigned char *out,
                    unsigned char *tag)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(ref, a->name, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    long n = -1;

    if (c != NULL && ctx != NULL && EVP_CipherInit_ex2(ctx, c, key, iv, enc, NULL) > 0)
        n = run_msg(ctx, a, enc, aad, in, inl, out, tag);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return n;
}

/* Offload's cipher, initialised with an EVP_SKEY of offload's key management. */
static EVP_CIPHER_CTX *skey_ctx(const struct skalg *a, int enc, const unsigned char *key,
                                const unsigned char *iv, EVP_CIPHER **cp)
{
    unsigned char k[32];
    struct evp_skey_st *skey;
    EVP_CIPHER_CTX *ctx = NULL;
    int ok = 0;

    memcpy(k, key, a->keylen);
    *cp = EVP_CIPHER_fetch(env.libctx, a->name, OFFLOAD_PROPQ);
    skey = F.import_raw(env.libctx, "GENERIC-SECRET", k, a->keylen, OFFLOAD_PROPQ);
    if (*cp == NULL || skey == NULL) {
        test_dump_errors("fetch or EVP_SKEY_import_raw_key");
        goto out;
    }
    if (strcmp(F.provider_name(skey), OFFLOAD_PROVIDER_NAME) != 0) {
        fprintf(stderr, "%s: the key lives in %s\n", a->name, F.provider_name(skey));
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    ok = ctx != NULL && F.init_skey(ctx, *cp, skey, iv, a->ivlen, enc, NULL) > 0;
    if (!ok)
        test_dump_errors("EVP_CipherInit_SKEY");
out:
    F.free(skey);
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void roundtrip(const struct skalg *a, int offload_encrypts)
{
    unsigned char key[32], iv[16], aad[AAD_LEN], tag[TAG_LEN] = {0};
    unsigned char *pt = malloc(MSG_LEN), *ct = malloc(MSG_LEN + 32);
    unsigned char *back = malloc(MSG_LEN + 32);
    EVP_CIPHER *c = NULL;
    EVP_CIPHER_CTX *ctx;
    uint64_t inl0 = test_counter(env.offload, "offload-cipher-inline");
    long n, m;

    assert_non_null(pt);
    assert_non_null(ct);
    assert_non_null(back);
    fill(key, sizeof(key), 1);
    fill(iv, sizeof(iv), 2);
    fill(aad, sizeof(aad), 3);
    fill(pt, MSG_LEN, 4);
    if (offload_encrypts) {
        ctx = skey_ctx(a, 1, key, iv, &c);
        assert_non_null(ctx);
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(
                                EVP_CIPHER_CTX_get0_cipher(ctx))),
                            OFFLOAD_PROVIDER_NAME);
        n = run_msg(ctx, a, 1, aad, pt, MSG_LEN, ct, tag);
        EVP_CIPHER_CTX_free(ctx);
        assert_true(n > 0);
        m = run_ref(a, 0, key, iv, aad, ct, (size_t)n, back, tag);
    } else {
        n = run_ref(a, 1, key, iv, aad, pt, MSG_LEN, ct, tag);
        assert_true(n > 0);
        ctx = skey_ctx(a, 0, key, iv, &c);
        assert_non_null(ctx);
        m = run_msg(ctx, a, 0, aad, ct, (size_t)n, back, tag);
        EVP_CIPHER_CTX_free(ctx);
    }
    EVP_CIPHER_free(c);
    print_message("%s: %s encrypts %ld bytes, %s decrypts %ld\n", a->name,
                  offload_encrypts ? "offload (EVP_SKEY)" : "default", n,
                  offload_encrypts ? "default" : "offload (EVP_SKEY)", m);
    assert_int_equal(m, MSG_LEN);
    assert_memory_equal(back, pt, MSG_LEN);
    /* The data update went through offload's intercept. */
    assert_true(test_counter(env.offload, "offload-cipher-inline") > inl0);
    free(pt);
    free(ct);
    free(back);
}

static void test_skey_offload_encrypts(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSKALGS; i++)
        roundtrip(&skalgs[i], 1);
}

static void test_skey_offload_decrypts(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSKALGS; i++)
        roundtrip(&skalgs[i], 0);
}

/* ---- 16 KiB records of SKEY-initialised contexts inside jobs ---- */

struct sjob {
    EVP_CIPHER_CTX *ctx; /* SKEY-initialised on the main thread */
    int enc;
    const unsigned char *aad, *in;
    unsigned char *out;
    unsigned char tag[TAG_LEN];
    long outl;
};

static int sjob_main(void *arg)
{
    struct sjob *j = arg;

    j->outl = run_msg(j->ctx, &skalgs[2], j->enc, j->aad, j->in, BIG_LEN, j->out, j->tag);
    return j->outl == BIG_LEN;
}

static void test_skey_jobs(void **state)
{
    const struct skalg *a = &skalgs[2]; /* AES-128-GCM */
    unsigned char key[32], iv[16], aad[AAD_LEN], tag[TAG_LEN];
    unsigned char *pt = malloc(BIG_LEN), *ct = malloc(BIG_LEN);
    struct sjob *jobs = calloc(NJOBS, sizeof(*jobs));
    struct hjob *h = hjobs_new(NJOBS);
    EVP_CIPHER *c[NJOBS] = {NULL};
    uint64_t off0 = test_counter(env.offload, "offload-cipher-offloaded"), off;
    size_t i;

    (void)state;
    assert_non_null(pt);
    assert_non_null(ct);
    assert_non_null(jobs);
    assert_non_null(h);
    fill(key, sizeof(key), 5);
    fill(iv, sizeof(iv), 6);
    fill(aad, sizeof(aad), 7);
    fill(pt, BIG_LEN, 8);
    assert_int_equal(run_ref(a, 1, key, iv, aad, pt, BIG_LEN, ct, tag), BIG_LEN);
    /* Half the jobs encrypt, half decrypt (whose buffers are wiped). */
    for (i = 0; i < NJOBS; i++) {
        struct sjob *j = &jobs[i];

        j->enc = i % 2 == 0;
        j->aad = aad;
        j->in = j->enc ? pt : ct;
        j->out = malloc(BIG_LEN + 32);
        assert_non_null(j->out);
        if (!j->enc)
            memcpy(j->tag, tag, TAG_LEN);
        j->ctx = skey_ctx(a, j->enc, key, iv, &c[i]);
        assert_non_null(j->ctx);
        h[i].fn = sjob_main;
        h[i].arg = j;
    }
    assert_true(h_run_fd_loop(h, NJOBS, POLL_TIMEOUT_MS, NULL, NULL));
    off = test_counter(env.offload, "offload-cipher-offloaded") - off0;
    print_message("%d jobs: %" PRIu64 " 16 KiB updates of SKEY-initialised contexts "
                  "offloaded\n",
                  NJOBS, off);
    for (i = 0; i < NJOBS; i++) {
        struct sjob *j = &jobs[i];

        assert_int_equal(h[i].ret, 1);
        assert_int_equal(j->outl, BIG_LEN);
        assert_memory_equal(j->out, j->enc ? ct : pt, BIG_LEN);
        if (j->enc)
            assert_memory_equal(j->tag, tag, TAG_LEN);
        EVP_CIPHER_CTX_free(j->ctx);
        EVP_CIPHER_free(c[i]);
        free(j->out);
    }
    assert_true(off >= 1);
    test_wait_idle(env.offload);
    hjobs_free(h, NJOBS);
    free(jobs);
    free(pt);
    free(ct);
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_env_open(&env, NULL))
        return -1;
    ref = test_ref_open(&ref_prov);
    return ref != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    test_ref_close(ref, ref_prov);
    test_env_close(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skey_offload_encrypts),
        cmocka_unit_test(test_skey_offload_decrypts),
        cmocka_unit_test(test_skey_jobs),
    };

    F.init_skey = (cipher_init_skey_fn *)dlsym(RTLD_DEFAULT, "EVP_CipherInit_SKEY");
    F.import_raw = (skey_import_raw_fn *)dlsym(RTLD_DEFAULT, "EVP_SKEY_import_raw_key");
    F.free = (skey_free_fn *)dlsym(RTLD_DEFAULT, "EVP_SKEY_free");
    F.provider_name =
        (skey_provider_name_fn *)dlsym(RTLD_DEFAULT, "EVP_SKEY_get0_provider_name");
    if (F.init_skey == NULL) {
        printf("%s has no EVP_CipherInit_SKEY (OpenSSL before 3.5): nothing to run\n",
               OpenSSL_version(OPENSSL_VERSION));
        return 0;
    }
    /* From a libcrypto that has it, the rest must be there too. */
    if (F.import_raw == NULL || F.free == NULL || F.provider_name == NULL) {
        printf("EVP_CipherInit_SKEY without EVP_SKEY_import_raw_key, EVP_SKEY_free or "
               "EVP_SKEY_get0_provider_name\n");
        return 1;
    }
    return cmocka_run_group_tests_name("cipher_skey", tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof ML-KEM vectors through the offload provider (OpenSSL 3.5+):
 *   mlkem_{512,768,1024}_test.json  the key pair from its 64-byte seed
 *       (EVP_PKEY_fromdata with "seed" by offload's key management), its
 *       public key equal to "ek", and EVP_PKEY_decapsulate of "c" giving
 *       "K" (the implicit-rejection value for a ciphertext that does not
 *       re-encrypt); seeds and ciphertexts of the wrong length refused
 *   mlkem_768_encaps_test.json  the encapsulation key "ek" imported (keys
 *       not reduced mod q, or of the wrong length, refused), and
 *       EVP_PKEY_encapsulate with the randomness "m" fixed (the "ikme"
 *       parameter) giving "c" and "K" byte for byte
 *   mlkem_768_keygen_seed_test.json  EVP_PKEY_keygen with the seed set on
 *       the context (family keygen), and EVP_PKEY_fromdata of the same
 *       seed: both give "ek" and "dk"
 * Every vector out of a job and in jobs, fd and callback mode, with the
 * counters of family kem (keygen for the last file) asserted
 * (vectors_jobs.c). On a libcrypto whose default provider has no ML-KEM
 * (3.0) the tests check that offload offers none either, and that the
 * files are there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "vectors_jobs.h"
#include "vectors_pkey.h"

/* Parameter names of 3.5 (the 3.0 headers lack them). */
#define P_SEED "seed"
#define P_IKME "ikme"

#define KEM_CT_MAX  1568
#define KEM_SS_MAX  64
#define KEM_KEY_MAX 3168

static int have_mlkem; /* the default provider offers ML-KEM (3.5+) */

enum kem_kind { K_DECAPS, K_ENCAPS, K_KEYGEN };

struct kem_task {
    struct vj_task h;
    enum kem_kind kind;
    const char *alg;
    EVP_PKEY *key;     /* offload's key from the vector (NULL: refused) */
    int pub_mismatch;  /* the key from the seed has another public key than "ek" */
    unsigned char *in; /* decaps, keygen: seed; encaps: m */
    size_t inlen;
    unsigned char *c, *k, *ek, *dk; /* expected */
    size_t clen, klen, eklen, dklen;
    int op_ok; /* the counted operation succeeded */
    unsigned char out_c[KEM_CT_MAX], out_k[KEM_SS_MAX];
    size_t out_clen, out_klen;
    EVP_PKEY *gen; /* keygen: offload's generated key */
};

static int kem_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    static const char *const algs[] = {"ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"};
    const char *ps = wp_str(group, "parameterSet");
    size_t i;

    (void)s;
    for (i = 0; ps != NULL && i < sizeof(algs) / sizeof(algs[0]); i++) {
        if (strcmp(ps, algs[i]) == 0) {
            *out = (void *)algs[i];
            return 1;
        }
    }
    printf("    ML-KEM group with parameterSet \"%s\": not known here\n",
           ps != NULL ? ps : "(none)");
    return 0;
}

static void kem_group_close(void *gs)
{
    (void)gs;
}

/* Key |alg| from one octet-string parameter, by offload: 1, 0 refused, -1 error. */
static int kem_key(const char *alg, const char *param, int selection,
                   const unsigned char *v, size_t len, EVP_PKEY **out)
{
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_octet_string(param, (void *)v, len);
    params[1] = OSSL_PARAM_construct_end();
    return fromdata_in(OFFLOAD_SIDE, alg, selection, params, out);
}

/* 1 when octet-string parameter |name| of |pkey| is |want|. */
static int param_is(const EVP_PKEY *pkey, const char *name, const unsigned char *want,
                    size_t wantlen)
{
    unsigned char buf[KEM_KEY_MAX];
    size_t len = 0;

    return EVP_PKEY_get_octet_string_param(pkey, name, buf, sizeof(buf), &len) == 1 &&
           len == wantlen && memcmp(buf, want, len) == 0;
}

static int hex_opt(const struct wp_case *c, const char *key, unsigned char **out,
                   size_t *len)
{
    if (wp_str(c->json, key) == NULL) {
        *out = NULL;
        *len = 0;
        return 1;
    }
    return wp_hex(c->json, key, out, len);
}

static int kem_prepare(const struct wp_suite *s, void *gs, const struct wp_case *c,
                       struct vj_task *vt)
{
    struct kem_task *t = (struct kem_task *)vt;
    int rc;

    t->alg = gs;
    t->kind = strcmp(s->group_type, "MLKEMEncapsTest") == 0 ? K_ENCAPS
              : strcmp(s->group_type, "MLKEMKeyGen") == 0   ? K_KEYGEN
                                                            : K_DECAPS;
    if (!hex_opt(c, "ek", &t->ek, &t->eklen) || !hex_opt(c, "c", &t->c, &t->clen) ||
        !hex_opt(c, "K", &t->k, &t->klen) || !hex_opt(c, "dk", &t->dk, &t->dklen) ||
        !wp_hex(c->json, t->kind == K_ENCAPS ? "m" : "seed", &t->in, &t->inlen)) {
        wp_print_case("fields do not parse", s, c);
        return 0;
    }
    if (t->kind == K_KEYGEN)
        return 1; /* the key is made by the work */
    if (t->kind == K_ENCAPS)
        rc = kem_key(t->alg, OSSL_PKEY_PARAM_PUB_KEY, EVP_PKEY_PUBLIC_KEY, t->ek,
                     t->eklen, &t->key);
    else
        rc = kem_key(t->alg, P_SEED, EVP_PKEY_KEYPAIR, t->in, t->inlen, &t->key);
    if (rc < 0)
        return 0;
    if (rc == 1 && t->kind == K_DECAPS && t->ek != NULL &&
        !param_is(t->key, OSSL_PKEY_PARAM_PUB_KEY, t->ek, t->eklen))
        t->pub_mismatch = 1;
    return 1;
}

/* The vector's operation through offload; prints nothing (runs in jobs). */
static int kem_work(struct vj_task *vt)
{
    struct kem_task *t = (struct kem_task *)vt;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    int ok = 0;

    t->op_ok = 0;
    if (t->kind == K_KEYGEN) {
        EVP_PKEY_free(t->gen);
        t->gen = NULL;
        params[0] = OSSL_PARAM_construct_octet_string(P_SEED, t->in, t->inlen);
        params[1] = OSSL_PARAM_construct_end();
        ctx = EVP_PKEY_CTX_new_from_name(vec_env.libctx, t->alg, OFFLOAD_PROPQ);
        if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || !op_in_offload(ctx) ||
            EVP_PKEY_CTX_set_params(ctx, params) != 1)
            goto out;
        t->h.ops++;
        t->op_ok = EVP_PKEY_keygen(ctx, &t->gen) == 1;
        ok = 1;
        goto out;
    }
    if (t->key == NULL)
        return 1; /* refused by the key management: nothing to run */
    ctx = EVP_PKEY_CTX_new_from_pkey(vec_env.libctx, t->key, OFFLOAD_PROPQ);
    if (t->kind == K_ENCAPS) {
        params[0] = OSSL_PARAM_construct_octet_string(P_IKME, t->in, t->inlen);
        params[1] = OSSL_PARAM_construct_end();
        if (ctx == NULL || EVP_PKEY_encapsulate_init(ctx, params) != 1 ||
            !op_in_offload(ctx))
            goto out;
        ok = 1;
        if (EVP_PKEY_encapsulate(ctx, NULL, &t->out_clen, NULL, &t->out_klen) != 1)
            goto out;
        if (t->out_clen > sizeof(t->out_c) || t->out_klen > sizeof(t->out_k)) {
            ok = 0;
            goto out;
        }
        t->h.ops++;
        t->op_ok = EVP_PKEY_encapsulate(ctx, t->out_c, &t->out_clen, t->out_k,
                                        &t->out_klen) == 1;
        goto out;
    }
    if (ctx == NULL || EVP_PKEY_decapsulate_init(ctx, NULL) != 1 || !op_in_offload(ctx))
        goto out;
    ok = 1;
    if (EVP_PKEY_decapsulate(ctx, NULL, &t->out_klen, t->c, t->clen) != 1)
        goto out;
    if (t->out_klen > sizeof(t->out_k)) {
        ok = 0;
        goto out;
    }
    t->h.ops++;
    t->op_ok = EVP_PKEY_decapsulate(ctx, t->out_k, &t->out_klen, t->c, t->clen) == 1;
out:
    t->h.ops_ok += t->op_ok;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static void kem_print(const struct kem_task *t, const char *what)
{
    printf("    %s tcId %ld (%s): %s\n", t->h.vs->wp.file, t->h.tcid,
           wp_result_name(t->h.result), what);
}

/* An accepted vector whose output is not the vector's: never right. */
static enum wp_outcome wrong(const struct kem_task *t, const char *what)
{
    kem_print(t, what);
    return t->h.result == WP_VALID ? WP_REJECT : WP_ACCEPT;
}

static enum wp_outcome kem_judge(struct vj_task *vt)
{
    struct kem_task *t = (struct kem_task *)vt;
    EVP_PKEY *fd = NULL;
    int same;

    if (t->kind == K_KEYGEN) {
        if (!t->op_ok)
            return WP_REJECT;
        if (!test_pkey_in(t->gen, OFFLOAD_PROVIDER_NAME))
            return wrong(t, "the generated key is not offload's");
        if (!param_is(t->gen, OSSL_PKEY_PARAM_PUB_KEY, t->ek, t->eklen) ||
            !param_is(t->gen, OSSL_PKEY_PARAM_PRIV_KEY, t->dk, t->dklen))
            return wrong(t, "the key generated from the seed is not ek, dk");
        /* The same seed imported: the same key. */
        if (kem_key(t->alg, P_SEED, EVP_PKEY_KEYPAIR, t->in, t->inlen, &fd) != 1)
            return wrong(t, "EVP_PKEY_fromdata refuses the seed keygen accepted");
        same = param_is(fd, OSSL_PKEY_PARAM_PUB_KEY, t->ek, t->eklen) &&
               param_is(fd, OSSL_PKEY_PARAM_PRIV_KEY, t->dk, t->dklen) &&
               EVP_PKEY_eq(fd, t->gen) == 1;
        EVP_PKEY_free(fd);
        return same ? WP_ACCEPT : wrong(t, "the key imported from the seed differs");
    }
    if (t->key == NULL)
        return WP_REJECT;
    if (t->pub_mismatch)
        return wrong(t, "the key from the seed has another public key than ek");
    if (!t->op_ok)
        return WP_REJECT;
    if (t->kind == K_ENCAPS &&
        (t->out_clen != t->clen || memcmp(t->out_c, t->c, t->clen) != 0))
        return wrong(t, "the ciphertext differs from c");
    if (t->out_klen != t->klen || memcmp(t->out_k, t->k, t->klen) != 0)
        return wrong(t, "the shared secret differs from K");
    return WP_ACCEPT;
}

static void kem_release(struct vj_task *vt)
{
    struct kem_task *t = (struct kem_task *)vt;

    EVP_PKEY_free(t->key);
    EVP_PKEY_free(t->gen);
    free(t->in);
    free(t->c);
    free(t->k);
    free(t->ek);
    free(t->dk);
    OPENSSL_cleanse(t->out_k, sizeof(t->out_k));
}

/*
 * No ML-KEM in the default provider (3.0): offload offers none either;
 * the file is there all the same. 1 when that is the case (the test is
 * done), 0 when ML-KEM is there and the vectors run.
 */
static int absent_as_default(const char *file, const char *alg)
{
    EVP_KEM *kem = EVP_KEM_fetch(vec_env.libctx, alg, OFFLOAD_PROPQ);
    EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(vec_env.libctx, alg, OFFLOAD_PROPQ);
    int offered = kem != NULL || km != NULL;

    EVP_KEM_free(kem);
    EVP_KEYMGMT_free(km);
    ERR_clear_error();
    if (have_mlkem) {
        assert_true(offered);
        return 0;
    }
    json_object_put(wp_load(file));
    printf("[wycheproof] %s: the default provider has no %s (this libcrypto: %s), "
           "and offload offers %s\n",
           file, alg, OpenSSL_version(OPENSSL_VERSION), offered ? "IT" : "none either");
    assert_false(offered);
    return 1;
}

#define KEM_SUITE(f, sch, gt, fam)                                                       \
    {                                                                                    \
        .wp = {.file = f,                                                                \
               .schema = sch,                                                            \
               .group_type = gt,                                                         \
               .group_open = kem_group_open,                                             \
               .group_close = kem_group_close},                                          \
        .family = fam, .counted = 1, .task_size = sizeof(struct kem_task),               \
        .prepare = kem_prepare, .work = kem_work, .judge = kem_judge,                    \
        .release = kem_release                                                           \
    }
#define DECAPS_SUITE(f)                                                                  \
    KEM_SUITE(f, "mlkem_test_schema.json", "MLKEMTest", OFFLOAD_FAMILY_KEM)

static void run_kem(const struct vj_suite *vs, const char *alg)
{
    struct wp_stats st;

    if (absent_as_default(vs->wp.file, alg))
        return;
    vj_run_suite(vs, &st);
    assert_true(st.valid_ok > 0);
}

static void test_mlkem_512(void **state)
{
    static const struct vj_suite vs = DECAPS_SUITE("mlkem_512_test.json");

    (void)state;
    run_kem(&vs, "ML-KEM-512");
}

static void test_mlkem_768(void **state)
{
    static const struct vj_suite vs = DECAPS_SUITE("mlkem_768_test.json");

    (void)state;
    run_kem(&vs, "ML-KEM-768");
}

static void test_mlkem_1024(void **state)
{
    static const struct vj_suite vs = DECAPS_SUITE("mlkem_1024_test.json");

    (void)state;
    run_kem(&vs, "ML-KEM-1024");
}

static void test_mlkem_768_encaps(void **state)
{
    static const struct vj_suite vs =
        KEM_SUITE("mlkem_768_encaps_test.json", "mlkem_encaps_test_schema.json",
                  "MLKEMEncapsTest", OFFLOAD_FAMILY_KEM);

    (void)state;
    run_kem(&vs, "ML-KEM-768");
}

static void test_mlkem_768_keygen_seed(void **state)
{
    static const struct vj_suite vs =
        KEM_SUITE("mlkem_768_keygen_seed_test.json", "mlkem_keygen_seed_test_schema.json",
                  "MLKEMKeyGen", OFFLOAD_FAMILY_KEYGEN);

    (void)state;
    run_kem(&vs, "ML-KEM-768");
}

static int setup(void **state)
{
    EVP_KEM *kem;

    if (vec_group_setup(state) != 0)
        return -1;
    /* Decided at run time, by the default provider of this libcrypto. */
    kem = EVP_KEM_fetch(vec_env.libctx, "ML-KEM-768", DEFAULT_PROPQ);
    have_mlkem = kem != NULL;
    EVP_KEM_free(kem);
    ERR_clear_error();
    printf("[mlkem] %s: the default provider %s ML-KEM\n",
           OpenSSL_version(OPENSSL_VERSION), have_mlkem ? "offers" : "does not offer");
    return 0;
}

static int teardown(void **state)
{
    vj_free_kept();
    return vec_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlkem_512),
        cmocka_unit_test(test_mlkem_768),
        cmocka_unit_test(test_mlkem_1024),
        cmocka_unit_test(test_mlkem_768_encaps),
        cmocka_unit_test(test_mlkem_768_keygen_seed),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof ML-DSA vectors through the offload provider (OpenSSL 3.5+):
 *   mldsa_{44,65,87}_sign_seed_test.json  the key pair from the group's
 *       32-byte seed (EVP_PKEY_fromdata with "seed" by offload's key
 *       management; its public key must be "publicKey", and the PKCS#8
 *       encoding, where given, decodes to the same key; seeds of another
 *       length refused), then each message signed twice through offload,
 *       by EVP_PKEY_sign_message_init + EVP_PKEY_sign and by one-shot
 *       EVP_DigestSign, deterministically ("deterministic" = 1, or the
 *       vector's "rnd" as "test-entropy"), with the vector's "ctx" as
 *       "context-string", or the external "mu" ("mu" = 1) where the vector
 *       gives no message: both must be "sig" byte for byte; a context of
 *       256 bytes refused
 *   mldsa_65_verify_test.json  the public key imported (wrong lengths
 *       refused), each signature verified both ways (message API and
 *       EVP_DigestVerify): valid accepted, invalid rejected
 * Every vector out of a job and in jobs, fd and callback mode; signing is
 * counted in family signature (offloaded in jobs), verification never
 * (vectors_jobs.c). The 3.4+ message functions are looked up with dlsym,
 * so the program runs on 3.0 too, where the default provider has no
 * ML-DSA: the tests then check that offload offers none either.
 */
#include <dlfcn.h>
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
#define P_SEED          "seed"
#define P_DETERMINISTIC "deterministic"
#define P_CONTEXT       "context-string"
#define P_MU            "mu"
#define P_TEST_ENTROPY  "test-entropy"

#define MLDSA_SIG_MAX 4627

typedef int msg_init_fn(EVP_PKEY_CTX *ctx, EVP_SIGNATURE *algo,
                        const OSSL_PARAM params[]);

static struct {
    int have; /* the default provider offers ML-DSA (3.5+) */
    msg_init_fn *sign_message_init, *verify_message_init;
} M;

struct dsa_group {
    char alg[16];
    EVP_PKEY *key;    /* offload's key (NULL: refused) */
    int pub_mismatch; /* its public key is not the group's */
};

struct dsa_task {
    struct vj_task h;
    char alg[16];
    EVP_PKEY *key;
    int pub_mismatch, sign; /* sign: a sign_seed file, else verify */
    unsigned char *msg, *ctx, *mu, *rnd, *sig;
    size_t msglen, ctxlen, mulen, rndlen, siglen;
    int has_ctx;
    int ok[2]; /* message API, digest API: signed (or verified) */
    unsigned char *out[2];
    size_t outlen[2];
};

/* ML-DSA-<n> from the file's name (the groups do not name the parameter set). */
static int alg_of(const char *file, char *alg, size_t size)
{
    int n = 0;

    if (sscanf(file, "mldsa_%d_", &n) != 1 || (n != 44 && n != 65 && n != 87))
        return 0;
    snprintf(alg, size, "ML-DSA-%d", n);
    return 1;
}

static void dsa_group_close(void *vgs)
{
    struct dsa_group *gs = vgs;

    EVP_PKEY_free(gs->key);
    free(gs);
}

static int dsa_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct dsa_group *gs = calloc(1, sizeof(*gs));
    unsigned char *seed = NULL, *pub = NULL, buf[2600];
    size_t seedlen = 0, publen = 0, len = 0;
    OSSL_PARAM params[2];
    int sign = wp_str(group, "privateSeed") != NULL, rc = -1;
    const char *p8hex;
    json_object *pk = NULL;
    int pubnull;

    /* A group whose seed is refused has a null publicKey. */
    pubnull = json_object_object_get_ex(group, "publicKey", &pk) && pk == NULL;
    if (gs == NULL || !alg_of(s->file, gs->alg, sizeof(gs->alg)) ||
        (!(sign && pubnull) && !wp_hex(group, "publicKey", &pub, &publen)) ||
        (sign && !wp_hex(group, "privateSeed", &seed, &seedlen))) {
        printf("    %s: group without a usable publicKey or privateSeed\n", s->file);
        goto out;
    }
    params[0] =
        sign ? OSSL_PARAM_construct_octet_string(P_SEED, seed, seedlen)
             : OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, publen);
    params[1] = OSSL_PARAM_construct_end();
    rc = fromdata_in(OFFLOAD_SIDE, gs->alg, sign ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                     params, &gs->key);
    if (rc < 0)
        goto out;
    if (rc == 1 && (pub == NULL ||
                    EVP_PKEY_get_octet_string_param(gs->key, OSSL_PKEY_PARAM_PUB_KEY, buf,
                                                    sizeof(buf), &len) != 1 ||
                    len != publen || memcmp(buf, pub, len) != 0))
        gs->pub_mismatch = 1;
    p8hex = wp_str(group, "privateKeyPkcs8");
    if (rc == 1 && sign && p8hex != NULL && p8hex[0] != '\0') {
        /* The private key's encoding: the same key, by the default decoders. */
        EVP_PKEY *p8 = offload_key(p8hex, "PrivateKeyInfo", EVP_PKEY_KEYPAIR);

        if (p8 == NULL || EVP_PKEY_eq(p8, gs->key) != 1) {
            printf("    %s: the group's PKCS#8 key is not the key of its seed\n",
                   s->file);
            rc = -1;
        }
        EVP_PKEY_free(p8);
    }
out:
    free(seed);
    free(pub);
    if (rc < 0) {
        if (gs != NULL)
            dsa_group_close(gs);
        return 0;
    }
    *out = gs;
    return 1;
}

static int hex_opt(const struct wp_case *c, const char *key, unsigned char **out,
                   size_t *len)
{
    *out = NULL;
    *len = 0;
    return wp_str(c->json, key) == NULL || wp_hex(c->json, key, out, len);
}

static int dsa_prepare(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                       struct vj_task *vt)
{
    struct dsa_group *gs = vgs;
    struct dsa_task *t = (struct dsa_task *)vt;
    int i;

    memcpy(t->alg, gs->alg, sizeof(t->alg));
    t->sign = strcmp(s->group_type, "MlDsaSign") == 0;
    t->key = gs->key;
    if (t->key != NULL)
        EVP_PKEY_up_ref(t->key);
    t->pub_mismatch = gs->pub_mismatch;
    t->has_ctx = wp_str(c->json, "ctx") != NULL;
    if (!hex_opt(c, "msg", &t->msg, &t->msglen) ||
        !hex_opt(c, "ctx", &t->ctx, &t->ctxlen) || !hex_opt(c, "mu", &t->mu, &t->mulen) ||
        !hex_opt(c, "rnd", &t->rnd, &t->rndlen) ||
        !wp_hex(c->json, "sig", &t->sig, &t->siglen) ||
        (wp_str(c->json, "msg") == NULL && t->mu == NULL)) {
        wp_print_case("fields do not parse", s, c);
        return 0;
    }
    for (i = 0; i < 2; i++)
        if ((t->out[i] = malloc(MLDSA_SIG_MAX)) == NULL)
            return 0;
    return 1;
}

/* The signature parameters of |t|: ctx, and for signing mu and the randomness. */
static void dsa_params(struct dsa_task *t, OSSL_PARAM *p, int *one)
{
    *one = 1;
    if (t->has_ctx)
        *p++ = OSSL_PARAM_construct_octet_string(P_CONTEXT, t->ctx, t->ctxlen);
    if (t->sign && t->msg == NULL)
        *p++ = OSSL_PARAM_construct_int(P_MU, one);
    if (t->sign && t->rnd != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(P_TEST_ENTROPY, t->rnd, t->rndlen);
    else if (t->sign)
        *p++ = OSSL_PARAM_construct_int(P_DETERMINISTIC, one);
    *p = OSSL_PARAM_construct_end();
}

/* EVP_PKEY_{sign,verify}_message_init + EVP_PKEY_{sign,verify}: 1, 0 refused, -1 set-up.
 */
static int via_message(struct dsa_task *t, const OSSL_PARAM *params,
                       const unsigned char *tbs, size_t tbslen)
{
    EVP_SIGNATURE *alg = EVP_SIGNATURE_fetch(vec_env.libctx, t->alg, OFFLOAD_PROPQ);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(vec_env.libctx, t->key, OFFLOAD_PROPQ);
    int rc = -1;

    if (alg == NULL || ctx == NULL)
        goto out;
    rc = 0;
    if ((t->sign ? M.sign_message_init : M.verify_message_init)(ctx, alg, params) != 1)
        goto out;
    if (!op_in_offload(ctx)) {
        rc = -1;
        goto out;
    }
    t->outlen[0] = MLDSA_SIG_MAX;
    if (t->sign) {
        t->h.ops++;
        rc = EVP_PKEY_sign(ctx, t->out[0], &t->outlen[0], tbs, tbslen) == 1;
    } else {
        rc = EVP_PKEY_verify(ctx, t->sig, t->siglen, tbs, tbslen) == 1;
    }
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_SIGNATURE_free(alg);
    return rc;
}

/* One-shot EVP_DigestSign / EVP_DigestVerify (no digest): 1, 0 refused, -1 set-up. */
static int via_digest(struct dsa_task *t, const OSSL_PARAM *params,
                      const unsigned char *tbs, size_t tbslen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = -1, r;

    if (mctx == NULL)
        return -1;
    r = t->sign ? EVP_DigestSignInit_ex(mctx, &pctx, NULL, vec_env.libctx, OFFLOAD_PROPQ,
                                        t->key, params)
                : EVP_DigestVerifyInit_ex(mctx, &pctx, NULL, vec_env.libctx,
                                          OFFLOAD_PROPQ, t->key, params);
    rc = 0;
    if (r != 1)
        goto out;
    if (!op_in_offload(pctx)) {
        rc = -1;
        goto out;
    }
    t->outlen[1] = MLDSA_SIG_MAX;
    if (t->sign) {
        t->h.ops++;
        rc = EVP_DigestSign(mctx, t->out[1], &t->outlen[1], tbs, tbslen) == 1;
    } else {
        rc = EVP_DigestVerify(mctx, t->sig, t->siglen, tbs, tbslen) == 1;
    }
out:
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* Signs (or verifies) |t| both ways through offload; prints nothing (runs in jobs). */
static int dsa_work(struct vj_task *vt)
{
    struct dsa_task *t = (struct dsa_task *)vt;
    OSSL_PARAM params[5];
    const unsigned char *tbs = t->msg != NULL ? t->msg : t->mu;
    size_t tbslen = t->msg != NULL ? t->msglen : t->mulen;
    int one, r0, r1;

    if (t->key == NULL)
        return 1; /* refused by the key management */
    dsa_params(t, params, &one);
    r0 = via_message(t, params, tbs, tbslen);
    r1 = via_digest(t, params, tbs, tbslen);
    ERR_clear_error();
    if (r0 < 0 || r1 < 0)
        return 0;
    t->ok[0] = r0;
    t->ok[1] = r1;
    if (t->sign)
        t->h.ops_ok += (unsigned)(r0 + r1);
    return 1;
}

static enum wp_outcome dsa_wrong(const struct dsa_task *t, const char *what)
{
    printf("    %s tcId %ld (%s): %s\n", t->h.vs->wp.file, t->h.tcid,
           wp_result_name(t->h.result), what);
    return t->h.result == WP_VALID ? WP_REJECT : WP_ACCEPT;
}

static enum wp_outcome dsa_judge(struct vj_task *vt)
{
    struct dsa_task *t = (struct dsa_task *)vt;
    int i;

    if (t->key == NULL)
        return WP_REJECT;
    if (t->pub_mismatch)
        return dsa_wrong(t, "the group's key has another public key");
    if (t->ok[0] != t->ok[1])
        return dsa_wrong(t, t->ok[0]
                                ? "the message API accepts, EVP_DigestSign/Verify not"
                                : "EVP_DigestSign/Verify accepts, the message API not");
    if (!t->ok[0])
        return WP_REJECT;
    for (i = 0; t->sign && i < 2; i++)
        if (t->outlen[i] != t->siglen || memcmp(t->out[i], t->sig, t->siglen) != 0)
            return dsa_wrong(t, i == 0 ? "EVP_PKEY_sign's signature differs from sig"
                                       : "EVP_DigestSign's signature differs from sig");
    return WP_ACCEPT;
}

static void dsa_release(struct vj_task *vt)
{
    struct dsa_task *t = (struct dsa_task *)vt;

    EVP_PKEY_free(t->key);
    free(t->msg);
    free(t->ctx);
    free(t->mu);
    free(t->rnd);
    free(t->sig);
    free(t->out[0]);
    free(t->out[1]);
}

#define DSA_SUITE(f, sch, gt, cnt)                                                       \
    {                                                                                    \
        .wp = {.file = f,                                                                \
               .schema = sch,                                                            \
               .group_type = gt,                                                         \
               .group_open = dsa_group_open,                                             \
               .group_close = dsa_group_close},                                          \
        .family = OFFLOAD_FAMILY_SIGNATURE, .counted = cnt,                              \
        .task_size = sizeof(struct dsa_task), .prepare = dsa_prepare, .work = dsa_work,  \
        .judge = dsa_judge, .release = dsa_release                                       \
    }
#define SIGN_SUITE(f) DSA_SUITE(f, "mldsa_sign_seed_schema.json", "MlDsaSign", 1)

static void run_dsa(const struct vj_suite *vs)
{
    char alg[16];
    EVP_SIGNATURE *sig;
    EVP_KEYMGMT *km;
    struct wp_stats st;
    int offered;

    assert_true(alg_of(vs->wp.file, alg, sizeof(alg)));
    sig = EVP_SIGNATURE_fetch(vec_env.libctx, alg, OFFLOAD_PROPQ);
    km = EVP_KEYMGMT_fetch(vec_env.libctx, alg, OFFLOAD_PROPQ);
    offered = sig != NULL || km != NULL;
    EVP_SIGNATURE_free(sig);
    EVP_KEYMGMT_free(km);
    ERR_clear_error();
    if (!M.have) {
        json_object_put(wp_load(vs->wp.file));
        printf("[wycheproof] %s: the default provider has no %s (this libcrypto: %s), "
               "and offload offers %s\n",
               vs->wp.file, alg, OpenSSL_version(OPENSSL_VERSION),
               offered ? "IT" : "none either");
        assert_false(offered);
        return;
    }
    assert_true(offered);
    assert_non_null(M.sign_message_init);
    assert_non_null(M.verify_message_init);
    vj_run_suite(vs, &st);
    assert_true(st.valid_ok > 0);
    assert_true(st.invalid_rejected > 0);
}

static void test_mldsa_44_sign_seed(void **state)
{
    static const struct vj_suite vs = SIGN_SUITE("mldsa_44_sign_seed_test.json");

    (void)state;
    run_dsa(&vs);
}

static void test_mldsa_65_sign_seed(void **state)
{
    static const struct vj_suite vs = SIGN_SUITE("mldsa_65_sign_seed_test.json");

    (void)state;
    run_dsa(&vs);
}

static void test_mldsa_87_sign_seed(void **state)
{
    static const struct vj_suite vs = SIGN_SUITE("mldsa_87_sign_seed_test.json");

    (void)state;
    run_dsa(&vs);
}

static void test_mldsa_65_verify(void **state)
{
    static const struct vj_suite vs = DSA_SUITE(
        "mldsa_65_verify_test.json", "mldsa_verify_schema.json", "MlDsaVerify", 0);

    (void)state;
    run_dsa(&vs);
}

static int setup(void **state)
{
    EVP_SIGNATURE *sig;

    if (vec_group_setup(state) != 0)
        return -1;
    /* Decided at run time, by the default provider of this libcrypto. */
    sig = EVP_SIGNATURE_fetch(vec_env.libctx, "ML-DSA-65", DEFAULT_PROPQ);
    M.have = sig != NULL;
    EVP_SIGNATURE_free(sig);
    ERR_clear_error();
    M.sign_message_init =
        (msg_init_fn *)dlsym(RTLD_DEFAULT, "EVP_PKEY_sign_message_init");
    M.verify_message_init =
        (msg_init_fn *)dlsym(RTLD_DEFAULT, "EVP_PKEY_verify_message_init");
    printf("[mldsa] %s: the default provider %s ML-DSA\n",
           OpenSSL_version(OPENSSL_VERSION), M.have ? "offers" : "does not offer");
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
        cmocka_unit_test(test_mldsa_44_sign_seed),
        cmocka_unit_test(test_mldsa_65_sign_seed),
        cmocka_unit_test(test_mldsa_87_sign_seed),
        cmocka_unit_test(test_mldsa_65_verify),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

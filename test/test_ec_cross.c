/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Elliptic-curve work across providers, both ways: ECDSA (P-256/384/521;
 * digest-sign and EVP_PKEY_sign on a raw digest), Ed25519/Ed448 one-shot,
 * ECDH (plain, cofactor mode, X9.63 KDF), X25519/X448. Every key is
 * generated in one provider and reaches the other by
 * EVP_PKEY_todata/EVP_PKEY_fromdata (ec_util.c); the provider behind each
 * EVP_PKEY_CTX is asserted after its init.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>

#include "ec_util.h"

static const unsigned char message[] =
    "Elliptic-curve work through the accelerator: sign here, verify there.";

/* ------------------------------------------------------------------ */
/* a) cross-provider: signatures                                       */
/* ------------------------------------------------------------------ */

/* 1 when the signature algorithm of |w| lists |name| among its settable params. */
static int sig_settable(enum side w, EVP_PKEY *key, const char *md, const char *name)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const OSSL_PARAM *list;
    int found;

    assert_non_null(mctx);
    assert_int_equal(
        EVP_DigestSignInit_ex(mctx, &pctx, md, ctx_of(w), propq_of(w), key, NULL), 1);
    assert_ctx_in(pctx, prov_of(w));
    list = EVP_PKEY_CTX_settable_params(pctx);
    found = list != NULL && OSSL_PARAM_locate_const(list, name) != NULL;
    EVP_MD_CTX_free(mctx);
    return found;
}

static void test_ecdsa_cross(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    unsigned char sig[SIG_MAX], sig2[SIG_MAX], dgst[EVP_MAX_MD_SIZE];
    unsigned char bad[sizeof(message)];
    unsigned int dlen = 0;
    size_t len, len2;
    int det_off, det_def;

    /* Digest-sign in offload, verify in default, and the reverse. */
    len = dsign(OFFL, okey[k], ks->md, NULL, message, sizeof(message), sig);
    assert_int_equal(dverify(DFLT, otwin[k], ks->md, message, sizeof(message), sig, len),
                     1);
    assert_int_equal(dverify(OFFL, okey[k], ks->md, message, sizeof(message), sig, len),
                     1);
    len2 = dsign(DFLT, dkey[k], ks->md, NULL, message, sizeof(message), sig2);
    assert_int_equal(
        dverify(OFFL, dtwin[k], ks->md, message, sizeof(message), sig2, len2), 1);
    /* A tampered message fails on both sides. */
    memcpy(bad, message, sizeof(message));
    bad[3] ^= 0x20;
    assert_int_not_equal(dverify(OFFL, dtwin[k], ks->md, bad, sizeof(bad), sig2, len2),
                         1);
    assert_int_not_equal(dverify(DFLT, otwin[k], ks->md, bad, sizeof(bad), sig, len), 1);
    ERR_clear_error();
    printf("    %s ECDSA/%s: digest-sign offload -> verify default, and back: ok\n",
           ks->label, ks->md);

    /* EVP_PKEY_sign on a raw digest, both ways. */
    assert_int_equal(EVP_Digest(message, sizeof(message), dgst, &dlen,
                                EVP_get_digestbyname(ks->md), NULL),
                     1);
    len = rsign(OFFL, okey[k], ks->md, dgst, dlen, sig);
    assert_int_equal(rverify(DFLT, otwin[k], ks->md, dgst, dlen, sig, len), 1);
    len2 = rsign(DFLT, dkey[k], ks->md, dgst, dlen, sig2);
    assert_int_equal(rverify(OFFL, dtwin[k], ks->md, dgst, dlen, sig2, len2), 1);
    /* The raw signature is a signature of the message, too. */
    assert_int_equal(dverify(DFLT, otwin[k], ks->md, message, sizeof(message), sig, len),
                     1);
    dgst[0] ^= 1;
    assert_int_not_equal(rverify(OFFL, dtwin[k], ks->md, dgst, dlen, sig2, len2), 1);
    ERR_clear_error();
    printf("    %s ECDSA raw digest (%u bytes): EVP_PKEY_sign offload -> verify default, "
           "and back: ok\n",
           ks->label, dlen);

    /*
     * Deterministic ECDSA (RFC 6979, "nonce-type" = 1): the same key and
     * message give the same signature in offload and default. Offload must
     * offer the parameter exactly when the default provider does.
     */
    det_off = sig_settable(OFFL, okey[k], ks->md, "nonce-type");
    det_def = sig_settable(DFLT, otwin[k], ks->md, "nonce-type");
    assert_int_equal(det_off, det_def);
    if (det_off) {
        unsigned int one = 1;
        OSSL_PARAM p[] = {OSSL_PARAM_construct_uint("nonce-type", &one),
                          OSSL_PARAM_construct_end()};

        len = dsign(OFFL, okey[k], ks->md, p, message, sizeof(message), sig);
        len2 = dsign(DFLT, otwin[k], ks->md, p, message, sizeof(message), sig2);
        assert_int_equal(len, len2);
        assert_memory_equal(sig, sig2, len);
        len2 = dsign(OFFL, okey[k], ks->md, p, message, sizeof(message), sig2);
        assert_int_equal(len, len2);
        assert_memory_equal(sig, sig2, len);
        printf("    %s deterministic ECDSA: offload and default signatures identical\n",
               ks->label);
    } else {
        printf(
            "    %s deterministic ECDSA: \"nonce-type\" is not settable in %s (it came "
            "with OpenSSL 3.2), in neither provider: comparison not possible here\n",
            ks->label, OPENSSL_VERSION_TEXT);
    }
}

static void test_eddsa_cross(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    unsigned char sig[SIG_MAX], sig2[SIG_MAX];
    size_t len, len2;

    /* EdDSA is deterministic: offload and default sign identically. */
    len = dsign(OFFL, okey[k], NULL, NULL, message, sizeof(message), sig);
    len2 = dsign(DFLT, otwin[k], NULL, NULL, message, sizeof(message), sig2);
    assert_int_equal(len, k == K_ED25519 ? 64 : 114);
    assert_int_equal(len, len2);
    assert_memory_equal(sig, sig2, len);
    assert_int_equal(dverify(DFLT, otwin[k], NULL, message, sizeof(message), sig, len),
                     1);
    len2 = dsign(DFLT, dkey[k], NULL, NULL, message, sizeof(message), sig2);
    assert_int_equal(dverify(OFFL, dtwin[k], NULL, message, sizeof(message), sig2, len2),
                     1);
    sig2[len2 / 2] ^= 0x01;
    assert_int_not_equal(
        dverify(OFFL, dtwin[k], NULL, message, sizeof(message), sig2, len2), 1);
    ERR_clear_error();
    printf("    %s: one-shot signatures identical in offload and default, verified "
           "across both ways\n",
           ks->label);
}

/* ------------------------------------------------------------------ */
/* a) cross-provider: key exchange                                     */
/* ------------------------------------------------------------------ */

static void test_ecdh_cross(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    unsigned char a[SECRET_MAX], b[SECRET_MAX], c[SECRET_MAX], x[SECRET_MAX];
    size_t la, lb, lc, outlen = 32, xl = 32;
    int one = 1, got = -1;
    static unsigned char ukm[] = "offload X9.63 shared info";
    char kdf_type[32] = "";
    OSSL_PARAM cof[] = {
        OSSL_PARAM_construct_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, &one),
        OSSL_PARAM_construct_end()};
    OSSL_PARAM kdf[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, "X963KDF", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, &outlen),
        OSSL_PARAM_construct_octet_string(OSSL_EXCHANGE_PARAM_KDF_UKM, ukm,
                                          sizeof(ukm) - 1),
        OSSL_PARAM_construct_end()};
    OSSL_PARAM getp[] = {OSSL_PARAM_construct_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE,
                                                          kdf_type, sizeof(kdf_type)),
                         OSSL_PARAM_construct_end()};
    OSSL_PARAM getc[] = {
        OSSL_PARAM_construct_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, &got),
        OSSL_PARAM_construct_end()};
    EVP_KDF *xkdf;
    EVP_KDF_CTX *kctx;
    EVP_PKEY_CTX *pctx;

    /* Plain: offload (okey with dkey's twin) = default (dkey with okey's twin). */
    la = derive(OFFL, okey[k], dtwin[k], NULL, a);
    lb = derive(DFLT, dkey[k], otwin[k], NULL, b);
    lc = derive(DFLT, otwin[k], dkey[k], NULL, c);
    assert_int_equal(la, ks->field);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(la, lc);
    assert_memory_equal(a, c, la);
    /* And offload from the other side: dkey's twin with okey. */
    lc = derive(OFFL, dtwin[k], okey[k], NULL, c);
    assert_int_equal(la, lc);
    assert_memory_equal(a, c, la);

    /* Cofactor mode: the cofactor of the NIST curves is 1, the secret is the same. */
    lb = derive(OFFL, okey[k], dtwin[k], cof, b);
    lc = derive(DFLT, dkey[k], otwin[k], cof, c);
    assert_int_equal(lb, la);
    assert_memory_equal(b, a, la);
    assert_int_equal(lc, la);
    assert_memory_equal(c, a, la);
    pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[k], OFFLOAD_PROPQ);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_int_equal(EVP_PKEY_CTX_set_params(pctx, cof), 1);
    assert_int_equal(EVP_PKEY_CTX_get_params(pctx, getc), 1);
    assert_int_equal(got, 1);
    EVP_PKEY_CTX_free(pctx);

    /* X9.63 KDF with SHA-256 and a UKM: 32 bytes, equal in both providers. */
    lb = derive(OFFL, okey[k], dtwin[k], kdf, b);
    lc = derive(DFLT, dkey[k], otwin[k], kdf, c);
    assert_int_equal(lb, 32);
    assert_int_equal(lc, 32);
    assert_memory_equal(b, c, 32);
    assert_memory_not_equal(b, a, 32);
    /* ... and equal to X963KDF(Z, SHA-256, ukm) computed on its own. */
    xkdf = EVP_KDF_fetch(ec_defctx, "X963KDF", NULL);
    assert_non_null(xkdf);
    kctx = EVP_KDF_CTX_new(xkdf);
    assert_non_null(kctx);
    {
        OSSL_PARAM kp[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, a, la),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ukm, sizeof(ukm) - 1),
            OSSL_PARAM_construct_end()};

        assert_int_equal(EVP_KDF_derive(kctx, x, xl, kp), 1);
    }
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(xkdf);
    assert_memory_equal(b, x, 32);
    /* offload reports the KDF it was given. */
    pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[k], OFFLOAD_PROPQ);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_int_equal(EVP_PKEY_CTX_set_params(pctx, kdf), 1);
    assert_int_equal(EVP_PKEY_CTX_get_params(pctx, getp), 1);
    assert_string_equal(kdf_type, "X963KDF");
    EVP_PKEY_CTX_free(pctx);

    print_hex("ECDH secret", a, la);
    print_hex("X9.63 KDF output", b, lb);
    printf("    %s ECDH: plain, cofactor mode and X9.63 KDF equal in offload and "
           "default\n",
           ks->label);
}

static void test_xdh_cross(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    unsigned char a[SECRET_MAX], b[SECRET_MAX], c[SECRET_MAX];
    size_t la, lb, lc;

    la = derive(OFFL, okey[k], dtwin[k], NULL, a);
    lb = derive(DFLT, dkey[k], otwin[k], NULL, b);
    lc = derive(OFFL, dtwin[k], okey[k], NULL, c);
    assert_int_equal(la, k == K_X25519 ? 32 : 56);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_int_equal(la, lc);
    assert_memory_equal(a, c, la);
    print_hex("secret", a, la);
    printf("    %s: offload and default derive the same secret, both ways\n", ks->label);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH(test_ecdsa_cross, K_P256),  WITH(test_ecdsa_cross, K_P384),
        WITH(test_ecdsa_cross, K_P521),  WITH(test_eddsa_cross, K_ED25519),
        WITH(test_eddsa_cross, K_ED448), WITH(test_ecdh_cross, K_P256),
        WITH(test_ecdh_cross, K_P384),   WITH(test_ecdh_cross, K_P521),
        WITH(test_xdh_cross, K_X25519),  WITH(test_xdh_cross, K_X448),
    };

    return cmocka_run_group_tests(tests, ec_group_setup, ec_group_teardown);
}

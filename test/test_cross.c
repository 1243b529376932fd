/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cross-provider interoperability. Every signature algorithm the offload
 * provider advertises signs in offload and verifies with the default
 * provider, and the reverse; a tampered input fails in both. Keys are
 * generated in offload and reach the default-only context through
 * EVP_PKEY_todata/EVP_PKEY_fromdata (and PEM), so each verification
 * really runs in the other provider: the provider behind every
 * EVP_PKEY_CTX is asserted after its init.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common.h"
#include "offload.h"

#define INLINE_COUNTER "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_INLINE
#define SIG_MAX        1024

enum {
    K_RSA,
    K_RSA_PSS,
    K_P256,
    K_P384,
    K_P521,
    K_ED25519,
    K_ED448,
    K_X25519, /* key exchange only: key management checks */
    K_X448,
    K_COUNT
};

struct keyspec {
    const char *label;
    const char *type;
    const char *group; /* EC curve, else NULL */
    size_t bits;       /* RSA modulus size, else 0 */
    size_t field;      /* EC field size in bytes, else 0 */
    size_t raw;        /* raw public/private key size (ECX keys), else 0 */
};

static const struct keyspec keyspecs[K_COUNT] = {
    [K_RSA] = {"RSA-2048", "RSA", NULL, 2048, 0, 0},
    [K_RSA_PSS] = {"RSA-PSS-2048", "RSA-PSS", NULL, 2048, 0, 0},
    [K_P256] = {"EC-P-256", "EC", "P-256", 0, 32, 0},
    [K_P384] = {"EC-P-384", "EC", "P-384", 0, 48, 0},
    [K_P521] = {"EC-P-521", "EC", "P-521", 0, 66, 0},
    [K_ED25519] = {"ED25519", "ED25519", NULL, 0, 0, 32},
    [K_ED448] = {"ED448", "ED448", NULL, 0, 0, 57},
    [K_X25519] = {"X25519", "X25519", NULL, 0, 0, 32},
    [K_X448] = {"X448", "X448", NULL, 0, 0, 56},
};

static test_env env;
static OSSL_LIB_CTX *defctx;
static OSSL_PROVIDER *defprov;
static EVP_PKEY *okeys[K_COUNT]; /* generated in offload */
static EVP_PKEY *dkeys[K_COUNT]; /* their twins, imported into defctx */

/* ---- keys ---- */

/* A key of |ks| generated in |libctx| with |propq|; NULL on failure. */
static EVP_PKEY *gen_key(const struct keyspec *ks, OSSL_LIB_CTX *libctx,
                         const char *propq)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(libctx, ks->type, propq);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM params[2];
    size_t bits = ks->bits;

    params[0] = OSSL_PARAM_construct_end();
    params[1] = OSSL_PARAM_construct_end();
    if (ks->group != NULL)
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                     (char *)ks->group, 0);
    else if (bits != 0)
        params[0] = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &bits);
    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
        EVP_PKEY_CTX_set_params(kctx, params) <= 0 || EVP_PKEY_keygen(kctx, &pkey) <= 0) {
        test_dump_errors(ks->label);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(kctx);
    return pkey;
}

/* |src| exported with EVP_PKEY_todata and imported into |libctx| with |propq|. */
static EVP_PKEY *move_key(const EVP_PKEY *src, OSSL_LIB_CTX *libctx, const char *propq,
                          int selection)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ictx = NULL;
    EVP_PKEY *dst = NULL;

    if (EVP_PKEY_todata(src, selection, &params) <= 0)
        goto out;
    ictx = EVP_PKEY_CTX_new_from_name(libctx, EVP_PKEY_get0_type_name(src), propq);
    if (ictx == NULL || EVP_PKEY_fromdata_init(ictx) <= 0 ||
        EVP_PKEY_fromdata(ictx, &dst, selection, params) <= 0)
        dst = NULL;
out:
    if (dst == NULL)
        test_dump_errors("move key");
    EVP_PKEY_CTX_free(ictx);
    OSSL_PARAM_free(params);
    return dst;
}

/* ---- one signature case ---- */

enum mode {
    M_DIGEST,  /* EVP_DigestSign / EVP_DigestVerify */
    M_RAW,     /* EVP_PKEY_sign / EVP_PKEY_verify on a precomputed digest */
    M_RECOVER, /* EVP_PKEY_sign, then EVP_PKEY_verify_recover */
};

struct sigcase {
    const char *label;
    int key;
    enum mode mode;
    const char *md;  /* digest; NULL: none (EdDSA, raw RSA) */
    const char *pad; /* "pkcs1", "pss", "none"; NULL: the key's default */
    const char *salt_sign, *salt_verify;
    const char *mgf1;
};

static const struct sigcase cases[] = {
    /* RSA PKCS#1 v1.5 */
    {"RSA pkcs1 digest-sign SHA256", K_RSA, M_DIGEST, "SHA256", "pkcs1", NULL, NULL,
     NULL},
    {"RSA pkcs1 digest-sign SHA384", K_RSA, M_DIGEST, "SHA384", "pkcs1", NULL, NULL,
     NULL},
    {"RSA pkcs1 digest-sign SHA512", K_RSA, M_DIGEST, "SHA512", "pkcs1", NULL, NULL,
     NULL},
    {"RSA pkcs1 sign SHA256 digest", K_RSA, M_RAW, "SHA256", "pkcs1", NULL, NULL, NULL},
    {"RSA pkcs1 sign SHA384 digest", K_RSA, M_RAW, "SHA384", "pkcs1", NULL, NULL, NULL},
    {"RSA pkcs1 sign SHA512 digest", K_RSA, M_RAW, "SHA512", "pkcs1", NULL, NULL, NULL},
    {"RSA pkcs1 verify-recover SHA256", K_RSA, M_RECOVER, "SHA256", "pkcs1", NULL, NULL,
     NULL},
    {"RSA pkcs1 verify-recover no md", K_RSA, M_RECOVER, NULL, "pkcs1", NULL, NULL, NULL},
    /* RSA without padding */
    {"RSA no-padding sign", K_RSA, M_RAW, NULL, "none", NULL, NULL, NULL},
    {"RSA no-padding verify-recover", K_RSA, M_RECOVER, NULL, "none", NULL, NULL, NULL},
    /* RSA PSS */
    {"RSA pss salt digest/digest", K_RSA, M_DIGEST, "SHA256", "pss", "digest", "digest",
     NULL},
    {"RSA pss salt max/max", K_RSA, M_DIGEST, "SHA256", "pss", "max", "max", NULL},
    {"RSA pss salt max/auto", K_RSA, M_DIGEST, "SHA256", "pss", "max", "auto", NULL},
    {"RSA pss salt auto/auto", K_RSA, M_DIGEST, "SHA256", "pss", "auto", "auto", NULL},
    {"RSA pss salt 32/32", K_RSA, M_DIGEST, "SHA256", "pss", "32", "32", NULL},
    {"RSA pss salt 0/0", K_RSA, M_DIGEST, "SHA256", "pss", "0", "0", NULL},
    {"RSA pss salt 0/auto", K_RSA, M_DIGEST, "SHA256", "pss", "0", "auto", NULL},
    {"RSA pss mgf1 SHA1", K_RSA, M_DIGEST, "SHA256", "pss", "digest", "digest", "SHA1"},
    {"RSA pss SHA384 mgf1 SHA256", K_RSA, M_DIGEST, "SHA384", "pss", "32", "auto",
     "SHA256"},
    {"RSA pss sign SHA256 digest mgf1 SHA1", K_RSA, M_RAW, "SHA256", "pss", "digest",
     "digest", "SHA1"},
    {"RSA pss sign SHA512 digest salt 0", K_RSA, M_RAW, "SHA512", "pss", "0", "0",
     "SHA256"},
    /* RSA-PSS keys */
    {"RSA-PSS key digest-sign SHA256", K_RSA_PSS, M_DIGEST, "SHA256", NULL, NULL, NULL,
     NULL},
    {"RSA-PSS key salt 32/auto mgf1 SHA256", K_RSA_PSS, M_DIGEST, "SHA384", "pss", "32",
     "auto", "SHA256"},
    {"RSA-PSS key sign SHA256 digest", K_RSA_PSS, M_RAW, "SHA256", "pss", "digest",
     "digest", NULL},
    /* ECDSA */
    {"ECDSA P-256 digest-sign SHA256", K_P256, M_DIGEST, "SHA256", NULL, NULL, NULL,
     NULL},
    {"ECDSA P-384 digest-sign SHA384", K_P384, M_DIGEST, "SHA384", NULL, NULL, NULL,
     NULL},
    {"ECDSA P-521 digest-sign SHA512", K_P521, M_DIGEST, "SHA512", NULL, NULL, NULL,
     NULL},
    {"ECDSA P-256 digest-sign SHA512", K_P256, M_DIGEST, "SHA512", NULL, NULL, NULL,
     NULL},
    {"ECDSA P-256 sign SHA256 digest", K_P256, M_RAW, "SHA256", NULL, NULL, NULL, NULL},
    {"ECDSA P-384 sign SHA384 digest", K_P384, M_RAW, "SHA384", NULL, NULL, NULL, NULL},
    {"ECDSA P-521 sign SHA512 digest", K_P521, M_RAW, "SHA512", NULL, NULL, NULL, NULL},
    /* EdDSA, one-shot */
    {"Ed25519 one-shot", K_ED25519, M_DIGEST, NULL, NULL, NULL, NULL, NULL},
    {"Ed448 one-shot", K_ED448, M_DIGEST, NULL, NULL, NULL, NULL, NULL},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const unsigned char message[] =
    "offload cross test: the quick brown fox jumps over the lazy dog 0123456789";

/* Asserts that the operation of |pctx| is served by the provider |prov|. */
static void assert_ctx_in(EVP_PKEY_CTX *pctx, const char *prov)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    assert_non_null(p);
    assert_string_equal(OSSL_PROVIDER_get0_name(p), prov);
}

/* The operation's parameters, for the signer (|verify| 0) or the verifier. */
static void set_params(EVP_PKEY_CTX *pctx, const struct sigcase *c, int verify)
{
    OSSL_PARAM p[5];
    size_t n = 0;
    const char *salt = verify ? c->salt_verify : c->salt_sign;

    if (c->pad != NULL)
        p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                                  (char *)c->pad, 0);
    if (c->mode != M_DIGEST && c->md != NULL)
        p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST,
                                                  (char *)c->md, 0);
    if (salt != NULL)
        p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                                                  (char *)salt, 0);
    if (c->mgf1 != NULL)
        p[n++] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                  (char *)c->mgf1, 0);
    p[n] = OSSL_PARAM_construct_end();
    if (n > 0)
        assert_int_equal(EVP_PKEY_CTX_set_params(pctx, p), 1);
}

/* What gets signed: the message, its digest, or a modulus-sized block. */
static size_t make_tbs(const struct sigcase *c, unsigned char *tbs, size_t size)
{
    EVP_MD *md;
    unsigned int len = 0;
    size_t i;

    if (c->mode == M_DIGEST) {
        assert_true(sizeof(message) <= size);
        memcpy(tbs, message, sizeof(message));
        return sizeof(message);
    }
    if (c->md != NULL) {
        md = EVP_MD_fetch(defctx, c->md, NULL);
        assert_non_null(md);
        assert_int_equal(EVP_Digest(message, sizeof(message), tbs, &len, md, NULL), 1);
        EVP_MD_free(md);
        return len;
    }
    if (strcmp(c->pad, "none") == 0) {
        /* Exactly the modulus size, numerically below the modulus. */
        size_t n = keyspecs[c->key].bits / 8;

        assert_true(n <= size);
        tbs[0] = 0;
        for (i = 1; i < n; i++)
            tbs[i] = (unsigned char)(i * 7 + 3);
        return n;
    }
    for (i = 0; i < 36; i++)
        tbs[i] = (unsigned char)(0xa5 ^ i);
    return 36;
}

/* Signs |tbs| with |key| in |libctx|, asserting that |prov| does it. */
static size_t sign_with(const struct sigcase *c, EVP_PKEY *key, OSSL_LIB_CTX *libctx,
                        const char *propq, const char *prov, const unsigned char *tbs,
                        size_t tbslen, unsigned char *sig)
{
    size_t need = 0, siglen;

    if (c->mode == M_DIGEST) {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;

        assert_non_null(mctx);
        assert_int_equal(
            EVP_DigestSignInit_ex(mctx, &pctx, c->md, libctx, propq, key, NULL), 1);
        assert_ctx_in(pctx, prov);
        set_params(pctx, c, 0);
        assert_int_equal(EVP_DigestSign(mctx, NULL, &need, tbs, tbslen), 1);
        assert_true(need > 0 && need <= SIG_MAX);
        siglen = need;
        assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, tbs, tbslen), 1);
        if (c->md == NULL) {
            /*
             * EdDSA: re-init with the key already set (no key, no params),
             * as openssl speed does; the signature checked is this one.
             */
            assert_int_equal(EVP_DigestSignInit(mctx, NULL, NULL, NULL, NULL), 1);
            siglen = need;
            assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, tbs, tbslen), 1);
        }
        EVP_MD_CTX_free(mctx);
    } else {
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, propq);

        assert_non_null(pctx);
        assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
        assert_ctx_in(pctx, prov);
        set_params(pctx, c, 0);
        assert_int_equal(EVP_PKEY_sign(pctx, NULL, &need, tbs, tbslen), 1);
        assert_true(need > 0 && need <= SIG_MAX);
        siglen = need;
        assert_int_equal(EVP_PKEY_sign(pctx, sig, &siglen, tbs, tbslen), 1);
        EVP_PKEY_CTX_free(pctx);
    }
    assert_true(siglen > 0 && siglen <= need);
    return siglen;
}

/* 1 when |sig| verifies over |tbs| with |key| in |libctx|, served by |prov|. */
static int verify_with(const struct sigcase *c, EVP_PKEY *key, OSSL_LIB_CTX *libctx,
                       const char *propq, const char *prov, const unsigned char *tbs,
                       size_t tbslen, const unsigned char *sig, size_t siglen)
{
    int ok;

    if (c->mode == M_DIGEST) {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;

        assert_non_null(mctx);
        assert_int_equal(
            EVP_DigestVerifyInit_ex(mctx, &pctx, c->md, libctx, propq, key, NULL), 1);
        assert_ctx_in(pctx, prov);
        set_params(pctx, c, 1);
        ok = EVP_DigestVerify(mctx, sig, siglen, tbs, tbslen);
        EVP_MD_CTX_free(mctx);
    } else {
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, propq);

        assert_non_null(pctx);
        if (c->mode == M_RAW) {
            assert_int_equal(EVP_PKEY_verify_init(pctx), 1);
            assert_ctx_in(pctx, prov);
            set_params(pctx, c, 1);
            ok = EVP_PKEY_verify(pctx, sig, siglen, tbs, tbslen);
        } else {
            unsigned char rec[SIG_MAX];
            size_t reclen = sizeof(rec);

            assert_int_equal(EVP_PKEY_verify_recover_init(pctx), 1);
            assert_ctx_in(pctx, prov);
            set_params(pctx, c, 1);
            ok = EVP_PKEY_verify_recover(pctx, rec, &reclen, sig, siglen);
            if (ok == 1)
                ok = reclen == tbslen && memcmp(rec, tbs, tbslen) == 0;
        }
        EVP_PKEY_CTX_free(pctx);
    }
    ERR_clear_error(); /* a failed verification may leave a reason behind */
    return ok;
}

static void test_sign_verify(void **state)
{
    const struct sigcase *c = *state;
    EVP_PKEY *okey = okeys[c->key], *dkey = dkeys[c->key];
    unsigned char tbs[512], bad[512], sig[SIG_MAX];
    size_t tbslen, siglen, badsiglen;
    uint64_t before, after;

    assert_non_null(okey);
    assert_non_null(dkey);
    assert_true(test_pkey_in(okey, OFFLOAD_PROVIDER_NAME));
    assert_true(test_pkey_in(dkey, "default"));
    tbslen = make_tbs(c, tbs, sizeof(tbs));
    memcpy(bad, tbs, tbslen);
    bad[tbslen / 2] ^= 0x01;

    /* offload signs, default verifies */
    before = test_counter(env.offload, INLINE_COUNTER);
    assert_int_not_equal(before, UINT64_MAX);
    siglen = sign_with(c, okey, env.libctx, OFFLOAD_PROPQ, OFFLOAD_PROVIDER_NAME, tbs,
                       tbslen, sig);
    after = test_counter(env.offload, INLINE_COUNTER);
    assert_int_not_equal(after, UINT64_MAX);
    assert_true(after > before);
    assert_int_equal(
        verify_with(c, dkey, defctx, NULL, "default", tbs, tbslen, sig, siglen), 1);
    assert_int_not_equal(
        verify_with(c, dkey, defctx, NULL, "default", bad, tbslen, sig, siglen), 1);
    /* ... and offload verifies its own signature too */
    assert_int_equal(verify_with(c, okey, env.libctx, OFFLOAD_PROPQ,
                                 OFFLOAD_PROVIDER_NAME, tbs, tbslen, sig, siglen),
                     1);

    /* default signs, offload verifies */
    before = test_counter(env.offload, INLINE_COUNTER);
    siglen = sign_with(c, dkey, defctx, NULL, "default", tbs, tbslen, sig);
    /* the default provider's signature must not be counted by offload */
    assert_int_equal(test_counter(env.offload, INLINE_COUNTER), before);
    assert_int_equal(verify_with(c, okey, env.libctx, OFFLOAD_PROPQ,
                                 OFFLOAD_PROVIDER_NAME, tbs, tbslen, sig, siglen),
                     1);
    assert_int_not_equal(verify_with(c, okey, env.libctx, OFFLOAD_PROPQ,
                                     OFFLOAD_PROVIDER_NAME, bad, tbslen, sig, siglen),
                         1);

    /*
     * In the same context, pinned to the default provider: libcrypto
     * exports the offload key to the default keymgmt for the operation.
     */
    siglen =
        sign_with(c, okey, env.libctx, "provider=default", "default", tbs, tbslen, sig);
    assert_int_equal(verify_with(c, okey, env.libctx, OFFLOAD_PROPQ,
                                 OFFLOAD_PROVIDER_NAME, tbs, tbslen, sig, siglen),
                     1);
    siglen = sign_with(c, okey, env.libctx, OFFLOAD_PROPQ, OFFLOAD_PROVIDER_NAME, tbs,
                       tbslen, sig);
    assert_int_equal(verify_with(c, okey, env.libctx, "provider=default", "default", tbs,
                                 tbslen, sig, siglen),
                     1);
    assert_int_not_equal(verify_with(c, okey, env.libctx, "provider=default", "default",
                                     bad, tbslen, sig, siglen),
                         1);

    /* a tampered signature fails in both */
    badsiglen = siglen;
    sig[siglen - 1] ^= 0x10;
    assert_int_not_equal(verify_with(c, okey, env.libctx, OFFLOAD_PROPQ,
                                     OFFLOAD_PROVIDER_NAME, tbs, tbslen, sig, badsiglen),
                         1);
    assert_int_not_equal(
        verify_with(c, dkey, defctx, NULL, "default", tbs, tbslen, sig, badsiglen), 1);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- key management ---- */

static void assert_bn_param_equal(const EVP_PKEY *a, const EVP_PKEY *b, const char *name)
{
    BIGNUM *ba = NULL, *bb = NULL;

    assert_int_equal(EVP_PKEY_get_bn_param(a, name, &ba), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(b, name, &bb), 1);
    assert_false(BN_is_zero(ba));
    assert_int_equal(BN_cmp(ba, bb), 0);
    BN_clear_free(ba);
    BN_clear_free(bb);
}

static void assert_octets_equal(const EVP_PKEY *a, const EVP_PKEY *b, const char *name,
                                size_t expect_len)
{
    unsigned char ba[256], bb[256];
    size_t la = 0, lb = 0;

    assert_int_equal(EVP_PKEY_get_octet_string_param(a, name, ba, sizeof(ba), &la), 1);
    assert_int_equal(EVP_PKEY_get_octet_string_param(b, name, bb, sizeof(bb), &lb), 1);
    assert_int_equal(la, expect_len);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
}

/* The PEM of |key| (private or public) read back in the default-only context. */
static EVP_PKEY *pem_roundtrip(EVP_PKEY *key, int private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    EVP_PKEY *back;

    assert_non_null(bio);
    if (private)
        assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL),
                         1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    back = private ? PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, defctx, NULL)
                   : PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, defctx, NULL);
    BIO_free(bio);
    if (back == NULL)
        test_dump_errors("PEM read");
    assert_non_null(back);
    assert_true(test_pkey_in(back, "default"));
    return back;
}

static void test_keymgmt(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    EVP_PKEY *okey = okeys[k], *dkey = dkeys[k];
    EVP_PKEY *dup, *dflt_in_env, *back_in_offload, *other, *pem;

    assert_non_null(okey);
    assert_non_null(dkey);
    assert_true(test_pkey_in(okey, OFFLOAD_PROVIDER_NAME));
    assert_true(test_pkey_in(dkey, "default"));
    assert_true(EVP_PKEY_is_a(okey, ks->type));

    /* bits, security-bits, max-size agree with the twin */
    test_assert_int_params_equal(okey, dkey);
    if (ks->bits != 0) {
        assert_int_equal(EVP_PKEY_get_bits(okey), (int)ks->bits);
        assert_bn_param_equal(okey, dkey, OSSL_PKEY_PARAM_RSA_N);
        assert_bn_param_equal(okey, dkey, OSSL_PKEY_PARAM_RSA_E);
        assert_bn_param_equal(okey, dkey, OSSL_PKEY_PARAM_RSA_D);
    } else if (ks->group != NULL) {
        char group[64], dgroup[64];
        size_t glen = 0;

        assert_int_equal(EVP_PKEY_get_utf8_string_param(okey, OSSL_PKEY_PARAM_GROUP_NAME,
                                                        group, sizeof(group), &glen),
                         1);
        assert_int_equal(EVP_PKEY_get_utf8_string_param(dkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                                        dgroup, sizeof(dgroup), &glen),
                         1);
        assert_string_equal(group, dgroup);
        /* the canonical name: prime256v1 for P-256 and so on */
        assert_int_equal(OBJ_sn2nid(group), EC_curve_nist2nid(ks->group));
        assert_bn_param_equal(okey, dkey, OSSL_PKEY_PARAM_PRIV_KEY);
        /* uncompressed point: 04 || X || Y */
        assert_octets_equal(okey, dkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                            1 + 2 * ks->field);
        {
            unsigned char pt[256];
            size_t len = 0;

            assert_int_equal(
                EVP_PKEY_get_octet_string_param(okey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                pt, sizeof(pt), &len),
                1);
            assert_int_equal(pt[0], 0x04);
        }
    } else {
        assert_true(ks->raw > 0);
        assert_octets_equal(okey, dkey, OSSL_PKEY_PARAM_PUB_KEY, ks->raw);
        assert_octets_equal(okey, dkey, OSSL_PKEY_PARAM_PRIV_KEY, ks->raw);
    }

    /* EVP_PKEY_eq in one context: offload key against the default provider's twin */
    dflt_in_env = move_key(dkey, env.libctx, "provider=default", EVP_PKEY_KEYPAIR);
    assert_non_null(dflt_in_env);
    assert_true(test_pkey_in(dflt_in_env, "default"));
    assert_int_equal(EVP_PKEY_eq(okey, dflt_in_env), 1);
    assert_int_equal(EVP_PKEY_eq(dflt_in_env, okey), 1);

    /* a key made by the default provider imports into offload */
    back_in_offload = move_key(dkey, env.libctx, OFFLOAD_PROPQ, EVP_PKEY_KEYPAIR);
    assert_non_null(back_in_offload);
    assert_true(test_pkey_in(back_in_offload, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(EVP_PKEY_eq(okey, back_in_offload), 1);

    /* and a different key is not equal */
    other = gen_key(ks, defctx, NULL);
    assert_non_null(other);
    {
        EVP_PKEY *other_in_offload =
            move_key(other, env.libctx, OFFLOAD_PROPQ, EVP_PKEY_KEYPAIR);

        assert_non_null(other_in_offload);
        assert_true(test_pkey_in(other_in_offload, OFFLOAD_PROVIDER_NAME));
        assert_int_equal(EVP_PKEY_eq(okey, other_in_offload), 0);
        EVP_PKEY_free(other_in_offload);
    }

    /* EVP_PKEY_dup stays in offload and equal */
    dup = EVP_PKEY_dup(okey);
    assert_non_null(dup);
    assert_true(test_pkey_in(dup, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(EVP_PKEY_eq(dup, okey), 1);
    assert_int_not_equal(EVP_PKEY_eq(dup, other), 1);

    /* PEM export of the offload key decodes in the default context to the twin */
    pem = pem_roundtrip(okey, 1);
    assert_int_equal(EVP_PKEY_eq(pem, dkey), 1);
    assert_int_not_equal(EVP_PKEY_eq(pem, other), 1);
    EVP_PKEY_free(pem);
    pem = pem_roundtrip(okey, 0);
    assert_int_equal(EVP_PKEY_eq(pem, dkey), 1);
    EVP_PKEY_free(pem);

    EVP_PKEY_free(other);
    EVP_PKEY_free(dup);
    EVP_PKEY_free(back_in_offload);
    EVP_PKEY_free(dflt_in_env);
    assert_int_equal(ERR_peek_error(), 0);
}

/*
 * ---- coverage: everything offload advertises is exercised above, or is
 * one of the default provider's algorithms that offload mirrors without a
 * case here (DH, DSA, SM2, the KDF and MAC key types, 3.5's composites,
 * ML-DSA, ...): test_mirror checks those tables against the default's,
 * test_sign_message the composites. Each of them must be the default's too.
 */

struct seen {
    int uncovered;
    int offered;
    int mirrored;
};

/* Offload advertises |name| only because the default provider does. */
static int mirrored_from_default(int op, const char *name)
{
    void *m = NULL;

    if (op == OSSL_OP_SIGNATURE)
        m = EVP_SIGNATURE_fetch(defctx, name, DEFAULT_PROPQ);
    else
        m = EVP_KEYMGMT_fetch(defctx, name, DEFAULT_PROPQ);
    if (m == NULL)
        return 0;
    if (op == OSSL_OP_SIGNATURE)
        EVP_SIGNATURE_free(m);
    else
        EVP_KEYMGMT_free(m);
    return 1;
}

static int offered_by_offload(const OSSL_PROVIDER *p)
{
    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), OFFLOAD_PROVIDER_NAME) == 0;
}

static void check_signature(EVP_SIGNATURE *sig, void *arg)
{
    struct seen *seen = arg;
    size_t i;
    int covered = 0;

    if (!offered_by_offload(EVP_SIGNATURE_get0_provider(sig)))
        return;
    seen->offered++;
    for (i = 0; i < NCASES; i++) {
        const char *ktype = keyspecs[cases[i].key].type;

        /* the signature a key type uses is named after it, EC's is ECDSA */
        if (EVP_SIGNATURE_is_a(sig, strcmp(ktype, "EC") == 0        ? "ECDSA"
                                    : strcmp(ktype, "RSA-PSS") == 0 ? "RSA"
                                                                    : ktype))
            covered = 1;
    }
    if (!covered &&
        mirrored_from_default(OSSL_OP_SIGNATURE, EVP_SIGNATURE_get0_name(sig))) {
        seen->mirrored++;
        return;
    }
    print_message("    signature %-10s %s\n", EVP_SIGNATURE_get0_name(sig),
                  covered ? "covered" : "NOT COVERED");
    seen->uncovered += !covered;
}

static void check_keymgmt(EVP_KEYMGMT *km, void *arg)
{
    struct seen *seen = arg;
    int k, covered = 0;

    if (!offered_by_offload(EVP_KEYMGMT_get0_provider(km)))
        return;
    seen->offered++;
    for (k = 0; k < K_COUNT; k++)
        covered |= EVP_KEYMGMT_is_a(km, keyspecs[k].type);
    if (!covered && mirrored_from_default(OSSL_OP_KEYMGMT, EVP_KEYMGMT_get0_name(km))) {
        seen->mirrored++;
        return;
    }
    print_message("    key type  %-10s %s\n", EVP_KEYMGMT_get0_name(km),
                  covered ? "covered" : "NOT COVERED");
    seen->uncovered += !covered;
}

static void test_coverage(void **state)
{
    struct seen sigs = {0, 0, 0}, kms = {0, 0, 0};

    (void)state;
    EVP_SIGNATURE_do_all_provided(env.libctx, check_signature, &sigs);
    EVP_KEYMGMT_do_all_provided(env.libctx, check_keymgmt, &kms);
    print_message(
        "    and %d signatures, %d key types mirrored from the default (test_mirror)\n",
        sigs.mirrored, kms.mirrored);
    assert_true(sigs.offered >= 4); /* RSA, ECDSA, ED25519, ED448 */
    assert_true(kms.offered >= 5);
    assert_int_equal(sigs.uncovered, 0);
    assert_int_equal(kms.uncovered, 0);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    int k;

    (void)state;
    if (!test_env_open(&env, NULL))
        return -1;
    defctx = test_ref_open(&defprov);
    if (defctx == NULL)
        return -1;
    for (k = 0; k < K_COUNT; k++) {
        okeys[k] = gen_key(&keyspecs[k], env.libctx, OFFLOAD_PROPQ);
        if (okeys[k] == NULL || !test_pkey_in(okeys[k], OFFLOAD_PROVIDER_NAME)) {
            fprintf(stderr, "%s: key not generated in offload\n", keyspecs[k].label);
            return -1;
        }
        dkeys[k] = move_key(okeys[k], defctx, NULL, EVP_PKEY_KEYPAIR);
        if (dkeys[k] == NULL || !test_pkey_in(dkeys[k], "default")) {
            fprintf(stderr, "%s: key not imported into default\n", keyspecs[k].label);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    int k;

    (void)state;
    for (k = 0; k < K_COUNT; k++) {
        EVP_PKEY_free(okeys[k]);
        EVP_PKEY_free(dkeys[k]);
        okeys[k] = dkeys[k] = NULL;
    }
    if (defctx != NULL) {
        test_ref_close(defctx, defprov);
        defctx = NULL;
    }
    test_env_close(&env);
    return 0;
}

int main(void)
{
    struct CMUnitTest tests[NCASES + K_COUNT + 1];
    size_t i, n = 0;

    memset(tests, 0, sizeof(tests));
    tests[n].name = "advertised algorithms are covered";
    tests[n++].test_func = test_coverage;
    for (i = 0; i < K_COUNT; i++) {
        tests[n].name = keyspecs[i].label;
        tests[n].test_func = test_keymgmt;
        tests[n++].initial_state = (void *)&keyspecs[i];
    }
    for (i = 0; i < NCASES; i++) {
        tests[n].name = cases[i].label;
        tests[n].test_func = test_sign_verify;
        tests[n++].initial_state = (void *)&cases[i];
    }
    return _cmocka_run_group_tests("cross", tests, n, group_setup, group_teardown);
}

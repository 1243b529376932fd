/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Elliptic-curve work through the offload provider.
 *
 * a) Cross-provider, both ways: ECDSA (P-256/384/521; digest-sign and
 *    EVP_PKEY_sign on a raw digest), Ed25519/Ed448 one-shot, ECDH
 *    (plain, cofactor mode, X9.63 KDF), X25519/X448; key management of
 *    EC keys (parameters, encoded public key, eq, dup, todata/fromdata)
 *    and the ephemeral key generation TLS does from a template key.
 *    Every key is generated in one provider and reaches the other by
 *    EVP_PKEY_todata/EVP_PKEY_fromdata; the provider behind each
 *    EVP_PKEY_CTX is asserted after its init.
 * b) ASYNC: 256 ECDSA P-256 signatures and 256 X25519 derivations in
 *    flight at once, driven by poll() on the one wait fd of each job,
 *    then by ASYNC_WAIT_CTX callbacks (called on worker threads, queued
 *    under a mutex, the main thread sleeping on a condition variable).
 *    Every result is checked with the default provider and the offload
 *    counters must show the work went to the workers.
 * c) Bad input fails cleanly with readable errors: a point not on the
 *    curve, a peer on another curve, a key of the wrong type, truncated
 *    and empty signatures.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>

#include "common.h"
#include "offload.h"

#define SIG_MAX         160
#define SECRET_MAX      160
#define N_ASYNC         256 /* jobs of each kind in flight */
#define N_PEERS         16  /* X25519 peers the derivations cycle through */

#define CTR(fam, st)  "offload-" fam "-" st
#define SIG_OFFLOADED CTR(OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_STAT_OFFLOADED)
#define SIG_FAILED    CTR(OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_STAT_FAILED)
#define KEX_OFFLOADED CTR(OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_STAT_OFFLOADED)
#define KEX_FAILED    CTR(OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_STAT_FAILED)

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

enum { K_P256, K_P384, K_P521, K_ED25519, K_ED448, K_X25519, K_X448, K_COUNT };

struct keyspec {
    const char *label;
    const char *type;
    const char *group; /* EC: curve as given to keygen */
    const char *ossl;  /* EC: OpenSSL's name of the curve, as "group" reads back */
    const char *md;    /* ECDSA: digest */
    size_t field;      /* EC: field size in bytes */
};

static const struct keyspec keyspecs[K_COUNT] = {
    [K_P256] = {"P-256", "EC", "P-256", "prime256v1", "SHA256", 32},
    [K_P384] = {"P-384", "EC", "P-384", "secp384r1", "SHA384", 48},
    [K_P521] = {"P-521", "EC", "P-521", "secp521r1", "SHA512", 66},
    [K_ED25519] = {"Ed25519", "ED25519", NULL, NULL, NULL, 0},
    [K_ED448] = {"Ed448", "ED448", NULL, NULL, NULL, 0},
    [K_X25519] = {"X25519", "X25519", NULL, NULL, NULL, 0},
    [K_X448] = {"X448", "X448", NULL, NULL, NULL, 0},
};

/* Where an operation runs: offload in env.libctx, or default alone in defctx. */
enum side { OFFL, DFLT };

static test_env env;
static OSSL_LIB_CTX *defctx;
static OSSL_PROVIDER *defprov;
/*
 * okey: generated in offload; otwin: its copy in defctx.
 * dkey: generated in defctx;  dtwin: its copy in offload.
 */
static EVP_PKEY *okey[K_COUNT], *otwin[K_COUNT], *dkey[K_COUNT], *dtwin[K_COUNT];

static const unsigned char message[] =
    "Elliptic-curve work through the accelerator: sign here, verify there.";

static OSSL_LIB_CTX *ctx_of(enum side w)
{
    return w == OFFL ? env.libctx : defctx;
}

static const char *propq_of(enum side w)
{
    return w == OFFL ? OFFLOAD_PROPQ : NULL;
}

static const char *prov_of(enum side w)
{
    return w == OFFL ? OFFLOAD_PROVIDER_NAME : "default";
}

static int ctx_in(const EVP_PKEY_CTX *pctx, const char *prov)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), prov) == 0;
}

static void assert_ctx_in(const EVP_PKEY_CTX *pctx, const char *prov)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    if (!ctx_in(pctx, prov))
        fail_msg("operation runs in %s, expected %s",
                 p != NULL ? OSSL_PROVIDER_get0_name(p) : "(no provider)", prov);
}

static EVP_PKEY *keygen_in(enum side w, const struct keyspec *ks)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(ctx_of(w), ks->type, propq_of(w));
    EVP_PKEY *pkey = NULL;

    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) != 1 ||
        (ks->group != NULL && EVP_PKEY_CTX_set_group_name(kctx, ks->group) != 1) ||
        EVP_PKEY_keygen(kctx, &pkey) != 1) {
        test_dump_errors(ks->label);
        pkey = NULL;
    } else if (!test_pkey_in(pkey, prov_of(w))) {
        printf("    %s key generated outside %s\n", ks->label, prov_of(w));
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(kctx);
    return pkey;
}

/* |src| exported with EVP_PKEY_todata and built by the key management of |w|. */
static EVP_PKEY *move_key(const EVP_PKEY *src, enum side w, int selection)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ictx = NULL;
    EVP_PKEY *dst = NULL;

    if (EVP_PKEY_todata(src, selection, &params) != 1)
        goto out;
    ictx =
        EVP_PKEY_CTX_new_from_name(ctx_of(w), EVP_PKEY_get0_type_name(src), propq_of(w));
    if (ictx == NULL || EVP_PKEY_fromdata_init(ictx) != 1 ||
        EVP_PKEY_fromdata(ictx, &dst, selection, params) != 1)
        dst = NULL;
    if (dst != NULL && !test_pkey_in(dst, prov_of(w))) {
        printf("    key moved to %s lives elsewhere\n", prov_of(w));
        EVP_PKEY_free(dst);
        dst = NULL;
    }
out:
    if (dst == NULL)
        test_dump_errors("move key");
    EVP_PKEY_CTX_free(ictx);
    OSSL_PARAM_free(params);
    return dst;
}

/* ------------------------------------------------------------------ */
/* Operations on one side                                              */
/* ------------------------------------------------------------------ */

/* One-shot digest signature (md NULL: EdDSA) by |w|; returns its length. */
static size_t dsign(enum side w, EVP_PKEY *key, const char *md, const OSSL_PARAM *params,
                    const unsigned char *m, size_t mlen, unsigned char *sig)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = 0;

    assert_non_null(mctx);
    assert_int_equal(
        EVP_DigestSignInit_ex(mctx, &pctx, md, ctx_of(w), propq_of(w), key, NULL), 1);
    assert_ctx_in(pctx, prov_of(w));
    if (params != NULL)
        assert_int_equal(EVP_PKEY_CTX_set_params(pctx, params), 1);
    assert_int_equal(EVP_DigestSign(mctx, NULL, &len, m, mlen), 1);
    assert_true(len > 0 && len <= SIG_MAX);
    if (EVP_DigestSign(mctx, sig, &len, m, mlen) != 1)
        test_dump_errors("EVP_DigestSign");
    else
        assert_true(len > 0 && len <= SIG_MAX);
    EVP_MD_CTX_free(mctx);
    return len;
}

/* One-shot digest verification by |w|: EVP_DigestVerify's return value. */
static int dverify(enum side w, EVP_PKEY *key, const char *md, const unsigned char *m,
                   size_t mlen, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc;

    assert_non_null(mctx);
    assert_int_equal(
        EVP_DigestVerifyInit_ex(mctx, &pctx, md, ctx_of(w), propq_of(w), key, NULL), 1);
    assert_ctx_in(pctx, prov_of(w));
    rc = EVP_DigestVerify(mctx, sig, siglen, m, mlen);
    EVP_MD_CTX_free(mctx);
    return rc;
}

/* EVP_PKEY_sign of a raw digest by |w|; returns the signature's length. */
static size_t rsign(enum side w, EVP_PKEY *key, const char *md, const unsigned char *dgst,
                    size_t dlen, unsigned char *sig)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ctx_of(w), key, propq_of(w));
    EVP_MD *m = EVP_MD_fetch(ctx_of(w), md, NULL);
    size_t len = 0;

    assert_non_null(pctx);
    assert_non_null(m);
    assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
    assert_ctx_in(pctx, prov_of(w));
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, m), 1);
    assert_int_equal(EVP_PKEY_sign(pctx, NULL, &len, dgst, dlen), 1);
    assert_true(len > 0 && len <= SIG_MAX);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &len, dgst, dlen), 1);
    EVP_MD_free(m);
    EVP_PKEY_CTX_free(pctx);
    return len;
}

static int rverify(enum side w, EVP_PKEY *key, const char *md, const unsigned char *dgst,
                   size_t dlen, const unsigned char *sig, size_t siglen)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ctx_of(w), key, propq_of(w));
    EVP_MD *m = EVP_MD_fetch(ctx_of(w), md, NULL);
    int rc;

    assert_non_null(pctx);
    assert_non_null(m);
    assert_int_equal(EVP_PKEY_verify_init(pctx), 1);
    assert_ctx_in(pctx, prov_of(w));
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, m), 1);
    rc = EVP_PKEY_verify(pctx, sig, siglen, dgst, dlen);
    EVP_MD_free(m);
    EVP_PKEY_CTX_free(pctx);
    return rc;
}

/* Derivation by |w| of |priv| with |peer|, |params| set first; returns the length. */
static size_t derive(enum side w, EVP_PKEY *priv, EVP_PKEY *peer,
                     const OSSL_PARAM *params, unsigned char *out)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ctx_of(w), priv, propq_of(w));
    size_t len = 0;

    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, prov_of(w));
    if (params != NULL)
        assert_int_equal(EVP_PKEY_CTX_set_params(pctx, params), 1);
    if (EVP_PKEY_derive_set_peer(pctx, peer) != 1) {
        test_dump_errors("EVP_PKEY_derive_set_peer");
        fail_msg("set_peer refused in %s", prov_of(w));
    }
    assert_int_equal(EVP_PKEY_derive(pctx, NULL, &len), 1);
    assert_true(len > 0 && len <= SECRET_MAX);
    assert_int_equal(EVP_PKEY_derive(pctx, out, &len), 1);
    EVP_PKEY_CTX_free(pctx);
    return len;
}

static void print_hex(const char *label, const unsigned char *b, size_t n)
{
    size_t i;

    printf("    %s (%zu bytes): ", label, n);
    for (i = 0; i < n && i < 24; i++)
        printf("%02x", b[i]);
    printf("%s\n", n > 24 ? "..." : "");
}

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
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[k], OFFLOAD_PROPQ);
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
    xkdf = EVP_KDF_fetch(defctx, "X963KDF", NULL);
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
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[k], OFFLOAD_PROPQ);
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

/* ------------------------------------------------------------------ */
/* a) key management                                                   */
/* ------------------------------------------------------------------ */

static void assert_int_params_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_BITS, OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PKEY_PARAM_MAX_SIZE};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int va = -1, vb = -2;

        assert_int_equal(EVP_PKEY_get_int_param(a, names[i], &va), 1);
        assert_int_equal(EVP_PKEY_get_int_param(b, names[i], &vb), 1);
        printf("    %s = %d\n", names[i], va);
        assert_true(va > 0);
        assert_int_equal(va, vb);
    }
}

/* A key with only the parameters of |ks| (the curve), built in offload. */
static EVP_PKEY *params_only(const struct keyspec *ks)
{
    EVP_PKEY_CTX *ictx = EVP_PKEY_CTX_new_from_name(env.libctx, ks->type, OFFLOAD_PROPQ);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM p[2];

    assert_non_null(ks->group);
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)ks->group,
                                            0);
    p[1] = OSSL_PARAM_construct_end();
    assert_non_null(ictx);
    assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ictx, &pkey, EVP_PKEY_KEY_PARAMETERS, p), 1);
    assert_true(test_pkey_in(pkey, OFFLOAD_PROVIDER_NAME));
    EVP_PKEY_CTX_free(ictx);
    return pkey;
}

/*
 * A key of offload to set an encoded public key into: EC, a key with
 * the curve only; X25519/X448, which have no parameters-only keys (in
 * the default provider neither), a public key made from another key's
 * raw bytes.
 */
static EVP_PKEY *holder_key(const struct keyspec *ks, EVP_PKEY *other)
{
    unsigned char raw[64];
    size_t len = sizeof(raw);
    EVP_PKEY *pkey;

    if (ks->group != NULL)
        return params_only(ks);
    assert_int_equal(EVP_PKEY_get_raw_public_key(other, raw, &len), 1);
    pkey = EVP_PKEY_new_raw_public_key_ex(env.libctx, ks->type, OFFLOAD_PROPQ, raw, len);
    assert_non_null(pkey);
    assert_true(test_pkey_in(pkey, OFFLOAD_PROVIDER_NAME));
    return pkey;
}

/*
 * The ephemeral key TLS makes for a key share: EVP_PKEY_CTX_new_from_pkey
 * on the peer's key (a template: its parameters), keygen, then derive.
 */
static void ephemeral_from_template(const struct keyspec *ks, EVP_PKEY *templ,
                                    EVP_PKEY *peer, EVP_PKEY *peer_twin)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, templ, NULL);
    EVP_PKEY *eph = NULL, *eph_twin;
    unsigned char a[SECRET_MAX], b[SECRET_MAX];
    size_t la, lb;

    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_keygen_init(pctx), 1);
    if (EVP_PKEY_keygen(pctx, &eph) != 1) {
        test_dump_errors("keygen from a template");
        fail_msg("%s: EVP_PKEY_keygen from a template key failed", ks->label);
    }
    EVP_PKEY_CTX_free(pctx);
    assert_true(test_pkey_in(eph, OFFLOAD_PROVIDER_NAME));
    assert_true(EVP_PKEY_is_a(eph, ks->type));
    assert_int_equal(EVP_PKEY_parameters_eq(eph, peer), 1);
    assert_int_not_equal(EVP_PKEY_eq(eph, peer), 1); /* a new key, not a copy */
    ERR_clear_error();
    if (ks->ossl != NULL) {
        char name[64];

        assert_int_equal(EVP_PKEY_get_utf8_string_param(eph, OSSL_PKEY_PARAM_GROUP_NAME,
                                                        name, sizeof(name), NULL),
                         1);
        assert_string_equal(name, ks->ossl);
    }
    /* The key share works: offload (eph, peer) = default (peer's twin, eph's twin). */
    eph_twin = move_key(eph, DFLT, EVP_PKEY_PUBLIC_KEY);
    assert_non_null(eph_twin);
    la = derive(OFFL, eph, peer, NULL, a);
    lb = derive(DFLT, peer_twin, eph_twin, NULL, b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    EVP_PKEY_free(eph_twin);
    EVP_PKEY_free(eph);
}

static void test_keymgmt(void **state)
{
    const struct keyspec *ks = *state;
    int k = (int)(ks - keyspecs);
    EVP_PKEY *key = okey[k], *twin = otwin[k], *dup, *back, *pub, *tmpl;
    unsigned char *enc = NULL, *enc2 = NULL;
    size_t enclen, enclen2;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ictx;

    assert_true(test_pkey_in(key, OFFLOAD_PROVIDER_NAME));
    assert_true(test_pkey_in(twin, "default"));
    if (ks->ossl != NULL) {
        char name[64];
        int named = 0;

        assert_int_equal(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                                        name, sizeof(name), NULL),
                         1);
        assert_string_equal(name, ks->ossl);
        /* A named curve, not explicit parameters. */
        {
            char enc_name[32];

            assert_int_equal(
                EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, enc_name,
                                               sizeof(enc_name), NULL),
                1);
            named = strcmp(enc_name, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
        }
        assert_true(named);
    }
    assert_int_params_equal(key, twin);

    /* Encoded public key: the same as the twin's; set into a parameters-only key. */
    enclen = EVP_PKEY_get1_encoded_public_key(key, &enc);
    enclen2 = EVP_PKEY_get1_encoded_public_key(twin, &enc2);
    assert_true(enclen > 0);
    assert_int_equal(enclen, enclen2);
    assert_memory_equal(enc, enc2, enclen);
    if (ks->field != 0) {
        assert_int_equal(enclen, 1 + 2 * ks->field);
        assert_int_equal(enc[0], 0x04);
    } else {
        assert_int_equal(enclen, k == K_X25519 ? 32 : 56);
    }
    pub = holder_key(ks, dtwin[k]);
    assert_int_not_equal(EVP_PKEY_eq(pub, key), 1);
    ERR_clear_error();
    assert_int_equal(EVP_PKEY_set1_encoded_public_key(pub, enc, enclen), 1);
    assert_true(test_pkey_in(pub, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(EVP_PKEY_eq(pub, key), 1);
    OPENSSL_free(enc2);
    enc2 = NULL;
    assert_int_equal(EVP_PKEY_get1_encoded_public_key(pub, &enc2), enclen);
    assert_memory_equal(enc, enc2, enclen);
    printf("    %s: encoded-pub-key of %zu bytes, equal to the default twin's; set into "
           "another offload key: it becomes equal\n",
           ks->label, enclen);

    /* eq across providers, dup, todata/fromdata round trip. */
    assert_int_equal(EVP_PKEY_eq(key, twin), 1);
    assert_int_equal(EVP_PKEY_eq(key, dtwin[k]), 0);
    ERR_clear_error();
    dup = EVP_PKEY_dup(key);
    assert_non_null(dup);
    assert_true(test_pkey_in(dup, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(EVP_PKEY_eq(dup, key), 1);
    assert_int_equal(EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &params), 1);
    ictx = EVP_PKEY_CTX_new_from_name(env.libctx, ks->type, OFFLOAD_PROPQ);
    assert_non_null(ictx);
    assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
    back = NULL;
    assert_int_equal(EVP_PKEY_fromdata(ictx, &back, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX_free(ictx);
    assert_true(test_pkey_in(back, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(EVP_PKEY_eq(back, key), 1);
    if (ks->field != 0) {
        BIGNUM *p1 = NULL, *p2 = NULL;

        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &p1), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(back, OSSL_PKEY_PARAM_PRIV_KEY, &p2), 1);
        assert_int_equal(BN_cmp(p1, p2), 0);
        assert_false(BN_is_zero(p1));
        BN_clear_free(p1);
        BN_clear_free(p2);
    } else {
        unsigned char r1[64], r2[64];
        size_t l1 = sizeof(r1), l2 = sizeof(r2);

        assert_int_equal(EVP_PKEY_get_raw_private_key(key, r1, &l1), 1);
        assert_int_equal(EVP_PKEY_get_raw_private_key(back, r2, &l2), 1);
        assert_int_equal(l1, l2);
        assert_memory_equal(r1, r2, l1);
    }
    /* The copies work: dup and the round-tripped key derive what the original does. */
    {
        unsigned char a[SECRET_MAX], b[SECRET_MAX];
        size_t la = derive(OFFL, dup, dtwin[k], NULL, a);
        size_t lb = derive(OFFL, back, dtwin[k], NULL, b);

        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
    }
    printf("    %s: EVP_PKEY_eq with the default twin, EVP_PKEY_dup, todata/fromdata "
           "round trip: ok\n",
           ks->label);

    /* TLS's ephemeral key: from the peer's public key, and from a parameters-only key. */
    ephemeral_from_template(ks, pub, pub, twin);
    if (ks->field != 0) {
        tmpl = params_only(ks);
        ephemeral_from_template(ks, tmpl, pub, twin);
        EVP_PKEY_free(tmpl);
    }
    printf("    %s: ephemeral keygen from a template key (EVP_PKEY_CTX_new_from_pkey) "
           "in offload, derive ok\n",
           ks->label);

    OSSL_PARAM_free(params);
    OPENSSL_free(enc);
    OPENSSL_free(enc2);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(dup);
    EVP_PKEY_free(back);
}

/* ------------------------------------------------------------------ */
/* b) ASYNC: 256 signatures and 256 derivations in flight              */
/* ------------------------------------------------------------------ */

enum task_kind { T_SIGN, T_DERIVE };
enum task_state { S_NEW, S_PAUSED, S_DONE };

/* Everything a job touches is here, on the heap: its own frame stays small. */
struct atask {
    enum task_kind kind;
    EVP_PKEY *key, *peer; /* borrowed */
    unsigned char msg[64];
    size_t msglen;
    unsigned char out[SIG_MAX];
    size_t outlen;
    const unsigned char *expect; /* T_DERIVE: the default provider's secret */
    size_t expectlen;
    int ret; /* the job's return value; -1: ASYNC_ERR */
    /* driver */
    size_t idx;
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    enum task_state state;
    int eagain; /* paused because the queue was full (callback mode) */
};

static int atask_job(void *arg)
{
    struct atask *t = *(struct atask **)arg;
    EVP_MD_CTX *mctx;
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    t->outlen = sizeof(t->out);
    if (t->kind == T_DERIVE) {
        pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, t->key, OFFLOAD_PROPQ);
        ok = pctx != NULL && EVP_PKEY_derive_init(pctx) == 1 &&
             ctx_in(pctx, OFFLOAD_PROVIDER_NAME) &&
             EVP_PKEY_derive_set_peer(pctx, t->peer) == 1 &&
             EVP_PKEY_derive(pctx, t->out, &t->outlen) == 1;
        EVP_PKEY_CTX_free(pctx);
        return ok;
    }
    mctx = EVP_MD_CTX_new();
    ok = mctx != NULL &&
         EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", env.libctx, OFFLOAD_PROPQ, t->key,
                               NULL) == 1 &&
         ctx_in(pctx, OFFLOAD_PROVIDER_NAME) &&
         EVP_DigestSign(mctx, t->out, &t->outlen, t->msg, t->msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

/* Starts or resumes |t|; returns its new state. */
static enum task_state atask_step(struct atask *t)
{
    int ret = 0;

    switch (ASYNC_start_job(&t->job, t->wctx, &ret, atask_job, &t, sizeof(t))) {
    case ASYNC_PAUSE:
        t->state = S_PAUSED;
        return S_PAUSED;
    case ASYNC_FINISH:
        t->ret = ret;
        break;
    case ASYNC_NO_JOBS:
        fail_msg("task %zu: ASYNC_NO_JOBS", t->idx);
        break;
    case ASYNC_ERR:
    default:
        t->ret = -1;
        break;
    }
    if (t->ret != 1)
        test_dump_errors("async task");
    t->state = S_DONE;
    t->job = NULL;
    return S_DONE;
}

struct async_set {
    struct atask *tasks;
    size_t n;
    EVP_PKEY *xpriv, *xpeers[N_PEERS];  /* X25519 in offload */
    unsigned char secrets[N_PEERS][32]; /* their secrets, by default */
};

static void async_set_free(struct async_set *S)
{
    size_t i;

    for (i = 0; i < S->n; i++)
        ASYNC_WAIT_CTX_free(S->tasks[i].wctx);
    free(S->tasks);
    EVP_PKEY_free(S->xpriv);
    for (i = 0; i < N_PEERS; i++)
        EVP_PKEY_free(S->xpeers[i]);
    memset(S, 0, sizeof(*S));
}

/* N_ASYNC signing tasks with okey[P-256] and N_ASYNC X25519 tasks, interleaved. */
static void async_set_make(struct async_set *S)
{
    size_t i;
    EVP_PKEY *xpriv_twin;

    memset(S, 0, sizeof(*S));
    S->n = 2 * N_ASYNC;
    S->tasks = calloc(S->n, sizeof(*S->tasks));
    assert_non_null(S->tasks);
    S->xpriv = keygen_in(OFFL, &keyspecs[K_X25519]);
    assert_non_null(S->xpriv);
    xpriv_twin = move_key(S->xpriv, DFLT, EVP_PKEY_KEYPAIR);
    assert_non_null(xpriv_twin);
    for (i = 0; i < N_PEERS; i++) {
        EVP_PKEY *dpeer = keygen_in(DFLT, &keyspecs[K_X25519]);
        unsigned char s[SECRET_MAX];

        assert_non_null(dpeer);
        S->xpeers[i] = move_key(dpeer, OFFL, EVP_PKEY_PUBLIC_KEY);
        assert_non_null(S->xpeers[i]);
        assert_int_equal(derive(DFLT, xpriv_twin, dpeer, NULL, s), 32);
        memcpy(S->secrets[i], s, 32);
        EVP_PKEY_free(dpeer);
    }
    EVP_PKEY_free(xpriv_twin);
    for (i = 0; i < S->n; i++) {
        struct atask *t = &S->tasks[i];

        t->idx = i;
        t->kind = i % 2 == 0 ? T_SIGN : T_DERIVE;
        if (t->kind == T_SIGN) {
            t->key = okey[K_P256];
            t->msglen = (size_t)snprintf((char *)t->msg, sizeof(t->msg),
                                         "async ECDSA P-256 message number %zu", i / 2);
        } else {
            t->key = S->xpriv;
            t->peer = S->xpeers[(i / 2) % N_PEERS];
            t->expect = S->secrets[(i / 2) % N_PEERS];
            t->expectlen = 32;
        }
        t->wctx = ASYNC_WAIT_CTX_new();
        assert_non_null(t->wctx);
    }
}

/* Every result checked with the default provider; returns how many were right. */
static void async_set_check(const struct async_set *S, const char *mode)
{
    size_t i, sign_ok = 0, derive_ok = 0;

    for (i = 0; i < S->n; i++) {
        const struct atask *t = &S->tasks[i];
        int ok = t->state == S_DONE && t->ret == 1;

        if (ok && t->kind == T_SIGN)
            ok = dverify(DFLT, otwin[K_P256], "SHA256", t->msg, t->msglen, t->out,
                         t->outlen) == 1;
        else if (ok)
            ok = t->outlen == t->expectlen && memcmp(t->out, t->expect, t->outlen) == 0;
        if (!ok)
            printf("    %s: task %zu (%s) FAILED (state %d, ret %d)\n", mode, i,
                   t->kind == T_SIGN ? "sign" : "derive", (int)t->state, t->ret);
        if (t->kind == T_SIGN)
            sign_ok += ok;
        else
            derive_ok += ok;
    }
    ERR_clear_error();
    printf("    %s: %zu of %d ECDSA P-256 signatures verified by the default provider, "
           "%zu of %d X25519 secrets equal to the default provider's\n",
           mode, sign_ok, N_ASYNC, derive_ok, N_ASYNC);
    assert_int_equal(sign_ok, N_ASYNC);
    assert_int_equal(derive_ok, N_ASYNC);
}

struct counters {
    uint64_t sig_off, sig_fail, kex_off, kex_fail;
};

static void counters_read(struct counters *c)
{
    c->sig_off = test_counter(env.offload, SIG_OFFLOADED);
    c->sig_fail = test_counter(env.offload, SIG_FAILED);
    c->kex_off = test_counter(env.offload, KEX_OFFLOADED);
    c->kex_fail = test_counter(env.offload, KEX_FAILED);
    assert_true(c->sig_off != UINT64_MAX && c->sig_fail != UINT64_MAX &&
                c->kex_off != UINT64_MAX && c->kex_fail != UINT64_MAX);
}

static void counters_assert(const struct counters *a, const struct counters *b,
                            const char *mode)
{
    printf("    %s: counters: signature offloaded +%llu failed +%llu; keyexch offloaded "
           "+%llu failed +%llu\n",
           mode, (unsigned long long)(b->sig_off - a->sig_off),
           (unsigned long long)(b->sig_fail - a->sig_fail),
           (unsigned long long)(b->kex_off - a->kex_off),
           (unsigned long long)(b->kex_fail - a->kex_fail));
    /* The first job of a burst may stay inline by policy; most must not. */
    assert_true(b->sig_off - a->sig_off >= N_ASYNC / 2);
    assert_true(b->kex_off - a->kex_off >= N_ASYNC / 2);
    assert_true(b->sig_off - a->sig_off <= N_ASYNC);
    assert_true(b->kex_off - a->kex_off <= N_ASYNC);
    assert_int_equal(b->sig_fail - a->sig_fail, 0);
    assert_int_equal(b->kex_fail - a->kex_fail, 0);
}

/* fd mode: start everything, then poll() the one wait fd of each paused job. */
static void test_async_fd(void **state)
{
    struct async_set S;
    struct counters c0, c1;
    struct pollfd *pfd;
    size_t *owner, i, done = 0, paused_max = 0, polls = 0, woken = 0;

    (void)state;
    async_set_make(&S);
    pfd = calloc(S.n, sizeof(*pfd));
    owner = calloc(S.n, sizeof(*owner));
    assert_non_null(pfd);
    assert_non_null(owner);
    counters_read(&c0);
    for (i = 0; i < S.n; i++)
        done += atask_step(&S.tasks[i]) == S_DONE;
    while (done < S.n) {
        size_t npfd = 0;
        int rc;

        for (i = 0; i < S.n; i++) {
            struct atask *t = &S.tasks[i];
            OSSL_ASYNC_FD fd;
            size_t nfds = 0;

            if (t->state != S_PAUSED)
                continue;
            /* The provider gives each wait ctx exactly one fd. */
            assert_int_equal(ASYNC_WAIT_CTX_get_all_fds(t->wctx, NULL, &nfds), 1);
            if (nfds != 1)
                fail_msg("task %zu paused with %zu wait fds, expected 1", i, nfds);
            assert_int_equal(ASYNC_WAIT_CTX_get_all_fds(t->wctx, &fd, &nfds), 1);
            pfd[npfd].fd = fd;
            pfd[npfd].events = POLLIN;
            pfd[npfd].revents = 0;
            owner[npfd++] = i;
        }
        if (npfd > paused_max)
            paused_max = npfd;
        rc = poll(pfd, npfd, POLL_TIMEOUT_MS);
        polls++;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            fail_msg("poll: %s", strerror(errno));
        if (rc == 0)
            fail_msg("no wait fd readable within %d ms, %zu jobs paused", POLL_TIMEOUT_MS,
                     npfd);
        for (i = 0; i < npfd; i++) {
            if (pfd[i].revents == 0)
                continue;
            if ((pfd[i].revents & POLLIN) == 0)
                fail_msg("wait fd %d: revents 0x%x", pfd[i].fd, (unsigned)pfd[i].revents);
            woken++;
            done += atask_step(&S.tasks[owner[i]]) == S_DONE;
        }
    }
    counters_read(&c1);
    printf("    fd mode: %zu jobs, at most %zu paused at once, %zu poll() calls, %zu "
           "resumes on a readable fd\n",
           S.n, paused_max, polls, woken);
    async_set_check(&S, "fd mode");
    counters_assert(&c0, &c1, "fd mode");
    assert_true(paused_max >= N_ASYNC); /* most of them were in flight together */
    free(pfd);
    free(owner);
    async_set_free(&S);
    ASYNC_cleanup_thread();
}

/* Callback mode: the callbacks queue the job's index; main sleeps on a condvar. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t *ring; /* indexes of jobs to resume */
    size_t cap, head, count;
    size_t calls, on_main;
    pthread_t main_thread;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static int wake_cb(void *arg)
{
    const struct atask *t = arg;

    pthread_mutex_lock(&Q.lock);
    Q.calls++;
    if (pthread_equal(pthread_self(), Q.main_thread))
        Q.on_main++;
    if (Q.count < Q.cap) {
        Q.ring[(Q.head + Q.count) % Q.cap] = t->idx;
        Q.count++;
    }
    pthread_cond_signal(&Q.cond);
    pthread_mutex_unlock(&Q.lock);
    return 1;
}

/* The next job to resume; (size_t)-1 after |ms| ms without a callback. */
static size_t q_pop(long ms)
{
    struct timespec dl;
    size_t idx = (size_t)-1;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&Q.lock);
    while (Q.count == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&Q.cond, &Q.lock, &dl);
    if (Q.count > 0) {
        idx = Q.ring[Q.head];
        Q.head = (Q.head + 1) % Q.cap;
        Q.count--;
    }
    pthread_mutex_unlock(&Q.lock);
    return idx;
}

struct cb_stats {
    size_t pauses;  /* paused with a callback to come */
    size_t eagains; /* paused with EAGAIN: the queue was full, retry later */
    size_t waiting; /* paused with EAGAIN and not yet retried */
};

/* Records a pause: EAGAIN (queue full: retry later, no callback) or a callback to come.
 */
static void note_pause(struct atask *t, struct cb_stats *cs)
{
    int st = ASYNC_WAIT_CTX_get_status(t->wctx);

    t->eagain = st == ASYNC_STATUS_EAGAIN;
    if (t->eagain) {
        cs->eagains++;
        cs->waiting++;
    } else if (st == ASYNC_STATUS_OK)
        cs->pauses++;
    else
        fail_msg("task %zu paused with wait ctx status %d", t->idx, st);
}

static void test_async_callback(void **state)
{
    struct async_set S;
    struct counters c0, c1;
    struct cb_stats cs = {0, 0, 0};
    size_t i, done = 0;

    (void)state;
    async_set_make(&S);
    pthread_mutex_lock(&Q.lock);
    Q.cap = S.n;
    Q.ring = calloc(Q.cap, sizeof(*Q.ring));
    Q.head = Q.count = Q.calls = Q.on_main = 0;
    Q.main_thread = pthread_self();
    pthread_mutex_unlock(&Q.lock);
    assert_non_null(Q.ring);
    for (i = 0; i < S.n; i++)
        assert_int_equal(
            ASYNC_WAIT_CTX_set_callback(S.tasks[i].wctx, wake_cb, &S.tasks[i]), 1);

    counters_read(&c0);
    for (i = 0; i < S.n; i++) {
        if (atask_step(&S.tasks[i]) == S_DONE)
            done++;
        else
            note_pause(&S.tasks[i], &cs);
    }
    while (done < S.n) {
        /* Jobs refused by a full queue are retried after a short sleep, never spun. */
        size_t idx = q_pop(cs.waiting > 0 ? 1 : POLL_TIMEOUT_MS);
        struct atask *t;

        if (idx == (size_t)-1) {
            if (cs.waiting == 0)
                fail_msg("no callback within %d ms; %zu of %zu jobs done",
                         POLL_TIMEOUT_MS, done, S.n);
            for (i = 0; i < S.n; i++) {
                t = &S.tasks[i];
                if (t->state != S_PAUSED || !t->eagain)
                    continue;
                t->eagain = 0;
                cs.waiting--;
                if (atask_step(t) == S_DONE)
                    done++;
                else
                    note_pause(t, &cs);
            }
            continue;
        }
        assert_true(idx < S.n);
        t = &S.tasks[idx];
        /* A callback only for a paused job waiting for one. */
        if (t->state != S_PAUSED || t->eagain)
            fail_msg("callback for task %zu, which is not waiting for one (state %d)",
                     idx, (int)t->state);
        if (atask_step(t) == S_DONE)
            done++;
        else
            note_pause(t, &cs);
    }
    counters_read(&c1);
    pthread_mutex_lock(&Q.lock);
    printf("    callback mode: %zu jobs, %zu pauses, %zu callbacks (%zu on the main "
           "thread), %zu queue-full retries\n",
           S.n, cs.pauses, Q.calls, Q.on_main, cs.eagains);
    assert_int_equal(Q.calls, cs.pauses); /* one callback per pause, no extra */
    assert_int_equal(Q.count, 0);
    assert_int_equal(Q.on_main, 0); /* callbacks come from the workers */
    free(Q.ring);
    Q.ring = NULL;
    Q.cap = 0;
    pthread_mutex_unlock(&Q.lock);
    async_set_check(&S, "callback mode");
    counters_assert(&c0, &c1, "callback mode");
    assert_true(cs.pauses >= N_ASYNC); /* most jobs waited for a worker */
    async_set_free(&S);
    ASYNC_cleanup_thread();
}

/* ------------------------------------------------------------------ */
/* c) bad input                                                        */
/* ------------------------------------------------------------------ */

/* 1 when |s| is a non-empty line of printable ASCII. */
static int readable(const char *s)
{
    const char *p;

    if (s == NULL || *s == '\0')
        return 0;
    for (p = s; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    return 1;
}

/*
 * Drains the error queue, printing each error; returns how many there
 * were. Every error must have a readable reason string.
 */
static size_t drain_errors(const char *what)
{
    unsigned long e;
    const char *file, *func, *data;
    int line, flags;
    size_t n = 0;

    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        const char *lib = ERR_lib_error_string(e);

        n++;
        printf("    %s: error %zu: lib \"%s\", reason \"%s\"%s%s (%s)\n", what, n,
               lib != NULL ? lib : "(null)", reason != NULL ? reason : "(null)",
               (flags & ERR_TXT_STRING) && data != NULL && *data != '\0' ? ": " : "",
               (flags & ERR_TXT_STRING) && data != NULL ? data : "",
               func != NULL ? func : "?");
        if (!readable(reason))
            fail_msg("%s: error 0x%lx has no readable reason string", what, e);
    }
    return n;
}

/* The operation failed: at least one error queued, all readable. */
static void expect_error(const char *what)
{
    if (drain_errors(what) == 0)
        fail_msg("%s failed without an error on the queue", what);
}

static void test_bad_point(void **state)
{
    const struct keyspec *ks = &keyspecs[K_P256];
    unsigned char *enc = NULL;
    size_t enclen;
    EVP_PKEY *bad = NULL, *refbad = NULL;
    EVP_PKEY_CTX *ictx;
    OSSL_PARAM p[3];
    int rc;

    (void)state;
    enclen = EVP_PKEY_get1_encoded_public_key(okey[K_P256], &enc);
    assert_int_equal(enclen, 65);
    enc[64] ^= 0x01; /* y + 1 (or - 1): not on the curve */
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)ks->group,
                                            0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, enc, enclen);
    p[2] = OSSL_PARAM_construct_end();

    /* The default provider alone refuses the point: it is really off the curve. */
    ictx = EVP_PKEY_CTX_new_from_name(defctx, "EC", NULL);
    assert_non_null(ictx);
    assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
    assert_int_not_equal(EVP_PKEY_fromdata(ictx, &refbad, EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(ictx);
    ERR_clear_error();

    ictx = EVP_PKEY_CTX_new_from_name(env.libctx, "EC", OFFLOAD_PROPQ);
    assert_non_null(ictx);
    assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
    rc = EVP_PKEY_fromdata(ictx, &bad, EVP_PKEY_PUBLIC_KEY, p);
    EVP_PKEY_CTX_free(ictx);
    if (rc != 1) {
        assert_null(bad);
        expect_error("point not on the curve: EVP_PKEY_fromdata into offload");
    } else {
        /* Imported after all: then deriving with it must fail. */
        EVP_PKEY_CTX *pctx =
            EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[K_P256], OFFLOAD_PROPQ);
        unsigned char out[SECRET_MAX];
        size_t outlen = sizeof(out);

        printf("    point not on the curve: offload imported it; the derive must fail\n");
        assert_true(test_pkey_in(bad, OFFLOAD_PROVIDER_NAME));
        assert_non_null(pctx);
        assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
        assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
        rc = EVP_PKEY_derive_set_peer(pctx, bad) == 1 &&
             EVP_PKEY_derive(pctx, out, &outlen) == 1;
        assert_false(rc);
        expect_error("point not on the curve: derive in offload");
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(bad);
    }
    OPENSSL_free(enc);
}

static void test_wrong_curve_peer(void **state)
{
    EVP_PKEY_CTX *pctx =
        EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[K_P256], OFFLOAD_PROPQ);
    EVP_PKEY *peer384 = move_key(okey[K_P384], OFFL, EVP_PKEY_PUBLIC_KEY);
    unsigned char out[SECRET_MAX];
    size_t outlen = sizeof(out);

    (void)state;
    assert_non_null(pctx);
    assert_non_null(peer384);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_true(EVP_PKEY_derive_set_peer(pctx, peer384) <= 0);
    expect_error("P-384 peer for a P-256 key: EVP_PKEY_derive_set_peer");
    /* The context has no peer: deriving fails too, cleanly. */
    assert_true(EVP_PKEY_derive(pctx, out, &outlen) <= 0);
    expect_error("derive without a peer");
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(peer384);
}

static void test_wrong_key_type(void **state)
{
    EVP_PKEY_CTX *pctx;
    unsigned char out[SECRET_MAX];
    size_t outlen = sizeof(out);

    (void)state;
    /* An X25519 peer for ECDH ... */
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[K_P256], OFFLOAD_PROPQ);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_true(EVP_PKEY_derive_set_peer(pctx, okey[K_X25519]) <= 0);
    expect_error("X25519 peer for ECDH: EVP_PKEY_derive_set_peer");
    assert_true(EVP_PKEY_derive(pctx, out, &outlen) <= 0);
    ERR_clear_error();
    EVP_PKEY_CTX_free(pctx);
    /* ... and an EC peer for X25519. */
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, okey[K_X25519], OFFLOAD_PROPQ);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_true(EVP_PKEY_derive_set_peer(pctx, okey[K_P256]) <= 0);
    expect_error("EC peer for X25519: EVP_PKEY_derive_set_peer");
    EVP_PKEY_CTX_free(pctx);
    /* An X25519 key cannot sign with ECDSA: the signature init refuses it. */
    {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();

        assert_non_null(mctx);
        assert_int_not_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA256", env.libctx,
                                                   OFFLOAD_PROPQ, okey[K_X25519], NULL),
                             1);
        expect_error("X25519 key for a signature");
        EVP_MD_CTX_free(mctx);
    }
}

/*
 * A verification that must not succeed: offload's verdict equals the
 * default provider's, and whatever errors either queues are readable.
 */
static void bad_verify(const char *what, int k, const char *md, const unsigned char *sig,
                       size_t siglen)
{
    char label[128];
    int ro, rd;
    size_t eo, ed;

    ro = dverify(OFFL, dtwin[k], md, message, sizeof(message), sig, siglen);
    snprintf(label, sizeof(label), "%s (offload)", what);
    eo = drain_errors(label);
    rd = dverify(DFLT, dkey[k], md, message, sizeof(message), sig, siglen);
    snprintf(label, sizeof(label), "%s (default)", what);
    ed = drain_errors(label);
    printf("    %s: EVP_DigestVerify returns %d in offload (%zu errors), %d in default "
           "(%zu errors)\n",
           what, ro, eo, rd, ed);
    assert_int_not_equal(ro, 1);
    assert_int_equal(ro, rd);
    assert_int_equal(eo > 0, ed > 0);
}

static void test_bad_signatures(void **state)
{
    unsigned char sig[SIG_MAX];
    size_t len;

    (void)state;
    len = dsign(DFLT, dkey[K_P256], "SHA256", NULL, message, sizeof(message), sig);
    assert_int_equal(
        dverify(OFFL, dtwin[K_P256], "SHA256", message, sizeof(message), sig, len), 1);
    bad_verify("ECDSA signature truncated by one byte", K_P256, "SHA256", sig, len - 1);
    bad_verify("ECDSA signature truncated to half", K_P256, "SHA256", sig, len / 2);
    bad_verify("ECDSA signature of 2 bytes (empty SEQUENCE)", K_P256, "SHA256",
               (const unsigned char *)"\x30\x00", 2);
    bad_verify("empty ECDSA signature", K_P256, "SHA256", sig, 0);

    len = dsign(DFLT, dkey[K_ED25519], NULL, NULL, message, sizeof(message), sig);
    assert_int_equal(len, 64);
    bad_verify("Ed25519 signature truncated to 63 bytes", K_ED25519, NULL, sig, 63);
    bad_verify("Ed25519 signature truncated to 32 bytes", K_ED25519, NULL, sig, 32);
    bad_verify("empty Ed25519 signature", K_ED25519, NULL, sig, 0);
}

/* ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    int i;

    (void)state;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule). */
    if (!test_env_open(&env, "busy_inline = 0\n"))
        return -1;
    defctx = test_ref_open(&defprov);
    if (defctx == NULL)
        return -1;
    for (i = 0; i < K_COUNT; i++) {
        okey[i] = keygen_in(OFFL, &keyspecs[i]);
        dkey[i] = keygen_in(DFLT, &keyspecs[i]);
        if (okey[i] == NULL || dkey[i] == NULL)
            return -1;
        otwin[i] = move_key(okey[i], DFLT, EVP_PKEY_KEYPAIR);
        dtwin[i] = move_key(dkey[i], OFFL, EVP_PKEY_KEYPAIR);
        if (otwin[i] == NULL || dtwin[i] == NULL)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < K_COUNT; i++) {
        EVP_PKEY_free(okey[i]);
        EVP_PKEY_free(otwin[i]);
        EVP_PKEY_free(dkey[i]);
        EVP_PKEY_free(dtwin[i]);
    }
    test_ref_close(defctx, defprov);
    test_env_close(&env);
    return 0;
}

#define WITH(fn, k) cmocka_unit_test_prestate(fn, (void *)&keyspecs[k])

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH(test_ecdsa_cross, K_P256),
        WITH(test_ecdsa_cross, K_P384),
        WITH(test_ecdsa_cross, K_P521),
        WITH(test_eddsa_cross, K_ED25519),
        WITH(test_eddsa_cross, K_ED448),
        WITH(test_ecdh_cross, K_P256),
        WITH(test_ecdh_cross, K_P384),
        WITH(test_ecdh_cross, K_P521),
        WITH(test_xdh_cross, K_X25519),
        WITH(test_xdh_cross, K_X448),
        WITH(test_keymgmt, K_P256),
        WITH(test_keymgmt, K_P384),
        WITH(test_keymgmt, K_P521),
        WITH(test_keymgmt, K_X25519),
        WITH(test_keymgmt, K_X448),
        cmocka_unit_test(test_async_fd),
        cmocka_unit_test(test_async_callback),
        cmocka_unit_test(test_bad_point),
        cmocka_unit_test(test_wrong_curve_peer),
        cmocka_unit_test(test_wrong_key_type),
        cmocka_unit_test(test_bad_signatures),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

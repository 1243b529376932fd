/* SPDX-License-Identifier: Apache-2.0 */
/* Shared parts of the elliptic-curve tests (see ec_util.h). */
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

#include "ec_util.h"

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

const struct keyspec keyspecs[K_COUNT] = {
    [K_P256] = {"P-256", "EC", "P-256", "prime256v1", "SHA256", 32},
    [K_P384] = {"P-384", "EC", "P-384", "secp384r1", "SHA384", 48},
    [K_P521] = {"P-521", "EC", "P-521", "secp521r1", "SHA512", 66},
    [K_ED25519] = {"Ed25519", "ED25519", NULL, NULL, NULL, 0},
    [K_ED448] = {"Ed448", "ED448", NULL, NULL, NULL, 0},
    [K_X25519] = {"X25519", "X25519", NULL, NULL, NULL, 0},
    [K_X448] = {"X448", "X448", NULL, NULL, NULL, 0},
};

test_env ec_env;
OSSL_LIB_CTX *ec_defctx;
OSSL_PROVIDER *ec_defprov;
/*
 * okey: generated in offload; otwin: its copy in ec_defctx.
 * dkey: generated in ec_defctx;  dtwin: its copy in offload.
 */
EVP_PKEY *okey[K_COUNT], *otwin[K_COUNT], *dkey[K_COUNT], *dtwin[K_COUNT];

OSSL_LIB_CTX *ctx_of(enum side w)
{
    return w == OFFL ? ec_env.libctx : ec_defctx;
}

const char *propq_of(enum side w)
{
    return w == OFFL ? OFFLOAD_PROPQ : NULL;
}

const char *prov_of(enum side w)
{
    return w == OFFL ? OFFLOAD_PROVIDER_NAME : "default";
}

int ctx_in(const EVP_PKEY_CTX *pctx, const char *prov)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), prov) == 0;
}

void assert_ctx_in(const EVP_PKEY_CTX *pctx, const char *prov)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    if (!ctx_in(pctx, prov))
        fail_msg("operation runs in %s, expected %s",
                 p != NULL ? OSSL_PROVIDER_get0_name(p) : "(no provider)", prov);
}

EVP_PKEY *keygen_in(enum side w, const struct keyspec *ks)
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
EVP_PKEY *move_key(const EVP_PKEY *src, enum side w, int selection)
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
size_t dsign(enum side w, EVP_PKEY *key, const char *md, const OSSL_PARAM *params,
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
int dverify(enum side w, EVP_PKEY *key, const char *md, const unsigned char *m,
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
size_t rsign(enum side w, EVP_PKEY *key, const char *md, const unsigned char *dgst,
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

int rverify(enum side w, EVP_PKEY *key, const char *md, const unsigned char *dgst,
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
size_t derive(enum side w, EVP_PKEY *priv, EVP_PKEY *peer, const OSSL_PARAM *params,
              unsigned char *out)
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

void print_hex(const char *label, const unsigned char *b, size_t n)
{
    size_t i;

    printf("    %s (%zu bytes): ", label, n);
    for (i = 0; i < n && i < 24; i++)
        printf("%02x", b[i]);
    printf("%s\n", n > 24 ? "..." : "");
}

/* ------------------------------------------------------------------ */

int ec_group_setup(void **state)
{
    int i;

    (void)state;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule). */
    if (!test_env_open(&ec_env, "busy_inline = 0\n"))
        return -1;
    ec_defctx = test_ref_open(&ec_defprov);
    if (ec_defctx == NULL)
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

int ec_group_teardown(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < K_COUNT; i++) {
        EVP_PKEY_free(okey[i]);
        EVP_PKEY_free(otwin[i]);
        EVP_PKEY_free(dkey[i]);
        EVP_PKEY_free(dtwin[i]);
    }
    test_ref_close(ec_defctx, ec_defprov);
    test_env_close(&ec_env);
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key management of EC and XDH keys through the offload provider
 * (P-256/384/521, X25519, X448): parameters, the encoded public key, eq,
 * dup, todata/fromdata both ways, and the ephemeral key generation TLS
 * does from a template key.
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

/* ------------------------------------------------------------------ */
/* a) key management                                                   */
/* ------------------------------------------------------------------ */

/* A key with only the parameters of |ks| (the curve), built in offload. */
static EVP_PKEY *params_only(const struct keyspec *ks)
{
    EVP_PKEY_CTX *ictx =
        EVP_PKEY_CTX_new_from_name(ec_env.libctx, ks->type, OFFLOAD_PROPQ);
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
    pkey =
        EVP_PKEY_new_raw_public_key_ex(ec_env.libctx, ks->type, OFFLOAD_PROPQ, raw, len);
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
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, templ, NULL);
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
    test_assert_int_params_equal(key, twin);

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
    ictx = EVP_PKEY_CTX_new_from_name(ec_env.libctx, ks->type, OFFLOAD_PROPQ);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH(test_keymgmt, K_P256), WITH(test_keymgmt, K_P384),
        WITH(test_keymgmt, K_P521), WITH(test_keymgmt, K_X25519),
        WITH(test_keymgmt, K_X448),
    };

    return cmocka_run_group_tests(tests, ec_group_setup, ec_group_teardown);
}

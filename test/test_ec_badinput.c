/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bad elliptic-curve input fails cleanly with readable errors through the
 * offload provider: a point not on the curve, a peer on another curve, a
 * key of the wrong type, truncated and empty signatures.
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
    ictx = EVP_PKEY_CTX_new_from_name(ec_defctx, "EC", NULL);
    assert_non_null(ictx);
    assert_int_equal(EVP_PKEY_fromdata_init(ictx), 1);
    assert_int_not_equal(EVP_PKEY_fromdata(ictx, &refbad, EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(ictx);
    ERR_clear_error();

    ictx = EVP_PKEY_CTX_new_from_name(ec_env.libctx, "EC", OFFLOAD_PROPQ);
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
            EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[K_P256], OFFLOAD_PROPQ);
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
        EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[K_P256], OFFLOAD_PROPQ);
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
    pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[K_P256], OFFLOAD_PROPQ);
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_derive_init(pctx), 1);
    assert_ctx_in(pctx, OFFLOAD_PROVIDER_NAME);
    assert_true(EVP_PKEY_derive_set_peer(pctx, okey[K_X25519]) <= 0);
    expect_error("X25519 peer for ECDH: EVP_PKEY_derive_set_peer");
    assert_true(EVP_PKEY_derive(pctx, out, &outlen) <= 0);
    ERR_clear_error();
    EVP_PKEY_CTX_free(pctx);
    /* ... and an EC peer for X25519. */
    pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, okey[K_X25519], OFFLOAD_PROPQ);
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
        assert_int_not_equal(EVP_DigestSignInit_ex(mctx, NULL, "SHA256", ec_env.libctx,
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_point),
        cmocka_unit_test(test_wrong_curve_peer),
        cmocka_unit_test(test_wrong_key_type),
        cmocka_unit_test(test_bad_signatures),
    };

    return cmocka_run_group_tests(tests, ec_group_setup, ec_group_teardown);
}

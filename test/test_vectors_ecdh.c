/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof ECDH vectors (P-256, P-384, public keys as
 * SubjectPublicKeyInfo) through the offload provider: the private key is
 * built by offload's key management from the scalar, the peer decoded by
 * the default decoders and moved into offload, the secret derived by
 * offload's key exchange; each vector is also run by the default provider
 * alone and the two verdicts must agree (vectors_pkey.c). Invalid peers
 * (invalid-curve points, wrong curves, bad encodings) must be refused at
 * the decode, the import, set_peer or the derive; the only exceptions are
 * invalid vectors that OpenSSL 3.0 itself accepts identically, in the
 * narrow case named by known_leniency() (vectors_pkey.c).
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
#include <openssl/decoder.h>

#include "vectors_pkey.h"

static int ecdh_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct kex_group *gs;
    const char *wp = wp_str(group, "curve"), *enc = wp_str(group, "encoding");
    const char *curve = ossl_curve(wp);

    (void)s;
    if (curve == NULL) {
        printf("    ECDH group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    if (enc == NULL || strcmp(enc, "asn") != 0) {
        printf("    ECDH group with public keys encoded as \"%s\": only \"asn\" "
               "(SubjectPublicKeyInfo) is handled; its tests are not run\n",
               enc != NULL ? enc : "(none)");
        return -1;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->type = "EC";
    gs->curve = curve;
    *out = gs;
    return 1;
}
/* The peer's SubjectPublicKeyInfo decoded in the reference context; NULL if refused. */
static EVP_PKEY *decode_reference(const char *hex)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    long n = hex != NULL ? test_unhex(hex, &der) : -1;
    size_t len;
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx;

    if (n <= 0) {
        free(der);
        return NULL;
    }
    p = der;
    len = (size_t)n;
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "SubjectPublicKeyInfo", NULL,
                                         EVP_PKEY_PUBLIC_KEY, vec_defctx, NULL);
    if (dctx == NULL || !OSSL_DECODER_from_data(dctx, &p, &len)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    OSSL_DECODER_CTX_free(dctx);
    free(der);
    return pkey;
}

/*
 * ECDH on side |w|. Offload: the private key is built in offload from the
 * scalar; the peer's SubjectPublicKeyInfo is decoded by the default
 * decoders and moved into offload (todata/fromdata). Reference: all in
 * the default-only context. Invalid points, invalid curves and encodings
 * must be refused at one of the steps: decode, import, set_peer, derive.
 */
static int ecdh_side(enum side w, const struct kex_group *gs, const struct wp_case *c,
                     struct kex_counts *k, struct kex_result *r)
{
    EVP_PKEY *priv = NULL, *dec = NULL, *peer = NULL;
    int rc, ok = 0;

    memset(r, 0, sizeof(*r));
    if (ec_private_key(w, gs->curve, wp_str(c->json, "private"), &priv) != 1) {
        test_dump_errors("private key");
        printf("    cannot build the private key in %s\n", side_prov(w));
        goto out;
    }
    if (w == REFERENCE_SIDE) {
        peer = decode_reference(wp_str(c->json, "public"));
        ok = peer == NULL || kex_derive(w, k, priv, peer, r);
        goto out;
    }
    dec = decode_default_q(wp_str(c->json, "public"), "SubjectPublicKeyInfo",
                           EVP_PKEY_PUBLIC_KEY, 1);
    if (dec == NULL) {
        k->decode_refused++;
        ok = 1;
        goto out;
    }
    rc = import_offload_q(dec, EVP_PKEY_PUBLIC_KEY, 1, &peer);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        k->import_refused++;
        ok = 1;
        goto out;
    }
    ok = kex_derive(w, k, priv, peer, r);
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(dec);
    EVP_PKEY_free(peer);
    return ok;
}

static enum wp_outcome ecdh_check(const struct wp_suite *s, void *vgs,
                                  const struct wp_case *c)
{
    struct kex_result o, ref;
    enum wp_outcome v = WP_ERROR;

    if (ecdh_side(OFFLOAD_SIDE, vgs, c, s->data, &o) &&
        ecdh_side(REFERENCE_SIDE, vgs, c, s->data, &ref))
        v = kex_judge(s, c, &o, &ref);
    OPENSSL_cleanse(&o, sizeof(o));
    OPENSSL_cleanse(&ref, sizeof(ref));
    return v;
}
#define ECDH_SUITE(f)                                                                    \
    {                                                                                    \
        .file = f, .schema = "ecdh_test_schema_v1.json", .group_type = "EcdhTest",       \
        .group_open = ecdh_group_open, .group_close = kex_group_close,                   \
        .check = ecdh_check                                                              \
    }
static void test_ecdh_secp256r1(void **state)
{
    struct wp_suite s = ECDH_SUITE("ecdh_secp256r1_test.json");

    (void)state;
    run_kex_suite(&s);
}

static void test_ecdh_secp384r1(void **state)
{
    struct wp_suite s = ECDH_SUITE("ecdh_secp384r1_test.json");

    (void)state;
    run_kex_suite(&s);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdh_secp256r1),
        cmocka_unit_test(test_ecdh_secp384r1),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, vec_group_teardown);
}

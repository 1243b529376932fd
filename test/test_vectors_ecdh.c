/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof ECDH vectors (P-256, P-384, P-521, public keys as
 * SubjectPublicKeyInfo) through the offload provider: the private key is
 * built by offload's key management from the scalar, the peer decoded by
 * the default decoders and moved into offload, the secret derived by
 * offload's key exchange; each vector is also run by the default provider
 * alone and the two verdicts must agree (vectors_pkey.c). Invalid peers
 * (invalid-curve points, wrong curves, bad encodings) must be refused at
 * the decode, the import, set_peer or the derive; the only exceptions are
 * invalid vectors that OpenSSL 3.0 itself accepts identically, in the
 * narrow case named by known_leniency() (vectors_pkey.c). Every P-521
 * vector is also derived in jobs, fd and callback mode (keys prepared
 * out of a job), with the keyexch counters asserted (vectors_jobs.c).
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

#include "vectors_jobs.h"
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

static void test_ecdh_secp521r1(void **state)
{
    struct wp_suite s = ECDH_SUITE("ecdh_secp521r1_test.json");

    (void)state;
    run_kex_suite(&s);
}

/* ------------------------------------------------------------------ */
/* Every P-521 vector in and out of jobs (vectors_jobs.c)              */
/* ------------------------------------------------------------------ */

struct ecdh_task {
    struct vj_task h;
    EVP_PKEY *priv, *peer; /* offload's; peer NULL: refused before the derive */
    struct kex_result o, ref;
    unsigned char *shared;
    size_t sharedlen;
    int lenient; /* invalid, a case OpenSSL itself accepts (see vectors_pkey.c) */
};

/* Keys built by offload out of a job; the default provider's verdict for reference. */
static int ecdh_prepare(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                        struct vj_task *vt)
{
    const struct kex_group *gs = vgs;
    struct ecdh_task *t = (struct ecdh_task *)vt;
    struct kex_counts scratch;
    EVP_PKEY *dec;
    int rc;

    memset(&scratch, 0, sizeof(scratch));
    t->lenient = wp_has_flag(c, "UnnamedCurve") &&
                 (wp_has_flag(c, "NoCofactor") || wp_has_flag(c, "LargeCofactor"));
    if (!wp_hex(c->json, "shared", &t->shared, &t->sharedlen) ||
        !ecdh_side(REFERENCE_SIDE, gs, c, &scratch, &t->ref) ||
        ec_private_key(OFFLOAD_SIDE, gs->curve, wp_str(c->json, "private"), &t->priv) !=
            1) {
        wp_print_case("cannot prepare the vector", s, c);
        return 0;
    }
    dec = decode_default_q(wp_str(c->json, "public"), "SubjectPublicKeyInfo",
                           EVP_PKEY_PUBLIC_KEY, 1);
    rc = dec != NULL ? import_offload_q(dec, EVP_PKEY_PUBLIC_KEY, 1, &t->peer) : 0;
    EVP_PKEY_free(dec);
    return rc >= 0;
}

static int ecdh_work(struct vj_task *vt)
{
    struct ecdh_task *t = (struct ecdh_task *)vt;
    int rc;

    memset(&t->o, 0, sizeof(t->o));
    if (t->peer == NULL)
        return 1;
    t->o.len = sizeof(t->o.secret);
    rc = derive_in(OFFLOAD_SIDE, t->priv, t->peer, t->o.secret, &t->o.len);
    ERR_clear_error();
    if (rc == D_SETUP)
        return 0;
    t->h.ops += rc == D_OK || rc == D_DERIVE_FAILED;
    t->h.ops_ok += rc == D_OK;
    t->o.accepted = rc == D_OK;
    return 1;
}

static enum wp_outcome ecdh_judge(struct vj_task *vt)
{
    struct ecdh_task *t = (struct ecdh_task *)vt;
    const char *bad = NULL;

    if (t->o.accepted != t->ref.accepted)
        bad = t->o.accepted ? "offload accepts, the default provider refuses"
                            : "offload refuses, the default provider accepts";
    else if (t->o.accepted && (t->o.len != t->ref.len ||
                               memcmp(t->o.secret, t->ref.secret, t->o.len) != 0))
        bad = "offload's secret differs from the default's";
    else if (t->o.accepted && (t->o.len != t->sharedlen ||
                               memcmp(t->o.secret, t->shared, t->sharedlen) != 0))
        bad = "the secret differs from \"shared\"";
    if (bad != NULL) {
        printf("    %s tcId %ld (%s): FAIL: %s\n", t->h.vs->wp.file, t->h.tcid,
               wp_result_name(t->h.result), bad);
        return WP_ERROR;
    }
    if (!t->o.accepted)
        return WP_REJECT;
    return t->h.result == WP_INVALID && t->lenient ? WP_LENIENT : WP_ACCEPT;
}

static void ecdh_release(struct vj_task *vt)
{
    struct ecdh_task *t = (struct ecdh_task *)vt;

    EVP_PKEY_free(t->priv);
    EVP_PKEY_free(t->peer);
    free(t->shared);
    OPENSSL_cleanse(&t->o, sizeof(t->o));
    OPENSSL_cleanse(&t->ref, sizeof(t->ref));
}

static void test_ecdh_secp521r1_jobs(void **state)
{
    static const struct vj_suite vs = {.wp = {.file = "ecdh_secp521r1_test.json",
                                              .schema = "ecdh_test_schema_v1.json",
                                              .group_type = "EcdhTest",
                                              .group_open = ecdh_group_open,
                                              .group_close = kex_group_close},
                                       .family = OFFLOAD_FAMILY_KEYEXCH,
                                       .counted = 1,
                                       .task_size = sizeof(struct ecdh_task),
                                       .prepare = ecdh_prepare,
                                       .work = ecdh_work,
                                       .judge = ecdh_judge,
                                       .release = ecdh_release};

    (void)state;
    vj_run_suite(&vs, NULL);
}

static int teardown(void **state)
{
    vj_free_kept();
    return vec_group_teardown(state);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdh_secp256r1),
        cmocka_unit_test(test_ecdh_secp384r1),
        cmocka_unit_test(test_ecdh_secp521r1),
        cmocka_unit_test(test_ecdh_secp521r1_jobs),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, teardown);
}

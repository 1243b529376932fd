/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof EdDSA vectors through the offload provider: Ed25519 and
 * Ed448 one-shot verification (no digest), keys decoded by the default
 * provider and moved into offload, verification fetched with
 * "provider=offload" (vectors_pkey.c).
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
#include <openssl/evp.h>

#include "vectors_pkey.h"

/* EdDSA groups: the public key only; no digest (one-shot, NULL md). */
static int eddsa_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct sig_group *gs;
    json_object *pk = NULL;
    const char *wp = NULL, *type;

    (void)s;
    if (json_object_object_get_ex(group, "publicKey", &pk))
        wp = wp_str(pk, "curve");
    type = wp == NULL                        ? NULL
           : strcmp(wp, "edwards25519") == 0 ? "ED25519"
           : strcmp(wp, "edwards448") == 0   ? "ED448"
                                             : NULL;
    if (type == NULL) {
        printf("    EdDSA group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->pub = offload_key(wp_str(group, "publicKeyDer"), "SubjectPublicKeyInfo",
                          EVP_PKEY_PUBLIC_KEY);
    if (gs->pub == NULL || !EVP_PKEY_is_a(gs->pub, type)) {
        printf("    EdDSA group without a usable %s public key\n", type);
        sig_group_close(gs);
        return 0;
    }
    *out = gs;
    return 1;
}

#define EDDSA_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        .file = f, .schema = "eddsa_verify_schema_v1.json", .group_type = "EddsaVerify", \
        .group_open = eddsa_group_open, .group_close = sig_group_close,                  \
        .check = verify_check                                                            \
    }
static void test_ed25519(void **state)
{
    static const struct wp_suite s = EDDSA_VERIFY_SUITE("ed25519_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_ed448(void **state)
{
    static const struct wp_suite s = EDDSA_VERIFY_SUITE("ed448_test.json");

    (void)state;
    run_verify_suite(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_ed448),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, vec_group_teardown);
}

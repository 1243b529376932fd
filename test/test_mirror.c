/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offload mirrors the default provider: for key management, signatures,
 * key exchange, ciphers and symmetric key management (OpenSSL 3.5; none
 * on 3.0, decided by what the default offers), every algorithm the
 * default provider offers (in a fresh library context, loaded alone) is
 * offered by offload under the same names, with every function id of the
 * default's dispatch table. What is missing is listed, then the test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_dispatch.h>
#include <openssl/provider.h>

#include "common.h"

#ifndef OSSL_OP_SKEYMGMT
#define OSSL_OP_SKEYMGMT 15 /* OpenSSL 3.5 */
#endif

static test_env env;
static OSSL_LIB_CTX *ref;
static OSSL_PROVIDER *ref_prov;

/* 1 when |d| has function |id|. */
static int has_fn(const OSSL_DISPATCH *d, int id)
{
    for (; d != NULL && d->function_id != 0; d++)
        if (d->function_id == id)
            return 1;
    return 0;
}

static const OSSL_ALGORITHM *find_alg(const OSSL_ALGORITHM *t, const char *names)
{
    for (; t != NULL && t->algorithm_names != NULL; t++)
        if (strcmp(t->algorithm_names, names) == 0)
            return t;
    return NULL;
}

static size_t count_algs(const OSSL_ALGORITHM *t)
{
    size_t n = 0;

    for (; t != NULL && t->algorithm_names != NULL; t++)
        n++;
    return n;
}

static void check_operation(int op, const char *opname)
{
    const OSSL_ALGORITHM *deft, *offt, *a, *o;
    const OSSL_DISPATCH *d;
    int nc = 0;
    size_t missing_algs = 0, missing_fns = 0, nfns = 0;

    deft = OSSL_PROVIDER_query_operation(ref_prov, op, &nc);
    offt = OSSL_PROVIDER_query_operation(env.offload, op, &nc);
    if (deft == NULL && op == OSSL_OP_SKEYMGMT) {
        /* OpenSSL before 3.5: nothing to mirror, and nothing may be offered. */
        print_message("%s: the default offers none (OpenSSL before 3.5), offload %zu\n",
                      opname, count_algs(offt));
        assert_int_equal(count_algs(offt), 0);
        return;
    }
    assert_non_null(deft);
    print_message("%s: default offers %zu algorithms, offload %zu\n", opname,
                  count_algs(deft), count_algs(offt));
    for (a = deft; a->algorithm_names != NULL; a++) {
        o = find_alg(offt, a->algorithm_names);
        if (o == NULL) {
            print_message("  missing algorithm %s\n", a->algorithm_names);
            missing_algs++;
            continue;
        }
        if (o->property_definition == NULL ||
            strstr(o->property_definition, "provider=" OFFLOAD_PROVIDER_NAME) == NULL) {
            print_message("  %s: property definition \"%s\" lacks provider=offload\n",
                          a->algorithm_names,
                          o->property_definition != NULL ? o->property_definition : "");
            missing_algs++;
        }
        for (d = a->implementation; d->function_id != 0; d++) {
            nfns++;
            if (!has_fn(o->implementation, d->function_id)) {
                print_message("  %s: missing function id %d\n", a->algorithm_names,
                              d->function_id);
                missing_fns++;
            }
        }
        /* Nothing the default lacks: we would advertise what cannot run. */
        for (d = o->implementation; d->function_id != 0; d++)
            if (!has_fn(a->implementation, d->function_id)) {
                print_message("  %s: function id %d the default does not offer\n",
                              a->algorithm_names, d->function_id);
                missing_fns++;
            }
    }
    OSSL_PROVIDER_unquery_operation(ref_prov, op, deft);
    OSSL_PROVIDER_unquery_operation(env.offload, op, offt);
    print_message("%s: %zu function ids checked; %zu algorithms and %zu function ids "
                  "differ\n",
                  opname, nfns, missing_algs, missing_fns);
    assert_int_equal(missing_algs, 0);
    assert_int_equal(missing_fns, 0);
}

static void test_keymgmt(void **state)
{
    (void)state;
    check_operation(OSSL_OP_KEYMGMT, "keymgmt");
}

static void test_signature(void **state)
{
    (void)state;
    check_operation(OSSL_OP_SIGNATURE, "signature");
}

static void test_keyexch(void **state)
{
    (void)state;
    check_operation(OSSL_OP_KEYEXCH, "keyexch");
}

static void test_cipher(void **state)
{
    (void)state;
    check_operation(OSSL_OP_CIPHER, "cipher");
}

static void test_skeymgmt(void **state)
{
    (void)state;
    check_operation(OSSL_OP_SKEYMGMT, "skeymgmt");
}

/* Every KEM too: its keys are offload's, so its operations must be. */
static void test_kem(void **state)
{
    (void)state;
    check_operation(OSSL_OP_KEM, "kem");
}

/* Every asymmetric cipher (RSA, SM2): RSA decryption is offloaded. */
static void test_asym_cipher(void **state)
{
    (void)state;
    check_operation(OSSL_OP_ASYM_CIPHER, "asym cipher");
}

static int group_setup(void **state)
{
    (void)state;
    if (!test_env_open(&env, NULL))
        return -1;
    ref = test_ref_open(&ref_prov);
    return ref != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    test_ref_close(ref, ref_prov);
    test_env_close(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keymgmt),     cmocka_unit_test(test_kem),
        cmocka_unit_test(test_signature),   cmocka_unit_test(test_keyexch),
        cmocka_unit_test(test_cipher),      cmocka_unit_test(test_skeymgmt),
        cmocka_unit_test(test_asym_cipher),
    };

    return cmocka_run_group_tests_name("mirror", tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bad input to the ciphers through the offload provider: wrong key and
 * IV lengths, 17-byte tags, an update after the final, a GCM decrypt
 * final without a tag; each failure with a readable reason, or the same
 * answer as the default provider where OpenSSL accepts.
 */
#include <inttypes.h>
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
#include <openssl/params.h>
#include <openssl/prov_ssl.h>

#include "cipher_util.h"

/* ---- 8. bad input ---- */

static void test_bad_input(void **state)
{
    unsigned char key[32] = {1}, iv[16] = {2}, in[64] = {3}, out[64 + SLACK],
                  tag[17] = {0};
    char what[100];
    size_t a;
    int l;

    (void)state;
    for (a = 0; a < NALGS; a++) {
        const struct alg *al = &algs[a];
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int aead = al->kind != K_CBC;

        assert_non_null(ctx);
        /* A wrong key length. */
        assert_int_equal(EVP_EncryptInit_ex2(ctx, CS.off[a], NULL, NULL, NULL), 1);
        snprintf(what, sizeof(what), "%s set_key_length(%zu)", al->name, al->keylen + 4);
        EXPECT_FAILURE(what, EVP_CIPHER_CTX_set_key_length(ctx, (int)al->keylen + 4));
        snprintf(what, sizeof(what), "%s set_key_length(0)", al->name);
        EXPECT_FAILURE(what, EVP_CIPHER_CTX_set_key_length(ctx, 0));
        assert_int_equal(EVP_CIPHER_CTX_get_key_length(ctx), (int)al->keylen);
        if (al->kind == K_CHACHA) {
            size_t kl = 16;
            OSSL_PARAM p[2] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_KEYLEN, &kl),
                               OSSL_PARAM_END};

            snprintf(what, sizeof(what), "%s init with keylen 16", al->name);
            EXPECT_FAILURE(what, EVP_EncryptInit_ex2(ctx, CS.off[a], key, iv, p));
        }

        if (aead) {
            size_t ivl;
            OSSL_PARAM p[2];

            /* An IV length of 0, or beyond the limit (ChaCha: 12, GCM: 128). */
            ivl = 0;
            p[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivl);
            p[1] = OSSL_PARAM_construct_end();
            assert_int_equal(EVP_EncryptInit_ex2(ctx, CS.off[a], NULL, NULL, NULL), 1);
            snprintf(what, sizeof(what), "%s ivlen 0", al->name);
            EXPECT_FAILURE(what, EVP_CIPHER_CTX_set_params(ctx, p));
            ivl = al->kind == K_CHACHA ? 13 : 129;
            snprintf(what, sizeof(what), "%s ivlen %zu", al->name, ivl);
            EXPECT_FAILURE(what, EVP_CIPHER_CTX_set_params(ctx, p));
            snprintf(what, sizeof(what), "%s ctrl SET_IVLEN %zu", al->name, ivl);
            EXPECT_FAILURE(
                what, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)ivl, NULL));
            snprintf(what, sizeof(what), "%s init with ivlen %zu", al->name, ivl);
            EXPECT_FAILURE(what, EVP_EncryptInit_ex2(ctx, CS.off[a], key, iv, p));

            /* A 17-byte tag. */
            assert_int_equal(EVP_DecryptInit_ex2(ctx, CS.off[a], key, iv, NULL), 1);
            snprintf(what, sizeof(what), "%s set a 17-byte tag (ctrl)", al->name);
            EXPECT_FAILURE(what,
                           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 17, tag));
            snprintf(what, sizeof(what), "%s set a 17-byte tag (param)", al->name);
            EXPECT_FAILURE(what, set_tag(ctx, tag, 17, 0));
        }

        /* Update after the final: refused by GCM; accepted by CBC and ChaCha20-Poly1305.
         */
        {
            EVP_CIPHER_CTX *ref = EVP_CIPHER_CTX_new();
            int ro, rd, f;

            assert_non_null(ref);
            assert_int_equal(EVP_EncryptInit_ex2(ctx, CS.off[a], key, iv, NULL), 1);
            assert_int_equal(EVP_EncryptInit_ex2(ref, CS.ref[a], key, iv, NULL), 1);
            assert_int_equal(EVP_EncryptUpdate(ctx, out, &l, in, 20), 1);
            assert_int_equal(EVP_EncryptFinal_ex(ctx, out + l, &f), 1);
            assert_int_equal(EVP_EncryptUpdate(ref, out, &l, in, 20), 1);
            assert_int_equal(EVP_EncryptFinal_ex(ref, out + l, &f), 1);
            if (al->kind == K_GCM) {
                snprintf(what, sizeof(what), "%s update after the final", al->name);
                EXPECT_FAILURE(what, EVP_EncryptUpdate(ctx, out, &l, in, 20));
            } else {
                ro = EVP_EncryptUpdate(ctx, out, &l, in, 20);
                rd = EVP_EncryptUpdate(ref, out, &l, in, 20);
                snprintf(what, sizeof(what), "%s update after the final", al->name);
                print_message("  %-52s ret=%d, as the default (%d)\n", what, ro, rd);
                assert_int_equal(ro, rd);
                ERR_clear_error();
            }
            EVP_CIPHER_CTX_free(ref);
        }

        EVP_CIPHER_CTX_free(ctx);
    }
}

/*
 * A decrypt final without a tag: GCM must refuse it with a reason.
 * (ChaCha20-Poly1305 in OpenSSL 3.0 compares a tag of length 0 and
 * accepts: offload must answer as the default does, and this is printed.)
 */
static void test_final_without_tag(void **state)
{
    unsigned char key[32] = {1}, iv[16] = {2}, in[64] = {3}, out[64 + SLACK];
    char what[100];
    size_t a;
    int l, f;

    (void)state;
    for (a = 0; a < NALGS; a++) {
        EVP_CIPHER_CTX *ctx, *ref;
        int ro, rd;

        if (algs[a].kind == K_CBC)
            continue;
        ctx = EVP_CIPHER_CTX_new();
        ref = EVP_CIPHER_CTX_new();
        assert_non_null(ctx);
        assert_non_null(ref);
        assert_int_equal(EVP_DecryptInit_ex2(ctx, CS.off[a], key, iv, NULL), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &l, in, 13), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, out, &l, in, 40), 1);
        assert_int_equal(EVP_DecryptInit_ex2(ref, CS.ref[a], key, iv, NULL), 1);
        assert_int_equal(EVP_DecryptUpdate(ref, NULL, &l, in, 13), 1);
        assert_int_equal(EVP_DecryptUpdate(ref, out, &l, in, 40), 1);
        rd = EVP_DecryptFinal_ex(ref, out + l, &f);
        ERR_clear_error();
        ro = EVP_DecryptFinal_ex(ctx, out + l, &f);
        /* Freed before judging: the error queue is what is judged. */
        EVP_CIPHER_CTX_free(ctx);
        EVP_CIPHER_CTX_free(ref);
        snprintf(what, sizeof(what), "%s decrypt final without a tag", algs[a].name);
        if (algs[a].kind == K_GCM) {
            assert_true(rd <= 0);
            test_expect_failure(what, ro);
        } else {
            print_message("  %-52s ret=%d, as the default (%d)\n", what, ro, rd);
            assert_int_equal(ro, rd);
            ERR_clear_error();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_final_without_tag),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

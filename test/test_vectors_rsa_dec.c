/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof RSA decryption vectors through the offload provider
 * (EVP_PKEY_decrypt with the group's PKCS#8 key, decoded by the default
 * provider and moved into offload's key management; the asymmetric
 * cipher fetched with "provider=offload" and asserted to be offload's):
 *   rsa_oaep_2048_sha256_mgf1sha256_test.json  OAEP, the group's digests,
 *       each vector's label: valid ones give "msg", invalid ones fail
 *   rsa_pkcs1_2048_test.json  PKCS#1 v1.5 with implicit rejection off
 *       (3.0 has none; from 3.2 on it is on by default and is turned off
 *       with "implicit-rejection" = 0): valid ones give "msg", invalid
 *       ones fail. Where the default provider's RSA cipher has the
 *       parameter, each vector is decrypted again with it on: valid ones
 *       give "msg"; an invalid one either fails or gives exactly the
 *       default provider's own output for that ciphertext with the
 *       setting on, which that provider refuses with it off (its
 *       implicit-rejection value, not a decryption).
 * Every vector out of a job and in jobs, fd and callback mode, with the
 * counters of family asymcipher asserted (vectors_jobs.c).
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
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "vectors_jobs.h"
#include "vectors_pkey.h"

/* OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION of 3.2+ (the 3.0 headers lack it). */
#define P_IMPLICIT_REJECTION "implicit-rejection"

#define RSA_OUT_MAX 512

static int have_ir; /* the default provider's RSA cipher has "implicit-rejection" */

struct dec_group {
    EVP_PKEY *key; /* offload's */
    EVP_PKEY *ref; /* the default provider's */
    int pad;
    char md[32], mgf1[32];
};

/* One decryption setting of a task: implicit rejection -1 (untouched), 0 or 1. */
struct dec_run {
    int ir;
    int ok;
    unsigned char out[RSA_OUT_MAX];
    size_t outlen;
};

struct dec_task {
    struct vj_task h;
    EVP_PKEY *key;
    int pad;
    char md[32], mgf1[32];
    unsigned char *ct, *msg, *label;
    size_t ctlen, msglen, labellen;
    size_t nruns;
    struct dec_run run[2];
    /* PKCS#1 with implicit rejection on: the default provider's outputs */
    int ref_ok_ir, ref_ok_noir;
    unsigned char ref_out[RSA_OUT_MAX];
    size_t ref_outlen;
};

static void dec_group_close(void *vgs)
{
    struct dec_group *gs = vgs;

    EVP_PKEY_free(gs->key);
    EVP_PKEY_free(gs->ref);
    free(gs);
}

static int dec_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct dec_group *gs = calloc(1, sizeof(*gs));
    const char *p8 = wp_str(group, "privateKeyPkcs8");
    long bits = 0;

    if (gs == NULL)
        return 0;
    gs->pad = strcmp(s->group_type, "RsaesOaepDecrypt") == 0 ? RSA_PKCS1_OAEP_PADDING
                                                             : RSA_PKCS1_PADDING;
    if (gs->pad == RSA_PKCS1_OAEP_PADDING &&
        (!copy_name(gs->md, sizeof(gs->md), wp_str(group, "sha")) ||
         !copy_name(gs->mgf1, sizeof(gs->mgf1), wp_str(group, "mgfSha")) ||
         wp_str(group, "mgf") == NULL || strcmp(wp_str(group, "mgf"), "MGF1") != 0)) {
        printf("    %s: OAEP group without sha, MGF1 and mgfSha\n", s->file);
        goto err;
    }
    gs->ref = decode_default(p8, "PrivateKeyInfo", EVP_PKEY_KEYPAIR);
    gs->key = gs->ref != NULL ? import_into_offload(gs->ref, EVP_PKEY_KEYPAIR) : NULL;
    if (gs->key == NULL) {
        printf("    %s: the group's private key cannot be loaded\n", s->file);
        goto err;
    }
    if (wp_int(group, "keySize", &bits) && EVP_PKEY_get_bits(gs->key) != bits) {
        printf("    %s: key of %d bits, the group says %ld\n", s->file,
               EVP_PKEY_get_bits(gs->key), bits);
        goto err;
    }
    *out = gs;
    return 1;
err:
    dec_group_close(gs);
    return 0;
}

/*
 * Decrypts |t|'s ciphertext with |key| fetched with |propq| (|prov| must
 * run it), implicit rejection |ir| (-1: untouched): 1 decrypted, 0
 * refused, -1 set-up failure. |counted|: an operation of ours. Prints
 * nothing (runs in jobs).
 */
static int decrypt_with(struct dec_task *t, EVP_PKEY *key, const char *propq,
                        const char *prov, int ir, unsigned char *out, size_t *outlen,
                        int counted)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(vec_env.libctx, key, propq);
    const OSSL_PROVIDER *p;
    OSSL_PARAM params[2];
    int rc = -1;

    params[0] = OSSL_PARAM_construct_int(P_IMPLICIT_REJECTION, &ir);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
        (p = EVP_PKEY_CTX_get0_provider(ctx)) == NULL ||
        strcmp(OSSL_PROVIDER_get0_name(p), prov) != 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, t->pad) <= 0 ||
        (ir >= 0 && EVP_PKEY_CTX_set_params(ctx, params) != 1))
        goto out;
    if (t->pad == RSA_PKCS1_OAEP_PADDING) {
        unsigned char *label = NULL;

        if (EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, t->md, NULL) <= 0 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, t->mgf1, NULL) <= 0)
            goto out;
        if (t->labellen > 0 &&
            ((label = OPENSSL_memdup(t->label, t->labellen)) == NULL ||
             EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)t->labellen) <= 0)) {
            OPENSSL_free(label);
            goto out;
        }
    }
    *outlen = RSA_OUT_MAX;
    if (counted)
        t->h.ops++;
    rc = EVP_PKEY_decrypt(ctx, out, outlen, t->ct, t->ctlen) == 1;
    if (counted)
        t->h.ops_ok += (unsigned)rc;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static int dec_prepare(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                       struct vj_task *vt)
{
    struct dec_group *gs = vgs;
    struct dec_task *t = (struct dec_task *)vt;
    int r0, r1;

    t->key = gs->key;
    EVP_PKEY_up_ref(t->key);
    t->pad = gs->pad;
    memcpy(t->md, gs->md, sizeof(t->md));
    memcpy(t->mgf1, gs->mgf1, sizeof(t->mgf1));
    if (!wp_hex(c->json, "ct", &t->ct, &t->ctlen) ||
        !wp_hex(c->json, "msg", &t->msg, &t->msglen) ||
        (t->pad == RSA_PKCS1_OAEP_PADDING &&
         !wp_hex(c->json, "label", &t->label, &t->labellen))) {
        wp_print_case("ct, msg or label do not parse", s, c);
        return 0;
    }
    t->nruns = 1;
    t->run[0].ir = have_ir ? 0 : -1;
    if (t->pad != RSA_PKCS1_PADDING || !have_ir)
        return 1;
    /* The second setting, and what the default provider alone makes of it. */
    t->nruns = 2;
    t->run[1].ir = 1;
    r1 = decrypt_with(t, gs->ref, DEFAULT_PROPQ, "default", 1, t->ref_out, &t->ref_outlen,
                      0);
    {
        unsigned char scratch[RSA_OUT_MAX];
        size_t n;

        r0 = decrypt_with(t, gs->ref, DEFAULT_PROPQ, "default", 0, scratch, &n, 0);
        OPENSSL_cleanse(scratch, sizeof(scratch));
    }
    if (r0 < 0 || r1 < 0) {
        wp_print_case("the default provider cannot be set up to decrypt", s, c);
        return 0;
    }
    t->ref_ok_ir = r1;
    t->ref_ok_noir = r0;
    return 1;
}

static int dec_work(struct vj_task *vt)
{
    struct dec_task *t = (struct dec_task *)vt;
    size_t i;

    for (i = 0; i < t->nruns; i++) {
        struct dec_run *r = &t->run[i];
        int rc = decrypt_with(t, t->key, OFFLOAD_PROPQ, OFFLOAD_PROVIDER_NAME, r->ir,
                              r->out, &r->outlen, 1);

        if (rc < 0)
            return 0;
        r->ok = rc;
    }
    return 1;
}

static enum wp_outcome dec_wrong(const struct dec_task *t, const struct dec_run *r,
                                 const char *what)
{
    printf("    %s tcId %ld (%s), implicit rejection %s: %s\n", t->h.vs->wp.file,
           t->h.tcid, wp_result_name(t->h.result),
           r->ir < 0   ? "untouched"
           : r->ir > 0 ? "on"
                       : "off",
           what);
    return t->h.result == WP_VALID ? WP_REJECT : WP_ACCEPT;
}

/* The verdict of one setting. */
static enum wp_outcome dec_judge_run(const struct dec_task *t, const struct dec_run *r)
{
    int is_msg =
        r->ok && r->outlen == t->msglen && memcmp(r->out, t->msg, t->msglen) == 0;

    if (!r->ok)
        return WP_REJECT;
    if (r->ir <= 0 || t->h.result != WP_INVALID)
        return is_msg ? WP_ACCEPT : dec_wrong(t, r, "decrypts to another message");
    /* Invalid, implicit rejection on: the default provider's rejection value. */
    if (t->ref_ok_noir || !t->ref_ok_ir)
        return dec_wrong(t, r, "offload gives a message, the default provider does not");
    if (r->outlen != t->ref_outlen || memcmp(r->out, t->ref_out, r->outlen) != 0)
        return dec_wrong(t, r, "differs from the default provider's rejection value");
    return WP_REJECT; /* rejected implicitly, as it should */
}

static enum wp_outcome dec_judge(struct vj_task *vt)
{
    struct dec_task *t = (struct dec_task *)vt;
    enum wp_outcome o = dec_judge_run(t, &t->run[0]);

    if (t->nruns == 2 && dec_judge_run(t, &t->run[1]) != o)
        return dec_wrong(t, &t->run[1], "a verdict unlike the one with it off");
    return o;
}

static void dec_release(struct vj_task *vt)
{
    struct dec_task *t = (struct dec_task *)vt;

    EVP_PKEY_free(t->key);
    free(t->ct);
    free(t->msg);
    free(t->label);
    OPENSSL_cleanse(t->run, sizeof(t->run));
}

#define DEC_SUITE(f, sch, gt)                                                            \
    {                                                                                    \
        .wp = {.file = f,                                                                \
               .schema = sch,                                                            \
               .group_type = gt,                                                         \
               .group_open = dec_group_open,                                             \
               .group_close = dec_group_close},                                          \
        .family = OFFLOAD_FAMILY_ASYMCIPHER, .counted = 1,                               \
        .task_size = sizeof(struct dec_task), .prepare = dec_prepare, .work = dec_work,  \
        .judge = dec_judge, .release = dec_release                                       \
    }

/* offload must offer RSA decryption at all (an asymmetric cipher of its own). */
static void assert_offered(void)
{
    EVP_ASYM_CIPHER *ac = EVP_ASYM_CIPHER_fetch(vec_env.libctx, "RSA", OFFLOAD_PROPQ);
    int ok =
        ac != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_ASYM_CIPHER_get0_provider(ac)),
                             OFFLOAD_PROVIDER_NAME) == 0;

    EVP_ASYM_CIPHER_free(ac);
    if (!ok)
        test_dump_errors("EVP_ASYM_CIPHER_fetch(RSA, " OFFLOAD_PROPQ ")");
    if (!ok)
        fail_msg("offload offers no RSA asymmetric cipher");
}

static void test_rsa_oaep_2048_sha256(void **state)
{
    static const struct vj_suite vs =
        DEC_SUITE("rsa_oaep_2048_sha256_mgf1sha256_test.json",
                  "rsaes_oaep_decrypt_schema_v1.json", "RsaesOaepDecrypt");
    struct wp_stats st;

    (void)state;
    assert_offered();
    vj_run_suite(&vs, &st);
    assert_true(st.valid_ok > 0 && st.invalid_rejected > 0);
}

static void test_rsa_pkcs1_2048(void **state)
{
    static const struct vj_suite vs =
        DEC_SUITE("rsa_pkcs1_2048_test.json", "rsaes_pkcs1_decrypt_schema_v1.json",
                  "RsaesPkcs1Decrypt");
    struct wp_stats st;

    (void)state;
    assert_offered();
    vj_run_suite(&vs, &st);
    assert_true(st.valid_ok > 0 && st.invalid_rejected > 0);
}

static int setup(void **state)
{
    EVP_ASYM_CIPHER *ac;

    if (vec_group_setup(state) != 0)
        return -1;
    /* Decided at run time, by the default provider of this libcrypto. */
    ac = EVP_ASYM_CIPHER_fetch(vec_env.libctx, "RSA", DEFAULT_PROPQ);
    have_ir =
        ac != NULL && OSSL_PARAM_locate_const(EVP_ASYM_CIPHER_settable_ctx_params(ac),
                                              P_IMPLICIT_REJECTION) != NULL;
    EVP_ASYM_CIPHER_free(ac);
    ERR_clear_error();
    printf("[rsa_dec] %s: the default provider's RSA cipher %s implicit rejection\n",
           OpenSSL_version(OPENSSL_VERSION), have_ir ? "has" : "has no");
    return 0;
}

static int teardown(void **state)
{
    vj_free_kept();
    return vec_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_oaep_2048_sha256),
        cmocka_unit_test(test_rsa_pkcs1_2048),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof cipher vectors through the offload provider: AES-GCM,
 * AES-CBC-PKCS5 and ChaCha20-Poly1305 (the Wycheproof driver,
 * wycheproof.c). Each vector is encrypted and decrypted by offload and by
 * the default provider alone: whatever the verdict, offload must answer
 * as the default does (same stage of failure, same ciphertext and tag);
 * a valid vector's ciphertext and tag must be reproduced and it must
 * decrypt, an invalid one must be refused at init or at the final. Key
 * sizes offload does not offer (AES-192-CBC) and the valid GCM vectors
 * with IVs beyond OpenSSL's 128 bytes are counted as not runnable.
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
#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cipher_util.h"
#include "wycheproof.h"

/* Index into algs[] of |kind| with a key of |bits|, or -1 (not offered by offload). */
static int alg_for(enum kind kind, int bits)
{
    size_t i;

    for (i = 0; i < NALGS; i++)
        if (algs[i].kind == kind && (int)algs[i].keylen * 8 == bits)
            return (int)i;
    return -1;
}

struct cv_result {
    int enc_ok, enc_stage, dec_ok, dec_stage;
    size_t outl;
    unsigned char tag[16];
    unsigned char *ct, *pt;
};

static void cv_run(const EVP_CIPHER *c, enum kind kind, const unsigned char *key,
                   const unsigned char *iv, size_t ivlen, const unsigned char *aad,
                   size_t aadlen, const unsigned char *msg, size_t msglen,
                   const unsigned char *ct, size_t ctlen, size_t enc_taglen,
                   const unsigned char *tag, size_t taglen, struct cv_result *r)
{
    struct op o;

    memset(&o, 0, sizeof(o));
    o.cipher = c;
    o.kind = kind;
    o.enc = 1;
    o.key = key;
    o.iv = iv;
    o.ivlen = ivlen;
    o.set_ivlen = kind != K_CBC;
    o.taglen = enc_taglen;
    o.aad = aad;
    o.aadlen = aadlen;
    o.in = msg;
    o.inl = msglen;
    o.out = r->ct = xmalloc(msglen + SLACK);
    r->enc_ok = run_op(&o);
    r->enc_stage = o.stage;
    r->outl = o.outl;
    memcpy(r->tag, o.tag, sizeof(r->tag));

    o.enc = 0;
    o.in = ct;
    o.inl = ctlen;
    o.out = r->pt = xmalloc(ctlen + SLACK);
    memset(o.tag, 0, sizeof(o.tag));
    o.taglen = taglen;
    if (taglen > 0)
        memcpy(o.tag, tag, taglen);
    r->dec_ok = run_op(&o) && o.outl == msglen && memcmp(r->pt, msg, msglen) == 0;
    r->dec_stage = o.stage;
    ERR_clear_error();
}

static void cv_free(struct cv_result *r)
{
    free(r->ct);
    free(r->pt);
}

/* What a cipher file's vectors came to, beyond the driver's counts. */
struct cv_counts {
    enum kind kind;
    unsigned unsupported; /* valid, with an IV size OpenSSL refuses */
    unsigned rejected_init, rejected_final;
};

struct cv_group {
    int ai; /* index into algs[] */
    long keybits, ivbits, tagbits;
};

static void cv_group_close(void *gs)
{
    free(gs);
}

static int cv_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    const struct cv_counts *n = s->data;
    struct cv_group *g;
    long keybits, ivbits, tagbits = 0;
    int ai;

    if (!wp_int(group, "keySize", &keybits) || !wp_int(group, "ivSize", &ivbits) ||
        (n->kind != K_CBC && !wp_int(group, "tagSize", &tagbits))) {
        printf("    %s: group without keySize, ivSize or tagSize\n", s->file);
        return 0;
    }
    ai = alg_for(n->kind, (int)keybits);
    if (ai < 0) {
        printf("    %s: %ld-bit keys: a key size offload does not offer; the group's "
               "tests are not run\n",
               s->file, keybits);
        return -1;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return 0;
    g->ai = ai;
    g->keybits = keybits;
    g->ivbits = ivbits;
    g->tagbits = tagbits;
    *out = g;
    return 1;
}

static enum wp_outcome cv_check(const struct wp_suite *s, void *vgs,
                                const struct wp_case *c)
{
    const struct cv_group *g = vgs;
    struct cv_counts *n = s->data;
    enum kind kind = n->kind;
    int aead = kind != K_CBC;
    unsigned char *key = NULL, *iv = NULL, *aad = NULL, *msg = NULL, *ct = NULL,
                  *tag = NULL;
    size_t keylen, ivlen, aadlen = 0, msglen, ctlen, taglen = 0,
                          tagsize = (size_t)g->tagbits / 8;
    struct cv_result ro, rd;
    enum wp_outcome o = WP_ERROR;

    memset(&ro, 0, sizeof(ro));
    memset(&rd, 0, sizeof(rd));
    if (!wp_hex(c->json, "key", &key, &keylen) || !wp_hex(c->json, "iv", &iv, &ivlen) ||
        !wp_hex(c->json, "msg", &msg, &msglen) || !wp_hex(c->json, "ct", &ct, &ctlen) ||
        (aead && (!wp_hex(c->json, "aad", &aad, &aadlen) ||
                  !wp_hex(c->json, "tag", &tag, &taglen)))) {
        wp_print_case("a hex field is missing or malformed", s, c);
        goto out;
    }
    /* (Some invalid vectors come with an empty tag.) */
    if ((long)keylen * 8 != g->keybits || (long)ivlen * 8 != g->ivbits ||
        (aead && (long)taglen * 8 != g->tagbits &&
         (c->result == WP_VALID || taglen != 0))) {
        wp_print_case("key, IV or tag length differs from the group's", s, c);
        goto out;
    }
    cv_run(CS.off[g->ai], kind, key, iv, aead ? ivlen : 0, aad, aadlen, msg, msglen, ct,
           ctlen, tagsize, tag, taglen, &ro);
    cv_run(CS.ref[g->ai], kind, key, iv, aead ? ivlen : 0, aad, aadlen, msg, msglen, ct,
           ctlen, tagsize, tag, taglen, &rd);

    /* Whatever the verdict, offload answers as the default provider does. */
    if (ro.enc_ok != rd.enc_ok || ro.enc_stage != rd.enc_stage ||
        ro.dec_ok != rd.dec_ok || ro.dec_stage != rd.dec_stage) {
        printf("    %s tcId %ld: offload enc %d/%d dec %d/%d, default enc %d/%d dec "
               "%d/%d\n",
               s->file, c->tcid, ro.enc_ok, ro.enc_stage, ro.dec_ok, ro.dec_stage,
               rd.enc_ok, rd.enc_stage, rd.dec_ok, rd.dec_stage);
        goto out;
    }
    if (ro.enc_ok && (ro.outl != rd.outl || memcmp(ro.ct, rd.ct, ro.outl) != 0 ||
                      memcmp(ro.tag, rd.tag, tagsize) != 0)) {
        wp_print_case("encryption differs from the default provider's", s, c);
        goto out;
    }
    if (c->result == WP_VALID) {
        int reproduced =
            ro.enc_ok && ro.outl == ctlen && memcmp(ro.ct, ct, ctlen) == 0 &&
            (!aead || (taglen == tagsize && memcmp(ro.tag, tag, taglen) == 0));

        if (kind == K_GCM && ivlen > 128 && !ro.enc_ok && ro.enc_stage == ST_INIT &&
            !ro.dec_ok && ro.dec_stage == ST_INIT) {
            /* OpenSSL's GCM takes IVs of 1 to 128 bytes: refused at init. */
            n->unsupported++;
            o = WP_SKIP;
        } else {
            if (!reproduced)
                printf("    %s tcId %ld (valid): ciphertext/tag not reproduced (enc %d, "
                       "stage %d)\n",
                       s->file, c->tcid, ro.enc_ok, ro.enc_stage);
            if (!ro.dec_ok)
                printf("    %s tcId %ld (valid): decryption failed at stage %d\n",
                       s->file, c->tcid, ro.dec_stage);
            o = reproduced && ro.dec_ok ? WP_ACCEPT : WP_REJECT;
        }
    } else if (c->result == WP_INVALID) {
        if (ro.dec_ok) {
            o = WP_ACCEPT;
        } else if (ro.dec_stage != ST_INIT && ro.dec_stage != ST_FINAL) {
            printf("    %s tcId %ld (invalid): failed at stage %d, neither init nor "
                   "final\n",
                   s->file, c->tcid, ro.dec_stage);
        } else {
            n->rejected_init += ro.dec_stage == ST_INIT;
            n->rejected_final += ro.dec_stage == ST_FINAL;
            o = WP_REJECT;
        }
    } else {
        o = ro.dec_ok ? WP_ACCEPT : WP_REJECT;
    }
out:
    cv_free(&ro);
    cv_free(&rd);
    free(key);
    free(iv);
    free(msg);
    free(ct);
    free(aad);
    free(tag);
    return o;
}

/* Runs |file|; *st and *n get the counts, printed. */
static void cipher_file(const char *file, const char *schema, const char *group_type,
                        enum kind kind, struct wp_stats *st, struct cv_counts *n)
{
    const struct wp_suite s = {file,           schema,   group_type, cv_group_open,
                               cv_group_close, cv_check, n};
    size_t acceptable;

    memset(n, 0, sizeof(*n));
    n->kind = kind;
    wp_run(&s, st);
    acceptable = st->acc_accepted + st->acc_rejected;
    print_message(
        "%s: %zu tests: %zu valid ok, %zu invalid rejected (%u at init, %u at the "
        "final), %zu acceptable, %u valid with an IV size OpenSSL refuses, %zu "
        "skipped (key size offload does not offer)\n",
        file, st->total, st->valid_ok, st->invalid_rejected, n->rejected_init,
        n->rejected_final, acceptable, n->unsupported, st->skipped - n->unsupported);
    CHECK(st->valid_ok > 0 && st->invalid_rejected > 0, "%s: nothing was checked", file);
    CHECK(st->valid_ok + st->invalid_rejected + acceptable + st->skipped == st->total,
          "%s: tests unaccounted for", file);
}

static void test_wycheproof_gcm(void **state)
{
    struct wp_stats st;
    struct cv_counts n;

    (void)state;
    cipher_file("aes_gcm_test.json", "aead_test_schema_v1.json", "AeadTest", K_GCM, &st,
                &n);
    assert_int_equal(st.skipped - n.unsupported, 0);
    /* Only the 2056-bit IVs are beyond OpenSSL's 128-byte limit. */
    assert_true(n.unsupported <= 3);
}

static void test_wycheproof_cbc(void **state)
{
    struct wp_stats st;
    struct cv_counts n;

    (void)state;
    cipher_file("aes_cbc_pkcs5_test.json", "ind_cpa_test_schema_v1.json", "IndCpaTest",
                K_CBC, &st, &n);
    assert_int_equal(n.unsupported, 0);
}

static void test_wycheproof_chacha(void **state)
{
    struct wp_stats st;
    struct cv_counts n;

    (void)state;
    cipher_file("chacha20_poly1305_test.json", "aead_test_schema_v1.json", "AeadTest",
                K_CHACHA, &st, &n);
    assert_int_equal(st.skipped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wycheproof_gcm),
        cmocka_unit_test(test_wycheproof_cbc),
        cmocka_unit_test(test_wycheproof_chacha),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ciphers through the offload provider against the default provider:
 * each of AES-128/192/256-GCM, AES-128/256-CBC and ChaCha20-Poly1305 is
 * fetched from offload, and compared byte for byte with the default
 * provider: encrypt here and decrypt there and the reverse, sizes 0 to
 * 65537, one piece or random pieces (seeded PRNG), AAD in pieces, in
 * place, IV and tag lengths, a flipped tag or ciphertext bit.
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

/* ---- 0. fetching ---- */

static void test_fetch(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < NALGS; i++) {
        EVP_CIPHER *any = EVP_CIPHER_fetch(CS.env.libctx, algs[i].name, NULL);

        CHECK(CS.off[i] != NULL, "%s: not fetched with \"%s\"", algs[i].name,
              OFFLOAD_PROPQ);
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(CS.off[i])),
                            OFFLOAD_PROVIDER_NAME);
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(CS.ref[i])),
                            "default");
        /* Without a property query, the context's "?provider=offload" wins. */
        assert_non_null(any);
        assert_string_equal(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(any)),
                            OFFLOAD_PROVIDER_NAME);
        assert_true(EVP_CIPHER_is_a(CS.off[i], algs[i].name));
        EVP_CIPHER_free(any);
    }
}

/* ---- 1. round trips against the default provider ---- */

static const size_t sizes[] = {0, 1, 15, 16, 17, 255, 1024, 16384, 65537};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

struct variant {
    size_t ivlen, taglen;
};

static const struct variant gcm_variants[] = {
    {12, 16}, {12, 12}, {12, 4}, {16, 16}, {16, 12}, {1, 16}, {64, 4},
};
static const struct variant chacha_variants[] = {{12, 16}};
static const struct variant cbc_variants[] = {{16, 0}};

enum { M_ONE, M_PIECES, M_INPLACE, M_INPLACE_PIECES, M_COUNT };
static const char *const mode_names[M_COUNT] = {"one piece", "pieces", "in place",
                                                "in place, pieces"};

static const struct variant *variants_of(enum kind k, size_t *n)
{
    switch (k) {
    case K_GCM:
        *n = sizeof(gcm_variants) / sizeof(gcm_variants[0]);
        return gcm_variants;
    case K_CHACHA:
        *n = sizeof(chacha_variants) / sizeof(chacha_variants[0]);
        return chacha_variants;
    default:
        *n = sizeof(cbc_variants) / sizeof(cbc_variants[0]);
        return cbc_variants;
    }
}

static void roundtrip_one(size_t a, const struct variant *v, size_t size, int mode,
                          unsigned *checks)
{
    const struct alg *al = &algs[a];
    int aead = al->kind != K_CBC;
    unsigned char key[32], iv[64], aad[96], *pt, *ct_o, *ct_d, *back;
    struct op o, d;
    size_t aadlen = 0;
    char desc[200];

    rnd_fill(&CS.rng, key, sizeof(key));
    rnd_fill(&CS.rng, iv, sizeof(iv));
    if (aead) {
        aadlen = (size_t)(rnd(&CS.rng) % sizeof(aad));
        rnd_fill(&CS.rng, aad, aadlen);
    }
    pt = xmalloc(size + SLACK);
    ct_o = xmalloc(size + SLACK);
    ct_d = xmalloc(size + SLACK);
    back = xmalloc(size + SLACK);
    rnd_fill(&CS.rng, pt, size);
    snprintf(desc, sizeof(desc), "%s, %zu bytes, %s, iv %zu, tag %zu, aad %zu", al->name,
             size, mode_names[mode], v->ivlen, v->taglen, aadlen);

    /* Encrypt through offload, in |mode|. */
    memset(&o, 0, sizeof(o));
    o.cipher = CS.off[a];
    o.kind = al->kind;
    o.enc = 1;
    o.key = key;
    o.iv = iv;
    o.ivlen = v->ivlen;
    o.set_ivlen = aead;
    o.taglen = v->taglen;
    o.ctrls = (mode + (int)size) & 1;
    o.aad = aad;
    o.aadlen = aadlen;
    o.in = pt;
    o.inl = size;
    o.out = ct_o;
    o.pieces = mode == M_PIECES || mode == M_INPLACE_PIECES;
    o.inplace = mode == M_INPLACE || mode == M_INPLACE_PIECES;
    o.rng = rnd(&CS.rng);
    CHECK(run_op(&o), "%s: offload encrypt failed at stage %d", desc, o.stage);

    /* The same with the default provider, in one piece. */
    d = o;
    d.cipher = CS.ref[a];
    d.out = ct_d;
    d.pieces = d.inplace = 0;
    d.ctrls = !o.ctrls;
    CHECK(run_op(&d), "%s: default encrypt failed at stage %d", desc, d.stage);
    CHECK(o.outl == d.outl, "%s: ciphertext length %zu, default %zu", desc, o.outl,
          d.outl);
    CHECK(memcmp(ct_o, ct_d, o.outl) == 0, "%s: ciphertext differs from default", desc);
    CHECK(!aead || memcmp(o.tag, d.tag, v->taglen) == 0, "%s: tag differs from default",
          desc);

    /* Offload's ciphertext decrypts with the default provider. */
    d.enc = 0;
    d.in = ct_o;
    d.inl = o.outl;
    d.out = back;
    memcpy(d.tag, o.tag, sizeof(d.tag));
    CHECK(run_op(&d), "%s: default cannot decrypt offload's output (stage %d)", desc,
          d.stage);
    CHECK(d.outl == size && memcmp(back, pt, size) == 0,
          "%s: default decrypts offload's output wrongly", desc);

    /* And the default's ciphertext with offload, in |mode|. */
    memset(back, 0, size + SLACK);
    o.enc = 0;
    o.in = ct_d;
    o.inl = o.outl;
    o.out = back;
    o.rng = rnd(&CS.rng);
    CHECK(run_op(&o), "%s: offload cannot decrypt default's output (stage %d)", desc,
          o.stage);
    CHECK(o.outl == size && memcmp(back, pt, size) == 0,
          "%s: offload decrypts default's output wrongly", desc);
    *checks += 4;

    if (aead) {
        size_t bit = (size_t)(rnd(&CS.rng) % (v->taglen * 8));

        /* A flipped tag bit: the final must fail. */
        o.tag[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        o.rng = rnd(&CS.rng);
        CHECK(!run_op(&o) && o.stage == ST_FINAL,
              "%s: tag bit %zu flipped, offload decrypt did not fail at the final (stage "
              "%d)",
              desc, bit, o.stage);
        o.tag[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        *checks += 1;
        if (size > 0) {
            /* A flipped ciphertext bit, likewise. */
            bit = (size_t)(rnd(&CS.rng) % (size * 8));
            ct_d[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            CHECK(!run_op(&o) && o.stage == ST_FINAL,
                  "%s: ciphertext bit %zu flipped, offload decrypt did not fail", desc,
                  bit);
            ct_d[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            *checks += 1;
        }
        if (aadlen > 0) {
            bit = (size_t)(rnd(&CS.rng) % (aadlen * 8));
            aad[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            CHECK(!run_op(&o) && o.stage == ST_FINAL,
                  "%s: AAD bit %zu flipped, offload decrypt did not fail", desc, bit);
            *checks += 1;
        }
        ERR_clear_error();
    }
    free(pt);
    free(ct_o);
    free(ct_d);
    free(back);
}

static void test_roundtrip(void **state)
{
    size_t a = *(const size_t *)*state, nv, vi, si;
    const struct variant *v = variants_of(algs[a].kind, &nv);
    unsigned checks = 0, combos = 0;
    int mode;

    for (vi = 0; vi < nv; vi++) {
        for (si = 0; si < NSIZES; si++) {
            for (mode = 0; mode < M_COUNT; mode++) {
                /* CBC's output lags its input: in place only in one piece. */
                if (algs[a].kind == K_CBC && mode == M_INPLACE_PIECES)
                    continue;
                roundtrip_one(a, &v[vi], sizes[si], mode, &checks);
                combos++;
            }
        }
    }
    print_message("%s: %u combinations, %u checks against the default provider\n",
                  algs[a].name, combos, checks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch), PER_ALG(test_roundtrip, 0),
        PER_ALG(test_roundtrip, 1),   PER_ALG(test_roundtrip, 2),
        PER_ALG(test_roundtrip, 3),   PER_ALG(test_roundtrip, 4),
        PER_ALG(test_roundtrip, 5),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

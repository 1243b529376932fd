/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cipher context parameters through the offload provider: the same
 * gettable/settable keys and values as the default provider, before and
 * after init and after data, and GCM's TLS IV generation (fixed IV,
 * IV_GEN, SET_IV_INV) record by record against the default provider.
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

/* ---- 2. parameters ---- */

static int has_key(const OSSL_PARAM *list, const char *key)
{
    return OSSL_PARAM_locate_const(list, key) != NULL;
}

/* Same keys (and types) in both lists, in any order. */
static void same_keys(const char *what, const char *name, const OSSL_PARAM *a,
                      const OSSL_PARAM *b)
{
    const OSSL_PARAM *p;
    size_t na = 0, nb = 0;

    CHECK(a != NULL && b != NULL, "%s %s: a list is missing", name, what);
    for (p = a; p->key != NULL; p++, na++) {
        const OSSL_PARAM *q = OSSL_PARAM_locate_const(b, p->key);

        CHECK(q != NULL, "%s %s: offload has \"%s\", default does not", name, what,
              p->key);
        CHECK(q->data_type == p->data_type, "%s %s: \"%s\" has another type", name, what,
              p->key);
    }
    for (p = b; p->key != NULL; p++, nb++)
        CHECK(OSSL_PARAM_locate_const(a, p->key) != NULL,
              "%s %s: default has \"%s\", offload does not", name, what, p->key);
    CHECK(na == nb, "%s %s: %zu keys, default %zu", name, what, na, nb);
}

struct pval {
    int ret, modified;
    size_t size;
    uint64_t u;
    int64_t i;
    unsigned char data[256];
};

/* Reads |def|'s key from a cipher (ctx == NULL) or a context, whatever its type. */
static void get_value(const EVP_CIPHER *c, EVP_CIPHER_CTX *ctx, const OSSL_PARAM *def,
                      size_t taglen, struct pval *v)
{
    OSSL_PARAM p[2];
    void *ptr = NULL;

    memset(v, 0, sizeof(*v));
    switch (def->data_type) {
    case OSSL_PARAM_UNSIGNED_INTEGER:
        p[0] = OSSL_PARAM_construct_uint64(def->key, &v->u);
        break;
    case OSSL_PARAM_INTEGER:
        p[0] = OSSL_PARAM_construct_int64(def->key, &v->i);
        break;
    case OSSL_PARAM_OCTET_STRING:
        /* A tag is read at its length; anything else into a large buffer. */
        p[0] = OSSL_PARAM_construct_octet_string(
            def->key, v->data,
            strcmp(def->key, OSSL_CIPHER_PARAM_AEAD_TAG) == 0 ? taglen : sizeof(v->data));
        break;
    case OSSL_PARAM_UTF8_STRING:
        p[0] =
            OSSL_PARAM_construct_utf8_string(def->key, (char *)v->data, sizeof(v->data));
        break;
    case OSSL_PARAM_OCTET_PTR:
        p[0] = OSSL_PARAM_construct_octet_ptr(def->key, &ptr, 0);
        break;
    default:
        fail_msg("parameter \"%s\" of unexpected type %u", def->key, def->data_type);
    }
    p[1] = OSSL_PARAM_construct_end();
    v->ret = ctx != NULL ? EVP_CIPHER_CTX_get_params(ctx, p)
                         : EVP_CIPHER_get_params((EVP_CIPHER *)c, p);
    v->modified = OSSL_PARAM_modified(&p[0]);
    if (!v->modified)
        return;
    v->size = p[0].return_size;
    if (def->data_type == OSSL_PARAM_OCTET_PTR && ptr != NULL)
        memcpy(v->data, ptr, v->size < sizeof(v->data) ? v->size : sizeof(v->data));
}

static int same_value(const OSSL_PARAM *def, const struct pval *a, const struct pval *b)
{
    if ((a->ret > 0) != (b->ret > 0) || a->modified != b->modified)
        return 0;
    if (a->ret <= 0 || !a->modified)
        return 1;
    switch (def->data_type) {
    case OSSL_PARAM_UNSIGNED_INTEGER:
        return a->u == b->u;
    case OSSL_PARAM_INTEGER:
        return a->i == b->i;
    default:
        return a->size == b->size &&
               memcmp(a->data, b->data,
                      a->size < sizeof(a->data) ? a->size : sizeof(a->data)) == 0;
    }
}

/* Every gettable ctx param of |ctxo| (offload) and |ctxd| (default) agrees. */
static unsigned same_ctx_values(const char *when, size_t a, EVP_CIPHER_CTX *ctxo,
                                EVP_CIPHER_CTX *ctxd, size_t taglen)
{
    const OSSL_PARAM *list = EVP_CIPHER_CTX_gettable_params(ctxd), *p;
    unsigned n = 0;

    same_keys("ctx gettable (with a ctx)", algs[a].name,
              EVP_CIPHER_CTX_gettable_params(ctxo), list);
    for (p = list; p->key != NULL; p++, n++) {
        struct pval vo, vd;

        get_value(NULL, ctxo, p, taglen, &vo);
        get_value(NULL, ctxd, p, taglen, &vd);
        CHECK(same_value(p, &vo, &vd),
              "%s, %s: \"%s\" differs: offload ret %d size %zu u %" PRIu64
              ", default ret %d size %zu u %" PRIu64,
              algs[a].name, when, p->key, vo.ret, vo.size, vo.u, vd.ret, vd.size, vd.u);
    }
    ERR_clear_error();
    return n;
}

static size_t get_size(EVP_CIPHER_CTX *ctx, const char *key)
{
    size_t v = 0;
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_size_t(key, &v), OSSL_PARAM_END};

    assert_int_equal(EVP_CIPHER_CTX_get_params(ctx, p), 1);
    assert_true(OSSL_PARAM_modified(&p[0]));
    return v;
}

/* Set-only keys whose values mean something: exercised by the dedicated tests. */
static const char *const dedicated[] = {
    OSSL_CIPHER_PARAM_AEAD_TAG,           OSSL_CIPHER_PARAM_AEAD_TLS1_AAD,
    OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV,
    OSSL_CIPHER_PARAM_TLS_VERSION,        OSSL_CIPHER_PARAM_TLS_MAC_SIZE,
};

static int is_dedicated(const char *key)
{
    size_t i;

    for (i = 0; i < sizeof(dedicated) / sizeof(dedicated[0]); i++)
        if (strcmp(key, dedicated[i]) == 0)
            return 1;
    return 0;
}

/* Sets |key| to |v| (an unsigned integer) on both; the answers must agree. */
static void set_both_uint(size_t a, EVP_CIPHER_CTX *ctxo, EVP_CIPHER_CTX *ctxd,
                          const char *key, uint64_t v)
{
    uint64_t vo = v, vd = v;
    OSSL_PARAM po[2] = {OSSL_PARAM_construct_uint64(key, &vo), OSSL_PARAM_END};
    OSSL_PARAM pd[2] = {OSSL_PARAM_construct_uint64(key, &vd), OSSL_PARAM_END};
    int ro = EVP_CIPHER_CTX_set_params(ctxo, po),
        rd = EVP_CIPHER_CTX_set_params(ctxd, pd);

    CHECK((ro > 0) == (rd > 0),
          "%s: setting \"%s\" = %" PRIu64 ": offload %d, default %d", algs[a].name, key,
          v, ro, rd);
    ERR_clear_error();
}

static void test_params(void **state)
{
    size_t a = *(const size_t *)*state;
    const struct alg *al = &algs[a];
    EVP_CIPHER *co = CS.off[a], *cd = CS.ref[a];
    EVP_CIPHER_CTX *ctxo = EVP_CIPHER_CTX_new(), *ctxd = EVP_CIPHER_CTX_new();
    const OSSL_PARAM *p, *settable;
    unsigned char key[32], iv[16], buf[64 + SLACK], outo[64 + SLACK], outd[64 + SLACK];
    unsigned char tago[16], tagd[16], uivo[16], uivd[16];
    int aead = al->kind != K_CBC, lo, ld, gets = 0, sets = 0;
    size_t ivlen = al->kind == K_CBC ? 16 : 12;

    assert_non_null(ctxo);
    assert_non_null(ctxd);
    rnd_fill(&CS.rng, key, sizeof(key));
    rnd_fill(&CS.rng, iv, sizeof(iv));
    rnd_fill(&CS.rng, buf, sizeof(buf));

    /* The same lists of keys. */
    same_keys("gettable", al->name, EVP_CIPHER_gettable_params(co),
              EVP_CIPHER_gettable_params(cd));
    same_keys("ctx gettable", al->name, EVP_CIPHER_gettable_ctx_params(co),
              EVP_CIPHER_gettable_ctx_params(cd));
    same_keys("ctx settable", al->name, EVP_CIPHER_settable_ctx_params(co),
              EVP_CIPHER_settable_ctx_params(cd));

    /* The algorithm's own parameters: same values. */
    for (p = EVP_CIPHER_gettable_params(cd); p->key != NULL; p++, gets++) {
        struct pval vo, vd;

        get_value(co, NULL, p, 16, &vo);
        get_value(cd, NULL, p, 16, &vd);
        CHECK(vo.ret > 0 && same_value(p, &vo, &vd), "%s: algorithm param \"%s\" differs",
              al->name, p->key);
    }
    assert_int_equal(EVP_CIPHER_get_key_length(co), (int)al->keylen);
    assert_int_equal(EVP_CIPHER_get_iv_length(co), (int)ivlen);
    assert_int_equal(EVP_CIPHER_get_block_size(co), al->kind == K_CBC ? 16 : 1);
    {
        int isaead = -1;
        OSSL_PARAM q[2] = {OSSL_PARAM_construct_int(OSSL_CIPHER_PARAM_AEAD, &isaead),
                           OSSL_PARAM_END};

        assert_int_equal(EVP_CIPHER_get_params(co, q), 1);
        assert_int_equal(isaead, aead);
    }

    /* Context parameters: fresh, keyed, after data and after the final. */
    assert_int_equal(EVP_EncryptInit_ex2(ctxo, co, NULL, NULL, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex2(ctxd, cd, NULL, NULL, NULL), 1);
    gets += same_ctx_values("fresh", a, ctxo, ctxd, 16);
    if (al->kind == K_GCM) {
        /* A non-default IV length, read back. */
        ivlen = 16;
        assert_true(set_ivlen(ctxo, ivlen, 0));
        assert_true(set_ivlen(ctxd, ivlen, 1));
    }
    assert_int_equal(EVP_EncryptInit_ex2(ctxo, NULL, key, iv, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex2(ctxd, NULL, key, iv, NULL), 1);
    gets += same_ctx_values("keyed", a, ctxo, ctxd, 16);
    assert_int_equal(get_size(ctxo, OSSL_CIPHER_PARAM_KEYLEN), al->keylen);
    assert_int_equal(get_size(ctxo, OSSL_CIPHER_PARAM_IVLEN), ivlen);
    assert_int_equal(EVP_CIPHER_CTX_get_key_length(ctxo), (int)al->keylen);
    assert_int_equal(EVP_CIPHER_CTX_get_iv_length(ctxo), (int)ivlen);
    assert_int_equal(EVP_CIPHER_CTX_get_block_size(ctxo), al->kind == K_CBC ? 16 : 1);
    if (aead) {
        assert_int_equal(EVP_EncryptUpdate(ctxo, NULL, &lo, buf, 13), 1);
        assert_int_equal(EVP_EncryptUpdate(ctxd, NULL, &ld, buf, 13), 1);
    }
    assert_int_equal(EVP_EncryptUpdate(ctxo, outo, &lo, buf, 40), 1);
    assert_int_equal(EVP_EncryptUpdate(ctxd, outd, &ld, buf, 40), 1);
    assert_int_equal(lo, ld);
    assert_memory_equal(outo, outd, (size_t)lo);
    gets += same_ctx_values("after 40 bytes", a, ctxo, ctxd, 16);
    /* "updated-iv" (CBC: the chaining value; GCM: the IV; ChaCha20-Poly1305: none). */
    if (has_key(EVP_CIPHER_gettable_ctx_params(cd), OSSL_CIPHER_PARAM_UPDATED_IV)) {
        assert_int_equal(EVP_CIPHER_CTX_get_updated_iv(ctxo, uivo, ivlen), 1);
        assert_int_equal(EVP_CIPHER_CTX_get_updated_iv(ctxd, uivd, ivlen), 1);
        assert_memory_equal(uivo, uivd, ivlen);
        if (al->kind == K_CBC)
            assert_memory_equal(uivo, outo + lo - 16, 16); /* the last ciphertext block */
    } else {
        assert_int_equal(al->kind, K_CHACHA);
    }
    {
        int fo, fd;

        assert_int_equal(EVP_EncryptFinal_ex(ctxo, outo + lo, &fo), 1);
        assert_int_equal(EVP_EncryptFinal_ex(ctxd, outd + ld, &fd), 1);
        assert_int_equal(fo, fd);
        assert_memory_equal(outo, outd, (size_t)(lo + fo));
    }
    gets += same_ctx_values("after the final", a, ctxo, ctxd, 16);
    if (aead) {
        /* "taglen" ("tagl" in the EVP API) and the tag itself. */
        /* (ChaCha20-Poly1305 in OpenSSL 3.0 reports 0 until a tag is set.) */
        assert_int_equal(EVP_CIPHER_CTX_get_tag_length(ctxo),
                         EVP_CIPHER_CTX_get_tag_length(ctxd));
        assert_int_equal(get_size(ctxo, OSSL_CIPHER_PARAM_AEAD_TAGLEN),
                         get_size(ctxd, OSSL_CIPHER_PARAM_AEAD_TAGLEN));
        if (al->kind == K_GCM)
            assert_int_equal(EVP_CIPHER_CTX_get_tag_length(ctxo), 16);
        assert_true(get_tag(ctxo, tago, 16, 0));
        assert_true(get_tag(ctxd, tagd, 16, 1));
        assert_memory_equal(tago, tagd, 16);
        gets += same_ctx_values("tag read at 12", a, ctxo, ctxd, 12);
    }

    /*
     * Every settable key: those also gettable are written back with their
     * current value, set-only scalars set to 0 on fresh contexts, and the
     * remaining (TLS, tag) have tests of their own below.
     */
    settable = EVP_CIPHER_CTX_settable_params(ctxd);
    same_keys("ctx settable (with a ctx)", al->name, EVP_CIPHER_CTX_settable_params(ctxo),
              settable);
    for (p = settable; p->key != NULL; p++) {
        const OSSL_PARAM *g =
            OSSL_PARAM_locate_const(EVP_CIPHER_CTX_gettable_params(ctxd), p->key);

        if (is_dedicated(p->key)) {
            print_message("  %s: settable \"%s\": dedicated test\n", al->name, p->key);
            continue;
        }
        CHECK(p->data_type == OSSL_PARAM_UNSIGNED_INTEGER ||
                  p->data_type == OSSL_PARAM_INTEGER,
              "%s: settable \"%s\" of type %u is not covered", al->name, p->key,
              p->data_type);
        if (g != NULL) {
            struct pval v;

            get_value(NULL, ctxd, g, 16, &v);
            CHECK(v.ret > 0 && v.modified, "%s: cannot read \"%s\"", al->name, p->key);
            set_both_uint(a, ctxo, ctxd, p->key,
                          g->data_type == OSSL_PARAM_INTEGER ? (uint64_t)v.i : v.u);
            gets += same_ctx_values(p->key, a, ctxo, ctxd, 16);
        } else {
            EVP_CIPHER_CTX *fo = EVP_CIPHER_CTX_new(), *fd = EVP_CIPHER_CTX_new();

            assert_int_equal(EVP_DecryptInit_ex2(fo, co, key, iv, NULL), 1);
            assert_int_equal(EVP_DecryptInit_ex2(fd, cd, key, iv, NULL), 1);
            set_both_uint(a, fo, fd, p->key, 0);
            EVP_CIPHER_CTX_free(fo);
            EVP_CIPHER_CTX_free(fd);
        }
        print_message("  %s: settable \"%s\": same answer as default\n", al->name,
                      p->key);
        sets++;
    }
    if (al->kind == K_CBC) {
        /* "padding": off on both, the same unpadded output. */
        int fo, fd;

        assert_int_equal(EVP_EncryptInit_ex2(ctxo, NULL, key, iv, NULL), 1);
        assert_int_equal(EVP_EncryptInit_ex2(ctxd, NULL, key, iv, NULL), 1);
        assert_int_equal(EVP_CIPHER_CTX_set_padding(ctxo, 0), 1);
        assert_int_equal(EVP_CIPHER_CTX_set_padding(ctxd, 0), 1);
        gets += same_ctx_values("no padding", a, ctxo, ctxd, 16);
        assert_int_equal(EVP_EncryptUpdate(ctxo, outo, &lo, buf, 32), 1);
        assert_int_equal(EVP_EncryptUpdate(ctxd, outd, &ld, buf, 32), 1);
        assert_int_equal(EVP_EncryptFinal_ex(ctxo, outo + lo, &fo), 1);
        assert_int_equal(EVP_EncryptFinal_ex(ctxd, outd + ld, &fd), 1);
        assert_int_equal(lo + fo, 32);
        assert_int_equal(ld + fd, 32);
        assert_memory_equal(outo, outd, 32);
    }
    print_message("%s: %d parameter reads and %d settable keys agree with the default\n",
                  al->name, gets, sets);
    EVP_CIPHER_CTX_free(ctxo);
    EVP_CIPHER_CTX_free(ctxd);
}

/* ---- 3. GCM's TLS IV generation ---- */

#define IVGEN_RECORDS 6

static void test_gcm_ivgen(void **state)
{
    size_t a = *(const size_t *)*state;
    EVP_CIPHER_CTX *eo = EVP_CIPHER_CTX_new(), *ed = EVP_CIPHER_CTX_new(),
                   *dec = EVP_CIPHER_CTX_new();
    unsigned char key[32], iv[12], aad[13], pt[300], cto[300], ctd[300], back[300];
    unsigned char gen_o[IVGEN_RECORDS][12], gen_d[IVGEN_RECORDS][12];
    unsigned char tago[IVGEN_RECORDS][16], tagd[16];
    int k, l, f;

    assert_non_null(eo);
    assert_non_null(ed);
    assert_non_null(dec);
    rnd_fill(&CS.rng, key, sizeof(key));
    rnd_fill(&CS.rng, iv, sizeof(iv));
    iv[11] = 0xfe; /* the counter carries into the next byte within a few records */
    rnd_fill(&CS.rng, aad, sizeof(aad));
    rnd_fill(&CS.rng, pt, sizeof(pt));
    assert_int_equal(EVP_EncryptInit_ex2(eo, CS.off[a], key, NULL, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex2(ed, CS.ref[a], key, NULL, NULL), 1);
    /* The whole IV as fixed part (-1): deterministic, no random explicit part. */
    assert_int_equal(EVP_CIPHER_CTX_ctrl(eo, EVP_CTRL_GCM_SET_IV_FIXED, -1, iv), 1);
    {
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(
                               OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, iv, (size_t)-1),
                           OSSL_PARAM_END};

        assert_int_equal(EVP_CIPHER_CTX_set_params(ed, p), 1);
    }
    for (k = 0; k < IVGEN_RECORDS; k++) {
        size_t plen = (size_t)(k * 50 + 7);

        /* Alternately the ctrl (explicit part only) and "tlsivgen" (whole IV). */
        if (k & 1) {
            OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(
                                   OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN, gen_o[k], 12),
                               OSSL_PARAM_END};

            assert_int_equal(EVP_CIPHER_CTX_get_params(eo, p), 1);
        } else {
            assert_int_equal(EVP_CIPHER_CTX_ctrl(eo, EVP_CTRL_GCM_IV_GEN, 12, gen_o[k]),
                             1);
        }
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ed, EVP_CTRL_GCM_IV_GEN, 12, gen_d[k]), 1);
        assert_memory_equal(gen_o[k], gen_d[k], 12);
        /* fixed || explicit, the explicit part counting up from the given IV. */
        assert_memory_equal(gen_o[k], iv, 4);
        if (k > 0) {
            uint64_t prev = 0, cur = 0;
            int b;

            for (b = 4; b < 12; b++) {
                prev = prev << 8 | gen_o[k - 1][b];
                cur = cur << 8 | gen_o[k][b];
            }
            assert_true(cur == prev + 1);
        } else {
            assert_memory_equal(gen_o[0], iv, 12);
        }
        assert_int_equal(EVP_EncryptUpdate(eo, NULL, &l, aad, sizeof(aad)), 1);
        assert_int_equal(EVP_EncryptUpdate(ed, NULL, &l, aad, sizeof(aad)), 1);
        assert_int_equal(EVP_EncryptUpdate(eo, cto, &l, pt, (int)plen), 1);
        assert_int_equal(EVP_EncryptFinal_ex(eo, cto + l, &f), 1);
        assert_int_equal(EVP_EncryptUpdate(ed, ctd, &l, pt, (int)plen), 1);
        assert_int_equal(EVP_EncryptFinal_ex(ed, ctd + l, &f), 1);
        assert_memory_equal(cto, ctd, plen);
        assert_true(get_tag(eo, tago[k], 16, 1));
        assert_true(get_tag(ed, tagd, 16, 0));
        assert_memory_equal(tago[k], tagd, 16);

        /* The receiver: fixed part, then each record's explicit part (SET_IV_INV). */
        if (k == 0) {
            assert_int_equal(EVP_DecryptInit_ex2(dec, CS.off[a], key, NULL, NULL), 1);
            assert_int_equal(EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_IV_FIXED, 4, iv),
                             1);
        }
        if (k & 1) {
            assert_int_equal(
                EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_IV_INV, 8, gen_o[k] + 4), 1);
        } else {
            OSSL_PARAM p[2] = {
                OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV,
                                                  gen_o[k] + 4, 8),
                OSSL_PARAM_END};

            assert_int_equal(EVP_CIPHER_CTX_set_params(dec, p), 1);
        }
        assert_int_equal(EVP_DecryptUpdate(dec, NULL, &l, aad, sizeof(aad)), 1);
        assert_int_equal(EVP_DecryptUpdate(dec, back, &l, cto, (int)plen), 1);
        assert_true(set_tag(dec, tago[k], 16, k & 1));
        assert_int_equal(EVP_DecryptFinal_ex(dec, back + l, &f), 1);
        assert_memory_equal(back, pt, plen);
    }
    /* IV_INV is refused while encrypting; IV_GEN works only after a fixed IV. */
    ERR_clear_error();
    assert_true(EVP_CIPHER_CTX_ctrl(eo, EVP_CTRL_GCM_SET_IV_INV, 8, iv) <= 0);
    assert_int_equal(EVP_EncryptInit_ex2(ed, CS.off[a], key, iv, NULL), 1);
    assert_true(EVP_CIPHER_CTX_ctrl(ed, EVP_CTRL_GCM_IV_GEN, 12, gen_d[0]) <= 0);
    ERR_clear_error();
    print_message("%s: %d TLS IVs generated and used, same as the default provider\n",
                  algs[a].name, IVGEN_RECORDS);
    EVP_CIPHER_CTX_free(eo);
    EVP_CIPHER_CTX_free(ed);
    EVP_CIPHER_CTX_free(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PER_ALG(test_params, 0),    PER_ALG(test_params, 1),
        PER_ALG(test_params, 2),    PER_ALG(test_params, 3),
        PER_ALG(test_params, 4),    PER_ALG(test_params, 5),
        PER_ALG(test_gcm_ivgen, 0), PER_ALG(test_gcm_ivgen, 1),
        PER_ALG(test_gcm_ivgen, 2),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS record paths of the ciphers through the offload provider: the
 * one-shot TLS 1.2 AEAD record (tlsaad + EVP_Cipher, ctrl and params;
 * AES-GCM and ChaCha20-Poly1305) and AES-CBC in TLS 1.2 record mode
 * ("tls-version", "tls-mac"), against the default provider, with bad
 * records refused.
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

static const size_t tls_sizes[] = {0, 1, 100, 1500, 16384};
#define NTLS (sizeof(tls_sizes) / sizeof(tls_sizes[0]))

static void test_tls_aead_oneshot(void **state)
{
    size_t a = *(const size_t *)*state, i, ex = TLS_EXPLICIT(algs[a].kind);
    enum kind kind = algs[a].kind;
    EVP_CIPHER_CTX *eo = EVP_CIPHER_CTX_new(), *ed = EVP_CIPHER_CTX_new(),
                   *dec = EVP_CIPHER_CTX_new(), *decd = EVP_CIPHER_CTX_new();
    unsigned char key[32], fixed[12];
    unsigned char *pt = xmalloc(16384), *ro = xmalloc(16384 + SLACK),
                  *rd = xmalloc(16384 + SLACK), *rd2 = xmalloc(16384 + SLACK);

    assert_non_null(eo);
    assert_non_null(ed);
    assert_non_null(dec);
    assert_non_null(decd);
    rnd_fill(&CS.rng, key, sizeof(key));
    rnd_fill(&CS.rng, fixed, sizeof(fixed));
    assert_true(tls_aead_init(eo, CS.off[a], kind, 1, key, fixed));
    assert_true(tls_aead_init(ed, CS.ref[a], kind, 1, key, fixed));
    assert_true(tls_aead_init(dec, CS.off[a], kind, 0, key, fixed));
    assert_true(tls_aead_init(decd, CS.ref[a], kind, 0, key, fixed));
    for (i = 0; i < NTLS; i++) {
        size_t plen = tls_sizes[i], reclen = ex + plen + 16, bit;
        int r, r2;

        rnd_fill(&CS.rng, pt, plen);
        /*
         * A refused record's payload is wiped to zeros: a payload that is
         * not all zeros keeps "plaintext released" from matching by chance
         * (one run in 256 had a 1-byte payload of 0).
         */
        if (plen > 0)
            pt[0] |= 0x80;
        memcpy(ro + ex, pt, plen);
        memcpy(rd + ex, pt, plen);
        r = tls_aead_record(eo, kind, 1, i, ro, plen, (int)(i & 1));
        CHECK(r == (int)reclen, "%s: TLS record of %zu: EVP_Cipher said %d", algs[a].name,
              plen, r);
        r = tls_aead_record(ed, kind, 1, i, rd, plen, 0);
        CHECK(r == (int)reclen, "%s: default TLS record: %d", algs[a].name, r);
        CHECK(memcmp(ro, rd, reclen) == 0, "%s: TLS record of %zu differs from default",
              algs[a].name, plen);

        /*
         * Decrypted in place by offload and by the default: the payload. (The
         * length EVP_Cipher returns is the payload's for ChaCha20-Poly1305,
         * the record's for GCM: the same as the default's, either way.)
         */
        memcpy(rd2, rd, reclen);
        r = tls_aead_record(dec, kind, 0, i, ro, plen, (int)(~i & 1));
        r2 = tls_aead_record(decd, kind, 0, i, rd2, plen, 0);
        CHECK(r == r2 && (r == (int)plen || (kind == K_GCM && r == (int)reclen)),
              "%s: TLS record of %zu: decrypt said %d, default %d", algs[a].name, plen, r,
              r2);
        CHECK(memcmp(ro + ex, pt, plen) == 0, "%s: TLS record decrypts wrongly",
              algs[a].name);
        CHECK(memcmp(ro, rd2, reclen) == 0,
              "%s: TLS record: buffer differs from default's", algs[a].name);

        /* A flipped tag bit: refused, and the payload never released. */
        bit = (size_t)(rnd(&CS.rng) % 128);
        rd[ex + plen + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        memcpy(ro, rd, reclen);
        r = tls_aead_record(dec, kind, 0, i, ro, plen, 0);
        CHECK(r == -1, "%s: TLS record with a bad tag: EVP_Cipher said %d", algs[a].name,
              r);
        CHECK(plen == 0 || memcmp(ro + ex, pt, plen) != 0,
              "%s: bad TLS record: plaintext released", algs[a].name);
        r = tls_aead_record(decd, kind, 0, i, rd, plen, 0);
        CHECK(r == -1, "%s: default accepted the bad record", algs[a].name);
        /* Run inline here, as the default does: the payload is wiped. */
        CHECK(memcmp(ro, rd, reclen) == 0,
              "%s: bad TLS record: buffer differs from what the default leaves",
              algs[a].name);
        ERR_clear_error();
    }
    print_message("%s: %zu one-shot TLS records equal to default, decrypted, bad tags "
                  "refused\n",
                  algs[a].name, NTLS);
    free(pt);
    free(ro);
    free(rd);
    free(rd2);
    EVP_CIPHER_CTX_free(eo);
    EVP_CIPHER_CTX_free(ed);
    EVP_CIPHER_CTX_free(dec);
    EVP_CIPHER_CTX_free(decd);
}

static void test_cbc_tls(void **state)
{
    size_t a = *(const size_t *)*state, i;
    static const size_t plens[] = {0, 1, 15, 16, 100, 1000, 4096, 16384};
    EVP_CIPHER_CTX *ro, *rd, *so = EVP_CIPHER_CTX_new(), *sd = EVP_CIPHER_CTX_new();
    unsigned char key[32], mac[MAC_SIZE], mo[MAC_SIZE], md[MAC_SIZE];
    unsigned char *pt = xmalloc(16384), *rec = xmalloc(16384 + 256),
                  *reco = xmalloc(16384 + 256), *recd = xmalloc(16384 + 256);
    uint64_t inl0 = counter(C_INLINE);
    unsigned int version = TLS1_2_VERSION;
    OSSL_PARAM tlsp[2] = {
        OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_TLS_VERSION, &version),
        OSSL_PARAM_END};

    rnd_fill(&CS.rng, key, sizeof(key));
    ro = cbc_tls_receiver(CS.off[a], key);
    rd = cbc_tls_receiver(CS.ref[a], key);
    assert_non_null(ro);
    assert_non_null(rd);
    assert_non_null(so);
    assert_non_null(sd);
    for (i = 0; i < sizeof(plens) / sizeof(plens[0]); i++) {
        size_t reclen;
        long lo, ld;

        rnd_fill(&CS.rng, pt, plens[i]);
        rnd_fill(&CS.rng, mac, sizeof(mac));
        reclen = make_cbc_record(CS.ref[a], key, pt, plens[i], mac, rec, &CS.rng);
        assert_true(reclen > 0);
        memcpy(reco, rec, reclen);
        memcpy(recd, rec, reclen);
        lo = cbc_tls_open(ro, reco, reclen, mo);
        ld = cbc_tls_open(rd, recd, reclen, md);
        CHECK(lo == (long)plens[i] && ld == lo,
              "%s: TLS CBC record of %zu: offload payload %ld, default %ld", algs[a].name,
              plens[i], lo, ld);
        /* The payload follows the explicit IV block; the MAC is the one sent. */
        assert_memory_equal(reco + 16, pt, plens[i]);
        assert_memory_equal(mo, mac, MAC_SIZE);
        assert_memory_equal(mo, md, MAC_SIZE);

        /*
         * EVP_Cipher on the same record: OpenSSL 3.0 runs CBC's one-shot
         * function, which knows nothing of TLS; whatever it does, offload
         * does the same.
         */
        {
            EVP_CIPHER_CTX *xo = cbc_tls_receiver(CS.off[a], key),
                           *xd = cbc_tls_receiver(CS.ref[a], key);
            int co, cd;

            assert_non_null(xo);
            assert_non_null(xd);
            memcpy(reco, rec, reclen);
            memcpy(recd, rec, reclen);
            co = EVP_Cipher(xo, reco, reco, (unsigned int)reclen);
            cd = EVP_Cipher(xd, recd, recd, (unsigned int)reclen);
            EVP_CIPHER_CTX_free(xo);
            EVP_CIPHER_CTX_free(xd);
            CHECK(co == cd && memcmp(reco, recd, reclen) == 0,
                  "%s: EVP_Cipher on a TLS CBC record: offload %d, default %d",
                  algs[a].name, co, cd);
            if (i == 0)
                print_message(
                    "%s: EVP_Cipher on a %zu-byte TLS CBC record returns %d, as "
                    "the default\n",
                    algs[a].name, reclen, co);
            ERR_clear_error();
        }
    }

    /* The sender in TLS mode pads each record in place: same bytes as the default. */
    for (i = 0; i < sizeof(plens) / sizeof(plens[0]); i++) {
        size_t n = 16 + plens[i] + MAC_SIZE;
        int lo = 0, ld = 0;

        rnd_fill(&CS.rng, reco, n);
        memcpy(recd, reco, n);
        assert_int_equal(EVP_EncryptInit_ex2(so, CS.off[a], key, reco, tlsp), 1);
        assert_int_equal(EVP_EncryptInit_ex2(sd, CS.ref[a], key, reco, tlsp), 1);
        assert_int_equal(EVP_EncryptUpdate(so, reco, &lo, reco, (int)n), 1);
        assert_int_equal(EVP_EncryptUpdate(sd, recd, &ld, recd, (int)n), 1);
        assert_int_equal(lo, ld);
        assert_int_equal(lo % 16, 0);
        assert_memory_equal(reco, recd, (size_t)lo);
    }
    /* Every one of these data updates ran inline (no job here anyway). */
    assert_true(counter(C_INLINE) >= inl0 + 2 * (sizeof(plens) / sizeof(plens[0])));
    print_message("%s: %zu TLS 1.2 CBC records: same payload length and \"tls-mac\" as "
                  "the default; sender padding equal\n",
                  algs[a].name, sizeof(plens) / sizeof(plens[0]));
    EVP_CIPHER_CTX_free(ro);
    EVP_CIPHER_CTX_free(rd);
    EVP_CIPHER_CTX_free(so);
    EVP_CIPHER_CTX_free(sd);
    free(pt);
    free(rec);
    free(reco);
    free(recd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        PER_ALG(test_tls_aead_oneshot, 0), PER_ALG(test_tls_aead_oneshot, 1),
        PER_ALG(test_tls_aead_oneshot, 2), PER_ALG(test_tls_aead_oneshot, 5),
        PER_ALG(test_cbc_tls, 3),          PER_ALG(test_cbc_tls, 4),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

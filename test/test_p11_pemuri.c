/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key-URI files (suite pkcs11): PEM "PKCS#11 PROVIDER URI" blocks whose
 * DER names a token key by its pkcs11: URI (provider/decoder_p11uri.c),
 * read through offload with the SoftHSM2 token of test/pkcs11_token.sh.
 *
 *   - PEM_read_bio_PrivateKey_ex (what HAProxy's crt loading calls) and
 *     OSSL_STORE on the file (what the openssl commands' -key/-inkey do)
 *     give the token's RSA and P-256 keys: offload keys, equal to the
 *     store's public halves, that sign out of a job and in jobs (fd and
 *     callback mode, on the token threads), verified by the default
 *     provider alone; a file written by scripts/p11uri-pem reads the same;
 *   - the key block after a certificate block in one file (HAProxy's crt
 *     PEM) is found;
 *   - an ordinary PEM private key still reads (our PEM stage passes it by);
 *   - bad files fail with readable reasons on the error queue: DER that is
 *     not the SEQUENCE, data after it, another description, a URI that is
 *     not pkcs11:, a bad pkcs11: URI, an unknown token, no such object.
 *
 * softhsm2 or opensc missing: the test fails (scripts/bootstrap installs them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "common.h"
#include "harness.h"

#define SOFTHSM    "/usr/lib/softhsm/libsofthsm2.so"
#define LABEL      "PKCS#11 PROVIDER URI"
#define DESC       "PKCS#11 Provider URI v1.0"
#define RSA_URI    "pkcs11:token=edge;object=tls-rsa;type=private"
#define EC_URI     "pkcs11:token=edge;object=tls-ec;type=private"
#define NJOBS      4
#define TIMEOUT_MS 30000

static struct {
    char dir[128];
    test_env env;
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
    unsigned char md[32];
} S;

/* ---- files ---- */

/* A DER TLV of |tag| around |len| bytes into |out| (room enough); its length. */
static size_t tlv(unsigned char *out, int tag, const void *data, size_t len)
{
    size_t n = 0;

    out[n++] = (unsigned char)tag;
    if (len < 128) {
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 0x82;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    }
    memmove(out + n, data, len);
    return n + len;
}

/* SEQUENCE { |desc_tag| desc, |uri_tag| uri }, DER, into |out| (1 KiB); its length. */
static size_t uri_der(unsigned char *out, int desc_tag, const char *desc, int uri_tag,
                      const char *uri)
{
    unsigned char body[1024];
    size_t n = tlv(body, desc_tag, desc, strlen(desc));

    n += tlv(body + n, uri_tag, uri, strlen(uri));
    return tlv(out, 0x30, body, n);
}

/* |dir|/|name| with the PEM block LABEL around |der|; the path into |path|. */
static void write_pem(const char *name, const unsigned char *der, size_t len, char *path,
                      size_t plen)
{
    BIO *b;

    snprintf(path, plen, "%s/%s", S.dir, name);
    assert_non_null(b = BIO_new_file(path, "w"));
    assert_true(PEM_write_bio(b, LABEL, "", der, (long)len) > 0);
    BIO_free(b);
}

/* A well-formed key-URI file for |uri|. */
static void uri_file(const char *name, const char *uri, char *path, size_t plen)
{
    unsigned char der[1100];

    write_pem(name, der, uri_der(der, 0x1a, DESC, 0x0c, uri), path, plen);
}

/* PEM_read_bio_PrivateKey_ex of |path| in our library context. */
static EVP_PKEY *read_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k =
        b != NULL ? PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, S.env.libctx, NULL)
                  : NULL;

    BIO_free(b);
    return k;
}

/* The first key OSSL_STORE finds at |uri| (a path, or pkcs11:) in our library context. */
static EVP_PKEY *store_key(const char *uri, int want)
{
    OSSL_STORE_CTX *st =
        OSSL_STORE_open_ex(uri, S.env.libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *k = NULL;

    while (st != NULL && k == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == want)
            k = want == OSSL_STORE_INFO_PKEY ? OSSL_STORE_INFO_get1_PKEY(info)
                                             : OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return k;
}

/* Signs S.md with |key| through offload and verifies with the default provider. */
static int sign_and_verify(EVP_PKEY *key)
{
    unsigned char sig[512];
    size_t siglen = sizeof(sig);

    if (!test_sha256_sign(S.env.libctx, key, NULL, S.md, sig, &siglen)) {
        test_dump_errors("sign");
        return 0;
    }
    return test_sha256_verify(S.ref, key, NULL, S.md, sig, siglen) == 1;
}

static int sign_job(void *arg)
{
    return sign_and_verify(arg);
}

static int run_jobs(EVP_PKEY *key, int cb)
{
    struct hjob *jobs = hjobs_new(NJOBS);
    size_t i;
    int ok;

    if (jobs == NULL)
        return 0;
    for (i = 0; i < NJOBS; i++) {
        jobs[i].fn = sign_job;
        jobs[i].arg = key;
    }
    ok = cb ? h_run_cb_loop(jobs, NJOBS, TIMEOUT_MS, NULL, NULL, NULL)
            : h_run_fd_loop(jobs, NJOBS, TIMEOUT_MS, NULL, NULL);
    for (i = 0; ok && i < NJOBS; i++)
        ok = jobs[i].done && jobs[i].ret == 1;
    hjobs_free(jobs, NJOBS);
    return ok;
}

/* Every error on the queue; fails unless one says |want|. The queue is cleared. */
static void expect_error(const char *what, const char *want)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0, found = 0;
    char line[512], first[512] = "";

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        snprintf(line, sizeof(line), "%s: %s", ERR_reason_error_string(e) ?: "?",
                 (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        if (!found && strstr(line, want) != NULL) {
            found = 1;
            snprintf(first, sizeof(first), "%s", line);
        }
    }
    printf("%-18s -> %s\n", what, found ? first : "(not found)");
    if (!found)
        fail_msg("%s: no error says \"%s\"", what, want);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    const char *script = getenv("OFFLOAD_PKCS11_TOKEN_SH");
    char cmd[512], lines[512], conf[200];

    (void)state;
    snprintf(S.dir, sizeof(S.dir), "/tmp/offload-pemuri-XXXXXX");
    if (mkdtemp(S.dir) == NULL || script == NULL) {
        fprintf(stderr,
                "no scratch dir, or OFFLOAD_PKCS11_TOKEN_SH unset (meson sets it)\n");
        return -1;
    }
    snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", script, S.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s failed: softhsm2 and opensc are needed\n", cmd);
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", S.dir);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(lines, sizeof(lines),
             "pkcs11_module = %s\npkcs11_threads = 4\npkcs11_pin_file = %s/pin\n",
             SOFTHSM, S.dir);
    if (!test_env_open(&S.env, lines))
        return -1;
    S.ref = test_ref_open(&S.refprov);
    memset(S.md, 0x3c, sizeof(S.md));
    return S.ref != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[200];

    (void)state;
    test_ref_close(S.ref, S.refprov);
    test_env_close(&S.env);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the tests ---- */

static void check_key(EVP_PKEY *k, const char *uri, const char *type)
{
    char pub[200];
    EVP_PKEY *p;

    assert_non_null(k);
    assert_true(EVP_PKEY_is_a(k, type));
    assert_true(test_pkey_in(k, OFFLOAD_PROVIDER_NAME));
    /* The same key as the store's public half of the URI's object. */
    snprintf(pub, sizeof(pub), "%.*s;type=public",
             (int)(strlen(uri) - strlen(";type=private")), uri);
    assert_non_null(p = store_key(pub, OSSL_STORE_INFO_PUBKEY));
    assert_int_equal(EVP_PKEY_eq(k, p), 1);
    EVP_PKEY_free(p);
    assert_true(sign_and_verify(k));
    assert_true(run_jobs(k, 0));
    assert_true(run_jobs(k, 1));
}

static void test_pem_read_private_key(void **state)
{
    char path[256];
    EVP_PKEY *k;
    uint64_t off = test_counter(S.env.offload, "offload-signature-offloaded");

    (void)state;
    uri_file("rsa.pem", RSA_URI, path, sizeof(path));
    check_key(k = read_key(path), RSA_URI, "RSA");
    EVP_PKEY_free(k);
    uri_file("ec.pem", EC_URI, path, sizeof(path));
    check_key(k = read_key(path), EC_URI, "EC");
    EVP_PKEY_free(k);
    /* Every job's signature went to the token threads. */
    assert_int_equal(test_counter(S.env.offload, "offload-signature-offloaded") - off,
                     4 * NJOBS);
}

static void test_store_file(void **state)
{
    char path[256];
    EVP_PKEY *k;

    (void)state;
    uri_file("ec-store.pem", EC_URI, path, sizeof(path));
    check_key(k = store_key(path, OSSL_STORE_INFO_PKEY), EC_URI, "EC");
    EVP_PKEY_free(k);
}

static void test_written_by_script(void **state)
{
    const char *script = getenv("OFFLOAD_P11URI_PEM");
    char cmd[512], path[256];
    EVP_PKEY *k;

    (void)state;
    assert_non_null(script); /* meson sets it: scripts/p11uri-pem */
    snprintf(path, sizeof(path), "%s/script.pem", S.dir);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s'", script, RSA_URI, path);
    assert_int_equal(system(cmd), 0);
    check_key(k = read_key(path), RSA_URI, "RSA");
    EVP_PKEY_free(k);
}

/* HAProxy's crt file: the certificate, then the key. */
static void test_after_certificate(void **state)
{
    char path[256];
    unsigned char der[1100];
    size_t len = uri_der(der, 0x1a, DESC, 0x0c, RSA_URI);
    EVP_PKEY *k, *pub = store_key("pkcs11:token=edge;object=tls-rsa;type=public",
                                  OSSL_STORE_INFO_PUBKEY);
    X509 *x = X509_new_ex(S.ref, NULL);
    BIO *b;

    (void)state;
    /* A certificate for the token key's public half, signed by a throwaway key. */
    assert_non_null(pub);
    assert_non_null(x);
    {
        EVP_PKEY *ca = EVP_PKEY_Q_keygen(S.ref, NULL, "EC", "P-256");

        assert_non_null(ca);
        assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 1));
        assert_true(
            X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                       (const unsigned char *)"localhost", -1, -1, 0));
        assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
        assert_true(X509_set_pubkey(x, pub));
        assert_true(X509_sign(x, ca, EVP_sha256()) > 0);
        EVP_PKEY_free(ca);
    }
    snprintf(path, sizeof(path), "%s/crt.pem", S.dir);
    assert_non_null(b = BIO_new_file(path, "w"));
    assert_true(PEM_write_bio_X509(b, x));
    assert_true(PEM_write_bio(b, LABEL, "", der, (long)len) > 0);
    BIO_free(b);
    check_key(k = read_key(path), RSA_URI, "RSA");
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
    X509_free(x);
}

/* Our PEM stage lets every other block by: an ordinary key file still reads. */
static void test_ordinary_pem(void **state)
{
    char path[256];
    EVP_PKEY *gen = EVP_PKEY_Q_keygen(S.ref, NULL, "EC", "P-256"), *k;
    BIO *b;

    (void)state;
    assert_non_null(gen);
    snprintf(path, sizeof(path), "%s/plain.pem", S.dir);
    assert_non_null(b = BIO_new_file(path, "w"));
    assert_true(PEM_write_bio_PrivateKey(b, gen, NULL, NULL, 0, NULL, NULL));
    BIO_free(b);
    assert_non_null(k = read_key(path));
    assert_int_equal(EVP_PKEY_eq(k, gen), 1);
    assert_true(sign_and_verify(k));
    EVP_PKEY_free(k);
    assert_non_null(k = store_key(path, OSSL_STORE_INFO_PKEY));
    assert_int_equal(EVP_PKEY_eq(k, gen), 1);
    EVP_PKEY_free(k);
    EVP_PKEY_free(gen);
}

static void bad_file(const char *what, const unsigned char *der, size_t len,
                     const char *want)
{
    char path[256];

    write_pem("bad.pem", der, len, path, sizeof(path));
    ERR_clear_error();
    assert_null(read_key(path));
    expect_error(what, want);
    /* The openssl commands' way (OSSL_STORE's file: loader) fails cleanly too. */
    assert_null(store_key(path, OSSL_STORE_INFO_PKEY));
    ERR_clear_error();
}

static void test_bad_files(void **state)
{
    static const unsigned char integer[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    unsigned char der[1100];
    size_t len;

    (void)state;
    bad_file("not the SEQUENCE", integer, sizeof(integer),
             "bad PKCS#11 key-URI file: expected SEQUENCE { VisibleString, UTF8String }");
    bad_file("not DER", (const unsigned char *)"garbage!", 8,
             "bad PKCS#11 key-URI file: not DER");
    len = uri_der(der, 0x1a, DESC, 0x0c, RSA_URI);
    der[len++] = 0;
    bad_file("data after it", der, len, "(data after it)");
    len = uri_der(der, 0x1a, "PKCS#11 Provider URI v9", 0x0c, RSA_URI);
    bad_file("other description", der, len,
             "bad PKCS#11 key-URI file: description \"PKCS#11 Provider URI v9\"");
    len = uri_der(der, 0x0c, DESC, 0x0c, RSA_URI);
    bad_file("UTF8 description", der, len, "found 2 elements or other types");
    len = uri_der(der, 0x1a, DESC, 0x0c, "file:/etc/ssl/private/key.pem");
    bad_file("not pkcs11:", der, len, "bad PKCS#11 URI: not a pkcs11: URI");
    len = uri_der(der, 0x1a, DESC, 0x0c, "pkcs11:token=edge;colour=red");
    bad_file("bad pkcs11: URI", der, len, "unknown path attribute \"colour\"");
    len = uri_der(der, 0x1a, DESC, 0x0c, "pkcs11:token=nope;object=tls-rsa");
    bad_file("unknown token", der, len, "no such PKCS#11 token: token=nope");
    len = uri_der(der, 0x1a, DESC, 0x0c, "pkcs11:token=edge;object=nothing;type=private");
    bad_file("no such object", der, len, "no such PKCS#11 object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_read_private_key),
        cmocka_unit_test(test_store_file),
        cmocka_unit_test(test_written_by_script),
        cmocka_unit_test(test_after_certificate),
        cmocka_unit_test(test_ordinary_pem),
        cmocka_unit_test(test_bad_files),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

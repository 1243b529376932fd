/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token keys through offload (suite pkcs11): a SoftHSM2 token made in a
 * scratch directory by test/pkcs11_token.sh (RSA-2048, P-256 and P-384
 * key pairs), loaded by the provider's pkcs11_module key.
 *
 *   - a bad URI, a missing token, a wrong PIN and no PIN fail with
 *     readable reasons (and no crash), before any login;
 *   - OSSL_STORE_open() on pkcs11: URIs finds the private keys (offload
 *     keys that HAS reports private) and the public ones;
 *   - EVP_PKEY_sign (SHA-256 digests: RSA PKCS#1 v1.5, ECDSA P-256 and
 *     P-384) out of a job, and in jobs in fd and callback mode (paused,
 *     run by the token threads: counters), verified by the default
 *     provider alone with the public half;
 *   - EVP_DigestSign (RSA PKCS#1 v1.5 SHA-384, RSA-PSS SHA-256, ECDSA),
 *     out of and in a job; a duplicated key signs too;
 *   - EVP_PKEY_decrypt (RSA PKCS#1 v1.5, OAEP SHA-1) of what the default
 *     provider encrypted to the public half, out of and in jobs
 *     (asymcipher counters); OAEP SHA-256 with a label, which SoftHSM
 *     refuses, fails with the CKR name;
 *   - ECDH (P-256, P-384) of the token key with a fresh peer, equal to
 *     the default provider's derive from the other side, out of and in
 *     jobs (keyexch counters);
 *   - fork(): the child signs with the parent's key after the module is
 *     initialised again, out of and in a job;
 *   (a module that cannot be loaded and bad pkcs11_* values: test_pkcs11_config.c)
 *
 * The same cases run against a remote token (test/pkcs11_remote_test.sh):
 * OFFLOAD_PKCS11_MODULE names the module offload loads (p11-kit-client.so
 * instead of SoftHSM's), OFFLOAD_PKCS11_TOKEN_DIR a scratch directory
 * whose token is already made (and served by `p11-kit server`), and
 * OFFLOAD_PKCS11_SERVER_PID that server's pid (a process group leader):
 * then a last case kills its group (the server and its per-connection
 * children) and signing out of a job and in jobs must fail at once with the
 * module's CKR (no crash, no hang).
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
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include "common.h"
#include "harness.h"

#define SOFTHSM    "/usr/lib/softhsm/libsofthsm2.so"
#define NJOBS      8
#define TIMEOUT_MS 30000
#define TOKEN      "pkcs11:token=edge;object="
#define WITH_PIN   "?pin-value=1234"

static struct {
    char dir[128];
    int keep_dir; /* OFFLOAD_PKCS11_TOKEN_DIR's: the caller's to remove */
    const char *module;
    char conf[160];
    test_env env;
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
    EVP_PKEY *rsa, *ec, *ec384;
    unsigned char md[32];
    int types[8]; /* the OSSL_STORE_INFO types of the last store_load_all */
} S;

/* ---- helpers ---- */

/* The keys at |uri| (in our library context), at most |max|; how many. */
static int store_load_all(const char *uri, EVP_PKEY **keys, int max)
{
    OSSL_STORE_CTX *st =
        OSSL_STORE_open_ex(uri, S.env.libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    int n = 0;

    if (st == NULL)
        return -1;
    while (n < max && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info == NULL)
            break;
        if (n < 8)
            S.types[n] = OSSL_STORE_INFO_get_type(info);
        /* A PKEY when the key management's HAS says private, else a PUBKEY. */
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            keys[n++] = OSSL_STORE_INFO_get1_PKEY(info);
        else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            keys[n++] = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return n;
}

static EVP_PKEY *store_load_one(const char *uri)
{
    EVP_PKEY *k = NULL;

    if (store_load_all(uri, &k, 1) != 1) {
        test_dump_errors(uri);
        return NULL;
    }
    return k;
}

/* The last error on the queue as "reason: data" into |line|; the queue is cleared. */
static void last_error(char *line, size_t len)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0;

    line[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0)
        snprintf(line, len, "%s: %s", ERR_reason_error_string(e) ?: "?",
                 (flags & ERR_TXT_STRING) && data != NULL ? data : "");
}

/*
 * The first error on the queue whose "reason: data" contains |want| into
 * |line| (else the last one); 1 when one did. The queue is cleared. (3.5's
 * EVP adds "provider signature failure" after the provider's own errors.)
 */
static int find_error(const char *want, char *line, size_t len)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0, found = 0;
    char one[512];

    line[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        snprintf(one, sizeof(one), "%s: %s", ERR_reason_error_string(e) ?: "?",
                 (flags & ERR_TXT_STRING) && data != NULL ? data : "");
        if (!found)
            snprintf(line, len, "%s", one);
        found = found || strstr(one, want) != NULL;
    }
    return found;
}

/* The last error's reason and data contain |want|; the queue is cleared. */
static void expect_error(const char *what, const char *want)
{
    char line[512];

    last_error(line, sizeof(line));
    printf("%-14s -> %s\n", what, line);
    if (strstr(line, want) == NULL)
        fail_msg("%s: the last error \"%s\" does not say \"%s\"", what, line, want);
}

static uint64_t sig_counter(const char *which)
{
    char name[64];

    snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_SIGNATURE, which);
    return test_counter(S.env.offload, name);
}

/* Signs S.md with |key| (SHA-256; PKCS#1 v1.5 for RSA) and checks it with the default. */
static int sign_and_verify(EVP_PKEY *key)
{
    unsigned char sig[512];
    size_t siglen = sizeof(sig);

    if (!test_sha256_sign(S.env.libctx, key, NULL, S.md, sig, &siglen)) {
        test_dump_errors("token sign");
        return 0;
    }
    if (test_sha256_verify(S.ref, key, NULL, S.md, sig, siglen) != 1) {
        fprintf(stderr, "token signature (%zu bytes) does not verify\n", siglen);
        return 0;
    }
    return 1;
}

static int sign_job(void *arg)
{
    return sign_and_verify(arg);
}

/* EVP_DigestSign of |msg| with |md| (and PSS when |pss|), checked by the default. */
static int digest_sign_and_verify(EVP_PKEY *key, const char *md, int pss)
{
    static const unsigned char msg[] = "a message signed by the token";
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = m != NULL && v != NULL &&
             EVP_DigestSignInit_ex(m, &pc, md, S.env.libctx, NULL, key, NULL) > 0 &&
             (!pss || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0) &&
             EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) > 0;

    if (!ok)
        test_dump_errors("token digest-sign");
    ok = ok && EVP_DigestVerifyInit_ex(v, &pc, md, S.ref, NULL, key, NULL) > 0 &&
         (!pss || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0) &&
         EVP_DigestVerify(v, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    EVP_MD_CTX_free(v);
    return ok;
}

static int digest_sign_job(void *arg)
{
    return digest_sign_and_verify(arg, "SHA256", 0);
}

/*
 * Encrypts with the public half under the default provider alone, then
 * decrypts with the token key through offload: PKCS#1 v1.5, OAEP with
 * SHA-1 (|oaep| 1), or OAEP with SHA-256 and a label (|oaep| 2: SoftHSM
 * 2.6 refuses both, "hashAlg must be CKM_SHA_1", "pSourceData must be NULL").
 */
static int decrypt_roundtrip(EVP_PKEY *key, int oaep)
{
    static const unsigned char msg[] = "a premaster secret";
    unsigned char ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(S.ref, key, NULL);
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, key, NULL);
    int ok = e != NULL && d != NULL && EVP_PKEY_encrypt_init(e) > 0 &&
             EVP_PKEY_decrypt_init(d) > 0;

    if (ok && oaep) {
        ok = EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) > 0;
        if (ok && oaep == 2)
            ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(e, "SHA256", NULL) > 0 &&
                 EVP_PKEY_CTX_set_rsa_oaep_md_name(d, "SHA256", NULL) > 0 &&
                 EVP_PKEY_CTX_set0_rsa_oaep_label(e, OPENSSL_strdup("label"), 5) > 0 &&
                 EVP_PKEY_CTX_set0_rsa_oaep_label(d, OPENSSL_strdup("label"), 5) > 0;
    }
    ok = ok && EVP_PKEY_encrypt(e, ct, &ctlen, msg, sizeof(msg)) > 0;
    if (ok && EVP_PKEY_decrypt(d, pt, &ptlen, ct, ctlen) <= 0) {
        if (oaep != 2)
            test_dump_errors("token decrypt");
        ok = 0;
    }
    ok = ok && ptlen == sizeof(msg) && memcmp(pt, msg, ptlen) == 0;
    EVP_PKEY_CTX_free(e);
    EVP_PKEY_CTX_free(d);
    return ok;
}

static int decrypt_job(void *arg)
{
    return decrypt_roundtrip(arg, 1) && decrypt_roundtrip(arg, 0);
}

/*
 * ECDH: the token key with a fresh peer (made by the default provider
 * alone, on |key|'s curve) through offload, against the peer's private
 * key with the token key's public half under the default provider.
 */
static int derive_with(EVP_PKEY *key, int dump_errors)
{
    char group[64];
    EVP_PKEY *peer = NULL;
    EVP_PKEY_CTX *a = NULL, *b = NULL;
    unsigned char s1[128], s2[128];
    size_t l1 = sizeof(s1), l2 = sizeof(s2);
    int ok = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), NULL) &&
             (peer = EVP_PKEY_Q_keygen(S.ref, NULL, "EC", group)) != NULL &&
             (a = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, key, NULL)) != NULL &&
             (b = EVP_PKEY_CTX_new_from_pkey(S.ref, peer, NULL)) != NULL &&
             EVP_PKEY_derive_init(a) > 0 && EVP_PKEY_derive_set_peer(a, peer) > 0 &&
             EVP_PKEY_derive_init(b) > 0 && EVP_PKEY_derive_set_peer(b, key) > 0;

    if (ok && EVP_PKEY_derive(a, s1, &l1) <= 0) {
        if (dump_errors)
            test_dump_errors("token derive");
        ok = 0;
    }
    ok = ok && EVP_PKEY_derive(b, s2, &l2) > 0 && l1 == l2 && memcmp(s1, s2, l1) == 0;
    EVP_PKEY_CTX_free(a);
    EVP_PKEY_CTX_free(b);
    EVP_PKEY_free(peer);
    return ok;
}

static int derive_matches(EVP_PKEY *key)
{
    return derive_with(key, 1);
}

static int derive_job(void *arg)
{
    return derive_matches(arg);
}

/*
 * p11-kit's RPC (0.24) carries only the mechanisms whose parameters it
 * knows how to serialise, and CKM_ECDH1_DERIVE's are not among them: the
 * remote test sets OFFLOAD_PKCS11_NO_ECDH when the client module does not
 * list the mechanism. Then a derive must fail, naming the call and the CKR.
 */
#define ECDH_REFUSED "C_DeriveKey: CKR_MECHANISM_INVALID"

static int derive_refused(EVP_PKEY *key)
{
    char line[512];
    int ok;

    ERR_clear_error();
    ok = derive_with(key, 0);
    return find_error(ECDH_REFUSED, line, sizeof(line)) && !ok;
}

static int derive_refused_job(void *arg)
{
    return derive_refused(arg);
}

/* |n| jobs running |fn| on |key| in fd (|cb| 0) or callback mode; 1 when all did. */
static int run_jobs(int (*fn)(void *), EVP_PKEY *key, size_t n, int cb)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;
    int ok;

    if (jobs == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        jobs[i].fn = fn;
        jobs[i].arg = key;
    }
    ok = cb ? h_run_cb_loop(jobs, n, TIMEOUT_MS, NULL, NULL, NULL)
            : h_run_fd_loop(jobs, n, TIMEOUT_MS, NULL, NULL);
    for (i = 0; ok && i < n; i++)
        ok = jobs[i].done && jobs[i].ret == 1;
    hjobs_free(jobs, n);
    return ok;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    const char *script = getenv("OFFLOAD_PKCS11_TOKEN_SH");
    const char *given = getenv("OFFLOAD_PKCS11_TOKEN_DIR");
    char cmd[512], lines[512];

    (void)state;
    S.module = getenv("OFFLOAD_PKCS11_MODULE");
    if (S.module == NULL || S.module[0] == '\0')
        S.module = SOFTHSM;
    printf("module %s\n", S.module);
    if (given != NULL && given[0] != '\0') {
        /* A token made by the caller (served remotely): used as it is. */
        snprintf(S.dir, sizeof(S.dir), "%s", given);
        S.keep_dir = 1;
    } else {
        snprintf(S.dir, sizeof(S.dir), "/tmp/offload-p11-XXXXXX");
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
    }
    snprintf(S.conf, sizeof(S.conf), "%s/softhsm2.conf", S.dir);
    if (access(S.conf, R_OK) != 0) {
        fprintf(stderr, "%s: no token here\n", S.conf);
        return -1;
    }
    setenv("SOFTHSM2_CONF", S.conf, 1);
    snprintf(lines, sizeof(lines), "pkcs11_module = %s\npkcs11_threads = 4\n", S.module);
    if (!test_env_open(&S.env, lines))
        return -1;
    S.ref = test_ref_open(&S.refprov);
    memset(S.md, 0x5a, sizeof(S.md));
    return S.ref != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    EVP_PKEY_free(S.rsa);
    EVP_PKEY_free(S.ec);
    EVP_PKEY_free(S.ec384);
    test_ref_close(S.ref, S.refprov);
    test_env_close(&S.env);
    if (S.keep_dir)
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the tests, in order: the failures first, before any login ---- */

static void test_bad_uri(void **state)
{
    (void)state;
    ERR_clear_error();
    assert_null(OSSL_STORE_open_ex("pkcs11:token=edge;colour=red", S.env.libctx, NULL,
                                   NULL, NULL, NULL, NULL, NULL));
    expect_error("bad URI", "unknown path attribute \"colour\"");
    assert_null(OSSL_STORE_open_ex("pkcs11:object=%zz", S.env.libctx, NULL, NULL, NULL,
                                   NULL, NULL, NULL));
    expect_error("bad escape", "bad percent-encoding");
}

static void test_missing_token(void **state)
{
    EVP_PKEY *k = NULL;

    (void)state;
    ERR_clear_error();
    assert_true(store_load_all("pkcs11:token=nope;object=tls-rsa" WITH_PIN, &k, 1) <= 0);
    expect_error("missing token", "no such PKCS#11 token: token=nope");
}

static void test_wrong_pin(void **state)
{
    EVP_PKEY *k = NULL;

    (void)state;
    ERR_clear_error();
    assert_true(store_load_all(TOKEN "tls-rsa;type=private?pin-value=9999", &k, 1) <= 0);
    expect_error("wrong PIN", "C_Login: CKR_PIN_INCORRECT");
}

static void test_no_pin(void **state)
{
    EVP_PKEY *k = NULL;

    (void)state;
    ERR_clear_error();
    assert_true(store_load_all(TOKEN "tls-rsa;type=private", &k, 1) <= 0);
    expect_error("no PIN", "not logged in: no PIN given");
}

static void test_store_finds_keys(void **state)
{
    char uri[256];
    EVP_PKEY *pub, *keys[8];
    int n, i;

    (void)state;
    /* The PIN from a pin-source file; the slot stays logged in after. */
    snprintf(uri, sizeof(uri), TOKEN "tls-rsa;type=private?pin-source=file:%s/pin",
             S.dir);
    assert_non_null(S.rsa = store_load_one(uri));
    assert_non_null(S.ec = store_load_one(TOKEN "tls-ec;type=private" WITH_PIN));
    assert_non_null(S.ec384 = store_load_one("pkcs11:token=edge;id=%03;type=private"));
    assert_true(EVP_PKEY_is_a(S.rsa, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(S.rsa), 2048);
    assert_true(EVP_PKEY_is_a(S.ec, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(S.ec384), 384);
    assert_true(test_pkey_in(S.rsa, OFFLOAD_PROVIDER_NAME));
    assert_int_equal(S.types[0], OSSL_STORE_INFO_PKEY); /* private: on the token */
    /* The public half alone: an ordinary public key, the same as the private's. */
    assert_non_null(pub = store_load_one(TOKEN "tls-rsa;type=public"));
    assert_int_equal(S.types[0], OSSL_STORE_INFO_PUBKEY);
    assert_int_equal(EVP_PKEY_eq(pub, S.rsa), 1);
    EVP_PKEY_free(pub);
    /* No type: private keys first, then public ones. */
    n = store_load_all("pkcs11:token=edge", keys, 8);
    printf("pkcs11:token=edge -> %d keys\n", n);
    assert_int_equal(n, 6);
    for (i = 0; i < n; i++)
        assert_int_equal(S.types[i],
                         i < 3 ? OSSL_STORE_INFO_PKEY : OSSL_STORE_INFO_PUBKEY);
    for (i = 0; i < n; i++)
        EVP_PKEY_free(keys[i]);
}

static void test_sign_outside_job(void **state)
{
    uint64_t inl = sig_counter("inline"), off = sig_counter("offloaded");

    (void)state;
    assert_true(sign_and_verify(S.rsa));
    assert_true(sign_and_verify(S.ec));
    assert_true(sign_and_verify(S.ec384));
    assert_int_equal(sig_counter("inline") - inl, 3);
    assert_int_equal(sig_counter("offloaded") - off, 0);
}

static void jobs_on_token(int cb)
{
    EVP_PKEY *keys[] = {S.rsa, S.ec, S.ec384};
    uint64_t off = sig_counter("offloaded"), done = sig_counter("completed");
    uint64_t pauses = sig_counter("pauses"), failed = sig_counter("failed");
    size_t i;

    for (i = 0; i < 3; i++)
        assert_true(run_jobs(sign_job, keys[i], NJOBS, cb));
    /* Every one went to the token threads and paused its job, whatever its cost. */
    assert_int_equal(sig_counter("offloaded") - off, 3 * NJOBS);
    assert_int_equal(sig_counter("completed") - done, 3 * NJOBS);
    assert_true(sig_counter("pauses") - pauses >= 3 * NJOBS);
    assert_int_equal(sig_counter("failed") - failed, 0);
}

static void test_sign_in_jobs_fd(void **state)
{
    (void)state;
    jobs_on_token(0);
}

static void test_sign_in_jobs_callback(void **state)
{
    (void)state;
    jobs_on_token(1);
}

static void test_digest_sign(void **state)
{
    uint64_t off = sig_counter("offloaded");
    EVP_PKEY *dup;

    (void)state;
    assert_true(digest_sign_and_verify(S.rsa, "SHA384", 0));
    assert_true(digest_sign_and_verify(S.rsa, "SHA256", 1));
    assert_true(digest_sign_and_verify(S.ec, "SHA256", 0));
    assert_true(digest_sign_and_verify(S.ec384, "SHA384", 0));
    assert_true(run_jobs(digest_sign_job, S.rsa, 2, 0));
    assert_true(run_jobs(digest_sign_job, S.ec, 2, 1));
    assert_int_equal(sig_counter("offloaded") - off, 4);
    /* A duplicate is linked to the same token object. */
    assert_non_null(dup = EVP_PKEY_dup(S.rsa));
    assert_true(sign_and_verify(dup));
    EVP_PKEY_free(dup);
}

static uint64_t acip_counter(const char *which)
{
    char name[64];

    snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_ASYMCIPHER, which);
    return test_counter(S.env.offload, name);
}

static void test_decrypt(void **state)
{
    uint64_t inl = acip_counter("inline"), off = acip_counter("offloaded");
    uint64_t done = acip_counter("completed");

    (void)state;
    assert_true(decrypt_roundtrip(S.rsa, 0));
    assert_true(decrypt_roundtrip(S.rsa, 1));
    assert_int_equal(acip_counter("inline") - inl, 2);
    /* The token's refusal is a readable error naming the call. */
    ERR_clear_error();
    assert_false(decrypt_roundtrip(S.rsa, 2));
    expect_error("OAEP SHA-256", "C_DecryptInit: CKR_ARGUMENTS_BAD");
    assert_true(run_jobs(decrypt_job, S.rsa, 2, 0));
    assert_true(run_jobs(decrypt_job, S.rsa, 2, 1));
    assert_int_equal(acip_counter("offloaded") - off, 8);
    assert_int_equal(acip_counter("inline") - inl, 3);
    assert_int_equal(acip_counter("completed") - done, 8);
}

static uint64_t kex_counter(const char *which)
{
    char name[64];

    snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_KEYEXCH, which);
    return test_counter(S.env.offload, name);
}

static void test_derive(void **state)
{
    uint64_t inl = kex_counter("inline"), off = kex_counter("offloaded");
    uint64_t failed = kex_counter("failed");

    (void)state;
    if (getenv("OFFLOAD_PKCS11_NO_ECDH") != NULL) {
        assert_true(derive_refused(S.ec));
        assert_true(derive_refused(S.ec384));
        assert_true(run_jobs(derive_refused_job, S.ec, 2, 0));
        assert_true(run_jobs(derive_refused_job, S.ec384, 2, 1));
        printf("ECDH          -> refused by the module, as expected: " ECDH_REFUSED "\n");
        assert_int_equal(kex_counter("failed") - failed, 6);
        return;
    }
    assert_true(derive_matches(S.ec));
    assert_true(derive_matches(S.ec384));
    assert_int_equal(kex_counter("inline") - inl, 2);
    assert_true(run_jobs(derive_job, S.ec, 2, 0));
    assert_true(run_jobs(derive_job, S.ec384, 2, 1));
    assert_int_equal(kex_counter("offloaded") - off, 4);
    assert_int_equal(kex_counter("failed") - failed, 0);
}

static void test_fork(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    assert_true(sign_and_verify(S.rsa)); /* the parent's session and login are in use */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The module is initialised again and logged in again before this. */
        int ok = sign_and_verify(S.rsa) && sign_and_verify(S.ec) &&
                 run_jobs(sign_job, S.rsa, 2, 0) && run_jobs(sign_job, S.ec384, 2, 1);

        if (!ok)
            fprintf(stderr, "fork: the child could not sign\n");
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(sign_and_verify(S.ec)); /* the parent carries on */
}

/* ---- the remote token's server goes away (OFFLOAD_PKCS11_SERVER_PID) ---- */

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 1 when signing with |key| fails and the last error names a PKCS#11 call. */
static int sign_fails(EVP_PKEY *key, char *line, size_t len)
{
    unsigned char sig[512];
    size_t siglen = sizeof(sig);

    ERR_clear_error();
    if (test_sha256_sign(S.env.libctx, key, NULL, S.md, sig, &siglen)) {
        snprintf(line, len, "signed: the token still answers");
        return 0;
    }
    return find_error("PKCS#11 call failed: C_", line, len);
}

static int sign_fails_job(void *arg)
{
    char line[512];

    return sign_fails(arg, line, sizeof(line));
}

/* |pid| has exited: no such process, or a zombie its parent (the test's shell) reaps
 * later. */
static int proc_gone(pid_t pid)
{
    char path[64], buf[256], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p == NULL || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

static void test_server_gone(void **state)
{
    const char *pidtext = getenv("OFFLOAD_PKCS11_SERVER_PID");
    pid_t pid;
    char line[512];
    double t0;
    int i;

    (void)state;
    if (pidtext == NULL || pidtext[0] == '\0') {
        printf("server gone: no OFFLOAD_PKCS11_SERVER_PID (not a remote token)\n");
        return;
    }
    pid = (pid_t)atoi(pidtext);
    assert_true(pid > 1);
    assert_true(sign_and_verify(S.rsa)); /* the server answers */
    /*
     * The server forks a p11-kit-remote per connection, in its process
     * group (the test's shell started it with setsid): all of them go.
     */
    assert_int_equal(kill(-pid, SIGTERM), 0);
    for (i = 0; i < 200 && !proc_gone(pid); i++)
        usleep(50 * 1000);
    assert_true(proc_gone(pid));
    t0 = now_s();
    if (!sign_fails(S.rsa, line, sizeof(line)))
        fail_msg("server gone: RSA: %s", line);
    printf("server gone   -> %s (%.3f s)\n", line, now_s() - t0);
    if (!sign_fails(S.ec, line, sizeof(line)))
        fail_msg("server gone: EC: %s", line);
    printf("server gone   -> %s\n", line);
    /* In jobs: each fails on the token threads, its error replayed in the job. */
    t0 = now_s();
    assert_true(run_jobs(sign_fails_job, S.rsa, NJOBS, 0));
    assert_true(run_jobs(sign_fails_job, S.ec, NJOBS, 1));
    printf("server gone   -> %d jobs failed cleanly (%.3f s)\n", 2 * NJOBS, now_s() - t0);
    assert_true(now_s() - t0 < 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_uri),
        cmocka_unit_test(test_missing_token),
        cmocka_unit_test(test_wrong_pin),
        cmocka_unit_test(test_no_pin),
        cmocka_unit_test(test_store_finds_keys),
        cmocka_unit_test(test_sign_outside_job),
        cmocka_unit_test(test_sign_in_jobs_fd),
        cmocka_unit_test(test_sign_in_jobs_callback),
        cmocka_unit_test(test_digest_sign),
        cmocka_unit_test(test_decrypt),
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_server_gone), /* last: the remote token is gone after it */
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message-signing API of OpenSSL 3.4+ through offload: an explicit
 * signature algorithm (Ed25519, and the composites ECDSA-SHA256 and
 * RSA-SHA256; for sign_init_ex2 also plain RSA with PSS chosen by params)
 * with
 *   EVP_PKEY_sign_message_init + update + final (or + EVP_PKEY_sign where
 *   the default provider offers no update/final for it, as for Ed25519)
 *   EVP_PKEY_sign_init_ex2 + EVP_PKEY_sign of the message's SHA-256 digest
 *   (a composite signs a digest made with its own hash that way)
 * out of a job and inside jobs (fd and callback mode), where the signing
 * step must go to a worker: the job pauses and offload-signature-offloaded
 * grows. Every signature is verified by the default provider alone.
 *
 * The binary builds and runs on 3.0 too: the 3.4 functions are looked up
 * with dlsym, and a case runs only when the default provider offers
 * OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT for its algorithm; from 3.4 on
 * every case must run (nothing passes by being skipped).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/opensslv.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"

#define NJOBS 4

/* The ids of 3.4+ (the 3.0 headers lack them). */
#define ID_SIGN_MESSAGE_INIT   27
#define ID_SIGN_MESSAGE_UPDATE 28
#define ID_SIGN_MESSAGE_FINAL  29

typedef int init_fn(EVP_PKEY_CTX *ctx, EVP_SIGNATURE *algo, const OSSL_PARAM params[]);
typedef int update_fn(EVP_PKEY_CTX *ctx, const unsigned char *in, size_t inlen);
typedef int final_fn(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen);

static struct {
    test_env env;
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
    EVP_PKEY *ed, *ec, *rsa;             /* in offload */
    EVP_PKEY *ed_ref, *ec_ref, *rsa_ref; /* their public halves, in the reference */
    init_fn *sign_message_init, *sign_init_ex2;
    update_fn *sign_message_update;
    final_fn *sign_message_final;
    struct hjob
        *kept[32]; /* jobs (and wait ctxs) kept to the end: no address comes back */
    size_t nkept;
} S;

static const unsigned char message[] = "offload signs whole messages now, in jobs too";

enum mode { MODE_MESSAGE, MODE_INIT_EX2 };

struct sigcase {
    const char *alg;       /* the signature algorithm */
    EVP_PKEY **key, **ref; /* the key, and its public half in the reference */
    const char *md;        /* what the reference verifies with */
    enum mode mode;
    int streaming; /* the default offers update and final for |alg| */
    int pss;       /* RSA-PSS chosen by params at init (saltlen 32), verified so */
};

/* The default provider's functions of signature algorithm |alg| (any of its names). */
static const OSSL_DISPATCH *default_impl(const char *alg)
{
    const OSSL_ALGORITHM *a;
    int nc = 0;
    size_t n = strlen(alg);

    a = OSSL_PROVIDER_query_operation(S.refprov, OSSL_OP_SIGNATURE, &nc);
    for (; a != NULL && a->algorithm_names != NULL; a++) {
        const char *p = a->algorithm_names;

        while (p != NULL) {
            if (strncasecmp(p, alg, n) == 0 && (p[n] == ':' || p[n] == '\0'))
                return a->implementation;
            p = strchr(p, ':');
            p = p != NULL ? p + 1 : NULL;
        }
    }
    return NULL;
}

static int offers(const OSSL_DISPATCH *d, int id)
{
    for (; d != NULL && d->function_id != 0; d++)
        if (d->function_id == id)
            return 1;
    return 0;
}

/* 1 when the case can run here; from 3.4 on it must. */
static int case_runs(struct sigcase *c)
{
    const OSSL_DISPATCH *d = default_impl(c->alg);
    /* sign_init_ex2 takes any signature algorithm; the message API wants its own. */
    int runs = c->mode == MODE_INIT_EX2
                   ? d != NULL && S.sign_init_ex2 != NULL
                   : offers(d, ID_SIGN_MESSAGE_INIT) && S.sign_message_init != NULL &&
                         S.sign_init_ex2 != NULL && S.sign_message_update != NULL &&
                         S.sign_message_final != NULL;

    if (OpenSSL_version_num() >= 0x30400000L && !runs)
        fail_msg("OpenSSL %s: %s without message signing",
                 OpenSSL_version(OPENSSL_VERSION), c->alg);
    if (!runs) {
        print_message("  %s: the default provider has no message signing here: skipped\n",
                      c->alg);
        return 0;
    }
    c->streaming = offers(d, ID_SIGN_MESSAGE_UPDATE) && offers(d, ID_SIGN_MESSAGE_FINAL);
    return 1;
}

static int verify_ref(const struct sigcase *c, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pk = NULL;
    int ok = m != NULL &&
             EVP_DigestVerifyInit_ex(m, &pk, c->md, S.ref, NULL, *c->ref, NULL) > 0 &&
             (!c->pss || (EVP_PKEY_CTX_set_rsa_padding(pk, RSA_PKCS1_PSS_PADDING) > 0 &&
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(pk, 32) > 0)) &&
             EVP_DigestVerify(m, sig, siglen, message, sizeof(message)) == 1;

    EVP_MD_CTX_free(m);
    return ok;
}

/* One signature of |message| as the case says, verified; 1 on success. */
static int sign_case(void *arg)
{
    const struct sigcase *c = arg;
    EVP_SIGNATURE *sig = EVP_SIGNATURE_fetch(S.env.libctx, c->alg, OFFLOAD_PROPQ);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, *c->key, OFFLOAD_PROPQ);
    unsigned char out[512];
    size_t outlen = sizeof(out);
    int ok = sig != NULL && pctx != NULL;

    if (ok && c->mode == MODE_MESSAGE) {
        ok = S.sign_message_init(pctx, sig, NULL) > 0;
        if (ok && c->streaming)
            ok = S.sign_message_update(pctx, message, 10) > 0 &&
                 S.sign_message_update(pctx, message + 10, sizeof(message) - 10) > 0 &&
                 S.sign_message_final(pctx, out, &outlen) > 0;
        else if (ok)
            ok = EVP_PKEY_sign(pctx, out, &outlen, message, sizeof(message)) > 0;
    } else if (ok) {
        unsigned char md[32];
        unsigned int mdlen = sizeof(md);
        int saltlen = 32;
        OSSL_PARAM pss[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                             (char *)OSSL_PKEY_RSA_PAD_MODE_PSS, 0),
            OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST,
                                             (char *)"SHA256", 0),
            OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &saltlen),
            OSSL_PARAM_construct_end()};

        ok = EVP_Digest(message, sizeof(message), md, &mdlen, EVP_sha256(), NULL) &&
             S.sign_init_ex2(pctx, sig, c->pss ? pss : NULL) > 0 &&
             EVP_PKEY_sign(pctx, out, &outlen, md, mdlen) > 0;
    }
    ok = ok && verify_ref(c, out, outlen);
    if (!ok)
        test_dump_errors(c->alg);
    EVP_PKEY_CTX_free(pctx);
    EVP_SIGNATURE_free(sig);
    return ok;
}

static uint64_t counter(const char *stat)
{
    char name[64];

    snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_SIGNATURE, stat);
    return test_counter(S.env.offload, name);
}

/* The case out of a job, then in NJOBS jobs in fd and in callback mode: offloaded. */
static void run_case(struct sigcase *c)
{
    uint64_t off0, pauses0;
    unsigned pauses;
    size_t i;
    int cb;

    if (!case_runs(c))
        return;
    print_message("  %s, %s%s\n", c->alg,
                  c->mode == MODE_INIT_EX2 ? "sign_init_ex2 + sign"
                  : c->streaming           ? "sign_message_init + update + final"
                                           : "sign_message_init + sign",
                  c->pss ? " (PSS by params)" : "");
    off0 = counter(OFFLOAD_STAT_OFFLOADED);
    assert_int_equal(sign_case(c), 1);
    assert_int_equal(counter(OFFLOAD_STAT_OFFLOADED), off0); /* out of a job: inline */
    for (cb = 0; cb <= 1; cb++) {
        struct hjob *jobs = hjobs_new(NJOBS);

        assert_non_null(jobs);
        assert_true(S.nkept < sizeof(S.kept) / sizeof(S.kept[0]));
        S.kept[S.nkept++] = jobs;
        for (i = 0; i < NJOBS; i++) {
            jobs[i].fn = sign_case;
            jobs[i].arg = c;
        }
        off0 = counter(OFFLOAD_STAT_OFFLOADED);
        pauses0 = counter(OFFLOAD_STAT_PAUSES);
        if (cb)
            assert_true(h_run_cb_loop(jobs, NJOBS, POLL_TIMEOUT_MS, NULL, NULL, NULL));
        else
            assert_true(h_run_fd_loop(jobs, NJOBS, POLL_TIMEOUT_MS, NULL, NULL));
        for (i = 0, pauses = 0; i < NJOBS; i++) {
            assert_true(jobs[i].done);
            assert_int_equal(jobs[i].ret, 1);
            pauses += jobs[i].pauses;
        }
        print_message("    in %d jobs (%s): %u pauses, offloaded +%llu, pauses +%llu\n",
                      NJOBS, cb ? "callback" : "fd", pauses,
                      (unsigned long long)(counter(OFFLOAD_STAT_OFFLOADED) - off0),
                      (unsigned long long)(counter(OFFLOAD_STAT_PAUSES) - pauses0));
        assert_true(counter(OFFLOAD_STAT_OFFLOADED) - off0 >= NJOBS);
        assert_true(counter(OFFLOAD_STAT_PAUSES) - pauses0 >= NJOBS);
        assert_true(pauses >= NJOBS);
    }
}

static void test_ed25519_message(void **state)
{
    struct sigcase c = {"ED25519", &S.ed, &S.ed_ref, NULL, MODE_MESSAGE, 0, 0};

    (void)state;
    run_case(&c);
}

static void test_ecdsa_sha256_message(void **state)
{
    struct sigcase c = {"ECDSA-SHA256", &S.ec, &S.ec_ref, "SHA256", MODE_MESSAGE, 0, 0};

    (void)state;
    run_case(&c);
}

static void test_rsa_sha256_message(void **state)
{
    struct sigcase c = {"RSA-SHA256", &S.rsa, &S.rsa_ref, "SHA256", MODE_MESSAGE, 0, 0};

    (void)state;
    run_case(&c);
}

static void test_ecdsa_sha256_init_ex2(void **state)
{
    struct sigcase c = {"ECDSA-SHA256", &S.ec, &S.ec_ref, "SHA256", MODE_INIT_EX2, 0, 0};

    (void)state;
    run_case(&c);
}

static void test_rsa_sha256_init_ex2(void **state)
{
    struct sigcase c = {"RSA-SHA256", &S.rsa, &S.rsa_ref, "SHA256", MODE_INIT_EX2, 0, 0};

    (void)state;
    run_case(&c);
}

/* RSA with PSS padding chosen by the params of sign_init_ex2. */
static void test_rsa_pss_params_init_ex2(void **state)
{
    struct sigcase c = {"RSA", &S.rsa, &S.rsa_ref, "SHA256", MODE_INIT_EX2, 0, 1};

    (void)state;
    run_case(&c);
}

/* The public half of |key| as a key of the reference context. */
static EVP_PKEY *public_in_ref(EVP_PKEY *key, const char *type)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *out = NULL;

    if (EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params) > 0 &&
        (pctx = EVP_PKEY_CTX_new_from_name(S.ref, type, NULL)) != NULL &&
        EVP_PKEY_fromdata_init(pctx) > 0)
        EVP_PKEY_fromdata(pctx, &out, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return out;
}

static void *sym(const char *name)
{
    void *p = dlsym(RTLD_DEFAULT, name);

    print_message("%s: %s\n", name, p != NULL ? "present" : "absent");
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    /* busy_inline = 0 and a fresh wait ctx per job keep Ed25519/P-256 off the
     * inline rules. */
    if (!test_env_open(&S.env, "busy_inline = 0\n"))
        return -1;
    if ((S.ref = test_ref_open(&S.refprov)) == NULL)
        return -1;
    print_message("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION));
    S.sign_message_init = (init_fn *)sym("EVP_PKEY_sign_message_init");
    S.sign_message_update = (update_fn *)sym("EVP_PKEY_sign_message_update");
    S.sign_message_final = (final_fn *)sym("EVP_PKEY_sign_message_final");
    S.sign_init_ex2 = (init_fn *)sym("EVP_PKEY_sign_init_ex2");
    S.ed = EVP_PKEY_Q_keygen(S.env.libctx, OFFLOAD_PROPQ, "ED25519");
    S.ec = EVP_PKEY_Q_keygen(S.env.libctx, OFFLOAD_PROPQ, "EC", "P-256");
    S.rsa = EVP_PKEY_Q_keygen(S.env.libctx, OFFLOAD_PROPQ, "RSA", (size_t)2048);
    if (S.ed == NULL || S.ec == NULL || S.rsa == NULL ||
        !test_pkey_in(S.ed, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(S.ec, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(S.rsa, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("keys");
        return -1;
    }
    S.ed_ref = public_in_ref(S.ed, "ED25519");
    S.ec_ref = public_in_ref(S.ec, "EC");
    S.rsa_ref = public_in_ref(S.rsa, "RSA");
    if (S.ed_ref == NULL || S.ec_ref == NULL || S.rsa_ref == NULL) {
        test_dump_errors("reference keys");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < S.nkept; i++)
        hjobs_free(S.kept[i], NJOBS);
    EVP_PKEY_free(S.ed);
    EVP_PKEY_free(S.ec);
    EVP_PKEY_free(S.rsa);
    EVP_PKEY_free(S.ed_ref);
    EVP_PKEY_free(S.ec_ref);
    EVP_PKEY_free(S.rsa_ref);
    test_ref_close(S.ref, S.refprov);
    test_env_close(&S.env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_message),
        cmocka_unit_test(test_ecdsa_sha256_message),
        cmocka_unit_test(test_rsa_sha256_message),
        cmocka_unit_test(test_ecdsa_sha256_init_ex2),
        cmocka_unit_test(test_rsa_sha256_init_ex2),
        cmocka_unit_test(test_rsa_pss_params_init_ex2),
    };

    return cmocka_run_group_tests_name("sign_message", tests, group_setup,
                                       group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busy_inline: when every worker already has that many requests queued, a
 * cheap operation (ECDSA here) runs in the calling job instead of pausing
 * it, while an expensive one (RSA) is still queued. One worker and
 * busy_inline = 2, so the mark is two queued requests:
 *   - RSA jobs started back to back all pause, however deep the queue;
 *   - so does ECDSA on P-384, which costs more than RSA-2048;
 *   - ECDSA P-256 jobs started behind them finish at once, on this thread;
 * (test_unit checks the rule itself with the worker held at a gate.)
 *   - with the queue below the mark, an ECDSA job pauses again.
 * Every signature is checked by the default provider. The counterpart,
 * busy_inline = 0 keeping 10,000 cheap jobs paused at once, is test_load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"
#include "offload.h"

#define NRSA       16
#define NEC        8
#define TIMEOUT_MS 60000
#define SIG_MAX    512

static struct {
    test_env env;
    OSSL_LIB_CTX *defctx;
    EVP_PKEY *rsa, *ec, *p384;
    unsigned char md[32];
} S;

struct signer {
    EVP_PKEY *key;
    EVP_PKEY_CTX *ctx;
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_in_job(void *arg)
{
    struct signer *s = arg;

    s->siglen = sizeof(s->sig);
    return EVP_PKEY_sign(s->ctx, s->sig, &s->siglen, S.md, sizeof(S.md)) > 0;
}

/* Jobs signing with |key|, their contexts made outside the jobs. */
static struct hjob *signers(EVP_PKEY *key, size_t n)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;

    assert_non_null(jobs);
    for (i = 0; i < n; i++) {
        struct signer *s = calloc(1, sizeof(*s));

        assert_non_null(s);
        s->key = key;
        s->ctx = test_sha256_sign_ctx(S.env.libctx, key, NULL);
        assert_non_null(s->ctx);
        jobs[i].fn = sign_in_job;
        jobs[i].arg = s;
    }
    return jobs;
}

/* Every job signed, and the default provider accepts the signature. */
static void check_and_free(struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct signer *s = jobs[i].arg;

        assert_true(jobs[i].done);
        assert_int_equal(jobs[i].ret, 1);
        assert_int_equal(
            test_sha256_verify(S.defctx, s->key, NULL, S.md, s->sig, s->siglen), 1);
        EVP_PKEY_CTX_free(s->ctx);
        free(s);
    }
    hjobs_free(jobs, n);
}

static uint64_t sig_counter(const char *which)
{
    char name[64];

    snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_SIGNATURE, which);
    return test_counter(S.env.offload, name);
}

static void test_deep_queue(void **state)
{
    struct hjob *rsa = signers(S.rsa, NRSA), *ec = signers(S.ec, NEC),
                *p384 = signers(S.p384, 1);
    uint64_t off0 = sig_counter(OFFLOAD_STAT_OFFLOADED);
    uint64_t inl0 = sig_counter(OFFLOAD_STAT_INLINE);
    size_t i, ec_done = 0;

    (void)state;
    /* The worker takes the first RSA request; the others queue up. */
    for (i = 0; i < NRSA; i++)
        assert_int_equal(hjob_step(&rsa[i]), ASYNC_PAUSE);
    /* ECDSA on P-384 costs more than RSA-2048: queued like it. */
    assert_int_equal(hjob_step(&p384[0]), ASYNC_PAUSE);
    /*
     * Fourteen RSA signatures (3 ms) still wait: the ECDSA ones run here.
     * Only a thread starved that long could see the queue below the mark
     * and pause one, so all must finish, save on an overloaded machine,
     * where at least the first does.
     */
    for (i = 0; i < NEC; i++)
        ec_done += hjob_step(&ec[i]) == ASYNC_FINISH;
    printf("%zu of %d ECDSA jobs behind %d queued RSA requests finished at once\n",
           ec_done, NEC, NRSA - 1);
    assert_true(ec_done >= 1);
    assert_int_equal(sig_counter(OFFLOAD_STAT_INLINE) - inl0, ec_done);
    assert_int_equal(sig_counter(OFFLOAD_STAT_OFFLOADED) - off0,
                     NRSA + 1 + NEC - ec_done);
    assert_true(h_run_fd_loop(rsa, NRSA, TIMEOUT_MS, NULL, NULL));
    assert_true(h_run_fd_loop(ec, NEC, TIMEOUT_MS, NULL, NULL));
    assert_true(h_run_fd_loop(p384, 1, TIMEOUT_MS, NULL, NULL));
    check_and_free(rsa, NRSA);
    check_and_free(ec, NEC);
    check_and_free(p384, 1);
}

static void test_shallow_queue(void **state)
{
    struct hjob *rsa = signers(S.rsa, 1), *ec = signers(S.ec, 1);
    uint64_t off0 = sig_counter(OFFLOAD_STAT_OFFLOADED);

    (void)state;
    /*
     * At most the RSA request is queued, below the mark, and it is another
     * job's: the ECDSA job pauses.
     */
    assert_int_equal(hjob_step(&rsa[0]), ASYNC_PAUSE);
    assert_int_equal(hjob_step(&ec[0]), ASYNC_PAUSE);
    assert_int_equal(sig_counter(OFFLOAD_STAT_OFFLOADED) - off0, 2);
    assert_true(h_run_fd_loop(rsa, 1, TIMEOUT_MS, NULL, NULL));
    assert_true(h_run_fd_loop(ec, 1, TIMEOUT_MS, NULL, NULL));
    check_and_free(rsa, 1);
    check_and_free(ec, 1);
}

static int group_setup(void **state)
{
    (void)state;
    if (!ASYNC_init_thread(NRSA + NEC + 5, 0))
        return -1;
    if (!test_env_open(&S.env, "workers = 1\nbusy_inline = 2\nspin_us = 0\n"))
        return -1;
    /* The default provider by fallback: nothing to unload but the context. */
    S.defctx = OSSL_LIB_CTX_new();
    S.rsa = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "RSA", (size_t)2048);
    S.ec = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "EC", "P-256");
    S.p384 = EVP_PKEY_Q_keygen(S.env.libctx, NULL, "EC", "P-384");
    if (S.defctx == NULL || S.rsa == NULL || S.ec == NULL || S.p384 == NULL ||
        !test_pkey_in(S.rsa, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(S.ec, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("keys in offload");
        return -1;
    }
    memset(S.md, 0x5a, sizeof(S.md));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(S.rsa);
    EVP_PKEY_free(S.ec);
    EVP_PKEY_free(S.p384);
    OSSL_LIB_CTX_free(S.defctx);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_queue),
        cmocka_unit_test(test_shallow_queue),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Elliptic-curve work inside ASYNC jobs through the offload provider: 256
 * ECDSA P-256 signatures and 256 X25519 derivations in flight at once,
 * driven by poll() on the one wait fd of each job (h_run_fd_loop), then by
 * ASYNC_WAIT_CTX callbacks called on worker threads (h_run_cb_loop).
 * Every result is checked with the default provider and the offload
 * counters must show the work went to the workers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/opensslv.h>
#include <openssl/param_build.h>

#include "ec_util.h"
#include "harness.h"

#define N_ASYNC 256 /* jobs of each kind in flight */
#define N_PEERS 16  /* X25519 peers the derivations cycle through */

/* ------------------------------------------------------------------ */
/* b) ASYNC: 256 signatures and 256 derivations in flight              */
/* ------------------------------------------------------------------ */

enum task_kind { T_SIGN, T_DERIVE };

/* Everything a job touches is here, on the heap: its own frame stays small. */
struct atask {
    enum task_kind kind;
    EVP_PKEY *key, *peer; /* borrowed */
    unsigned char msg[64];
    size_t msglen;
    unsigned char out[SIG_MAX];
    size_t outlen;
    const unsigned char *expect; /* T_DERIVE: the default provider's secret */
    size_t expectlen;
    size_t idx;
    struct hjob *h; /* its job: done, ret */
};

static int atask_job(void *arg)
{
    struct atask *t = arg;
    EVP_MD_CTX *mctx;
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    t->outlen = sizeof(t->out);
    if (t->kind == T_DERIVE) {
        pctx = EVP_PKEY_CTX_new_from_pkey(ec_env.libctx, t->key, OFFLOAD_PROPQ);
        ok = pctx != NULL && EVP_PKEY_derive_init(pctx) == 1 &&
             ctx_in(pctx, OFFLOAD_PROVIDER_NAME) &&
             EVP_PKEY_derive_set_peer(pctx, t->peer) == 1 &&
             EVP_PKEY_derive(pctx, t->out, &t->outlen) == 1;
        EVP_PKEY_CTX_free(pctx);
        return ok;
    }
    mctx = EVP_MD_CTX_new();
    ok = mctx != NULL &&
         EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", ec_env.libctx, OFFLOAD_PROPQ,
                               t->key, NULL) == 1 &&
         ctx_in(pctx, OFFLOAD_PROVIDER_NAME) &&
         EVP_DigestSign(mctx, t->out, &t->outlen, t->msg, t->msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

struct async_set {
    struct atask *tasks;
    struct hjob *jobs; /* one per task */
    size_t n;
    EVP_PKEY *xpriv, *xpeers[N_PEERS];  /* X25519 in offload */
    unsigned char secrets[N_PEERS][32]; /* their secrets, by default */
};

static void async_set_free(struct async_set *S)
{
    size_t i;

    hjobs_free(S->jobs, S->n);
    free(S->tasks);
    EVP_PKEY_free(S->xpriv);
    for (i = 0; i < N_PEERS; i++)
        EVP_PKEY_free(S->xpeers[i]);
    memset(S, 0, sizeof(*S));
}

/* N_ASYNC signing tasks with okey[P-256] and N_ASYNC X25519 tasks, interleaved. */
static void async_set_make(struct async_set *S)
{
    size_t i;
    EVP_PKEY *xpriv_twin;

    memset(S, 0, sizeof(*S));
    S->n = 2 * N_ASYNC;
    S->tasks = calloc(S->n, sizeof(*S->tasks));
    assert_non_null(S->tasks);
    S->jobs = hjobs_new(S->n);
    assert_non_null(S->jobs);
    S->xpriv = keygen_in(OFFL, &keyspecs[K_X25519]);
    assert_non_null(S->xpriv);
    xpriv_twin = move_key(S->xpriv, DFLT, EVP_PKEY_KEYPAIR);
    assert_non_null(xpriv_twin);
    for (i = 0; i < N_PEERS; i++) {
        EVP_PKEY *dpeer = keygen_in(DFLT, &keyspecs[K_X25519]);
        unsigned char s[SECRET_MAX];

        assert_non_null(dpeer);
        S->xpeers[i] = move_key(dpeer, OFFL, EVP_PKEY_PUBLIC_KEY);
        assert_non_null(S->xpeers[i]);
        assert_int_equal(derive(DFLT, xpriv_twin, dpeer, NULL, s), 32);
        memcpy(S->secrets[i], s, 32);
        EVP_PKEY_free(dpeer);
    }
    EVP_PKEY_free(xpriv_twin);
    for (i = 0; i < S->n; i++) {
        struct atask *t = &S->tasks[i];

        t->idx = i;
        t->kind = i % 2 == 0 ? T_SIGN : T_DERIVE;
        if (t->kind == T_SIGN) {
            t->key = okey[K_P256];
            t->msglen = (size_t)snprintf((char *)t->msg, sizeof(t->msg),
                                         "async ECDSA P-256 message number %zu", i / 2);
        } else {
            t->key = S->xpriv;
            t->peer = S->xpeers[(i / 2) % N_PEERS];
            t->expect = S->secrets[(i / 2) % N_PEERS];
            t->expectlen = 32;
        }
        t->h = &S->jobs[i];
        t->h->fn = atask_job;
        t->h->arg = t;
    }
}

/* Every result checked with the default provider; returns how many were right. */
static void async_set_check(const struct async_set *S, const char *mode)
{
    size_t i, sign_ok = 0, derive_ok = 0;

    for (i = 0; i < S->n; i++) {
        const struct atask *t = &S->tasks[i];
        int ok = t->h->done && t->h->ret == 1;

        if (ok && t->kind == T_SIGN)
            ok = dverify(DFLT, otwin[K_P256], "SHA256", t->msg, t->msglen, t->out,
                         t->outlen) == 1;
        else if (ok)
            ok = t->outlen == t->expectlen && memcmp(t->out, t->expect, t->outlen) == 0;
        if (!ok)
            printf("    %s: task %zu (%s) FAILED (done %d, ret %d)\n", mode, i,
                   t->kind == T_SIGN ? "sign" : "derive", t->h->done, t->h->ret);
        if (t->kind == T_SIGN)
            sign_ok += ok;
        else
            derive_ok += ok;
    }
    ERR_clear_error();
    printf("    %s: %zu of %d ECDSA P-256 signatures verified by the default provider, "
           "%zu of %d X25519 secrets equal to the default provider's\n",
           mode, sign_ok, N_ASYNC, derive_ok, N_ASYNC);
    assert_int_equal(sign_ok, N_ASYNC);
    assert_int_equal(derive_ok, N_ASYNC);
}

struct counters {
    uint64_t sig_off, sig_fail, kex_off, kex_fail;
};

static void counters_read(struct counters *c)
{
    c->sig_off = test_counter(ec_env.offload, SIG_OFFLOADED);
    c->sig_fail = test_counter(ec_env.offload, SIG_FAILED);
    c->kex_off = test_counter(ec_env.offload, KEX_OFFLOADED);
    c->kex_fail = test_counter(ec_env.offload, KEX_FAILED);
    assert_true(c->sig_off != UINT64_MAX && c->sig_fail != UINT64_MAX &&
                c->kex_off != UINT64_MAX && c->kex_fail != UINT64_MAX);
}

static void counters_assert(const struct counters *a, const struct counters *b,
                            const char *mode)
{
    printf("    %s: counters: signature offloaded +%llu failed +%llu; keyexch offloaded "
           "+%llu failed +%llu\n",
           mode, (unsigned long long)(b->sig_off - a->sig_off),
           (unsigned long long)(b->sig_fail - a->sig_fail),
           (unsigned long long)(b->kex_off - a->kex_off),
           (unsigned long long)(b->kex_fail - a->kex_fail));
    /* The first job of a burst may stay inline by policy; most must not. */
    assert_true(b->sig_off - a->sig_off >= N_ASYNC / 2);
    assert_true(b->kex_off - a->kex_off >= N_ASYNC / 2);
    assert_true(b->sig_off - a->sig_off <= N_ASYNC);
    assert_true(b->kex_off - a->kex_off <= N_ASYNC);
    assert_int_equal(b->sig_fail - a->sig_fail, 0);
    assert_int_equal(b->kex_fail - a->kex_fail, 0);
}

/* fd mode: start everything, then poll() the one wait fd of each paused job. */
static void test_async_fd(void **state)
{
    struct async_set S;
    struct counters c0, c1;
    int ran;

    (void)state;
    async_set_make(&S);
    counters_read(&c0);
    memset(&h_wait, 0, sizeof(h_wait));
    /* The provider gives each wait ctx exactly one fd (the loop checks each pause). */
    ran = h_run_fd_loop(S.jobs, S.n, POLL_TIMEOUT_MS, NULL, NULL);
    counters_read(&c1);
    printf("    fd mode: %zu jobs, at most %llu paused at once, %llu poll() calls, %llu "
           "resumes on a readable fd\n",
           S.n, (unsigned long long)h_wait.paused_max, (unsigned long long)h_wait.calls,
           (unsigned long long)h_wait.resumed);
    assert_true(ran);
    async_set_check(&S, "fd mode");
    counters_assert(&c0, &c1, "fd mode");
    assert_true(h_wait.paused_max >= N_ASYNC); /* most of them were in flight together */
    async_set_free(&S);
    ASYNC_cleanup_thread();
}

/*
 * Callback mode: the callbacks (on worker threads) queue the job, the
 * loop sleeps on a condition variable; jobs refused by a full queue are
 * retried after a short sleep, never spun (h_run_cb_loop).
 */
static void test_async_callback(void **state)
{
    struct async_set S;
    struct counters c0, c1;
    struct h_cb_stats st;
    int ran;

    (void)state;
    async_set_make(&S);
    counters_read(&c0);
    ran = h_run_cb_loop(S.jobs, S.n, POLL_TIMEOUT_MS, NULL, NULL, &st);
    counters_read(&c1);
    printf("    callback mode: %zu jobs, %llu pauses, %llu callbacks (%llu on the main "
           "thread), %llu queue-full retries\n",
           S.n, (unsigned long long)st.ok_pauses, (unsigned long long)st.calls,
           (unsigned long long)st.on_loop, (unsigned long long)st.eagain_pauses);
    assert_true(ran);
    assert_int_equal(st.calls, st.ok_pauses); /* one callback per pause, no extra */
    assert_int_equal(st.left, 0);
    assert_int_equal(st.on_loop, 0); /* callbacks come from the workers */
    async_set_check(&S, "callback mode");
    counters_assert(&c0, &c1, "callback mode");
    assert_true(st.ok_pauses >= N_ASYNC); /* most jobs waited for a worker */
    async_set_free(&S);
    ASYNC_cleanup_thread();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_fd),
        cmocka_unit_test(test_async_callback),
    };

    return cmocka_run_group_tests(tests, ec_group_setup, ec_group_teardown);
}

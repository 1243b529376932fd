/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load: many jobs at once, then very many operations in a row.
 *
 *   - many_in_flight: 10,000 jobs paused at the same instant across 4
 *     application threads (each with its own ASYNC_init_thread pool and
 *     its own poll loop over 2,500 wait fds; a barrier holds every thread
 *     until all 10,000 are paused). Nine in ten sign with ECDSA P-256,
 *     one in ten with RSA-2048; every signature is verified afterwards by
 *     the default provider (RSA: byte-equal to its own).
 *   - long_run: LOAD_OPS AES-128-GCM encryptions of 1 KiB records
 *     (inline_below = 512, so each goes to a worker) by 64 jobs restarted
 *     as they finish, each with a fresh EVP_CIPHER_CTX; every ciphertext
 *     and tag compared with the default provider's. RSS (/proc/self/statm)
 *     sampled every 10,000 operations must stay flat after the warm-up,
 *     and the fds and threads return to what they were.
 *
 * LOAD_OPS defaults to 1,000,000 (100,000 under a sanitizer, where RSS is
 * the sanitizer's and is reported, not judged); OFFLOAD_LOAD_OPS overrides.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "offload.h"
#include "common.h"
#include "harness.h"

#define UNDER_SANITIZER H_UNDER_SANITIZER

#define PROPQ        "provider=" OFFLOAD_PROVIDER_NAME
#define NTHREADS     4
#define PER_THREAD   2500
#define SIG_MAX      512
#define TIMEOUT_MS   60000
#define RECORD       1024
#define TAGLEN       16
#define LONG_JOBS    64
#define SAMPLE_EVERY 10000
#define WARMUP_OPS   100000
#define RSS_SLACK_KB (8 * 1024)

static const char msg[] = "offload load test";

static struct {
    test_env env;
    OSSL_LIB_CTX *defctx;
    OSSL_PROVIDER *defprov;
    EVP_PKEY *rsa, *ec;       /* in the offload provider */
    EVP_PKEY *rsaref, *ecref; /* the same pairs in the default provider */
    unsigned char md[32];
    unsigned char rsasig[SIG_MAX];
    size_t rsasiglen;
    EVP_CIPHER *gcm;    /* AES-128-GCM of the offload provider */
    EVP_CIPHER *gcmref; /* and of the default provider */
    pthread_barrier_t all_paused;
} S;

/* ---- many_in_flight ---- */

struct sigop {
    int rsa;
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_md(void *arg)
{
    struct sigop *op = arg;

    op->siglen = sizeof(op->sig);
    return test_sha256_sign(S.env.libctx, op->rsa ? S.rsa : S.ec, PROPQ, S.md, op->sig,
                            &op->siglen);
}

static int verified(const struct sigop *op)
{
    if (op->rsa)
        return op->siglen == S.rsasiglen && memcmp(op->sig, S.rsasig, op->siglen) == 0;
    return test_sha256_verify(S.defctx, S.ecref, NULL, S.md, op->sig, op->siglen);
}

struct worker_result {
    int id;
    int ok;
    size_t paused, bad;
    double start_ms, loop_ms;
    uint64_t wakeups;
    char why[160];
};

static void *app_thread(void *arg)
{
    struct worker_result *res = arg;
    struct hjob *jobs = NULL;
    uint64_t t0, t1;
    size_t i;

    if (!ASYNC_init_thread(PER_THREAD + 16, 0)) {
        snprintf(res->why, sizeof(res->why), "ASYNC_init_thread failed");
        pthread_barrier_wait(&S.all_paused);
        return NULL;
    }
    jobs = hjobs_new(PER_THREAD);
    for (i = 0; jobs != NULL && i < PER_THREAD; i++) {
        struct sigop *op = calloc(1, sizeof(*op));

        if (op == NULL)
            break;
        op->rsa = (res->id * PER_THREAD + i) % 10 == 0;
        jobs[i].fn = sign_md;
        jobs[i].arg = op;
    }
    t0 = h_clock_ns(CLOCK_MONOTONIC);
    for (i = 0; jobs != NULL && i < PER_THREAD && jobs[i].arg != NULL; i++) {
        int r = hjob_step(&jobs[i]);

        if (r == ASYNC_PAUSE)
            res->paused++;
        else if (r != ASYNC_FINISH)
            break;
    }
    t1 = h_clock_ns(CLOCK_MONOTONIC);
    res->start_ms = (t1 - t0) / 1e6;
    /* Nobody resumes anything until every thread has all its jobs paused. */
    pthread_barrier_wait(&S.all_paused);
    if (jobs == NULL || i < PER_THREAD) {
        snprintf(res->why, sizeof(res->why), "could not start job %zu", i);
        goto out;
    }
    memset(&h_wait, 0, sizeof(h_wait));
    if (!h_run_fd_loop(jobs, PER_THREAD, TIMEOUT_MS, NULL, NULL)) {
        snprintf(res->why, sizeof(res->why), "event loop failed");
        goto out;
    }
    res->loop_ms = (h_clock_ns(CLOCK_MONOTONIC) - t1) / 1e6;
    res->wakeups = h_wait.calls;
    for (i = 0; i < PER_THREAD; i++) {
        if (!jobs[i].done || jobs[i].ret != 1 || !verified(jobs[i].arg)) {
            if (res->bad++ == 0)
                snprintf(res->why, sizeof(res->why), "job %zu: done %d ret %d, %s", i,
                         jobs[i].done, jobs[i].ret,
                         ((struct sigop *)jobs[i].arg)->rsa ? "RSA" : "ECDSA");
        }
    }
    res->ok = res->bad == 0;
out:
    for (i = 0; jobs != NULL && i < PER_THREAD; i++)
        free(jobs[i].arg);
    hjobs_free(jobs, PER_THREAD);
    ASYNC_cleanup_thread();
    ERR_clear_error();
    return NULL;
}

static void test_many_in_flight(void **state)
{
    struct worker_result res[NTHREADS];
    pthread_t th[NTHREADS];
    int fds0 = h_count_fds(), threads0 = h_count_threads(), i;
    int workers0 = (int)test_counter(S.env.offload, OFFLOAD_PARAM_WORKERS);
    uint64_t off0 =
        test_counter(S.env.offload, "offload-signature-" OFFLOAD_STAT_OFFLOADED);
    uint64_t t0 = h_clock_ns(CLOCK_MONOTONIC);
    size_t paused = 0, bad = 0;
    long rss0 = h_rss_kib();

    (void)state;
    memset(res, 0, sizeof(res));
    assert_int_equal(pthread_barrier_init(&S.all_paused, NULL, NTHREADS + 1), 0);
    for (i = 0; i < NTHREADS; i++) {
        res[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, app_thread, &res[i]), 0);
    }
    /* Every job of every thread is paused now: 10,000 in flight. */
    pthread_barrier_wait(&S.all_paused);
    print_message("all paused: %d fds open (%d before), RSS %ld KiB (%ld before), "
                  "offload-in-flight %llu\n",
                  h_count_fds(), fds0, h_rss_kib(), rss0,
                  (unsigned long long)test_counter(S.env.offload, "offload-in-flight"));
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&S.all_paused);
    for (i = 0; i < NTHREADS; i++) {
        print_message(
            "thread %d: %zu paused, started in %.0f ms, drained in %.0f ms, %llu "
            "poll wake-ups%s%s\n",
            i, res[i].paused, res[i].start_ms, res[i].loop_ms,
            (unsigned long long)res[i].wakeups,
            res[i].ok ? "" : "; FAILED: ", res[i].why);
        paused += res[i].paused;
        bad += res[i].bad;
    }
    print_message("%d jobs in %.0f ms; %zu paused at once\n", NTHREADS * PER_THREAD,
                  (h_clock_ns(CLOCK_MONOTONIC) - t0) / 1e6, paused);
    for (i = 0; i < NTHREADS; i++)
        assert_true(res[i].ok);
    assert_int_equal(bad, 0);
    /* Each job paused while its request was in flight: all 10,000 at the barrier. */
    assert_int_equal(paused, NTHREADS * PER_THREAD);
    assert_true(
        test_counter(S.env.offload, "offload-signature-" OFFLOAD_STAT_OFFLOADED) >=
        off0 + paused);
    assert_int_equal(h_count_fds(), fds0);
    /* The application threads are gone; the workers may have started meanwhile. */
    {
        int want =
            threads0 - workers0 + (int)test_counter(S.env.offload, OFFLOAD_PARAM_WORKERS);

        assert_int_equal(h_wait_threads(want), want);
    }
}

/* ---- long_run ---- */

struct rec {
    size_t slot;
    unsigned char iv[12];
    unsigned char out[RECORD + 16];
    unsigned char tag[TAGLEN];
    int outl;
};

static unsigned char key[16], plain[RECORD];

static int encrypt_record(void *arg)
{
    struct rec *r = arg;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok, n = 0, fin = 0;

    ok = c != NULL && EVP_EncryptInit_ex2(c, S.gcm, key, r->iv, NULL) > 0 &&
         EVP_EncryptUpdate(c, r->out, &n, plain, RECORD) > 0 &&
         EVP_EncryptFinal_ex(c, r->out + n, &fin) > 0 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAGLEN, r->tag) > 0;
    r->outl = n + fin;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* The default provider's record for |iv|: the reference. */
static int reference_record(struct rec *r)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok, n = 0, fin = 0;

    ok = c != NULL && EVP_EncryptInit_ex2(c, S.gcmref, key, r->iv, NULL) > 0 &&
         EVP_EncryptUpdate(c, r->out, &n, plain, RECORD) > 0 &&
         EVP_EncryptFinal_ex(c, r->out + n, &fin) > 0 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAGLEN, r->tag) > 0;
    r->outl = n + fin;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

struct long_run {
    uint64_t target, done, bad;
    struct rec *ref; /* per slot */
    long *rss;       /* sampled every SAMPLE_EVERY */
    size_t nrss;
};

static int record_done(struct hjob *j, void *ctx)
{
    struct long_run *lr = ctx;
    struct rec *r = j->arg;
    const struct rec *ref = &lr->ref[r->slot];

    if (j->ret != 1 || r->outl != RECORD || memcmp(r->out, ref->out, RECORD) != 0 ||
        memcmp(r->tag, ref->tag, TAGLEN) != 0) {
        if (lr->bad++ == 0) {
            fprintf(stderr, "record of slot %zu: ret %d, %d bytes, %s\n", r->slot, j->ret,
                    r->outl, j->ret == 1 ? "differs from the reference" : "failed");
            ERR_print_errors_fp(stderr);
        }
        return -1;
    }
    if (++lr->done % SAMPLE_EVERY == 0)
        lr->rss[lr->nrss++] = h_rss_kib();
    /* Start it again while there is work left for it. */
    return lr->done + LONG_JOBS <= lr->target ? 1 : 0;
}

static uint64_t long_ops(void)
{
    const char *e = getenv("OFFLOAD_LOAD_OPS");

    if (e != NULL && strtoull(e, NULL, 10) > 0)
        return strtoull(e, NULL, 10);
    return UNDER_SANITIZER ? 100000 : 1000000;
}

static void test_long_run(void **state)
{
    struct long_run lr = {.target = long_ops()};
    struct hjob *jobs = hjobs_new(LONG_JOBS);
    int fds0 = h_count_fds(), threads0;
    uint64_t t0, off0, inl0, cpu0, pcpu0, wall_ns;
    long base = 0, peak = 0;
    size_t i, warm;

    (void)state;
    assert_true(lr.target >= LONG_JOBS);
    assert_non_null(jobs);
    lr.ref = calloc(LONG_JOBS, sizeof(*lr.ref));
    lr.rss = calloc(lr.target / SAMPLE_EVERY + 2, sizeof(*lr.rss));
    assert_non_null(lr.ref);
    assert_non_null(lr.rss);
    for (i = 0; i < LONG_JOBS; i++) {
        struct rec *r = calloc(1, sizeof(*r));

        assert_non_null(r);
        r->slot = lr.ref[i].slot = i;
        memset(r->iv, (int)i, sizeof(r->iv));
        memcpy(lr.ref[i].iv, r->iv, sizeof(r->iv));
        assert_true(reference_record(&lr.ref[i]));
        jobs[i].fn = encrypt_record;
        jobs[i].arg = r;
    }
    threads0 = h_count_threads();
    off0 = test_counter(S.env.offload, "offload-cipher-" OFFLOAD_STAT_OFFLOADED);
    inl0 = test_counter(S.env.offload, "offload-cipher-" OFFLOAD_STAT_INLINE);
    memset(&h_wait, 0, sizeof(h_wait));
    cpu0 = h_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    pcpu0 = h_process_cpu_ns();
    t0 = h_clock_ns(CLOCK_MONOTONIC);
    assert_true(h_run_fd_loop(jobs, LONG_JOBS, TIMEOUT_MS, record_done, &lr));
    wall_ns = h_clock_ns(CLOCK_MONOTONIC) - t0;
    assert_int_equal(lr.bad, 0);
    assert_int_equal(lr.done, lr.target);

    /* RSS: flat once warmed up (the job pool, the allocator's arenas, caches). */
    warm = WARMUP_OPS / SAMPLE_EVERY;
    if (warm >= lr.nrss)
        warm = lr.nrss > 0 ? lr.nrss - 1 : 0;
    base = lr.nrss > 0 ? lr.rss[warm] : h_rss_kib();
    for (i = warm; i < lr.nrss; i++)
        if (lr.rss[i] > peak)
            peak = lr.rss[i];
    print_message(
        "long run: %llu AES-128-GCM 1 KiB records by %d jobs in %.1f s (%.0f/s); "
        "offloaded %llu, inline %llu; loop thread CPU %.1f s, process CPU %.1f s; "
        "%llu poll wake-ups\n",
        (unsigned long long)lr.done, LONG_JOBS, wall_ns / 1e9, lr.done / (wall_ns / 1e9),
        (unsigned long long)(test_counter(S.env.offload,
                                          "offload-cipher-" OFFLOAD_STAT_OFFLOADED) -
                             off0),
        (unsigned long long)(test_counter(S.env.offload,
                                          "offload-cipher-" OFFLOAD_STAT_INLINE) -
                             inl0),
        (h_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e9,
        (h_process_cpu_ns() - pcpu0) / 1e9, (unsigned long long)h_wait.calls);
    print_message(
        "long run: RSS %ld KiB at %zu ops, %ld KiB at the end, peak after warm-up "
        "%ld KiB: growth %ld KiB (first sample %ld KiB)\n",
        base, (warm + 1) * SAMPLE_EVERY, lr.nrss > 0 ? lr.rss[lr.nrss - 1] : 0, peak,
        peak - base, lr.nrss > 0 ? lr.rss[0] : 0);
    if (UNDER_SANITIZER)
        print_message("long run: under a sanitizer, RSS is reported, not judged\n");
    else
        assert_true(peak - base < RSS_SLACK_KB);
    /* Most records went to a worker (a lone record may stay inline). */
    assert_true(test_counter(S.env.offload, "offload-cipher-" OFFLOAD_STAT_OFFLOADED) -
                    off0 >=
                lr.done / 2);
    for (i = 0; i < LONG_JOBS; i++)
        free(jobs[i].arg);
    hjobs_free(jobs, LONG_JOBS);
    free(lr.ref);
    free(lr.rss);
    assert_int_equal(h_count_fds(), fds0);
    assert_int_equal(h_wait_threads(threads0), threads0);
}

/* ---- setup ---- */

static int import(OSSL_LIB_CTX *libctx, const char *type, const char *propq,
                  EVP_PKEY *from, EVP_PKEY **to)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, type, propq);
    OSSL_PARAM *params = NULL;
    int ok;

    ok = ctx != NULL && EVP_PKEY_todata(from, EVP_PKEY_KEYPAIR, &params) > 0 &&
         EVP_PKEY_fromdata_init(ctx) > 0 &&
         EVP_PKEY_fromdata(ctx, to, EVP_PKEY_KEYPAIR, params) > 0;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int group_setup(void **state)
{
    unsigned int mdlen = sizeof(S.md);
    struct rlimit rl;
    size_t i;
    int ok;

    (void)state;
    h_settle_threads();
    /* 10,000 wait ctxs hold 10,000 eventfds. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < NTHREADS * PER_THREAD + 256) {
        fprintf(stderr, "need %d fds, the limit is %llu\n", NTHREADS * PER_THREAD + 256,
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    if (!ASYNC_init_thread(LONG_JOBS + 16, 0))
        return -1;
    /* busy_inline = 0: every job must pause, however deep the queue; cipher_gate = 0:
     * every record goes to a worker, however cheap it is here. */
    if (!test_env_open(&S.env,
                       "queue_depth = 16384\ninline_below = 512\nbusy_inline = 0\n"
                       "cipher_gate = 0\n"))
        return -1;
    if ((S.defctx = test_ref_open(&S.defprov)) == NULL)
        return -1;
    S.rsaref = EVP_PKEY_Q_keygen(S.defctx, NULL, "RSA", (size_t)2048);
    S.ecref = EVP_PKEY_Q_keygen(S.defctx, NULL, "EC", "P-256");
    ok = S.rsaref != NULL && S.ecref != NULL &&
         import(S.env.libctx, "RSA", PROPQ, S.rsaref, &S.rsa) &&
         import(S.env.libctx, "EC", PROPQ, S.ecref, &S.ec) &&
         test_pkey_in(S.rsa, OFFLOAD_PROVIDER_NAME) &&
         test_pkey_in(S.ec, OFFLOAD_PROVIDER_NAME) &&
         EVP_Digest(msg, sizeof(msg) - 1, S.md, &mdlen, EVP_sha256(), NULL) > 0;
    S.rsasiglen = sizeof(S.rsasig);
    ok = ok && test_sha256_sign(S.defctx, S.rsaref, NULL, S.md, S.rsasig, &S.rsasiglen);
    S.gcm = EVP_CIPHER_fetch(S.env.libctx, "AES-128-GCM", PROPQ);
    S.gcmref = EVP_CIPHER_fetch(S.defctx, "AES-128-GCM", NULL);
    ok = ok && S.gcm != NULL && S.gcmref != NULL;
    for (i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(0xa0 + i);
    for (i = 0; i < sizeof(plain); i++)
        plain[i] = (unsigned char)(i * 7 + 1);
    if (!ok)
        test_dump_errors("group setup");
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_CIPHER_free(S.gcm);
    EVP_CIPHER_free(S.gcmref);
    EVP_PKEY_free(S.rsa);
    EVP_PKEY_free(S.ec);
    EVP_PKEY_free(S.rsaref);
    EVP_PKEY_free(S.ecref);
    test_ref_close(S.defctx, S.defprov);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_in_flight),
        cmocka_unit_test(test_long_run),
    };

    if (getenv("OFFLOAD_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("OFFLOAD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

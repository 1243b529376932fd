/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Async tests through the real provider: ASYNC_JOBs that sign with an
 * RSA-2048 key of the offload provider, really pause while a worker
 * signs, and are resumed by an event loop of the kind an application
 * runs:
 *   - fd mode: poll() on the wait fd of each job's ASYNC_WAIT_CTX
 *     (h_run_fd_loop),
 *   - callback mode: the ctx's callback (called on a worker thread)
 *     queues the job, the loop sleeps on a condition variable
 *     (h_run_cb_loop),
 *   - ASYNC_block_pause(): the job never pauses and the waiting thread
 *     does not spin,
 *   - an abandoned job (its wait ctx freed while paused),
 *   - a spurious resume (resumed before its fd is readable).
 * Every signature is checked afterwards, outside the job, against the
 * default provider (verify, and byte equality: PKCS#1 v1.5 is
 * deterministic).
 *
 * The event loop (main thread) is pinned to a CPU of its own and the
 * workers to the others (isolate_event_loop): otherwise a worker may
 * preempt the submitting thread for a whole signature, the job then finds
 * its request done and rightly skips the pause, and the pause assertions
 * would test the scheduler.
 *
 * Job functions keep their stack small (OpenSSL's job stacks are 32 KiB):
 * buffers live in the per-job struct on the heap. No cmocka assertion
 * runs inside a job or on a worker thread: they record, the main thread
 * asserts.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"

#define MANY_JOBS 256
#define SIG_MAX   512

static const char msg[] = "offload async test: sign me while the job is paused";

static struct {
    test_env env;
    OSSL_LIB_CTX *defctx; /* the default provider alone: the reference */
    OSSL_PROVIDER *defprov;
    EVP_PKEY *key;        /* RSA-2048, in the offload provider */
    EVP_PKEY *refkey;     /* the same key pair, in defctx */
    unsigned char md[32]; /* SHA-256 of msg */
    unsigned char ref[SIG_MAX];
    size_t reflen; /* the default provider's signature of md */
} S;

/* ---- one job: one signature ---- */

struct job {
    size_t index;
    struct hjob *h;  /* its job (harness.h): started, done, ret, pauses, callbacks, fd */
    int digest_sign; /* EVP_DigestSign over msg, else EVP_PKEY_sign over md */
    int block_pause; /* sign between ASYNC_block_pause and ASYNC_unblock_pause */
    long preempted;  /* involuntary context switches of this thread in start_job */
    /* Measured inside the job around the signing call (block_pause tests). */
    uint64_t cpu_ns, wall_ns;
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_pkey(struct job *j)
{
    EVP_PKEY_CTX *ctx = test_sha256_sign_ctx(S.env.libctx, S.key, OFFLOAD_PROPQ);
    int ok = ctx != NULL;

    if (ok) {
        uint64_t c0 = h_clock_ns(CLOCK_THREAD_CPUTIME_ID),
                 w0 = h_clock_ns(CLOCK_MONOTONIC);

        j->siglen = sizeof(j->sig);
        ok = EVP_PKEY_sign(ctx, j->sig, &j->siglen, S.md, sizeof(S.md)) > 0;
        j->cpu_ns = h_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        j->wall_ns = h_clock_ns(CLOCK_MONOTONIC) - w0;
    }
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int sign_digest(struct job *j)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok;

    ok = mctx != NULL && EVP_DigestSignInit_ex(mctx, NULL, "SHA256", S.env.libctx,
                                               OFFLOAD_PROPQ, S.key, NULL) > 0;
    if (ok) {
        j->siglen = sizeof(j->sig);
        ok = EVP_DigestSign(mctx, j->sig, &j->siglen, (const unsigned char *)msg,
                            sizeof(msg) - 1) > 0;
    }
    EVP_MD_CTX_free(mctx);
    return ok;
}

static int sign_job(void *arg)
{
    struct job *j = arg;
    int ok;

    if (j->block_pause)
        ASYNC_block_pause();
    ok = j->digest_sign ? sign_digest(j) : sign_pkey(j);
    if (j->block_pause)
        ASYNC_unblock_pause();
    return ok;
}

/* ---- the event loop's side ---- */

/* Starts or resumes |j| (hjob_step), counting this thread's preemptions meanwhile. */
static int step(struct job *j)
{
    struct rusage ru0, ru1;
    int r;

    getrusage(RUSAGE_THREAD, &ru0);
    r = hjob_step(j->h);
    getrusage(RUSAGE_THREAD, &ru1);
    j->preempted += ru1.ru_nivcsw - ru0.ru_nivcsw;
    return r;
}

/* |n| jobs, each with its hjob (h[i]) and wait ctx; NULL on allocation failure. */
static struct job *jobs_new(size_t n)
{
    struct job *jobs = calloc(n, sizeof(*jobs));
    struct hjob *h = hjobs_new(n);
    size_t i;

    if (jobs == NULL || h == NULL) {
        free(jobs);
        hjobs_free(h, n);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        jobs[i].index = i;
        jobs[i].h = &h[i];
        h[i].fn = sign_job;
        h[i].arg = &jobs[i];
    }
    return jobs;
}

static void jobs_free(struct job *jobs, size_t n)
{
    if (jobs != NULL)
        hjobs_free(jobs[0].h, n);
    free(jobs);
}

/* Ready for another job on the same wait ctx (its fd is kept). */
static void job_reset(struct job *j)
{
    j->h->job = NULL;
    j->h->started = j->h->done = j->h->ret = 0;
    j->h->pauses = j->h->callbacks = j->h->cb_owed = 0;
    j->preempted = 0;
    j->siglen = 0;
}

/*
 * fd mode: starts every job (counting preemptions), then h_run_fd_loop
 * poll()s the wait fds of the paused ones and resumes those that are
 * readable, until all are finished. Each job saw one fd, always the same.
 */
static void run_fd_loop(struct job *jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int r;

        if (jobs[i].h->done || jobs[i].h->started)
            continue;
        r = step(&jobs[i]);
        assert_true(r == ASYNC_PAUSE || r == ASYNC_FINISH);
    }
    assert_true(h_run_fd_loop(jobs[0].h, n, POLL_TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < n; i++) {
        assert_true(jobs[i].h->done);
        assert_false(jobs[i].h->fd_changed);
        assert_true(jobs[i].h->fd >= 0);
    }
}

/*
 * A worker needs hundreds of microseconds for an RSA-2048 signature while
 * the job checks for completion a few instructions after submitting: a
 * job that finished without a pause either never used a worker or this
 * thread was kept off the CPU meanwhile (see isolate_event_loop).
 */
static void assert_paused(const struct job *j)
{
    if (j->h->pauses == 0)
        fail_msg("job %zu finished without pausing (this thread was preempted %ld "
                 "times meanwhile)",
                 j->index, j->preempted);
}

static void check_sig(const struct job *j)
{
    if (j->h->ret != 1)
        test_dump_errors("signing job");
    assert_int_equal(j->h->ret, 1);
    assert_int_equal(j->siglen, S.reflen);
    /* Verified by the default provider, and equal to its own signature. */
    assert_int_equal(
        test_sha256_verify(S.defctx, S.refkey, NULL, S.md, j->sig, j->siglen), 1);
    assert_memory_equal(j->sig, S.ref, S.reflen);
}

static uint64_t counter(const char *name)
{
    uint64_t v = test_counter(S.env.offload, name);

    assert_true(v != UINT64_MAX);
    return v;
}

#define C_OFFLOADED "offload-signature-" OFFLOAD_STAT_OFFLOADED
#define C_PAUSES    "offload-signature-" OFFLOAD_STAT_PAUSES
#define C_COMPLETED "offload-signature-" OFFLOAD_STAT_COMPLETED
#define C_INLINE    "offload-signature-" OFFLOAD_STAT_INLINE

/* ---- a) and b): fd mode ---- */

static void fd_mode(size_t n, int digest_sign)
{
    struct job *jobs = jobs_new(n);
    uint64_t off0 = counter(C_OFFLOADED), pau0 = counter(C_PAUSES);
    size_t i, pauses = 0;

    assert_non_null(jobs);
    for (i = 0; i < n; i++)
        jobs[i].digest_sign = digest_sign;
    run_fd_loop(jobs, n);
    for (i = 0; i < n; i++) {
        assert_true(jobs[i].h->done);
        /* Each job really paused, and saw exactly one fd, always the same. */
        assert_paused(&jobs[i]);
        assert_false(jobs[i].h->fd_changed);
        /* The token was consumed by the job: nothing left to wake anyone. */
        assert_false(h_fd_readable(jobs[i].h->fd, 0));
        check_sig(&jobs[i]);
        pauses += jobs[i].h->pauses;
    }
    assert_true(pauses >= n);
    assert_true(counter(C_OFFLOADED) >= off0 + n);
    assert_true(counter(C_PAUSES) >= pau0 + pauses);
    /* Every wait ctx has its own fd. */
    for (i = 1; i < n; i++)
        assert_int_not_equal(jobs[i].h->fd, jobs[i - 1].h->fd);
    jobs_free(jobs, n);
    test_wait_idle(S.env.offload);
}

static void test_fd_one_job(void **state)
{
    struct job *j;
    int fd;

    (void)state;
    fd_mode(1, 1);
    fd_mode(1, 0);

    /* Two successive jobs on the same wait ctx share its one fd. */
    j = jobs_new(1);
    assert_non_null(j);
    run_fd_loop(j, 1);
    assert_paused(j);
    check_sig(j);
    fd = j->h->fd;
    assert_true(fd >= 0);
    job_reset(j);
    j->digest_sign = 1;
    run_fd_loop(j, 1);
    assert_paused(j);
    assert_false(j->h->fd_changed);
    assert_int_equal(j->h->fd, fd);
    assert_false(h_fd_readable(fd, 0));
    check_sig(j);
    jobs_free(j, 1);
}

static void test_fd_many_jobs(void **state)
{
    (void)state;
    fd_mode(MANY_JOBS, 0);
    fd_mode(MANY_JOBS, 1);
}

/* ---- c): callback mode ---- */

/*
 * Callback mode (h_run_cb_loop): the wait ctx's callback, called on a
 * worker thread, queues the job; the loop sleeps on a condition variable.
 */
static void cb_mode(size_t n, int digest_sign)
{
    struct job *jobs = jobs_new(n);
    uint64_t off0 = counter(C_OFFLOADED), pau0 = counter(C_PAUSES);
    struct h_cb_stats st;
    size_t i, pauses = 0;

    assert_non_null(jobs);
    for (i = 0; i < n; i++)
        jobs[i].digest_sign = digest_sign;
    assert_true(h_run_cb_loop(jobs[0].h, n, POLL_TIMEOUT_MS, NULL, NULL, &st));
    /* Every pause with ASYNC_STATUS_OK (the queue has room for all). */
    assert_int_equal(st.eagain_pauses, 0);
    for (i = 0; i < n; i++) {
        assert_true(jobs[i].h->done);
        /* In callback mode the provider always pauses. */
        assert_paused(&jobs[i]);
        assert_int_equal(jobs[i].h->callbacks, jobs[i].h->pauses);
        check_sig(&jobs[i]);
        pauses += jobs[i].h->pauses;
        /* The ctx may carry the provider's fd; it was never made readable. */
        if (jobs[i].h->fd >= 0) {
            assert_false(jobs[i].h->fd_changed);
            assert_false(h_fd_readable(jobs[i].h->fd, 0));
        }
    }
    /* Callbacks come from the workers, never from this thread. */
    assert_int_equal(st.on_loop, 0);
    assert_true(pauses >= n);
    assert_true(counter(C_OFFLOADED) >= off0 + n);
    assert_true(counter(C_PAUSES) >= pau0 + pauses);
    test_wait_idle(S.env.offload);
    /* No late or extra callback once everything completed. */
    assert_int_equal(st.overflow, 0);
    assert_int_equal(st.left, 0);
    assert_int_equal(st.calls, pauses);
    assert_int_equal(h_cb_late(), 0);
    jobs_free(jobs, n);
}

static void test_cb_one_job(void **state)
{
    (void)state;
    cb_mode(1, 0);
    cb_mode(1, 1);
}

static void test_cb_many_jobs(void **state)
{
    (void)state;
    cb_mode(MANY_JOBS, 0);
    cb_mode(MANY_JOBS, 1);
}

/* ---- d): ASYNC_block_pause ---- */

/*
 * At least BLOCKED_SIGNS signs, more (up to BLOCKED_MAX) until
 * BLOCKED_BY_WORKER of them were signed by a worker rather than taken back.
 */
#define BLOCKED_SIGNS     50
#define BLOCKED_MAX       1000
#define BLOCKED_BY_WORKER 20

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void test_block_pause(void **state)
{
    struct job *j = jobs_new(1), *warm = jobs_new(1);
    double *ratio = calloc(BLOCKED_MAX, sizeof(*ratio)); /* cpu/wall, worker-signed */
    uint64_t cpu_worker = 0, wall_worker = 0, cpu_inline = 0, wall_inline = 0;
    unsigned by_worker = 0, inline_ = 0, i;

    (void)state;
    assert_non_null(j);
    assert_non_null(warm);
    assert_non_null(ratio);
    for (i = 0; i < BLOCKED_MAX; i++) {
        uint64_t comp0, inl0, dcomp, dinl;
        int r, fd;

        if (i >= BLOCKED_SIGNS && by_worker >= BLOCKED_BY_WORKER)
            break;
        /*
         * Every other round, an ordinary offloaded sign just before: a
         * worker that just finished is awake (spin_us) and may pick the
         * blocked job's request before the job can take it back.
         */
        if (i & 1) {
            job_reset(warm);
            run_fd_loop(warm, 1);
            check_sig(warm);
        }
        comp0 = counter(C_COMPLETED);
        inl0 = counter(C_INLINE);
        job_reset(j);
        j->block_pause = 1;
        r = step(j);
        /* Finished on the first call, never paused. */
        assert_int_equal(r, ASYNC_FINISH);
        assert_int_equal(j->h->pauses, 0);
        check_sig(j);
        /* The provider's fd, if it registered one: no token left behind. */
        fd = h_wait_fd(j->h->wctx);
        if (fd >= 0)
            assert_false(h_fd_readable(fd, 0));

        /*
         * Where did the signature happen? A worker (completed counter) or
         * this thread after taking the request back (inline counter).
         */
        dcomp = counter(C_COMPLETED) - comp0;
        dinl = counter(C_INLINE) - inl0;
        assert_int_equal(dcomp + dinl, 1);
        if (dcomp == 1) {
            ratio[by_worker++] = j->wall_ns > 0 ? (double)j->cpu_ns / j->wall_ns : 1.0;
            cpu_worker += j->cpu_ns;
            wall_worker += j->wall_ns;
        } else {
            inline_++;
            cpu_inline += j->cpu_ns;
            wall_inline += j->wall_ns;
        }
    }
    print_message("block_pause: %u signed by a worker (this thread: cpu %.2f ms, wall "
                  "%.2f ms), %u taken back inline (cpu %.2f ms, wall %.2f ms)\n",
                  by_worker, cpu_worker / 1e6, wall_worker / 1e6, inline_,
                  cpu_inline / 1e6, wall_inline / 1e6);
    /*
     * While a worker signs, the blocked job's thread must sleep, not spin:
     * its CPU time stays well under the time it waited. Judged on the
     * median sign: a spinning thread shows cpu ~ wall except when another
     * process took its CPU, a sleeping one a few percent. (Inline signs
     * burn this thread's CPU by nature and are not judged.)
     */
    if (by_worker > 0) {
        double median;

        qsort(ratio, by_worker, sizeof(*ratio), cmp_double);
        median = ratio[by_worker / 2];
        print_message("block_pause: median cpu/wall of this thread while a worker signs: "
                      "%.3f\n",
                      median);
        assert_true(median < 0.5);
    } else {
        print_message("block_pause: no sign reached a worker, the sleep is untested\n");
    }
    free(ratio);
    jobs_free(j, 1);
    jobs_free(warm, 1);
    test_wait_idle(S.env.offload);
}

/* ---- f): spurious resume ---- */

#define SPURIOUS_ROUNDS 20

static void test_spurious_resume(void **state)
{
    struct job *j = jobs_new(1);
    unsigned i, finished_early = 0;

    (void)state;
    assert_non_null(j);
    for (i = 0; i < SPURIOUS_ROUNDS; i++) {
        int r;

        job_reset(j);
        j->digest_sign = i & 1;
        r = step(j);
        assert_paused(j);
        assert_int_equal(r, ASYNC_PAUSE);
        /* Resumed at once, before the fd says anything (s_server does this). */
        r = step(j);
        assert_true(r == ASYNC_PAUSE || r == ASYNC_FINISH);
        finished_early += r == ASYNC_FINISH;
        run_fd_loop(j, 1);
        assert_true(j->h->done);
        assert_false(j->h->fd_changed);
        check_sig(j);
        /* No stale token for the next job on this ctx. */
        assert_false(h_fd_readable(j->h->fd, 0));
    }
    print_message("spurious resume: %u/%u finished on the early resume\n", finished_early,
                  SPURIOUS_ROUNDS);
    /* The ctx is still good for a normal, fd-driven job. */
    job_reset(j);
    run_fd_loop(j, 1);
    assert_paused(j);
    check_sig(j);
    jobs_free(j, 1);
    test_wait_idle(S.env.offload);
}

/* ---- e): abandoned job ---- */

/* Reachable for LeakSanitizer: a paused job is never freed. */
static struct job *volatile abandoned;

static void test_abandoned_job(void **state)
{
    struct job *j;
    uint64_t comp0 = counter(C_COMPLETED);
    int ms, newfd, r, oldfd;

    (void)state;
    abandoned = j = jobs_new(1);
    assert_non_null(j);
    r = step(j);
    assert_paused(j);
    assert_int_equal(r, ASYNC_PAUSE);
    oldfd = j->h->fd;
    assert_true(oldfd >= 0);

    /* The application gives up on it: frees the wait ctx, never resumes. */
    ASYNC_WAIT_CTX_free(j->h->wctx);
    j->h->wctx = NULL;
    /*
     * Grab a new descriptor at once: had the provider closed the old fd,
     * this would likely get its number and the worker's token would land
     * here.
     */
    newfd = eventfd(0, EFD_CLOEXEC);
    assert_true(newfd >= 0);

    for (ms = 0; ms < POLL_TIMEOUT_MS && counter(C_COMPLETED) == comp0; ms++)
        h_sleep_ms(1);
    assert_true(counter(C_COMPLETED) > comp0);
    test_wait_idle(S.env.offload);
    h_sleep_ms(20);
    assert_false(h_fd_readable(newfd, 0));
    close(newfd);

    /* Life goes on: a new wait ctx and job, fd-driven, nothing spurious. */
    {
        struct job *k = jobs_new(1);

        assert_non_null(k);
        run_fd_loop(k, 1);
        assert_paused(k);
        check_sig(k);
        assert_false(h_fd_readable(k->h->fd, 0));
        jobs_free(k, 1);
    }
    test_wait_idle(S.env.offload);
}

/* ---- setup ---- */

/*
 * One signature in a job, driven by poll(): starts the workers. No cmocka
 * assertion: this runs in the group setup.
 */
static int warm_up(void)
{
    struct job *j = jobs_new(1);
    int r, ok = 0;

    if (j == NULL)
        return 0;
    r = step(j);
    while (r == ASYNC_PAUSE) {
        if (j->h->fd_changed || !h_fd_readable(j->h->fd, POLL_TIMEOUT_MS))
            break;
        r = step(j);
    }
    ok = r == ASYNC_FINISH && j->h->ret == 1;
    jobs_free(j, 1);
    return ok;
}

/*
 * The event loop (this thread) gets a CPU of its own, the workers share
 * the others. With as many workers as CPUs plus this thread, the
 * scheduler otherwise lets a worker that was just handed a request
 * preempt the submitting thread for the whole signature, and the job
 * finds its request already done and legitimately skips the pause: the
 * pause tests would test the scheduler. Needs two CPUs; on one, nothing
 * is pinned.
 */
static void isolate_event_loop(void)
{
    cpu_set_t all, loop, rest;
    pid_t self = gettid();
    struct dirent *e;
    DIR *d;
    int cpu, first = -1, nworkers = 0;

    if (sched_getaffinity(0, sizeof(all), &all) != 0 || CPU_COUNT(&all) < 2)
        return;
    CPU_ZERO(&loop);
    CPU_ZERO(&rest);
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &all))
            continue;
        if (first < 0) {
            first = cpu;
            CPU_SET(cpu, &loop);
        } else {
            CPU_SET(cpu, &rest);
        }
    }
    if (sched_setaffinity(0, sizeof(loop), &loop) != 0)
        return;
    d = opendir("/proc/self/task");
    while (d != NULL && (e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);

        if (tid > 0 && tid != self && sched_setaffinity(tid, sizeof(rest), &rest) == 0)
            nworkers++;
    }
    if (d != NULL)
        closedir(d);
    print_message("event loop pinned to CPU %d, %d other threads to the other %d CPUs\n",
                  first, nworkers, CPU_COUNT(&rest));
}

static int group_setup(void **state)
{
    EVP_PKEY_CTX *kctx = NULL, *dctx = NULL;
    OSSL_PARAM *params = NULL;
    unsigned int mdlen = sizeof(S.md);
    int ok = 0;

    (void)state;
    if (!ASYNC_init_thread(2 * MANY_JOBS, 0))
        return -1;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule). */
    if (!test_env_open(&S.env, "queue_depth = 1024\nbusy_inline = 0\n"))
        return -1;
    if ((S.defctx = test_ref_open(&S.defprov)) == NULL)
        return -1;
    kctx = EVP_PKEY_CTX_new_from_name(S.env.libctx, "RSA", OFFLOAD_PROPQ);
    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048) <= 0 ||
        EVP_PKEY_generate(kctx, &S.key) <= 0 || !test_pkey_in(S.key, "offload"))
        goto out;
    /* The same key pair in the default provider: the reference. */
    dctx = EVP_PKEY_CTX_new_from_name(S.defctx, "RSA", NULL);
    if (EVP_PKEY_todata(S.key, EVP_PKEY_KEYPAIR, &params) <= 0 || dctx == NULL ||
        EVP_PKEY_fromdata_init(dctx) <= 0 ||
        EVP_PKEY_fromdata(dctx, &S.refkey, EVP_PKEY_KEYPAIR, params) <= 0 ||
        !test_pkey_in(S.refkey, "default"))
        goto out;
    if (!EVP_Digest(msg, sizeof(msg) - 1, S.md, &mdlen, EVP_sha256(), NULL))
        goto out;
    S.reflen = sizeof(S.ref);
    if (!test_sha256_sign(S.defctx, S.refkey, NULL, S.md, S.ref, &S.reflen) ||
        S.reflen != 256)
        goto out;
    /* Workers start at the first offloaded request: then pin them. */
    if (!warm_up())
        goto out;
    isolate_event_loop();
    ok = 1;
out:
    if (!ok)
        test_dump_errors("group setup");
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_CTX_free(dctx);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(S.key);
    EVP_PKEY_free(S.refkey);
    test_ref_close(S.defctx, S.defprov);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_one_job),
        cmocka_unit_test(test_fd_many_jobs),
        cmocka_unit_test(test_cb_one_job),
        cmocka_unit_test(test_cb_many_jobs),
        cmocka_unit_test(test_block_pause),
        cmocka_unit_test(test_spurious_resume),
        /* Last: it leaves a paused job behind for good. */
        cmocka_unit_test(test_abandoned_job),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

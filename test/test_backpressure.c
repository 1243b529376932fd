/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Back-pressure: a queue of 4 requests ("queue_depth = 4") under 1,000
 * jobs in flight, each signing with RSA-4096 (PKCS#1 v1.5: deterministic,
 * every signature compared with the default provider's). RSA-4096, about
 * 2 ms a signature, keeps the queue full however slowly the jobs start (a
 * sanitizer's cost, a loaded machine): with RSA-2048 the two workers kept
 * up with TSan-slowed job starts on a busy machine and the queue never
 * filled.
 *
 *   - fd mode: a request the full queue refuses runs inline in its job;
 *     the event loop poll()s the wait fds of the jobs that did pause;
 *   - callback mode: a refused request pauses its job once with
 *     ASYNC_STATUS_EAGAIN; the application retries the job on a 50 ms
 *     timer (no callback will come for it), the provider submits again and
 *     runs the request inline if the queue is still full. A job paused
 *     with ASYNC_STATUS_OK waits for its callback.
 *
 * Every operation completes with the right result, none is lost (each
 * callback resumes exactly one OK pause, none comes for an EAGAIN pause
 * or late), the queue-full counters rose, and nothing spins: the event
 * loop's thread uses little CPU while it waits (poll / condition wait,
 * CLOCK_THREAD_CPUTIME_ID against the wall clock), its total CPU is about
 * the signatures it ran inline, and the whole process (getrusage) uses
 * about the CPU of the signatures plus the workers' bounded spin
 * (spin_us after each completion).
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
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "offload.h"
#include "common.h"
#include "harness.h"

#define PROPQ      "provider=" OFFLOAD_PROVIDER_NAME
#define NJOBS      1000
#define SIG_MAX    512
#define TIMEOUT_MS 30000
#define RETRY_MS   50
#define WORKERS    2
#define SPIN_US    200

static const char msg[] = "offload back-pressure test";

static struct {
    test_env env;
    EVP_PKEY *key;
    unsigned char md[32];
    unsigned char ref[SIG_MAX];
    size_t reflen;
    uint64_t sign_cpu_ns; /* CPU of one inline signature, measured */
} S;

struct op {
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_md(void *arg)
{
    struct op *op = arg;

    op->siglen = sizeof(op->sig);
    return test_sha256_sign(S.env.libctx, S.key, PROPQ, S.md, op->sig, &op->siglen);
}

static struct hjob *sign_jobs(size_t n)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;

    assert_non_null(jobs);
    for (i = 0; i < n; i++) {
        jobs[i].fn = sign_md;
        jobs[i].arg = calloc(1, sizeof(struct op));
        assert_non_null(jobs[i].arg);
    }
    return jobs;
}

static void sign_jobs_free(struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(jobs[i].arg);
    hjobs_free(jobs, n);
}

static void check_job(const struct hjob *j)
{
    const struct op *op = j->arg;

    if (!j->done || j->ret != 1) {
        test_dump_errors("signing job");
        fail_msg("job %zu: done %d, ret %d", j->index, j->done, j->ret);
    }
    assert_int_equal(op->siglen, S.reflen);
    assert_memory_equal(op->sig, S.ref, S.reflen);
}

static uint64_t counter(const char *name)
{
    uint64_t v = test_counter(S.env.offload, name);

    assert_true(v != UINT64_MAX);
    return v;
}

#define C_FULL      "offload-signature-" OFFLOAD_STAT_QUEUE_FULL
#define C_INLINE    "offload-signature-" OFFLOAD_STAT_INLINE
#define C_OFFLOADED "offload-signature-" OFFLOAD_STAT_OFFLOADED
#define C_COMPLETED "offload-signature-" OFFLOAD_STAT_COMPLETED

struct snapshot {
    uint64_t full, inl, offloaded, completed;
    uint64_t wall_ns, thread_cpu_ns, process_cpu_ns;
};

static void snap(struct snapshot *s)
{
    s->full = counter(C_FULL);
    s->inl = counter(C_INLINE);
    s->offloaded = counter(C_OFFLOADED);
    s->completed = counter(C_COMPLETED);
    s->wall_ns = h_clock_ns(CLOCK_MONOTONIC);
    s->thread_cpu_ns = h_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    s->process_cpu_ns = h_process_cpu_ns();
}

static int nothing_in_flight(void *arg)
{
    (void)arg;
    return test_counter(S.env.offload, "offload-in-flight") == 0;
}

/*
 * The CPU bounds, from what ran where: |inline_ops| signatures on this
 * thread, |ops| in all; waiting took |wait_wall| of wall time and
 * |wait_cpu| of this thread's CPU.
 */
static void check_cpu(const char *mode, const struct snapshot *a,
                      const struct snapshot *b, uint64_t ops, uint64_t inline_ops,
                      uint64_t wait_cpu, uint64_t wait_wall, uint64_t wakeups,
                      uint64_t max_wakeups)
{
    double wall = (b->wall_ns - a->wall_ns) / 1e6,
           thr = (b->thread_cpu_ns - a->thread_cpu_ns) / 1e6,
           proc = (b->process_cpu_ns - a->process_cpu_ns) / 1e6,
           sign = S.sign_cpu_ns / 1e6;
    /* A sanitizer's own cost (interceptors, shadow memory) is not ours to judge. */
    double slow = H_UNDER_SANITIZER ? 10.0 : 1.0;
    double thr_bound = slow * (2.0 * inline_ops * sign + 0.1 * wall + 50);
    /* The signatures, plus every worker spinning spin_us after each completion. */
    double proc_bound =
        slow * (2.0 * ops * sign + (double)WORKERS * ops * SPIN_US / 1000.0 + 100);

    print_message("%s: %llu ops (%llu inline on the loop's thread) in %.1f ms wall; loop "
                  "thread CPU %.1f ms (bound %.1f), process CPU %.1f ms (bound %.1f, "
                  "%.2f cores); waiting: %.1f ms wall, %.1f ms CPU, %llu wake-ups\n",
                  mode, (unsigned long long)ops, (unsigned long long)inline_ops, wall,
                  thr, thr_bound, proc, proc_bound, wall > 0 ? proc / wall : 0,
                  wait_wall / 1e6, wait_cpu / 1e6, (unsigned long long)wakeups);
    /* Blocked means blocked: a few percent of the waited time, plus syscalls. */
    assert_true(wait_cpu <= wait_wall / 5 + 20000000u);
    /* Woken for a reason: no more wake-ups than pauses (plus timer expiries). */
    assert_true(wakeups <= max_wakeups);
    assert_true(thr <= thr_bound);
    assert_true(proc <= proc_bound);
}

/* ---- fd mode ---- */

static void test_fd_mode(void **state)
{
    struct hjob *jobs = sign_jobs(NJOBS);
    struct snapshot a, b;
    size_t i, paused = 0, at_once = 0;
    uint64_t offloaded, inl;

    (void)state;
    memset(&h_wait, 0, sizeof(h_wait));
    snap(&a);
    /*
     * All 1,000 started at once: the queue takes 4, the rest run inline.
     * (A job whose wait ctx is new still pauses once, its fd readable at
     * once, so that the application learns of the fd.)
     */
    for (i = 0; i < NJOBS; i++) {
        int r = hjob_step(&jobs[i]);

        assert_true(r == ASYNC_PAUSE || r == ASYNC_FINISH);
        paused += r == ASYNC_PAUSE;
        at_once += r == ASYNC_FINISH;
    }
    assert_true(h_run_fd_loop(jobs, NJOBS, TIMEOUT_MS, NULL, NULL));
    snap(&b);
    for (i = 0; i < NJOBS; i++) {
        check_job(&jobs[i]);
        if (jobs[i].pauses > 0)
            assert_false(h_fd_readable(jobs[i].fd, 0));
    }
    offloaded = b.offloaded - a.offloaded;
    inl = b.inl - a.inl;
    print_message("fd mode: %zu jobs paused, %zu finished at once; queue-full +%llu, "
                  "inline +%llu, offloaded +%llu\n",
                  paused, at_once, (unsigned long long)(b.full - a.full),
                  (unsigned long long)inl, (unsigned long long)offloaded);
    /* Refused by the full queue, run inline: accounted for, none lost. */
    assert_true(offloaded > 0);
    assert_true(inl > 0);
    assert_int_equal(offloaded + inl, NJOBS);
    assert_true(b.full - a.full >= inl);
    assert_true(paused >= offloaded); /* each offloaded one paused */
    assert_true(h_wait_until(nothing_in_flight, NULL, TIMEOUT_MS));
    assert_int_equal(counter(C_COMPLETED) - a.completed, offloaded);
    check_cpu("fd mode", &a, &b, NJOBS, inl, h_wait.cpu_ns, h_wait.wall_ns, h_wait.calls,
              paused + 1);
    sign_jobs_free(jobs, NJOBS);
}

/* ---- callback mode ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t ring[4 * NJOBS];
    size_t head, count;
    unsigned overflow;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* Per job, kept by the loop. */
struct cbjob {
    size_t index;
    unsigned eagain; /* pauses with ASYNC_STATUS_EAGAIN */
    unsigned ok;     /* pauses with ASYNC_STATUS_OK: each owed one callback */
    unsigned calls;  /* callbacks received */
    uint64_t due_ns; /* retry time while in the retry list */
};

static int wake_cb(void *arg)
{
    struct cbjob *c = arg;

    pthread_mutex_lock(&Q.lock);
    if (Q.count == sizeof(Q.ring) / sizeof(Q.ring[0]))
        Q.overflow++;
    else
        Q.ring[(Q.head + Q.count++) % (sizeof(Q.ring) / sizeof(Q.ring[0]))] = c->index;
    pthread_cond_signal(&Q.cond);
    pthread_mutex_unlock(&Q.lock);
    return 1;
}

/* Pops a woken job; -1 when none. */
static long pop_woken(void)
{
    long idx = -1;

    pthread_mutex_lock(&Q.lock);
    if (Q.count > 0) {
        idx = (long)Q.ring[Q.head];
        Q.head = (Q.head + 1) % (sizeof(Q.ring) / sizeof(Q.ring[0]));
        Q.count--;
    }
    pthread_mutex_unlock(&Q.lock);
    return idx;
}

static struct {
    uint64_t cpu_ns, wall_ns, waits;
    uint64_t process_cpu_ns; /* the whole process's CPU while this thread waited */
    uint64_t work_ns;        /* CPU of the signatures in flight when each wait began */
} CW;

/* Sleeps until a callback comes or |deadline_ns| (CLOCK_REALTIME) passes; measured. */
static void wait_woken(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                          .tv_nsec = (long)(deadline_ns % 1000000000u)};
    uint64_t c0 = h_clock_ns(CLOCK_THREAD_CPUTIME_ID), w0 = h_clock_ns(CLOCK_MONOTONIC);
    uint64_t p0 = h_process_cpu_ns();

    /* This thread is the only submitter: nothing more can be queued while it waits. */
    CW.work_ns += counter(OFFLOAD_PARAM_IN_FLIGHT) * S.sign_cpu_ns;
    pthread_mutex_lock(&Q.lock);
    if (Q.count == 0)
        pthread_cond_timedwait(&Q.cond, &Q.lock, &ts);
    pthread_mutex_unlock(&Q.lock);
    CW.cpu_ns += h_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    CW.wall_ns += h_clock_ns(CLOCK_MONOTONIC) - w0;
    CW.process_cpu_ns += h_process_cpu_ns() - p0;
    CW.waits++;
}

/* Runs |j| one step and files it: retry list, waiting for a callback, or done. */
static void cb_step(struct hjob *j, struct cbjob *c, size_t *retry, size_t *nretry,
                    size_t *waiting, size_t *done)
{
    int r = hjob_step(j);

    if (r == ASYNC_FINISH) {
        (*done)++;
        return;
    }
    assert_int_equal(r, ASYNC_PAUSE);
    switch (ASYNC_WAIT_CTX_get_status(j->wctx)) {
    case ASYNC_STATUS_EAGAIN:
        /* Refused by the full queue: no callback will come; retry later. */
        c->eagain++;
        c->due_ns = h_clock_ns(CLOCK_MONOTONIC) + RETRY_MS * 1000000u;
        retry[(*nretry)++] = c->index;
        break;
    case ASYNC_STATUS_OK:
        c->ok++;
        (*waiting)++;
        break;
    default:
        fail_msg("job %zu paused with status %d", c->index,
                 ASYNC_WAIT_CTX_get_status(j->wctx));
    }
}

static void test_cb_mode(void **state)
{
    struct hjob *jobs = sign_jobs(NJOBS);
    struct cbjob *cb = calloc(NJOBS, sizeof(*cb));
    size_t *retry = calloc(NJOBS, sizeof(*retry));
    size_t i, nretry = 0, waiting = 0, done = 0;
    unsigned eagain = 0, ok = 0, calls = 0, twice = 0;
    struct snapshot a, b;
    uint64_t last_progress;

    (void)state;
    assert_non_null(cb);
    assert_non_null(retry);
    memset(&CW, 0, sizeof(CW));
    for (i = 0; i < NJOBS; i++) {
        cb[i].index = i;
        assert_int_equal(ASYNC_WAIT_CTX_set_callback(jobs[i].wctx, wake_cb, &cb[i]), 1);
    }
    snap(&a);
    for (i = 0; i < NJOBS; i++)
        cb_step(&jobs[i], &cb[i], retry, &nretry, &waiting, &done);
    /*
     * The retry timer of the burst's refusals starts when the burst is
     * over (a loop arms its timers once per pass), so that the loop then
     * really waits, however long starting 1,000 jobs took.
     */
    last_progress = h_clock_ns(CLOCK_MONOTONIC);
    for (i = 0; i < nretry; i++)
        cb[retry[i]].due_ns = last_progress + RETRY_MS * 1000000u;
    while (done < NJOBS) {
        uint64_t now = h_clock_ns(CLOCK_MONOTONIC), next = now + 1000000000u;
        size_t k, keep = 0;
        long idx;
        int progress = 0;

        /* Callbacks: each resumes the job it names, which must be waiting for it. */
        while ((idx = pop_woken()) >= 0) {
            assert_true(idx < NJOBS);
            cb[idx].calls++;
            assert_true(cb[idx].calls <= cb[idx].ok);
            assert_false(jobs[idx].done);
            waiting--;
            cb_step(&jobs[idx], &cb[idx], retry, &nretry, &waiting, &done);
            progress = 1;
        }
        /* Due retries. */
        for (k = 0; k < nretry; k++) {
            size_t j = retry[k];

            if (cb[j].due_ns <= now) {
                size_t before = nretry;

                cb_step(&jobs[j], &cb[j], retry, &nretry, &waiting, &done);
                /* A second EAGAIN for the same job would be a retry loop. */
                if (nretry > before)
                    twice++;
                progress = 1;
            } else {
                retry[keep++] = j;
                if (cb[j].due_ns < next)
                    next = cb[j].due_ns;
            }
        }
        /* Retries filed during this pass were appended after |keep|: move them down. */
        for (; k < nretry; k++)
            retry[keep++] = retry[k];
        nretry = keep;
        if (progress) {
            last_progress = now;
            continue;
        }
        if (now - last_progress > (uint64_t)TIMEOUT_MS * 1000000u)
            fail_msg(
                "no progress for %d ms: %zu done, %zu waiting for a callback, %zu to "
                "retry",
                TIMEOUT_MS, done, waiting, nretry);
        if (done < NJOBS)
            wait_woken(h_clock_ns(CLOCK_REALTIME) + (next - now));
    }
    snap(&b);
    assert_int_equal(twice, 0);
    assert_true(h_wait_until(nothing_in_flight, NULL, TIMEOUT_MS));
    h_sleep_ms(20);
    /* None late, none extra. */
    assert_int_equal(pop_woken(), -1);
    assert_int_equal(Q.overflow, 0);
    for (i = 0; i < NJOBS; i++) {
        check_job(&jobs[i]);
        assert_true(cb[i].eagain <= 1); /* EAGAIN once, then inline or queued */
        assert_int_equal(cb[i].calls, cb[i].ok);
        eagain += cb[i].eagain;
        ok += cb[i].ok;
        calls += cb[i].calls;
    }
    print_message(
        "callback mode: %u EAGAIN pauses, %u OK pauses, %u callbacks; queue-full "
        "+%llu, inline +%llu, offloaded +%llu, completed +%llu\n",
        eagain, ok, calls, (unsigned long long)(b.full - a.full),
        (unsigned long long)(b.inl - a.inl),
        (unsigned long long)(b.offloaded - a.offloaded),
        (unsigned long long)(counter(C_COMPLETED) - a.completed));
    assert_true(eagain > 0);
    assert_true(ok > 0);
    assert_int_equal(b.offloaded - a.offloaded, ok);
    assert_int_equal(counter(C_COMPLETED) - a.completed, ok);
    /* Each EAGAIN is one refusal; a retry refused again is one more and runs inline. */
    assert_true(b.full - a.full >= eagain);
    assert_int_equal(b.inl - a.inl, NJOBS - ok);
    /* A wait ends with a callback, or a retry coming due (RETRY_MS after its EAGAIN). */
    check_cpu("callback mode", &a, &b, NJOBS, NJOBS - ok, CW.cpu_ns, CW.wall_ns, CW.waits,
              calls + eagain + 1);
    /*
     * While the loop waited, the workers finished the signatures already
     * queued or running (at most queue_depth + workers) and then slept: the
     * process spent no more CPU than that work, the workers' spins and a
     * little slack. A wait ended by a callback may begin with the queue
     * full, so the work is counted per wait (not from the wall time: one
     * newcomer run waited 58 ms in 11 waits, the workers busy throughout).
     */
    print_message(
        "callback mode: process CPU while the loop waited: %.1f ms in %.1f ms; the "
        "signatures in flight at the waits' starts: %.1f ms of CPU\n",
        CW.process_cpu_ns / 1e6, CW.wall_ns / 1e6, CW.work_ns / 1e6);
    /* It did wait for its timer (under a sanitizer, callbacks may keep it busy that
     * long). */
    if (!H_UNDER_SANITIZER)
        assert_true(CW.wall_ns >= RETRY_MS * 1000000u / 2);
    assert_true((double)CW.process_cpu_ns <=
                (H_UNDER_SANITIZER ? 3.0 : 1.5) * (double)CW.work_ns +
                    (double)CW.waits * WORKERS * SPIN_US * 1000.0 + 20e6);
    free(cb);
    free(retry);
    sign_jobs_free(jobs, NJOBS);
}

/* ---- fork() while a job waits on its pre-signalled pause ---- */

/*
 * A new wait ctx whose first request the full queue refused: the request
 * ran inline and the job paused once anyway, its eventfd already holding
 * the token, so that the application learns of the fd. If the process
 * forks then and the child resumes that (inherited) job, the child must
 * not consume the token: the eventfd is shared with the parent, whose own
 * copy of the job still waits for it.
 */
static void test_fork_presignalled(void **state)
{
    struct hjob *jobs;
    uint64_t full0;
    size_t i, k = 64;
    pid_t pid;
    int status;

    (void)state;
    jobs = sign_jobs(64);
    /* Start jobs until one of them is refused by the full queue. */
    for (i = 0; i < 64 && k == 64; i++) {
        full0 = counter(C_FULL);
        assert_int_equal(hjob_step(&jobs[i]), ASYNC_PAUSE);
        if (counter(C_FULL) > full0 && h_fd_readable(jobs[i].fd, 0))
            k = i;
    }
    assert_true(k < 64);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child resumes its copy of job k: the result is there already. */
        alarm(10);
        _exit(hjob_step(&jobs[k]) == ASYNC_FINISH && jobs[k].ret == 1 ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The parent's token is still there for the parent's job. */
    if (!h_fd_readable(jobs[k].fd, 1000))
        fail_msg("job %zu: the child consumed the token of the parent's eventfd", k);
    assert_true(h_run_fd_loop(jobs, i, TIMEOUT_MS, NULL, NULL));
    while (i-- > 0)
        check_job(&jobs[i]);
    assert_true(h_wait_until(nothing_in_flight, NULL, TIMEOUT_MS));
    sign_jobs_free(jobs, 64);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    OSSL_PROVIDER *defprov = NULL;
    OSSL_LIB_CTX *def = test_ref_open(&defprov);
    EVP_PKEY_CTX *kctx = NULL, *ictx = NULL;
    EVP_PKEY *defkey = NULL;
    OSSL_PARAM *params = NULL;
    unsigned int mdlen = sizeof(S.md);
    struct op *op = calloc(1, sizeof(*op));
    uint64_t c0;
    char conf[128];
    int ok, i;

    (void)state;
    if (op == NULL || !ASYNC_init_thread(NJOBS + 64, 0))
        return -1;
    snprintf(conf, sizeof(conf), "queue_depth = 4\nworkers = %d\nspin_us = %d\n", WORKERS,
             SPIN_US);
    if (!test_env_open(&S.env, conf))
        return -1;
    /* A key pair from the default provider, its reference signature, then ours. */
    kctx = EVP_PKEY_CTX_new_from_name(def, "RSA", NULL);
    ok = defprov != NULL && kctx != NULL && EVP_PKEY_keygen_init(kctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 4096) > 0 &&
         EVP_PKEY_generate(kctx, &defkey) > 0 &&
         EVP_PKEY_todata(defkey, EVP_PKEY_KEYPAIR, &params) > 0 &&
         EVP_Digest(msg, sizeof(msg) - 1, S.md, &mdlen, EVP_sha256(), NULL) > 0;
    S.reflen = sizeof(S.ref);
    ok = ok && test_sha256_sign(def, defkey, NULL, S.md, S.ref, &S.reflen);
    ictx = ok ? EVP_PKEY_CTX_new_from_name(S.env.libctx, "RSA", PROPQ) : NULL;
    ok = ok && ictx != NULL && EVP_PKEY_fromdata_init(ictx) > 0 &&
         EVP_PKEY_fromdata(ictx, &S.key, EVP_PKEY_KEYPAIR, params) > 0 &&
         test_pkey_in(S.key, OFFLOAD_PROVIDER_NAME);
    /* The CPU of one signature on this thread (outside a job: inline). */
    for (i = 0; ok && i < 3; i++)
        ok = sign_md(op); /* warm-up */
    c0 = h_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (i = 0; ok && i < 20; i++)
        ok = sign_md(op) && op->siglen == S.reflen &&
             memcmp(op->sig, S.ref, S.reflen) == 0;
    S.sign_cpu_ns = (h_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 20;
    if (!ok)
        test_dump_errors("group setup");
    else
        print_message("one RSA-4096 signature: %.3f ms of CPU\n", S.sign_cpu_ns / 1e6);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_CTX_free(ictx);
    EVP_PKEY_free(defkey);
    test_ref_close(def, defprov);
    free(op);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(S.key);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_mode),
        cmocka_unit_test(test_cb_mode),
        cmocka_unit_test(test_fork_presignalled),
    };

    if (getenv("OFFLOAD_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("OFFLOAD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the accelerator: requests run on the workers, a full
 * queue, the busy_inline rule with the worker held at a gate, take-back,
 * a release from a worker, errors captured on the worker and replayed on
 * the caller's thread; the sleepers workers wait on (no wake-up lost or
 * wasted). Run functions execute on worker threads: they only
 * record what they saw; every assertion runs on the main thread.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/err.h>

#include "accel/sleepers.h"
#include "harness.h"
#include "unit_util.h"

/* ---- the accelerator ---- */

static void test_accel_runs_on_workers(void **state)
{
    struct offload_req *req[6];
    int i, nthreads0;

    (void)state;
    /* First test of its program: TSan's own thread must exist before the baseline. */
    h_settle_threads();
    nthreads0 = h_count_threads();
    for (i = 0; i < 6; i++) {
        req[i] = tjob_new(100 + i, 0);
        assert_non_null(req[i]);
        assert_int_equal(offload_accel_submit(req[i]), 1);
    }
    assert_int_equal(offload_accel_workers(), 2);
    assert_int_equal(h_count_threads(), nthreads0 + 2);
    for (i = 0; i < 6; i++) {
        offload_req_wait(req[i]);
        assert_true(offload_req_done(req[i]));
        assert_int_equal(req_state(req[i]), REQ_DONE);
        assert_int_equal(req[i]->result, 100 + i);
        assert_int_equal(atomic_load(&tj(req[i])->ran), 1);
        assert_false(pthread_equal(tj(req[i])->tid, pthread_self()));
        assert_int_equal(req[i]->nerrs, 0);
    }
    assert_int_equal(offload_accel_in_flight(), 0);
    for (i = 0; i < 6; i++) {
        assert_true(wait_refs(req[i], 1));
        offload_req_put(req[i]);
    }
    assert_int_equal(atomic_load(&released), 6);
    /* Waiting on a request already done returns at once. */
    req[0] = tjob_new(7, 0);
    assert_int_equal(offload_accel_submit(req[0]), 1);
    offload_req_wait(req[0]);
    offload_req_wait(req[0]);
    assert_int_equal(req[0]->result, 7);
    assert_true(wait_refs(req[0], 1));
    offload_req_put(req[0]);
}

static void test_accel_queue_full(void **state)
{
    struct offload_req *blocker, *r[3];
    uint64_t full0 = stat_of(OFFLOAD_ST_QUEUE_FULL);
    int i;

    (void)state;
    /* One worker, held at the gate: the queue (depth 2) sees only what we push. */
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));
    assert_int_equal(req_state(blocker), REQ_RUNNING);
    for (i = 0; i < 3; i++)
        r[i] = tjob_new(10 + i, 0);
    assert_int_equal(offload_accel_submit(r[0]), 1);
    assert_int_equal(offload_accel_submit(r[1]), 1);
    assert_int_equal(offload_accel_submit(r[2]), 0);
    assert_int_equal(stat_of(OFFLOAD_ST_QUEUE_FULL), full0 + 1);
    assert_int_equal(offload_accel_submit(r[2]), 0);
    assert_int_equal(stat_of(OFFLOAD_ST_QUEUE_FULL), full0 + 2);
    /* Refused: untouched, no reference taken for a worker. */
    assert_int_equal(req_state(r[2]), REQ_NEW);
    assert_int_equal(atomic_load(&r[2]->refs), 1);
    assert_int_equal(offload_accel_in_flight(), 3);
    assert_true(offload_accel_high_water() >= 2);

    gate_open();
    offload_req_wait(blocker);
    offload_req_wait(r[0]);
    offload_req_wait(r[1]);
    assert_int_equal(r[0]->result, 10);
    assert_int_equal(r[1]->result, 11);
    assert_int_equal(atomic_load(&tj(r[2])->ran), 0);
    /* Room again: the refused request goes through now. */
    assert_int_equal(offload_accel_submit(r[2]), 1);
    offload_req_wait(r[2]);
    assert_int_equal(r[2]->result, 12);
    assert_int_equal(stat_of(OFFLOAD_ST_QUEUE_FULL), full0 + 2);
    assert_true(wait_refs(blocker, 1));
    offload_req_put(blocker);
    for (i = 0; i < 3; i++) {
        assert_true(wait_refs(r[i], 1));
        offload_req_put(r[i]);
    }
}

/* ---- the offload policy: busy_inline ---- */

/* In a job: may a cheap operation, then an expensive one, be offloaded? */
static int ask_policy(void *arg)
{
    int *wanted = *(int **)arg;

    wanted[0] = offload_async_wanted(FAM, 1);
    wanted[1] = offload_async_wanted(FAM, 0);
    return 1;
}

static void policy_in_job(int *wanted)
{
    ASYNC_WAIT_CTX *wctx = ASYNC_WAIT_CTX_new();
    ASYNC_JOB *job = NULL;
    int ret = 0;

    assert_non_null(wctx);
    wanted[0] = wanted[1] = -1;
    assert_int_equal(ASYNC_start_job(&job, wctx, &ret, ask_policy, &wanted,
                                     sizeof(wanted)), /* the pointer */
                     ASYNC_FINISH);
    assert_int_equal(ret, 1);
    ASYNC_WAIT_CTX_free(wctx);
}

static void test_policy_busy_inline(void **state)
{
    struct offload_req *blocker, *queued;
    int wanted[2];

    (void)state;
    /* One worker: the mark is one queued request. */
    offload_async_configure((1u << OFFLOAD_FAM_COUNT) - 1, 1, 1, 0);
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));
    /* Running, nothing queued: both go to the worker (another job waits on it). */
    policy_in_job(wanted);
    assert_int_equal(wanted[0], 1);
    assert_int_equal(wanted[1], 1);
    /* One queued: at the mark, the cheap one stays on this thread. */
    queued = tjob_new(2, 0);
    assert_int_equal(offload_accel_submit(queued), 1);
    assert_int_equal(offload_accel_queued(), 1);
    policy_in_job(wanted);
    assert_int_equal(wanted[0], 0);
    assert_int_equal(wanted[1], 1);
    /* busy_inline = 0: never. */
    offload_async_configure((1u << OFFLOAD_FAM_COUNT) - 1, 0, 1, 0);
    policy_in_job(wanted);
    assert_int_equal(wanted[0], 1);
    assert_int_equal(wanted[1], 1);

    gate_open();
    offload_req_wait(blocker);
    offload_req_wait(queued);
    assert_true(wait_refs(blocker, 1));
    assert_true(wait_refs(queued, 1));
    offload_req_put(blocker);
    offload_req_put(queued);
}

static void test_accel_take_back(void **state)
{
    struct offload_req *blocker, *a, *b, *c;

    (void)state;
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));
    a = tjob_new(2, 0);
    b = tjob_new(3, 0);
    c = tjob_new(4, 0);
    assert_int_equal(offload_accel_submit(a), 1);
    assert_int_equal(offload_accel_submit(b), 1);
    assert_int_equal(offload_accel_submit(c), 1);
    assert_int_equal(offload_accel_in_flight(), 4);
    assert_int_equal(atomic_load(&b->refs), 2);

    /* A running request cannot be taken back; a queued one can, once. */
    assert_int_equal(offload_accel_take_back(blocker), 0);
    assert_int_equal(offload_accel_take_back(b), 1);
    assert_int_equal(req_state(b), REQ_TAKEN);
    assert_int_equal(atomic_load(&b->refs), 1); /* the worker's reference went */
    assert_int_equal(offload_accel_in_flight(), 3);
    assert_int_equal(offload_accel_take_back(b), 0);

    gate_open();
    offload_req_wait(blocker);
    offload_req_wait(a);
    offload_req_wait(c);
    assert_int_equal(a->result, 2);
    assert_int_equal(c->result, 4);
    /* One worker: FIFO order of the survivors, b never ran. */
    assert_true(atomic_load(&tj(blocker)->seq) < atomic_load(&tj(a)->seq));
    assert_true(atomic_load(&tj(a)->seq) < atomic_load(&tj(c)->seq));
    assert_int_equal(atomic_load(&tj(b)->ran), 0);
    assert_int_equal(req_state(b), REQ_TAKEN);
    /* Too late once done. */
    assert_int_equal(offload_accel_take_back(a), 0);
    assert_int_equal(offload_accel_in_flight(), 0);

    /* A taken-back request is the submitter's to run or free. */
    assert_int_equal(tjob_run(b), 3);
    atomic_store(&released, 0);
    offload_req_put(b);
    assert_int_equal(atomic_load(&released), 1);
    assert_true(wait_refs(blocker, 1));
    assert_true(wait_refs(a, 1));
    assert_true(wait_refs(c, 1));
    offload_req_put(blocker);
    offload_req_put(a);
    offload_req_put(c);
}

static void test_accel_release_from_worker(void **state)
{
    struct offload_req *blocker, *r;

    (void)state;
    /* The submitter lets go while queued: the worker frees it, exactly once. */
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));
    r = tjob_new(5, 0);
    assert_int_equal(offload_accel_submit(r), 1);
    offload_req_put(r);
    assert_int_equal(atomic_load(&released), 0);
    assert_int_equal(atomic_load(&r->refs), 1);
    gate_open();
    for (int ms = 0; ms < WAIT_LIMIT_MS && atomic_load(&released) < 1; ms++)
        h_sleep_ms(1);
    assert_int_equal(atomic_load(&released), 1);
    assert_false(pthread_equal(release_tid, pthread_self()));
    /* The blocker, still held here, is released here. */
    offload_req_wait(blocker);
    assert_true(wait_refs(blocker, 1));
    offload_req_put(blocker);
    assert_int_equal(atomic_load(&released), 2);
    assert_true(pthread_equal(release_tid, pthread_self()));
    h_sleep_ms(20);
    assert_int_equal(atomic_load(&released), 2);
}

static void test_accel_errors_replayed(void **state)
{
    struct offload_req *req, *clean;
    const char *file, *func, *data;
    int line, flags;
    unsigned long e;

    (void)state;
    ERR_clear_error();
    req = tjob_new(0, 0);
    tj(req)->nerrs = 3;
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_int_equal(req->result, 0);
    assert_int_equal(req->nerrs, 3);
    /* Nothing leaked into this thread's queue before the replay. */
    assert_int_equal(ERR_peek_error(), 0);
    offload_req_raise_errors(req);

    e = ERR_get_error_all(&file, &line, &func, &data, &flags);
    assert_int_equal(ERR_GET_LIB(e), ERR_LIB_USER);
    assert_int_equal(ERR_GET_REASON(e), 100);
    assert_true(flags & ERR_TXT_STRING);
    assert_string_equal(data, "error 0 from the worker");
    assert_string_equal(func, "tjob_run");
    assert_non_null(strstr(file, "unit_util.c")); /* where tjob_run raised it */

    e = ERR_get_error_all(&file, &line, &func, &data, &flags);
    assert_int_equal(ERR_GET_LIB(e), ERR_LIB_USER);
    assert_int_equal(ERR_GET_REASON(e), 101);
    assert_string_equal(file, "worker_file.c");
    assert_int_equal(line, 4242);
    assert_string_equal(func, "worker_func");
    assert_false(flags & ERR_TXT_STRING);

    e = ERR_get_error_all(&file, &line, &func, &data, &flags);
    assert_int_equal(ERR_GET_REASON(e), 102);
    assert_string_equal(data, "error 2 from the worker");
    assert_int_equal(ERR_get_error(), 0);

    /* More than fit: capped, the rest dropped, nothing left on the worker. */
    clean = tjob_new(1, 0);
    tj(clean)->nerrs = OFFLOAD_REQ_MAX_ERRS + 3;
    assert_int_equal(offload_accel_submit(clean), 1);
    offload_req_wait(clean);
    assert_int_equal(clean->nerrs, OFFLOAD_REQ_MAX_ERRS);
    offload_req_raise_errors(clean);
    for (int i = 0; i < OFFLOAD_REQ_MAX_ERRS; i++)
        assert_int_equal(ERR_GET_LIB(ERR_get_error()), ERR_LIB_USER);
    assert_int_equal(ERR_get_error(), 0);
    assert_true(wait_refs(clean, 1));
    offload_req_put(clean);

    /* The same (only) worker starts the next request with a clean queue. */
    clean = tjob_new(1, 0);
    assert_int_equal(offload_accel_submit(clean), 1);
    offload_req_wait(clean);
    assert_int_equal(clean->nerrs, 0);
    offload_req_raise_errors(clean);
    assert_int_equal(ERR_peek_error(), 0);

    assert_true(wait_refs(req, 1));
    assert_true(wait_refs(clean, 1));
    offload_req_put(req);
    offload_req_put(clean);
}

/* ---- sleepers (accel/sleepers.h) ---- */

#define SLEEPERS_THREADS 3
#define SLEEPERS_TOKENS  20000

static struct {
    pthread_mutex_t lock;
    struct offload_sleepers s;
    unsigned tokens, taken;
    int exit;
} SL = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *sleeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&SL.lock);
    while (!SL.exit) {
        if (SL.tokens > 0) {
            SL.tokens--;
            SL.taken++;
        } else {
            offload_sleepers_wait(&SL.s, &SL.lock);
        }
    }
    pthread_mutex_unlock(&SL.lock);
    return NULL;
}

static unsigned sleepers_asleep(void)
{
    unsigned n;

    pthread_mutex_lock(&SL.lock);
    n = SL.s.asleep;
    pthread_mutex_unlock(&SL.lock);
    return n;
}

static void test_sleepers(void **state)
{
    pthread_t t[SLEEPERS_THREADS];
    unsigned i, n, taken = 0;
    struct timespec pause = {0, 1000000};

    (void)state;
    offload_sleepers_init(&SL.s);
    for (i = 0; i < SLEEPERS_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sleeper_main, NULL), 0);
    for (i = 0; i < 5000 && sleepers_asleep() < SLEEPERS_THREADS; i++)
        nanosleep(&pause, NULL);

    /* A claim reaches only threads no earlier claim reached. */
    pthread_mutex_lock(&SL.lock);
    assert_int_equal(SL.s.asleep, SLEEPERS_THREADS);
    assert_int_equal(offload_sleepers_woken(&SL.s), 0);
    assert_int_equal(offload_sleepers_claim(&SL.s, 2), 2);
    assert_int_equal(offload_sleepers_woken(&SL.s), 2);
    assert_int_equal(offload_sleepers_claim(&SL.s, 5), SLEEPERS_THREADS - 2);
    assert_int_equal(offload_sleepers_claim(&SL.s, 1), 0);
    pthread_mutex_unlock(&SL.lock);
    offload_sleepers_post(&SL.s, SLEEPERS_THREADS);

    /* One token, at most one wake-up: every token is taken, none waits forever. */
    for (i = 0; i < SLEEPERS_TOKENS; i++) {
        pthread_mutex_lock(&SL.lock);
        SL.tokens++;
        n = SL.tokens > offload_sleepers_woken(&SL.s) ? offload_sleepers_claim(&SL.s, 1)
                                                      : 0;
        pthread_mutex_unlock(&SL.lock);
        offload_sleepers_post(&SL.s, n);
    }
    for (i = 0; i < 10000 && taken < SLEEPERS_TOKENS; i++) {
        pthread_mutex_lock(&SL.lock);
        taken = SL.taken;
        pthread_mutex_unlock(&SL.lock);
        if (taken < SLEEPERS_TOKENS)
            nanosleep(&pause, NULL);
    }
    assert_int_equal(taken, SLEEPERS_TOKENS);

    pthread_mutex_lock(&SL.lock);
    SL.exit = 1;
    offload_sleepers_wake_all(&SL.s);
    assert_true(offload_sleepers_woken(&SL.s) <= SLEEPERS_THREADS);
    pthread_mutex_unlock(&SL.lock);
    for (i = 0; i < SLEEPERS_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(SL.s.asleep, 0);
    assert_int_equal(SL.s.woken, 0);
    assert_int_equal(SL.tokens, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accel_runs_on_workers, setup_w2,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_accel_queue_full, setup_w1_d2,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_policy_busy_inline, setup_w1,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_accel_take_back, setup_w1, teardown_accel),
        cmocka_unit_test_setup_teardown(test_accel_release_from_worker, setup_w1,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_accel_errors_replayed, setup_w1,
                                        teardown_accel),
        cmocka_unit_test(test_sleepers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

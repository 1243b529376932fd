/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the provider's internals, linked against the static
 * library offload_internal: the bounded queue, request lifetime, the
 * accelerator (workers, submit, take back, queue full, error capture)
 * and the wake targets (eventfd tokens, callbacks, refcounted fds).
 *
 * No provider is loaded: every test sets offload_conf itself and takes
 * its own reference on the accelerator (setup/teardown), so a failed
 * test leaves neither users nor blocked workers behind.
 *
 * Run functions and callbacks execute on worker threads: they only
 * record what they saw; every assertion runs on the main thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "accel/accel.h"
#include "accel/wake.h"
#include "async.h"
#include "prov.h"

#define FAM           OFFLOAD_FAM_SIGNATURE
#define WAIT_LIMIT_MS 10000

/* ---- helpers ---- */

static void set_conf(unsigned workers, unsigned depth)
{
    offload_conf.workers = workers;
    offload_conf.queue_depth = depth;
    offload_conf.inline_below = 0;
    offload_conf.spin_us = 50;
    offload_conf.busy_inline = 0;
    offload_conf.families = (1u << OFFLOAD_FAM_COUNT) - 1;
    offload_conf.debug = 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Threads of this process, from /proc/self/task. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* poll(2) of one fd for POLLIN; 1 readable, 0 not, -1 error. */
static int fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -1;
    return r > 0 && (p.revents & POLLIN) != 0;
}

/*
 * A gate a run function blocks on until the test opens it: lets a test
 * hold the single worker busy while it looks at the queue.
 */
static struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started; /* run functions that reached the gate */
    int open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void gate_reset(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.started = 0;
    gate.open = 0;
    pthread_mutex_unlock(&gate.lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

/* Worker side. */
static void gate_pass(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.started++;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.open)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
}

/* Main side: 1 once |n| run functions wait at the gate, 0 after WAIT_LIMIT_MS. */
static int gate_wait_started(int n)
{
    struct timespec dl;
    int ok = 1;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_LIMIT_MS / 1000;
    pthread_mutex_lock(&gate.lock);
    while (gate.started < n && ok)
        ok = pthread_cond_timedwait(&gate.cond, &gate.lock, &dl) == 0;
    ok = gate.started >= n;
    pthread_mutex_unlock(&gate.lock);
    return ok;
}

/* The payload of a test request. */
struct tjob {
    int ret;      /* what the run function returns */
    int blocking; /* waits at the gate */
    int nerrs;    /* errors to raise on the worker */
    _Atomic int ran;
    _Atomic int seq; /* order of execution, from run_seq */
    pthread_t tid;   /* the thread that ran it */
};

static _Atomic int run_seq;
static _Atomic int released;
static pthread_t release_tid;

static int tjob_run(struct offload_req *req)
{
    struct tjob *j = (struct tjob *)req->payload;
    int i;

    j->tid = pthread_self();
    atomic_store(&j->seq, atomic_fetch_add(&run_seq, 1) + 1);
    if (j->blocking)
        gate_pass();
    for (i = 0; i < j->nerrs; i++) {
        if (i == 1) {
            /* The long way round, with debug info of our own. */
            ERR_new();
            ERR_set_debug("worker_file.c", 4242, "worker_func");
            ERR_set_error(ERR_LIB_USER, 101, NULL);
        } else {
            ERR_raise_data(ERR_LIB_USER, 100 + i, "error %d from the worker", i);
        }
    }
    atomic_fetch_add(&j->ran, 1);
    return j->ret;
}

static void tjob_release(struct offload_req *req)
{
    (void)req;
    release_tid = pthread_self();
    atomic_fetch_add(&released, 1);
}

static struct offload_req *tjob_new(int ret, int blocking)
{
    struct offload_req *req =
        offload_req_new(tjob_run, tjob_release, FAM, sizeof(struct tjob));

    if (req != NULL) {
        struct tjob *j = (struct tjob *)req->payload;

        j->ret = ret;
        j->blocking = blocking;
        atomic_init(&j->ran, 0);
        atomic_init(&j->seq, 0);
    }
    return req;
}

static struct tjob *tj(struct offload_req *req)
{
    return (struct tjob *)req->payload;
}

static uint32_t req_state(struct offload_req *req)
{
    return atomic_load(&req->state) & REQ_STATE_MASK;
}

/*
 * Waits until only |n| references remain on |req|: the worker dropped its
 * own, so everything it does after completing (token, callback) is done.
 */
static int wait_refs(struct offload_req *req, uint32_t n)
{
    int ms;

    for (ms = 0; ms < WAIT_LIMIT_MS; ms++) {
        if (atomic_load(&req->refs) == n)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

/* Waits until a worker has run |req| (executed, maybe not yet signalled). */
static int wait_ran(struct offload_req *req)
{
    int ms;

    for (ms = 0; ms < WAIT_LIMIT_MS; ms++) {
        if (atomic_load(&tj(req)->ran) > 0)
            return 1;
        sleep_ms(1);
    }
    return 0;
}

static uint64_t stat_of(enum offload_stat s)
{
    return atomic_load(&offload_stats[FAM].v[s]);
}

/* ---- fixtures: each accelerator test holds one reference on it ---- */

static int setup_accel(unsigned workers, unsigned depth)
{
    set_conf(workers, depth);
    gate_reset();
    atomic_store(&released, 0);
    return offload_accel_acquire() ? 0 : -1;
}

static int setup_w2(void **state)
{
    (void)state;
    return setup_accel(2, 8);
}

static int setup_w1(void **state)
{
    (void)state;
    return setup_accel(1, 8);
}

static int setup_w1_d2(void **state)
{
    (void)state;
    return setup_accel(1, 2);
}

static int teardown_accel(void **state)
{
    (void)state;
    gate_open(); /* never leave a worker blocked, even after a failure */
    offload_accel_release();
    return 0;
}

/* ---- the bounded queue ---- */

#define NQ 8
static struct offload_req *qreq[NQ];

static int setup_qreqs(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < NQ; i++)
        if ((qreq[i] = offload_req_new(NULL, NULL, FAM, 0)) == NULL)
            return -1;
    return 0;
}

static int teardown_qreqs(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < NQ; i++) {
        offload_req_put(qreq[i]);
        qreq[i] = NULL;
    }
    return 0;
}

static void test_queue_fifo_and_full(void **state)
{
    struct offload_queue q;
    int i;

    (void)state;
    assert_int_equal(offload_queue_init(&q, 0), 0);
    assert_int_equal(offload_queue_init(&q, 4), 1);
    assert_null(offload_queue_pop(&q));
    assert_int_equal(q.high_water, 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(offload_queue_push(&q, qreq[i]), 1);
    assert_int_equal(offload_queue_push(&q, qreq[4]), 0);
    assert_int_equal(q.count, 4);
    assert_int_equal(q.high_water, 4);
    for (i = 0; i < 4; i++)
        assert_ptr_equal(offload_queue_pop(&q), qreq[i]);
    assert_null(offload_queue_pop(&q));
    assert_int_equal(q.count, 0);
    /* Room again once emptied. */
    assert_int_equal(offload_queue_push(&q, qreq[4]), 1);
    assert_ptr_equal(offload_queue_pop(&q), qreq[4]);
    assert_int_equal(q.high_water, 4);
    offload_queue_fini(&q);
}

static void test_queue_remove_keeps_order(void **state)
{
    struct offload_queue q;
    int i;

    (void)state;
    assert_int_equal(offload_queue_init(&q, 6), 1);
    for (i = 0; i < 5; i++)
        assert_int_equal(offload_queue_push(&q, qreq[i]), 1);
    /* Middle, then head, then tail; each exactly once. */
    assert_int_equal(offload_queue_remove(&q, qreq[2]), 1);
    assert_int_equal(offload_queue_remove(&q, qreq[2]), 0);
    assert_int_equal(offload_queue_remove(&q, qreq[7]), 0);
    assert_int_equal(q.count, 4);
    assert_int_equal(offload_queue_remove(&q, qreq[0]), 1);
    assert_int_equal(offload_queue_remove(&q, qreq[4]), 1);
    assert_int_equal(q.count, 2);
    /* A push after removals lands after the survivors. */
    assert_int_equal(offload_queue_push(&q, qreq[5]), 1);
    assert_ptr_equal(offload_queue_pop(&q), qreq[1]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[3]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[5]);
    assert_null(offload_queue_pop(&q));
    assert_int_equal(offload_queue_remove(&q, qreq[1]), 0);
    assert_int_equal(q.high_water, 5);
    offload_queue_fini(&q);
}

static void test_queue_wrap_around(void **state)
{
    struct offload_queue q;
    int i;

    (void)state;
    assert_int_equal(offload_queue_init(&q, 4), 1);
    for (i = 0; i < 3; i++)
        assert_int_equal(offload_queue_push(&q, qreq[i]), 1);
    assert_ptr_equal(offload_queue_pop(&q), qreq[0]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[1]);
    assert_int_equal(q.high_water, 3);
    /* [2] sits at slot 2; [3] at slot 3, then [4] and [5] wrap to 0 and 1. */
    for (i = 3; i < 6; i++)
        assert_int_equal(offload_queue_push(&q, qreq[i]), 1);
    assert_int_equal(offload_queue_push(&q, qreq[6]), 0);
    assert_int_equal(q.count, 4);
    assert_int_equal(q.high_water, 4);
    /* Remove across the seam: [3] is before it, [4] after. */
    assert_int_equal(offload_queue_remove(&q, qreq[4]), 1);
    assert_int_equal(offload_queue_remove(&q, qreq[3]), 1);
    assert_int_equal(offload_queue_push(&q, qreq[6]), 1);
    assert_int_equal(offload_queue_push(&q, qreq[7]), 1);
    assert_int_equal(offload_queue_push(&q, qreq[0]), 0);
    assert_ptr_equal(offload_queue_pop(&q), qreq[2]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[5]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[6]);
    assert_ptr_equal(offload_queue_pop(&q), qreq[7]);
    assert_null(offload_queue_pop(&q));
    assert_int_equal(q.high_water, 4);
    /* Many more laps than slots, always FIFO. */
    for (i = 0; i < 50; i++) {
        assert_int_equal(offload_queue_push(&q, qreq[i % NQ]), 1);
        assert_int_equal(offload_queue_push(&q, qreq[(i + 1) % NQ]), 1);
        assert_ptr_equal(offload_queue_pop(&q), qreq[i % NQ]);
        assert_ptr_equal(offload_queue_pop(&q), qreq[(i + 1) % NQ]);
    }
    assert_int_equal(q.count, 0);
    offload_queue_fini(&q);
}

/* ---- request lifetime ---- */

static void test_req_refcount(void **state)
{
    struct offload_req *req;

    (void)state;
    atomic_store(&released, 0);
    offload_req_put(NULL);
    req = tjob_new(1, 0);
    assert_non_null(req);
    assert_int_equal(atomic_load(&req->refs), 1);
    assert_int_equal(req_state(req), REQ_NEW);
    assert_int_equal(req->family, FAM);
    assert_null(req->waiter);
    offload_req_up(req);
    offload_req_up(req);
    offload_req_put(req);
    offload_req_put(req);
    assert_int_equal(atomic_load(&released), 0);
    offload_req_put(req);
    assert_int_equal(atomic_load(&released), 1);

    /* No release callback at all is fine too. */
    req = offload_req_new(tjob_run, NULL, FAM, 0);
    assert_non_null(req);
    offload_req_put(req);
    assert_int_equal(atomic_load(&released), 1);
}

static void *put_thread(void *arg)
{
    offload_req_put(arg);
    return NULL;
}

static void test_req_last_put_on_other_thread(void **state)
{
    struct offload_req *req;
    pthread_t t;

    (void)state;
    /* The other thread drops the last reference: released there, once. */
    atomic_store(&released, 0);
    req = tjob_new(1, 0);
    assert_non_null(req);
    assert_int_equal(pthread_create(&t, NULL, put_thread, req), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&released), 1);
    assert_true(pthread_equal(release_tid, t));

    /* The other thread drops the first one: released here, once. */
    atomic_store(&released, 0);
    req = tjob_new(1, 0);
    assert_non_null(req);
    offload_req_up(req);
    assert_int_equal(pthread_create(&t, NULL, put_thread, req), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&released), 0);
    offload_req_put(req);
    assert_int_equal(atomic_load(&released), 1);
    assert_true(pthread_equal(release_tid, pthread_self()));
}

/* ---- the accelerator ---- */

static void test_accel_runs_on_workers(void **state)
{
    struct offload_req *req[6];
    int i, nthreads0 = thread_count();

    (void)state;
    for (i = 0; i < 6; i++) {
        req[i] = tjob_new(100 + i, 0);
        assert_non_null(req[i]);
        assert_int_equal(offload_accel_submit(req[i]), 1);
    }
    assert_int_equal(offload_accel_workers(), 2);
    assert_int_equal(thread_count(), nthreads0 + 2);
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
    offload_conf.busy_inline = 1; /* one worker: the mark is one queued request */
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
    offload_conf.busy_inline = 0;
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
        sleep_ms(1);
    assert_int_equal(atomic_load(&released), 1);
    assert_false(pthread_equal(release_tid, pthread_self()));
    /* The blocker, still held here, is released here. */
    offload_req_wait(blocker);
    assert_true(wait_refs(blocker, 1));
    offload_req_put(blocker);
    assert_int_equal(atomic_load(&released), 2);
    assert_true(pthread_equal(release_tid, pthread_self()));
    sleep_ms(20);
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
    assert_non_null(strstr(file, "test_unit.c"));

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

/* ---- wake targets ---- */

struct cb_rec {
    _Atomic int calls;
    pthread_t tid;
};

static int record_cb(void *arg)
{
    struct cb_rec *r = arg;

    r->tid = pthread_self();
    atomic_fetch_add(&r->calls, 1);
    return 1;
}

/* A request that wakes |w| (holding a reference on it), or calls |cb| when set. */
static struct offload_req *wake_req(struct offload_waiter *w, ASYNC_callback_fn cb,
                                    void *cbarg, int blocking)
{
    struct offload_req *req = tjob_new(1, blocking);

    offload_waiter_up(w);
    req->waiter = w;
    req->cb = cb;
    req->cbmode = cb != NULL;
    req->cbarg = cbarg;
    return req;
}

/* What the wait ctx's cleanup does. */
static void ctx_gone(struct offload_waiter *w)
{
    offload_waiter_kill(w);
    offload_waiter_put(w);
}

static void test_wake_one_token(void **state)
{
    struct offload_waiter *w = offload_waiter_new();
    struct offload_req *req;
    uint64_t v = 0;
    int fd;

    (void)state;
    assert_non_null(w);
    fd = w->efd;
    assert_true(fd >= 0);
    assert_int_equal(atomic_load(&w->refs), 1);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fd_readable(fd, 0), 0);

    /* Exactly one token per completed request. */
    req = wake_req(w, NULL, NULL, 0);
    assert_int_equal(atomic_load(&w->refs), 2);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(fd_readable(fd, 0), 1);
    assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    assert_int_equal(v, 1);
    assert_int_equal(fd_readable(fd, 0), 0);
    offload_req_put(req);
    assert_int_equal(atomic_load(&w->refs), 1);

    /* offload_waiter_drain consumes it. */
    req = wake_req(w, NULL, NULL, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    assert_int_equal(fd_readable(fd, WAIT_LIMIT_MS), 1);
    offload_req_wait(req);
    offload_waiter_drain(w);
    assert_int_equal(fd_readable(fd, 0), 0);
    assert_true(wait_refs(req, 1));
    assert_int_equal(fd_readable(fd, 0), 0);
    offload_req_put(req);

    /* No waiter: nobody to wake, nothing written. */
    req = tjob_new(1, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(fd_readable(fd, 0), 0);
    offload_req_put(req);

    ctx_gone(w);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
}

static void test_wake_callback(void **state)
{
    struct offload_waiter *w = offload_waiter_new();
    struct cb_rec rec = {0};
    struct offload_req *req;
    int fd;

    (void)state;
    assert_non_null(w);
    fd = w->efd;
    req = wake_req(w, record_cb, &rec, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(atomic_load(&rec.calls), 1);
    assert_false(pthread_equal(rec.tid, pthread_self()));
    assert_true(pthread_equal(rec.tid, tj(req)->tid));
    /* Callback mode writes no token. */
    assert_int_equal(fd_readable(fd, 0), 0);
    offload_req_put(req);
    sleep_ms(10);
    assert_int_equal(atomic_load(&rec.calls), 1);
    ctx_gone(w);
}

/*
 * With another worker still running, a prompt completion (a cipher record,
 * whose job's next record waits on it) is signalled at once, not held for
 * a batch; a cheap one held meanwhile still arrives.
 */
static void test_wake_batch_and_prompt(void **state)
{
    struct offload_waiter *wa = offload_waiter_new(), *wb = offload_waiter_new();
    struct offload_req *blocker, *held, *prompt;
    uint64_t completed = stat_of(OFFLOAD_ST_COMPLETED);

    (void)state;
    assert_non_null(wa);
    assert_non_null(wb);
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));

    /* The second worker runs it, and its token arrives at once. */
    prompt = wake_req(wb, NULL, NULL, 0);
    prompt->cheap = 1;
    prompt->prompt = 1;
    assert_int_equal(offload_accel_submit(prompt), 1);
    assert_int_equal(fd_readable(wb->efd, WAIT_LIMIT_MS), 1);
    assert_int_equal(req_state(prompt), REQ_DONE);
    assert_int_equal(stat_of(OFFLOAD_ST_COMPLETED), completed + 1);

    /*
     * A cheap one is held: signalled when its age (100 us) is noticed or by
     * the last worker running, whichever comes first (under valgrind the
     * age runs out before the worker looks again, so only its arrival is
     * checked).
     */
    held = wake_req(wa, NULL, NULL, 0);
    held->cheap = 1;
    assert_int_equal(offload_accel_submit(held), 1);
    assert_true(wait_ran(held));
    gate_open();
    assert_int_equal(fd_readable(wa->efd, WAIT_LIMIT_MS), 1);
    offload_req_wait(blocker);
    assert_true(wait_refs(blocker, 1));
    assert_true(wait_refs(held, 1));
    assert_true(wait_refs(prompt, 1));
    assert_int_equal(stat_of(OFFLOAD_ST_COMPLETED), completed + 3);
    offload_req_put(blocker);
    offload_req_put(held);
    offload_req_put(prompt);
    ctx_gone(wa);
    ctx_gone(wb);
}

static void test_wake_callback_after_kill(void **state)
{
    struct offload_waiter *w = offload_waiter_new();
    struct cb_rec rec = {0};
    struct offload_req *req;
    int fd;

    (void)state;
    assert_non_null(w);
    fd = w->efd;
    /* Killed while queued (the worker is held at the gate). */
    req = wake_req(w, record_cb, &rec, 0);
    {
        struct offload_req *blocker = tjob_new(1, 1);

        assert_int_equal(offload_accel_submit(blocker), 1);
        assert_true(gate_wait_started(1));
        assert_int_equal(offload_accel_submit(req), 1);
        offload_waiter_kill(w);
        gate_open();
        offload_req_wait(blocker);
        assert_true(wait_refs(blocker, 1));
        offload_req_put(blocker);
    }
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(atomic_load(&rec.calls), 0);
    assert_int_equal(fd_readable(fd, 0), 0);
    offload_req_put(req);

    /* And a request submitted after the kill. */
    req = wake_req(w, record_cb, &rec, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(atomic_load(&rec.calls), 0);
    offload_req_put(req);
    offload_waiter_put(w);
}

/*
 * The wait ctx goes while a request is queued: its eventfd is closed at
 * once (an abandoned job must not hold an fd forever) and the worker's
 * completion writes nowhere, not even to a new fd that reuses the number.
 */
static void test_wake_ctx_gone_closes_fd(void **state)
{
    struct offload_waiter *w = offload_waiter_new();
    struct offload_req *blocker, *req;
    int fd, fd2;

    (void)state;
    assert_non_null(w);
    fd = w->efd;
    blocker = tjob_new(1, 1);
    assert_int_equal(offload_accel_submit(blocker), 1);
    assert_true(gate_wait_started(1));
    req = wake_req(w, NULL, NULL, 0);
    assert_int_equal(offload_accel_submit(req), 1);

    ctx_gone(w);
    assert_int_equal(atomic_load(&w->refs), 1); /* the request's */
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    fd2 = eventfd(0, EFD_CLOEXEC); /* most likely the same number */
    assert_true(fd2 >= 0);
    gate_open();
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(fd_readable(fd2, 50), 0);
    offload_req_put(req);
    close(fd2);
    offload_req_wait(blocker);
    assert_true(wait_refs(blocker, 1));
    offload_req_put(blocker);
}

static void test_accel_release_joins(void **state)
{
    struct offload_req *req[8];
    int i, nthreads0 = thread_count();

    (void)state;
    /* The fixture's reference and a second user. */
    assert_int_equal(offload_accel_acquire(), 1);
    for (i = 0; i < 8; i++) {
        req[i] = tjob_new(i + 1, 0);
        assert_int_equal(offload_accel_submit(req[i]), 1);
    }
    assert_int_equal(offload_accel_workers(), 2);
    assert_int_equal(thread_count(), nthreads0 + 2);
    /* Not the last user: nothing stops. */
    offload_accel_release();
    assert_int_equal(offload_accel_workers(), 2);
    for (i = 0; i < 8; i++)
        offload_req_wait(req[i]);

    /* Queue work again, then drop the last reference: drained and joined. */
    for (i = 0; i < 8; i++) {
        assert_true(wait_refs(req[i], 1));
        offload_req_put(req[i]);
        req[i] = tjob_new(i + 1, 0);
        assert_int_equal(offload_accel_submit(req[i]), 1);
    }
    offload_accel_release();
    assert_int_equal(offload_accel_workers(), 0);
    assert_int_equal(thread_count(), nthreads0);
    assert_int_equal(offload_accel_in_flight(), 0);
    for (i = 0; i < 8; i++) {
        assert_true(offload_req_done(req[i]));
        assert_int_equal(req[i]->result, i + 1);
        assert_int_equal(atomic_load(&req[i]->refs), 1);
        offload_req_put(req[i]);
    }
    /* Stopped: no user, so submit refuses. */
    req[0] = tjob_new(1, 0);
    assert_int_equal(offload_accel_submit(req[0]), 0);

    /* A new first user gets new workers. */
    assert_int_equal(offload_accel_acquire(), 1); /* for the fixture's teardown */
    assert_int_equal(offload_accel_submit(req[0]), 1);
    assert_int_equal(offload_accel_workers(), 2);
    offload_req_wait(req[0]);
    assert_true(wait_refs(req[0], 1));
    offload_req_put(req[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_fifo_and_full, setup_qreqs,
                                        teardown_qreqs),
        cmocka_unit_test_setup_teardown(test_queue_remove_keeps_order, setup_qreqs,
                                        teardown_qreqs),
        cmocka_unit_test_setup_teardown(test_queue_wrap_around, setup_qreqs,
                                        teardown_qreqs),
        cmocka_unit_test(test_req_refcount),
        cmocka_unit_test(test_req_last_put_on_other_thread),
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
        cmocka_unit_test_setup_teardown(test_wake_one_token, setup_w2, teardown_accel),
        cmocka_unit_test_setup_teardown(test_wake_callback, setup_w2, teardown_accel),
        cmocka_unit_test_setup_teardown(test_wake_batch_and_prompt, setup_w2,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_wake_callback_after_kill, setup_w1,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_wake_ctx_gone_closes_fd, setup_w1,
                                        teardown_accel),
        cmocka_unit_test_setup_teardown(test_accel_release_joins, setup_w2,
                                        teardown_accel),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

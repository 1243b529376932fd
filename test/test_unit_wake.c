/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the wake targets: one eventfd token per completion,
 * callbacks, a batch held and a cipher record's completion signalled at
 * once while another worker runs, a callback after its wait ctx was
 * killed, a freed wait ctx's fd closed at once; and the workers joined
 * when the last reference on the accelerator goes. Callbacks execute on
 * worker threads: they only record; every assertion runs on the main
 * thread.
 */
#include <errno.h>
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

#include "harness.h"
#include "unit_util.h"

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
    assert_int_equal(h_poll_in(fd, 0), 0);

    /* Exactly one token per completed request. */
    req = wake_req(w, NULL, NULL, 0);
    assert_int_equal(atomic_load(&w->refs), 2);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(h_poll_in(fd, 0), 1);
    assert_int_equal(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    assert_int_equal(v, 1);
    assert_int_equal(h_poll_in(fd, 0), 0);
    offload_req_put(req);
    assert_int_equal(atomic_load(&w->refs), 1);

    /* offload_waiter_drain consumes it. */
    req = wake_req(w, NULL, NULL, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    assert_int_equal(h_poll_in(fd, WAIT_LIMIT_MS), 1);
    offload_req_wait(req);
    offload_waiter_drain(w);
    assert_int_equal(h_poll_in(fd, 0), 0);
    assert_true(wait_refs(req, 1));
    assert_int_equal(h_poll_in(fd, 0), 0);
    offload_req_put(req);

    /* No waiter: nobody to wake, nothing written. */
    req = tjob_new(1, 0);
    assert_int_equal(offload_accel_submit(req), 1);
    offload_req_wait(req);
    assert_true(wait_refs(req, 1));
    assert_int_equal(h_poll_in(fd, 0), 0);
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
    assert_int_equal(h_poll_in(fd, 0), 0);
    offload_req_put(req);
    h_sleep_ms(10);
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
    assert_int_equal(h_poll_in(wb->efd, WAIT_LIMIT_MS), 1);
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
    assert_int_equal(h_poll_in(wa->efd, WAIT_LIMIT_MS), 1);
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
    assert_int_equal(h_poll_in(fd, 0), 0);
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
    assert_int_equal(h_poll_in(fd2, 50), 0);
    offload_req_put(req);
    close(fd2);
    offload_req_wait(blocker);
    assert_true(wait_refs(blocker, 1));
    offload_req_put(blocker);
}

static void test_accel_release_joins(void **state)
{
    struct offload_req *req[8];
    int i, nthreads0 = h_count_threads();

    (void)state;
    /* The fixture's reference and a second user. */
    assert_int_equal(offload_accel_acquire(&accel_conf), 1);
    for (i = 0; i < 8; i++) {
        req[i] = tjob_new(i + 1, 0);
        assert_int_equal(offload_accel_submit(req[i]), 1);
    }
    assert_int_equal(offload_accel_workers(), 2);
    assert_int_equal(h_count_threads(), nthreads0 + 2);
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
    assert_int_equal(h_wait_threads(nthreads0), nthreads0);
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
    assert_int_equal(offload_accel_acquire(&accel_conf),
                     1); /* for the fixture's teardown */
    assert_int_equal(offload_accel_submit(req[0]), 1);
    assert_int_equal(offload_accel_workers(), 2);
    offload_req_wait(req[0]);
    assert_true(wait_refs(req[0], 1));
    offload_req_put(req[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
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

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the bounded queue (FIFO, full, removal keeping order,
 * wrap-around) and of request lifetime (reference counts, the last put on
 * another thread).
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

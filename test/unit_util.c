/* SPDX-License-Identifier: Apache-2.0 */
/* Shared parts of the unit tests of the provider's internals (see unit_util.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <openssl/err.h>

#include "harness.h"
#include "unit_util.h"

struct offload_accel_config accel_conf;

void set_conf(unsigned workers, unsigned depth)
{
    accel_conf = (struct offload_accel_config){workers, depth, 50, 0, 0};
    offload_async_configure((1u << OFFLOAD_FAM_COUNT) - 1, 0, workers, 0);
}

/* The gate (see unit_util.h). */
static struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int started; /* run functions that reached the gate */
    int open;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

void gate_reset(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.started = 0;
    gate.open = 0;
    pthread_mutex_unlock(&gate.lock);
}

void gate_open(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

/* Worker side. */
void gate_pass(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.started++;
    pthread_cond_broadcast(&gate.cond);
    while (!gate.open)
        pthread_cond_wait(&gate.cond, &gate.lock);
    pthread_mutex_unlock(&gate.lock);
}

/* Main side: 1 once |n| run functions wait at the gate, 0 after WAIT_LIMIT_MS. */
int gate_wait_started(int n)
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

_Atomic int run_seq;
_Atomic int released;
pthread_t release_tid;

int tjob_run(struct offload_req *req)
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

void tjob_release(struct offload_req *req)
{
    (void)req;
    release_tid = pthread_self();
    atomic_fetch_add(&released, 1);
}

struct offload_req *tjob_new(int ret, int blocking)
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

struct tjob *tj(struct offload_req *req)
{
    return (struct tjob *)req->payload;
}

uint32_t req_state(struct offload_req *req)
{
    return atomic_load(&req->state) & REQ_STATE_MASK;
}

/*
 * Waits until only |n| references remain on |req|: the worker dropped its
 * own, so everything it does after completing (token, callback) is done.
 */
int wait_refs(struct offload_req *req, uint32_t n)
{
    int ms;

    for (ms = 0; ms < WAIT_LIMIT_MS; ms++) {
        if (atomic_load(&req->refs) == n)
            return 1;
        h_sleep_ms(1);
    }
    return 0;
}

/* Waits until a worker has run |req| (executed, maybe not yet signalled). */
int wait_ran(struct offload_req *req)
{
    int ms;

    for (ms = 0; ms < WAIT_LIMIT_MS; ms++) {
        if (atomic_load(&tj(req)->ran) > 0)
            return 1;
        h_sleep_ms(1);
    }
    return 0;
}

uint64_t stat_of(enum offload_stat s)
{
    return atomic_load(&offload_stats[FAM].v[s]);
}

/* ---- fixtures: each accelerator test holds one reference on it ---- */

static int setup_accel(unsigned workers, unsigned depth)
{
    set_conf(workers, depth);
    gate_reset();
    atomic_store(&released, 0);
    return offload_accel_acquire(&accel_conf) ? 0 : -1;
}

int setup_w2(void **state)
{
    (void)state;
    return setup_accel(2, 8);
}

int setup_w1(void **state)
{
    (void)state;
    return setup_accel(1, 8);
}

int setup_w1_d2(void **state)
{
    (void)state;
    return setup_accel(1, 2);
}

int teardown_accel(void **state)
{
    (void)state;
    gate_open(); /* never leave a worker blocked, even after a failure */
    offload_accel_release();
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the unit tests of the provider's internals
 * (test_unit_*.c, linked against the static library offload_internal):
 * the configuration they set, a gate that holds a worker busy, test
 * requests (struct tjob) whose run function records what it saw, waits
 * on a request's references and runs, and the fixtures: each accelerator
 * test takes its own reference on the accelerator (setup/teardown), so a
 * failed test leaves neither users nor blocked workers behind. No
 * provider is loaded.
 */
#ifndef OFFLOAD_TEST_UNIT_UTIL_H
#define OFFLOAD_TEST_UNIT_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "accel/accel.h"
#include "accel/wake.h"
#include "async.h"
#include "prov.h"

#define FAM           OFFLOAD_FAM_SIGNATURE
#define WAIT_LIMIT_MS 10000

/*
 * The accelerator's configuration for the next acquire (accel_conf) and
 * the policy's: |workers| workers, a queue of |depth|, spin_us 50, every
 * family offloaded, busy_inline and inline_below 0.
 */
extern struct offload_accel_config accel_conf;
void set_conf(unsigned workers, unsigned depth);

/*
 * A gate a run function blocks on until the test opens it: lets a test
 * hold the single worker busy while it looks at the queue.
 */
void gate_reset(void);
void gate_open(void);
/* Worker side. */
void gate_pass(void);
/* Main side: 1 once |n| run functions wait at the gate, 0 after WAIT_LIMIT_MS. */
int gate_wait_started(int n);

/* The payload of a test request. */
struct tjob {
    int ret;      /* what the run function returns */
    int blocking; /* waits at the gate */
    int nerrs;    /* errors to raise on the worker */
    _Atomic int ran;
    _Atomic int seq; /* order of execution, from run_seq */
    pthread_t tid;   /* the thread that ran it */
};

extern _Atomic int run_seq;   /* runs so far (tjob.seq) */
extern _Atomic int released;  /* tjob requests released */
extern pthread_t release_tid; /* the thread of the last release */

/* The run and release functions of a test request (on a worker thread). */
int tjob_run(struct offload_req *req);
void tjob_release(struct offload_req *req);
/* A test request returning |ret|, waiting at the gate when |blocking|. */
struct offload_req *tjob_new(int ret, int blocking);
struct tjob *tj(struct offload_req *req);
uint32_t req_state(struct offload_req *req);
/* Waits until only |n| references remain on |req| (the worker dropped its own). */
int wait_refs(struct offload_req *req, uint32_t n);
/* Waits until a worker has run |req| (executed, maybe not yet signalled). */
int wait_ran(struct offload_req *req);
uint64_t stat_of(enum offload_stat s);

/* Fixtures: 2 workers / 1 worker (queue of 8), 1 worker with a queue of 2. */
int setup_w2(void **state);
int setup_w1(void **state);
int setup_w1_d2(void **state);
int teardown_accel(void **state);

#endif

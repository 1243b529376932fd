/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The accelerator: worker threads that pop requests from a bounded queue,
 * run them on the soft engine and signal completion through the wake
 * target captured when the request was submitted.
 *
 * A request is refcounted: the submitter holds one reference, the queue
 * and then the worker hold another. Whoever drops the last one frees it,
 * so a job abandoned while paused never leaves a worker writing freed
 * memory.
 */
#ifndef OFFLOAD_ACCEL_H
#define OFFLOAD_ACCEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/async.h>

#include "prov.h"

struct offload_waiter;
struct offload_req;

/* Runs the operation; returns the OpenSSL-style result (1 ok, 0/-1 failure). */
typedef int offload_run_fn(struct offload_req *req);
/* Releases what the family put into the request (its payload). */
typedef void offload_release_fn(struct offload_req *req);

/* Request states; REQ_SLEEPER is or-ed in by a thread blocked on completion. */
enum {
    REQ_NEW = 0,
    REQ_QUEUED = 1,
    REQ_RUNNING = 2,
    REQ_DONE = 3,
    REQ_TAKEN = 4, /* taken back from the queue by the submitter */
    REQ_STATE_MASK = 7,
    REQ_SLEEPER = 8,
};

/* Errors raised by the soft engine on a worker, replayed on the caller. */
#define OFFLOAD_REQ_MAX_ERRS 4
/*
 * One error the worker raised. The strings are copies: the worker's error
 * queue owns (and frees, when it reuses the slot) what ERR_get_error_all
 * hands out.
 */
struct offload_err {
    unsigned long code;
    char *file;
    char *func;
    int line;
    char *data;
};

struct offload_req {
    _Atomic uint32_t refs;
    _Atomic uint32_t state;
    offload_run_fn *run;
    offload_release_fn *release;
    enum offload_family family;
    const char *alg, *op; /* what it is, for the debug log ("RSA", "sign"); static */
    int cheap;  /* well under BATCH_AGE: its completion may be signalled in a batch */
    int prompt; /* signalled at once, never held: its job's next request waits on it */
    int timed;  /* the submitter measures its own time: paused_ns is kept */
    uint64_t paused_ns;   /* how long the submitting job was paused (when timed) */
    unsigned fork_gen;    /* offload_fork_gen when submitted */
    _Atomic int executed; /* run finished (result valid), maybe not yet signalled */
    int result;
    /* Wake target, captured on the submitting thread. */
    struct offload_waiter *waiter; /* reference held; NULL: nobody to wake */
    int cbmode;                    /* wake by callback, not by eventfd */
    ASYNC_callback_fn cb;          /* NULL once cancelled */
    void *cbarg;
    unsigned nerrs;
    struct offload_err errs[OFFLOAD_REQ_MAX_ERRS];
    /* Family payload follows (see offload_req_new). */
    _Alignas(16) unsigned char payload[];
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t offload_now_ns(void);

/*
 * A new request with |payload_size| bytes of payload and one reference.
 * Only the first OFFLOAD_REQ_ZEROED bytes of the payload (the family's job
 * struct) are zeroed: a 16 KiB record buffer is about to be overwritten.
 */
#define OFFLOAD_REQ_ZEROED 128
struct offload_req *offload_req_new(offload_run_fn *run, offload_release_fn *release,
                                    enum offload_family family, size_t payload_size);
void offload_req_up(struct offload_req *req);
void offload_req_put(struct offload_req *req);

/* Runs |req| on the current thread, capturing errors into it (worker side). */
void offload_req_execute(struct offload_req *req);
/* Marks |req| done and wakes its submitter (worker side). */
void offload_req_complete(struct offload_req *req);
/* Replays errors captured on a worker onto the calling thread's queue. */
void offload_req_raise_errors(struct offload_req *req);
/* Blocks (futex) until |req| is done; never spins for long. */
void offload_req_wait(struct offload_req *req);

static inline int offload_req_done(struct offload_req *req)
{
    return (atomic_load_explicit(&req->state, memory_order_acquire) & REQ_STATE_MASK) ==
           REQ_DONE;
}

/* ---- the bounded queue (a ring of request pointers) ---- */

struct offload_queue {
    struct offload_req **ring;
    size_t cap;
    size_t head; /* next to pop */
    size_t count;
    size_t high_water;
};

int offload_queue_init(struct offload_queue *q, size_t cap);
void offload_queue_fini(struct offload_queue *q);
/* 1 pushed, 0 full. The caller holds whatever lock guards |q|. */
int offload_queue_push(struct offload_queue *q, struct offload_req *req);
/* The oldest request, or NULL when empty. */
struct offload_req *offload_queue_pop(struct offload_queue *q);
/* Removes |req| if still queued; 1 when it was found. */
int offload_queue_remove(struct offload_queue *q, struct offload_req *req);

/* ---- the accelerator (process-wide, shared by every provider instance) ---- */

/* What the accelerator is configured with (openssl.cnf keys of the same names). */
struct offload_accel_config {
    unsigned workers;     /* threads, started at the first submit */
    unsigned queue_depth; /* the bounded queue's length */
    unsigned spin_us;     /* an idle worker's busy-wait after a cheap request */
    unsigned nice;        /* each worker thread's nice value (0..19) */
    int idle_policy;      /* 1: workers run SCHED_IDLE (worker_policy = idle) */
};

/*
 * Takes a reference on the accelerator. The first reference configures it
 * with |cfg|; later ones share it as it is (|cfg| is not applied).
 */
int offload_accel_acquire(const struct offload_accel_config *cfg);
/* Drops it; the last one drains the queue and joins every worker. */
void offload_accel_release(void);
/*
 * Queues |req| (taking a reference for the worker). Returns 1 queued,
 * 0 when the queue is full or the accelerator is stopping.
 */
int offload_accel_submit(struct offload_req *req);
/* Takes |req| back if no worker has picked it yet; 1 when taken. */
int offload_accel_take_back(struct offload_req *req);
/* The job of a submitted request has taken its result (not after take_back). */
void offload_accel_collected(void);
/* Requests submitted whose job has not yet taken the result. */
unsigned offload_accel_outstanding(void);
/* Requests submitted and not yet completed. */
unsigned offload_accel_in_flight(void);
/* Requests waiting in the queue for a worker (read without the lock). */
unsigned offload_accel_queued(void);
size_t offload_accel_high_water(void);
unsigned offload_accel_workers(void);

#endif

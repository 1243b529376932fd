/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The async glue: every ASYNC_* call of the provider lives in async.c.
 *
 * A family asks offload_async_path() where an operation goes. For any
 * answer but OFFLOAD_PATH_OFFLOADED it runs the soft engine itself,
 * between offload_op_path() and offload_op_done(); otherwise it builds a
 * request and offload_async_run() submits it, pauses the job until a
 * worker completes it (or runs it here when it cannot be queued) and
 * replays the worker's errors on this thread.
 *
 * Counting (see include/offload.h) and the debug log's line for each
 * path happen here and nowhere else: "offloaded" when the queue takes a
 * request, "inline" when this thread runs an operation (a request taken
 * back too), and "failed" once where the outcome is known (a worker counts
 * what it ran; offload_op_done what ran here).
 */
#ifndef OFFLOAD_ASYNC_H
#define OFFLOAD_ASYNC_H

#include "accel/accel.h"

/* Where an operation runs, and why. */
enum offload_path {
    OFFLOAD_PATH_OFFLOADED,  /* to a worker; the job pauses */
    OFFLOAD_PATH_NO_JOB,     /* the caller is not inside an ASYNC_JOB */
    OFFLOAD_PATH_FAMILY_OFF, /* its family is not in the "offload" key */
    OFFLOAD_PATH_BUSY,       /* cheap, and every worker has busy_inline queued */
    OFFLOAD_PATH_ALONE,      /* cheap, the same job again with nothing else in flight */
    OFFLOAD_PATH_SMALL,      /* a cipher update under inline_below */
    OFFLOAD_PATH_CHEAPER,    /* a cipher update measured cheaper here (cipher_gate.h) */
    OFFLOAD_PATH_TLS_CBC,    /* CBC in TLS mode: its MAC points into the output */
    OFFLOAD_PATH_STITCHED,   /* a stitched TLS cipher (AES-CBC-HMAC) */
    OFFLOAD_PATH_CALLBACK,   /* RSA keygen: reports progress through the app's callback */
    OFFLOAD_PATH_PARAMS,     /* a generation of parameters only: no key pair to make */
    OFFLOAD_PATH_NO_SIZE,    /* the output size is unknown, or the buffer is short */
    OFFLOAD_PATH_NO_MEMORY,  /* no memory for a request */
    OFFLOAD_PATH_NO_WAIT_FD, /* no wait fd for the job's wait ctx */
    OFFLOAD_PATH_QUEUE_FULL, /* the queue refused it (queue_depth) */
    OFFLOAD_PATH_TAKEN_BACK, /* offloaded, then run in the job: counted inline too */
    OFFLOAD_PATH_COUNT
};

/*
 * OFFLOAD_PATH_OFFLOADED when the calling thread runs inside an ASYNC_JOB
 * and |f| may be offloaded, else the reason it stays inline. A |cheap|
 * operation (ECDSA P-256, EdDSA, X25519: tens of microseconds) stays
 * inline while the workers are busy (busy_inline) and when it is alone:
 * the same job asking again with nothing else in flight.
 */
enum offload_path offload_async_path(enum offload_family f, int cheap);

/*
 * The policy's settings, handed over by the provider core at the first
 * init (and by unit tests): the families that may be offloaded (a bit per
 * enum offload_family), the busy_inline mark per worker and the number of
 * workers it multiplies, and the cipher bytes under which updates stay
 * inline.
 */
void offload_async_configure(unsigned families, unsigned busy_inline, unsigned workers,
                             size_t inline_below);

/* Set only by offload_async_configure; read on every cipher record. */
extern size_t offload_async_inline_below_;
static inline size_t offload_async_inline_below(void)
{
    return offload_async_inline_below_;
}

/* 1 when offload_async_path() says offload (unit tests ask this way). */
static inline int offload_async_wanted(enum offload_family f, int cheap)
{
    return offload_async_path(f, cheap) == OFFLOAD_PATH_OFFLOADED;
}

/*
 * Runs |req| through the accelerator (or here); returns req->result.
 * The family sets req->alg and req->op (static strings) for the log.
 */
int offload_async_run(struct offload_req *req);

/*
 * Where a request goes: the CPU workers (offload_async_run) or another
 * pool of threads, the token pool of pkcs11.h. |collected| (may be NULL)
 * is told when a job took a submitted request's result.
 */
struct offload_pool {
    int (*submit)(struct offload_req *req);
    int (*take_back)(struct offload_req *req);
    void (*collected)(void);
};
/* offload_async_run through |pool|. */
int offload_async_run_on(struct offload_req *req, const struct offload_pool *pool);

/*
 * A token call (pkcs11.h): OFFLOAD_PATH_OFFLOADED inside a job, whatever
 * the family or cost (it waits on the token, not on a CPU), else
 * OFFLOAD_PATH_NO_JOB.
 */
enum offload_path offload_async_path_token(void);

/* The log's line for operation |op| of |alg| in family |f| taking |p|. */
void offload_log_path(enum offload_family f, enum offload_path p, const char *alg,
                      const char *op);
/* Counts a failure of an operation run on this thread and logs it. */
void offload_op_failed(enum offload_family f, const char *alg, const char *op);

/* Operation |op| of |alg| takes path |p|: counted once, logged when on. */
static inline void offload_op_path(enum offload_family f, enum offload_path p,
                                   const char *alg, const char *op)
{
    if (p == OFFLOAD_PATH_OFFLOADED)
        offload_count(f, OFFLOAD_ST_OFFLOADED);
    else
        offload_count_inline(f);
    if (offload_log_enabled())
        offload_log_path(f, p, alg, op);
}

/* An operation run on this thread returned |ret|: a failure is counted once. */
static inline int offload_op_done(enum offload_family f, int ret, const char *alg,
                                  const char *op)
{
    if (ret <= 0)
        offload_op_failed(f, alg, op);
    return ret;
}

/*
 * A failure leaves a reason: when |ret| failed and the newest error of the
 * queue is still |before| (ERR_peek_last_error() taken before the call,
 * which the default left silent), raises "<alg> <op> failed (input of
 * |inlen| bytes)". Returns |ret|.
 */
int offload_failed_why(int ret, unsigned long before, const char *alg, const char *op,
                       size_t inlen);

#endif

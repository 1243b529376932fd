/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wake target of a job: one eventfd per ASYNC_WAIT_CTX, refcounted so
 * that its number is closed only once no worker can still write to it.
 * The ASYNC_WAIT_CTX holds one reference (dropped by the ctx's cleanup
 * callback), every request in flight holds another.
 */
#ifndef OFFLOAD_WAKE_H
#define OFFLOAD_WAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <openssl/async.h>

struct offload_req;

struct offload_waiter {
    _Atomic uint32_t refs;
    int efd;              /* eventfd, blocking; closed (-1) once the wait ctx is gone */
    unsigned fork_gen;    /* offload_fork_gen when created */
    pthread_mutex_t lock; /* orders "ctx freed" against a worker's callback */
    int alive;            /* 0 once the ASYNC_WAIT_CTX is gone */
    _Atomic unsigned uncollected; /* its requests whose job has not taken the result */
};

/* Bumped in every child after fork(): objects from an older generation are stale. */
extern _Atomic unsigned offload_fork_gen;

struct offload_waiter *offload_waiter_new(void);
void offload_waiter_up(struct offload_waiter *w);
void offload_waiter_put(struct offload_waiter *w);
/* The wait ctx is gone: closes the eventfd; no token or callback reaches it after. */
void offload_waiter_kill(struct offload_waiter *w);
/* Worker side: one token on the eventfd, unless the wait ctx is gone. */
void offload_waiter_signal(struct offload_waiter *w);
/* Worker side: calls req->cb(req->cbarg) unless the wait ctx is gone or the call was
 * cancelled. */
void offload_waiter_call(struct offload_waiter *w, struct offload_req *req);
/* Caller side: the job stopped waiting for the callback (resumed early, or pauses
 * blocked). */
void offload_waiter_cancel_call(struct offload_waiter *w, struct offload_req *req);
/* Caller side: consumes the one token of a completed request. */
void offload_waiter_drain(struct offload_waiter *w);

#endif

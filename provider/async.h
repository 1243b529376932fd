/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The async glue: every ASYNC_* call of the provider lives in async.c.
 *
 * A family builds a request only when offload_async_wanted() says the
 * caller is inside an ASYNC_JOB; offload_async_run() then submits it,
 * pauses the job until a worker completes it (or runs it inline when
 * the queue refuses it) and replays the worker's errors on this thread.
 */
#ifndef OFFLOAD_ASYNC_H
#define OFFLOAD_ASYNC_H

#include "accel/accel.h"

/*
 * 1 when the calling thread runs inside an ASYNC_JOB and |f| may be
 * offloaded. A |cheap| operation (ECDSA, EdDSA, X25519: tens of
 * microseconds) is kept inline when it is alone: the same job asking
 * again with nothing else in flight.
 */
int offload_async_wanted(enum offload_family f, int cheap);
/* Runs |req| through the accelerator (or inline); returns req->result. */
int offload_async_run(struct offload_req *req);
/* Runs |req| on this thread, counted as inline. */
int offload_async_run_inline(struct offload_req *req);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Request lifetime, error capture on the worker and completion. */
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/err.h>

#include "accel/accel.h"
#include "accel/wake.h"

struct offload_req *offload_req_new(offload_run_fn *run, offload_release_fn *release,
                                    enum offload_family family, size_t payload_size)
{
    struct offload_req *req = malloc(sizeof(*req) + payload_size);

    if (req == NULL)
        return NULL;
    /* The header and the family's job struct; bulk buffers stay as they are. */
    memset(req, 0,
           sizeof(*req) +
               (payload_size < OFFLOAD_REQ_ZEROED ? payload_size : OFFLOAD_REQ_ZEROED));
    atomic_init(&req->refs, 1);
    atomic_init(&req->state, REQ_NEW);
    req->run = run;
    req->release = release;
    req->family = family;
    return req;
}

void offload_req_up(struct offload_req *req)
{
    atomic_fetch_add_explicit(&req->refs, 1, memory_order_relaxed);
}

void offload_req_put(struct offload_req *req)
{
    unsigned i;

    if (req == NULL ||
        atomic_fetch_sub_explicit(&req->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (req->release != NULL)
        req->release(req);
    for (i = 0; i < req->nerrs; i++) {
        free(req->errs[i].file);
        free(req->errs[i].func);
        free(req->errs[i].data);
    }
    offload_waiter_put(req->waiter);
    free(req);
}

void offload_req_execute(struct offload_req *req)
{
    const char *file, *func, *data;
    int line, flags;
    unsigned long code;

    /* Worker threads only: the loop below leaves their error queue empty. */
    req->result = req->run(req);
    atomic_store_explicit(&req->executed, 1, memory_order_release);
    /* Keep what the soft engine raised; it belongs to the submitter's thread. */
    while ((code = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        struct offload_err *e;

        if (req->nerrs == OFFLOAD_REQ_MAX_ERRS)
            continue;
        e = &req->errs[req->nerrs++];
        e->code = code;
        e->file = file != NULL ? strdup(file) : NULL;
        e->line = line;
        e->func = func != NULL ? strdup(func) : NULL;
        e->data = (flags & ERR_TXT_STRING) && data != NULL ? strdup(data) : NULL;
    }
}

void offload_req_raise_errors(struct offload_req *req)
{
    unsigned i;

    /* ERR_get_error_all returned newest last: replay in the same order. */
    for (i = 0; i < req->nerrs; i++) {
        struct offload_err *e = &req->errs[i];

        ERR_new();
        ERR_set_debug(e->file, e->line, e->func);
        if (e->data != NULL)
            ERR_set_error(ERR_GET_LIB(e->code), ERR_GET_REASON(e->code), "%s", e->data);
        else
            ERR_set_error(ERR_GET_LIB(e->code), ERR_GET_REASON(e->code), NULL);
    }
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

void offload_req_complete(struct offload_req *req)
{
    struct offload_waiter *w = req->waiter;
    uint32_t old = atomic_exchange_explicit(&req->state, REQ_DONE, memory_order_acq_rel);

    if (old & REQ_SLEEPER)
        futex(&req->state, FUTEX_WAKE_PRIVATE, INT_MAX);
    if (w == NULL)
        return;
    if (req->cbmode)
        offload_waiter_call(w, req);
    else
        offload_waiter_signal(w);
}

void offload_req_wait(struct offload_req *req)
{
    uint32_t s = atomic_load_explicit(&req->state, memory_order_acquire);

    while ((s & REQ_STATE_MASK) != REQ_DONE) {
        if (!(s & REQ_SLEEPER)) {
            if (!atomic_compare_exchange_weak(&req->state, &s, s | REQ_SLEEPER))
                continue;
            s |= REQ_SLEEPER;
        }
        futex(&req->state, FUTEX_WAIT_PRIVATE, s);
        s = atomic_load_explicit(&req->state, memory_order_acquire);
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Wake targets: eventfd tokens and wait-ctx callbacks, safe against freed ctxs. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "accel/accel.h"
#include "accel/wake.h"
#include "prov.h"

_Atomic unsigned offload_fork_gen;

struct offload_waiter *offload_waiter_new(void)
{
    struct offload_waiter *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->efd = eventfd(0, EFD_CLOEXEC);
    if (w->efd < 0) {
        free(w);
        return NULL;
    }
    atomic_init(&w->refs, 1);
    w->fork_gen = atomic_load(&offload_fork_gen);
    pthread_mutex_init(&w->lock, NULL);
    w->alive = 1;
    return w;
}

void offload_waiter_up(struct offload_waiter *w)
{
    atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

void offload_waiter_put(struct offload_waiter *w)
{
    if (w == NULL || atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (w->efd >= 0)
        close(w->efd);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void offload_waiter_kill(struct offload_waiter *w)
{
    /*
     * Closed now, not at the last reference: an abandoned job holds its
     * request (and so this waiter) forever, and must not hold an fd too.
     * Under the lock, so no worker can be writing to the number meanwhile.
     */
    pthread_mutex_lock(&w->lock);
    w->alive = 0;
    if (w->efd >= 0)
        close(w->efd);
    w->efd = -1;
    pthread_mutex_unlock(&w->lock);
}

void offload_waiter_signal(struct offload_waiter *w)
{
    uint64_t one = 1;

    pthread_mutex_lock(&w->lock);
    if (w->alive)
        while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    pthread_mutex_unlock(&w->lock);
}

void offload_waiter_call(struct offload_waiter *w, struct offload_req *req)
{
    pthread_mutex_lock(&w->lock);
    if (w->alive && req->cb != NULL)
        req->cb(req->cbarg);
    pthread_mutex_unlock(&w->lock);
}

void offload_waiter_cancel_call(struct offload_waiter *w, struct offload_req *req)
{
    pthread_mutex_lock(&w->lock);
    req->cb = NULL;
    pthread_mutex_unlock(&w->lock);
}

void offload_waiter_drain(struct offload_waiter *w)
{
    uint64_t n;

    /* Blocking read: the worker writes its token right after marking the request done. */
    while (read(w->efd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
}

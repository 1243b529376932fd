/* SPDX-License-Identifier: Apache-2.0 */
/* The bounded FIFO of requests; locking is the accelerator's business. */
#include <stdlib.h>

#include "accel/accel.h"

int offload_queue_init(struct offload_queue *q, size_t cap)
{
    if (cap == 0)
        return 0;
    q->ring = calloc(cap, sizeof(*q->ring));
    if (q->ring == NULL)
        return 0;
    q->cap = cap;
    q->head = 0;
    q->count = 0;
    q->high_water = 0;
    return 1;
}

void offload_queue_fini(struct offload_queue *q)
{
    free(q->ring);
    q->ring = NULL;
    q->cap = q->count = q->head = 0;
}

int offload_queue_push(struct offload_queue *q, struct offload_req *req)
{
    if (q->count == q->cap)
        return 0;
    q->ring[(q->head + q->count) % q->cap] = req;
    q->count++;
    if (q->count > q->high_water)
        q->high_water = q->count;
    return 1;
}

struct offload_req *offload_queue_pop(struct offload_queue *q)
{
    struct offload_req *req;

    if (q->count == 0)
        return NULL;
    req = q->ring[q->head];
    q->ring[q->head] = NULL;
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return req;
}

int offload_queue_remove(struct offload_queue *q, struct offload_req *req)
{
    size_t i, j;

    /* Search from the tail: the submitter takes back what it queued last. */
    for (i = q->count; i-- > 0;) {
        if (q->ring[(q->head + i) % q->cap] != req)
            continue;
        /* Close the gap, keeping FIFO order of the rest. */
        for (j = i; j + 1 < q->count; j++)
            q->ring[(q->head + j) % q->cap] = q->ring[(q->head + j + 1) % q->cap];
        q->ring[(q->head + q->count - 1) % q->cap] = NULL;
        q->count--;
        return 1;
    }
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* Per-context state (ctxstate.h): a chained hash of mutex-guarded shards. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctxstate.h"

#define SHARDS  16
#define BUCKETS 256 /* per shard */

static struct shard {
    pthread_mutex_t lock;
    size_t count;
    struct offload_ctxstate *bucket[BUCKETS];
} shards[SHARDS];

static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

/* fork(): the child's copy of a shard must not be locked by a thread it lacks. */
static void fork_prepare(void)
{
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_lock(&shards[i].lock);
}

static void fork_done(void)
{
    for (size_t i = SHARDS; i-- > 0;)
        pthread_mutex_unlock(&shards[i].lock);
}

static void shards_init(void)
{
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
    pthread_atfork(fork_prepare, fork_done, fork_done);
}

/* Heap addresses: the low bits are alignment, the next ones vary. */
static size_t hash_of(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

static struct shard *shard_of(size_t h)
{
    pthread_once(&shards_once, shards_init);
    return &shards[h % SHARDS];
}

static struct offload_ctxstate **slot_in(struct shard *sh, size_t h, const void *ctx)
{
    struct offload_ctxstate **pp = &sh->bucket[(h / SHARDS) % BUCKETS];

    while (*pp != NULL && (*pp)->ctx != ctx)
        pp = &(*pp)->next;
    return pp;
}

struct offload_ctxstate *offload_ctxstate_find(void *ctx)
{
    size_t h = hash_of(ctx);
    struct shard *sh = shard_of(h);
    struct offload_ctxstate *s;

    pthread_mutex_lock(&sh->lock);
    s = *slot_in(sh, h, ctx);
    pthread_mutex_unlock(&sh->lock);
    return s;
}

struct offload_ctxstate *offload_ctxstate_get(void *ctx, offload_ctx_free_fn *free_ctx)
{
    size_t h = hash_of(ctx);
    struct shard *sh = shard_of(h);
    struct offload_ctxstate **pp, *s;

    pthread_mutex_lock(&sh->lock);
    pp = slot_in(sh, h, ctx);
    s = *pp;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        s->ctx = ctx;
        s->free_ctx = free_ctx;
        atomic_init(&s->refs, 1);
        *pp = s;
        sh->count++;
    }
    pthread_mutex_unlock(&sh->lock);
    return s;
}

void offload_ctxstate_hold(struct offload_ctxstate *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void offload_ctxstate_release(struct offload_ctxstate *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Out of the table already: its free came through us. */
    s->free_ctx(s->ctx);
    free(s);
}

void offload_ctxstate_free(void *ctx, offload_ctx_free_fn *free_ctx)
{
    size_t h;
    struct shard *sh;
    struct offload_ctxstate **pp, *s;

    if (ctx == NULL)
        return;
    h = hash_of(ctx);
    sh = shard_of(h);
    pthread_mutex_lock(&sh->lock);
    pp = slot_in(sh, h, ctx);
    s = *pp;
    if (s != NULL) {
        *pp = s->next;
        sh->count--;
    }
    pthread_mutex_unlock(&sh->lock);
    if (s == NULL) {
        free_ctx(ctx);
        return;
    }
    atomic_store_explicit(&s->freed, 1, memory_order_relaxed);
    offload_ctxstate_release(s);
}

size_t offload_ctxstate_count(void)
{
    size_t n = 0;

    for (size_t i = 0; i < SHARDS; i++) {
        struct shard *sh = shard_of(i);

        pthread_mutex_lock(&sh->lock);
        n += sh->count;
        pthread_mutex_unlock(&sh->lock);
    }
    return n;
}

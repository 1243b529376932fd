/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-context state (ctxstate.h): a chained hash of mutex-guarded shards,
 * read without a lock. Entries are never freed while the module lives:
 * the last release of one clears its |ctx| and puts it on a list of
 * spares that the next entry made takes first. A reader walking a chain
 * while a writer unlinks or recycles an entry may follow it into another
 * chain or onto the spares: it then ends on NULL or after OFFLOAD_CTXSTATE_WALK steps
 * without a match and asks again under the mutex.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "ctxstate.h"
#include "errors.h"

#define SHARDS 16

static struct shard {
    pthread_mutex_t lock;
    size_t count;
} shards[SHARDS];

struct offload_ctxstate *_Atomic offload_ctxstate_bucket[OFFLOAD_CTXSTATE_BUCKETS];

/*
 * Recycled entries, chained by |next|: pushed without a lock (a worker
 * drops the last reference of an abandoned request's context, also while
 * fork() waits for the workers with every shard locked), popped under
 * spare_lock, itself taken only under a shard's lock, so pops never race
 * each other (no ABA) and fork() never finds spare_lock held.
 */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct offload_ctxstate *_Atomic spares;

static pthread_once_t shards_once = PTHREAD_ONCE_INIT;

/* fork(): the child's copy of a lock must not be held by a thread it lacks. */
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

static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The pin lock is not taken before a fork: a worker may need it to drop
 * the last reference of a request while the accelerator's own handler
 * waits for the workers. After that handler no worker is inside it, so
 * the child starts it afresh.
 */
static void fork_child(void)
{
    fork_done();
    pthread_mutex_init(&pin_lock, NULL);
}

static void shards_init(void)
{
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
    pthread_atfork(fork_prepare, fork_done, fork_child);
}

/* The spares go with the module (no entry is in use once it is unmapped). */
static __attribute__((destructor)) void spares_free(void)
{
    struct offload_ctxstate *s, *next;

    for (s = atomic_exchange(&spares, NULL); s != NULL; s = next) {
        next = atomic_load_explicit(&s->next, memory_order_relaxed);
        free(s);
    }
}

static struct shard *shard_of(size_t h)
{
    pthread_once(&shards_once, shards_init);
    return &shards[h % SHARDS];
}

/* Under the shard's lock: the link that points at |ctx|'s entry, or at NULL. */
static struct offload_ctxstate *_Atomic *slot_in(size_t h, const void *ctx)
{
    struct offload_ctxstate *_Atomic *pp = &offload_ctxstate_bucket[h];
    struct offload_ctxstate *s;

    while ((s = atomic_load_explicit(pp, memory_order_relaxed)) != NULL &&
           atomic_load_explicit(&s->ctx, memory_order_relaxed) != ctx)
        pp = &s->next;
    return pp;
}

struct offload_ctxstate *offload_ctxstate_find_locked(void *ctx)
{
    size_t h = offload_ctxstate_hash(ctx);
    struct shard *sh = shard_of(h);
    struct offload_ctxstate *s;

    pthread_mutex_lock(&sh->lock);
    s = atomic_load_explicit(slot_in(h, ctx), memory_order_relaxed);
    pthread_mutex_unlock(&sh->lock);
    return s;
}

/* A spare, or a new entry; under a shard's lock. */
static struct offload_ctxstate *entry_new(void)
{
    struct offload_ctxstate *s;

    pthread_mutex_lock(&spare_lock);
    s = atomic_load_explicit(&spares, memory_order_acquire);
    while (s != NULL &&
           !atomic_compare_exchange_weak_explicit(
               &spares, &s, atomic_load_explicit(&s->next, memory_order_relaxed),
               memory_order_acquire, memory_order_acquire))
        ;
    pthread_mutex_unlock(&spare_lock);
    return s != NULL ? s : calloc(1, sizeof(*s));
}

struct offload_ctxstate *offload_ctxstate_get(void *ctx, offload_ctx_free_fn *free_ctx)
{
    size_t h = offload_ctxstate_hash(ctx);
    struct shard *sh = shard_of(h);
    struct offload_ctxstate *_Atomic *pp, *s;

    pthread_mutex_lock(&sh->lock);
    pp = slot_in(h, ctx);
    s = atomic_load_explicit(pp, memory_order_relaxed);
    if (s == NULL && (s = entry_new()) != NULL) {
        /* Field by field: a lock-free reader may still look at ctx and next. */
        s->free_ctx = free_ctx;
        atomic_store_explicit(&s->refs, 1, memory_order_relaxed);
        atomic_store_explicit(&s->freed, 0, memory_order_relaxed);
        s->cheap = 0;
        s->maxsig = 0;
        s->enc = 0;
        s->tls_cbc = 0;
        s->gen_inline = 0;
        s->key = NULL;
        s->ext = NULL;
        s->ext_free = NULL;
        s->ext_dup = NULL;
        atomic_store_explicit(&s->ctx, ctx, memory_order_relaxed);
        atomic_store_explicit(&s->next, NULL, memory_order_relaxed);
        atomic_store_explicit(pp, s,
                              memory_order_release); /* appended: the chain's end */
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
    struct offload_ctxstate *next;
    void *ctx;

    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    /*
     * Out of the table already: its free came through us. |ctx| is cleared
     * before the default frees the context, so a context made later at the
     * same address never matches this entry.
     */
    ctx = atomic_load_explicit(&s->ctx, memory_order_relaxed);
    atomic_store_explicit(&s->ctx, NULL, memory_order_release);
    s->free_ctx(ctx);
    offload_keyref_put(s->key); /* after the context that pointed at it */
    s->key = NULL;
    offload_ctxstate_set_ext(s, NULL, NULL, NULL);
    next = atomic_load_explicit(&spares, memory_order_relaxed);
    do
        atomic_store_explicit(&s->next, next, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&spares, &next, s, memory_order_release,
                                                  memory_order_relaxed));
}

void offload_ctxstate_free(void *ctx, offload_ctx_free_fn *free_ctx)
{
    size_t h;
    struct shard *sh;
    struct offload_ctxstate *_Atomic *pp, *s;

    if (ctx == NULL)
        return;
    h = offload_ctxstate_hash(ctx);
    sh = shard_of(h);
    pthread_mutex_lock(&sh->lock);
    pp = slot_in(h, ctx);
    s = atomic_load_explicit(pp, memory_order_relaxed);
    if (s != NULL) {
        /* Its own |next| stays: a reader standing on it walks on. */
        atomic_store_explicit(pp, atomic_load_explicit(&s->next, memory_order_relaxed),
                              memory_order_release);
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

void offload_ctxstate_set_ext(struct offload_ctxstate *s, void *ext,
                              void (*ext_free)(void *), void *(*ext_dup)(const void *))
{
    if (s->ext != NULL && s->ext_free != NULL)
        s->ext_free(s->ext);
    s->ext = ext;
    s->ext_free = ext_free;
    s->ext_dup = ext_dup;
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

void *offload_ctxstate_dup(void *ctx, void *dup, offload_ctx_free_fn *free_ctx,
                           int always, const char *what)
{
    struct offload_ctxstate *src = offload_ctxstate_find(ctx), *dst;

    if (dup == NULL || (src == NULL && !always))
        return dup;
    if ((dst = offload_ctxstate_get(dup, free_ctx)) == NULL) {
        free_ctx(dup);
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s", what);
        return NULL;
    }
    if (src != NULL) {
        dst->cheap = src->cheap;
        dst->maxsig = src->maxsig;
        dst->enc = src->enc;
        dst->tls_cbc = src->tls_cbc;
        dst->gen_inline = src->gen_inline;
        if (src->ext != NULL && src->ext_dup != NULL) {
            void *ext = src->ext_dup(src->ext);

            if (ext == NULL) {
                offload_ctxstate_free(dup, free_ctx);
                OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "%s", what);
                return NULL;
            }
            offload_ctxstate_set_ext(dst, ext, src->ext_free, src->ext_dup);
        }
        if (src->key != NULL) { /* the duplicate points at the same key */
            atomic_fetch_add_explicit(&src->key->refs, 1, memory_order_relaxed);
            offload_ctxstate_set_key(dst, src->key, 1);
        }
    }
    return dup;
}

/*
 * The pinned keys: a small chained hash under one mutex (a pin per init of
 * a post-quantum context, a look per free of such a key). |npins| lets a
 * free skip the mutex when nothing is pinned.
 */
#define PIN_BUCKETS 64

struct offload_keypin {
    struct offload_keypin *next;
    void *kd;
    unsigned pins;
    offload_ctx_free_fn *free_kd; /* set once the application freed the key */
};

static struct offload_keypin *pin_bucket[PIN_BUCKETS];
static _Atomic size_t npins;

static struct offload_keypin **pin_slot(void *kd)
{
    struct offload_keypin **pp = &pin_bucket[offload_ctxstate_hash(kd) % PIN_BUCKETS];

    while (*pp != NULL && (*pp)->kd != kd)
        pp = &(*pp)->next;
    return pp;
}

struct offload_keyref *offload_keyref_pin(void *kd)
{
    struct offload_keyref *k = calloc(1, sizeof(*k));
    struct offload_keypin **pp, *p;

    if (k == NULL)
        return NULL;
    pthread_once(&shards_once, shards_init); /* the fork handler */
    pthread_mutex_lock(&pin_lock);
    pp = pin_slot(kd);
    if ((p = *pp) == NULL && (p = calloc(1, sizeof(*p))) != NULL) {
        p->kd = kd;
        *pp = p;
        atomic_fetch_add_explicit(&npins, 1, memory_order_relaxed);
    }
    if (p != NULL)
        p->pins++;
    pthread_mutex_unlock(&pin_lock);
    if (p == NULL) {
        free(k);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->pin = p;
    return k;
}

static void pin_drop(struct offload_keypin *p)
{
    offload_ctx_free_fn *free_kd = NULL;

    pthread_mutex_lock(&pin_lock);
    if (--p->pins == 0) {
        *pin_slot(p->kd) = p->next;
        atomic_fetch_sub_explicit(&npins, 1, memory_order_relaxed);
        free_kd = p->free_kd;
    } else {
        p = NULL;
    }
    pthread_mutex_unlock(&pin_lock);
    if (p == NULL)
        return;
    if (free_kd != NULL)
        free_kd(p->kd);
    free(p);
}

void offload_keyref_put(struct offload_keyref *k)
{
    while (k != NULL &&
           atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1) {
        struct offload_keyref *older = k->older;

        pin_drop(k->pin);
        free(k);
        k = older;
    }
}

int offload_keyref_defer_free(void *kd, offload_ctx_free_fn *free_kd)
{
    struct offload_keypin *p;

    if (kd == NULL || atomic_load_explicit(&npins, memory_order_relaxed) == 0)
        return 0;
    pthread_mutex_lock(&pin_lock);
    if ((p = *pin_slot(kd)) != NULL)
        p->free_kd = free_kd;
    pthread_mutex_unlock(&pin_lock);
    return p != NULL;
}

void offload_ctxstate_set_key(struct offload_ctxstate *s, struct offload_keyref *k,
                              int ok)
{
    struct offload_keyref *old = s->key;

    if (k == NULL)
        return;
    s->key = k;
    if (old == NULL)
        return;
    if (ok || k->older != NULL) {
        offload_keyref_put(old);
        return;
    }
    k->older = old; /* kept, with its reference, until |k| goes */
}

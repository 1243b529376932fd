/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What we keep per operation context (or key generation context) of the
 * default provider's: those are opaque to us and handed to us as they
 * are, so our state lives beside them, in a table keyed by the context's
 * address. An entry is made when an init of ours sees the context, and
 * removed when its free (freectx, gen_cleanup) comes through us.
 *
 * The entry also keeps the context alive while requests use it: one
 * reference for the context itself (dropped by its free), one per
 * request in flight. The default's free runs when the last one goes, so
 * the worker of an abandoned job never touches a freed context.
 *
 * Entries are recycled, never freed while the module is mapped, so a
 * pointer to one is always safe to read: offload_ctxstate_find walks a
 * bucket's chain without a lock (a cipher init per TLS record comes here)
 * and takes the shard's mutex only when the walk does not end on the
 * entry. Making, removing and recycling entries take the mutex.
 */
#ifndef OFFLOAD_CTXSTATE_H
#define OFFLOAD_CTXSTATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The default's free function of a context. */
typedef void offload_ctx_free_fn(void *ctx);

/*
 * A pin on a key that the default's context points at without a
 * reference of its own (3.5's ML-KEM, hybrid, ML-DSA and SLH-DSA contexts
 * keep a bare pointer): the application may free its key while a request
 * of an abandoned job still uses the context. The key management's FREE
 * of such a key comes through us (keymgmt.c) and is deferred while a pin
 * holds the key: the key then goes with the last pin, after the contexts
 * that pointed at it. A context's pin is shared with its duplicates
 * (refs); |older| is a pin an init that failed may still have left in the
 * context. A pin, not a copy: 3.5.7's ML-KEM DUP zeroes a copy's public
 * seed and hash (and refuses private keys), so no copy is trusted.
 */
struct offload_keypin;
struct offload_keyref {
    _Atomic unsigned refs;
    struct offload_keypin *pin;
    struct offload_keyref *older;
};

/* A pin on key data |kd|, with one reference; NULL out of memory. */
struct offload_keyref *offload_keyref_pin(void *kd);
/* Drops one reference; the last unpins the key (and the older ones). */
void offload_keyref_put(struct offload_keyref *k);
/*
 * The key management frees |kd| with |free_kd|: 1 when a pin holds it
 * (the free runs with the last pin), 0 when the caller frees it now.
 */
int offload_keyref_defer_free(void *kd, offload_ctx_free_fn *free_kd);

struct offload_ctxstate {
    struct offload_ctxstate *_Atomic next; /* the table's chain, or the spares' */
    void *_Atomic ctx; /* the default's context (the table's key); NULL once recycled */
    offload_ctx_free_fn *free_ctx; /* its free: called with the last reference */
    _Atomic unsigned refs;         /* 1 while the context lives, + 1 per request */
    _Atomic int freed;             /* its free came through us: gone for the caller */
    /* The families' per-context state. */
    int cheap;      /* the key set at init is cheap (keymgmt.h) */
    size_t maxsig;  /* signature size for the key set at init; 0: ask the default */
    int enc;        /* ciphers: the last init encrypts */
    int tls_cbc;    /* ciphers: CBC with "tls-version" set, stays inline */
    int gen_inline; /* keygen: why it stays inline (enum offload_path); 0: it may go */
    struct offload_keyref *key; /* the pin on the key the context was given */
    /*
     * A family's own state of the context (signatures: a token key's,
     * p11_sign.h), freed with the context; carried to a duplicate by
     * |ext_dup| (NULL: not carried).
     */
    void *ext;
    void (*ext_free)(void *ext);
    void *(*ext_dup)(const void *ext);
};

/* Replaces |s|'s own state with |ext| (NULL: none), freeing the old one. */
void offload_ctxstate_set_ext(struct offload_ctxstate *s, void *ext,
                              void (*ext_free)(void *), void *(*ext_dup)(const void *));

/*
 * The entry of |ctx|, made (with |free_ctx|, nothing cheap, no size known)
 * when there is none; NULL only when out of memory. The pointer stays
 * valid until |ctx| is freed through offload_ctxstate_free.
 */
struct offload_ctxstate *offload_ctxstate_get(void *ctx, offload_ctx_free_fn *free_ctx);
/*
 * The entry of |ctx|, or NULL. No lock when the walk finds it: a caller
 * that legitimately holds |ctx| (not freed, not freed concurrently) can
 * only match its own entry, since an entry's |ctx| is cleared before the
 * default's free of the context it belonged to.
 */
static inline struct offload_ctxstate *offload_ctxstate_find(void *ctx);

/* ---- the lock-free walk, inline (a cipher init per TLS record) ---- */

#define OFFLOAD_CTXSTATE_BUCKETS 4096 /* bucket i is guarded by shard i % 16 */
#define OFFLOAD_CTXSTATE_WALK    8    /* lock-free steps before the mutex */

extern __attribute__((visibility("hidden"))) struct offload_ctxstate
    *_Atomic offload_ctxstate_bucket[OFFLOAD_CTXSTATE_BUCKETS];

/* The same lookup under the shard's mutex. */
struct offload_ctxstate *offload_ctxstate_find_locked(void *ctx);

/* Heap addresses: the low bits are alignment, the next ones vary. */
static inline size_t offload_ctxstate_hash(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h % OFFLOAD_CTXSTATE_BUCKETS;
}

static inline struct offload_ctxstate *offload_ctxstate_find(void *ctx)
{
    struct offload_ctxstate *s = atomic_load_explicit(
        &offload_ctxstate_bucket[offload_ctxstate_hash(ctx)], memory_order_acquire);

    for (int n = 0; s != NULL && n < OFFLOAD_CTXSTATE_WALK; n++) {
        if (atomic_load_explicit(&s->ctx, memory_order_acquire) == ctx)
            return s;
        s = atomic_load_explicit(&s->next, memory_order_acquire);
    }
    return offload_ctxstate_find_locked(ctx);
}

/*
 * A family's DUPCTX: |dup| is the default's duplicate of |ctx| (NULL when
 * that failed). Gives |dup| an entry with |ctx|'s per-context state (when
 * |ctx| has none: an entry anyway if |always|, else none) and returns
 * |dup|; out of memory, frees |dup|, raises "out of memory: <what>" and
 * returns NULL.
 */
void *offload_ctxstate_dup(void *ctx, void *dup, offload_ctx_free_fn *free_ctx,
                           int always, const char *what);

/* A request takes a reference on |s| (and so on its context). */
void offload_ctxstate_hold(struct offload_ctxstate *s);
/* Drops one; the last runs the default's free of the context. */
void offload_ctxstate_release(struct offload_ctxstate *s);

/*
 * The free of |ctx| came through us: its entry leaves the table and drops
 * the context's own reference; without an entry, |free_ctx| runs at once.
 */
void offload_ctxstate_free(void *ctx, offload_ctx_free_fn *free_ctx);

/*
 * The context of |s| was initialised with |k|'s key (the pin taken
 * over): |s| keeps it until the context is freed. The pin it had before
 * is dropped when the init succeeded (|ok|), else kept too: the context
 * may still point at that key.
 */
void offload_ctxstate_set_key(struct offload_ctxstate *s, struct offload_keyref *k,
                              int ok);

/* Entries in the table (tests, teardown's log). */
size_t offload_ctxstate_count(void);

#endif

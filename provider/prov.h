/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal header shared by every file of the provider: the provider
 * context, reason codes, error raising and counters (the debug log is
 * log.h, a leaf of its own).
 */
#ifndef OFFLOAD_PROV_H
#define OFFLOAD_PROV_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>

#include "errors.h"
#include "log.h"
#include "offload.h"

/*
 * Our provider context is the default provider's (soft.h): every function
 * of its that we forward gets the context it understands. Nothing of ours
 * reads it; the name stays for the cipher family, which keeps it.
 */
typedef struct offload_provctx OFFLOAD_PROVCTX;

/* 1 while the provider may serve requests (set by init, cleared by teardown). */
extern _Atomic int offload_running;
static inline int offload_is_running(void)
{
    return atomic_load_explicit(&offload_running, memory_order_relaxed);
}

/* Families, for the policy switch and the counters. */
enum offload_family {
    OFFLOAD_FAM_SIGNATURE,
    OFFLOAD_FAM_KEYEXCH,
    OFFLOAD_FAM_CIPHER,
    OFFLOAD_FAM_KEYGEN,
    OFFLOAD_FAM_KEM,
    OFFLOAD_FAM_ASYMCIPHER,
    OFFLOAD_FAM_COUNT
};
_Static_assert(OFFLOAD_FAM_COUNT == 6, "config.c names the families in this order");
extern const char *const offload_family_names[OFFLOAD_FAM_COUNT];

enum offload_stat {
    OFFLOAD_ST_OFFLOADED,
    OFFLOAD_ST_INLINE,
    OFFLOAD_ST_COMPLETED,
    OFFLOAD_ST_FAILED,
    OFFLOAD_ST_QUEUE_FULL,
    OFFLOAD_ST_PAUSES,
    OFFLOAD_ST_COUNT
};
extern const char *const offload_stat_names[OFFLOAD_ST_COUNT];

/* Process-wide counters: one cache line per family. */
struct offload_counters {
    _Alignas(64) _Atomic uint64_t v[OFFLOAD_ST_COUNT];
};
extern struct offload_counters offload_stats[OFFLOAD_FAM_COUNT];

static inline void offload_count(enum offload_family f, enum offload_stat s)
{
    atomic_fetch_add_explicit(&offload_stats[f].v[s], 1, memory_order_relaxed);
}

/*
 * The inline counter sits on the hot path of every 16-byte record: a plain
 * load and store, no locked add. Exact for one thread; threads racing on it
 * may lose an increment, never corrupt it.
 */
static inline void offload_count_inline(enum offload_family f)
{
    _Atomic uint64_t *c = &offload_stats[f].v[OFFLOAD_ST_INLINE];

    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Counters as provider params, and the stats file (stats.c). */
const OSSL_PARAM *offload_stats_gettable(void);
int offload_stats_get_param(OSSL_PARAM *p); /* 1 also when |p| is not ours */
void offload_stats_log(void);
void offload_stats_file_start(const char *path, int format); /* offload_stats_format */
void offload_stats_file_stop(void);

#endif

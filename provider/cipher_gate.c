/* SPDX-License-Identifier: Apache-2.0 */
/* The cipher gate (cipher_gate.h): two measured costs per class, the cheaper wins. */
#include <stdatomic.h>

#include "cipher_gate.h"

struct gate_cell {
    _Atomic uint32_t cost[2];    /* moving average, ns: [0] here, [1] offloaded; 0 none */
    _Atomic uint32_t samples[2]; /* counted up to OFFLOAD_GATE_WARM */
    _Atomic uint32_t prefer;     /* 0 undecided, 1 here, 2 offloaded: for the log */
};

#define GATE_CELLS (OFFLOAD_GATE_SLOTS * 2 * OFFLOAD_GATE_CLASSES)

static struct gate_cell cells[GATE_CELLS];
static int gate_on = 1;

/* Per thread, so that counting updates shares no cache line between threads. */
static _Thread_local __attribute__((tls_model("initial-exec"))) unsigned gate_tick;

void offload_gate_configure(int on)
{
    gate_on = on != 0;
}

int offload_gate_enabled(void)
{
    return gate_on;
}

/* The size class of |inl|: floor(log2), the last class taking every larger size. */
static unsigned class_of(size_t inl)
{
    unsigned c = inl > 1 ? 63u - (unsigned)__builtin_clzll((unsigned long long)inl) : 0;

    return c < OFFLOAD_GATE_CLASSES ? c : OFFLOAD_GATE_CLASSES - 1;
}

static unsigned cell_of(unsigned slot, int enc, size_t inl)
{
    unsigned c = class_of(inl);

    if (slot >= OFFLOAD_GATE_SLOTS)
        slot = OFFLOAD_GATE_SLOTS - 1;
    return (slot * 2 + (enc != 0)) * OFFLOAD_GATE_CLASSES + c;
}

void offload_gate_choose(unsigned slot, int enc, size_t inl,
                         struct offload_gate_pick *pick)
{
    struct gate_cell *g;
    uint32_t n_here, n_off, was;
    uint64_t here, off;
    unsigned tick = ++gate_tick;
    int better;

    pick->cell = cell_of(slot, enc, inl);
    pick->changed = 0;
    g = &cells[pick->cell];
    n_here = atomic_load_explicit(&g->samples[0], memory_order_relaxed);
    n_off = atomic_load_explicit(&g->samples[1], memory_order_relaxed);
    if (n_here < OFFLOAD_GATE_WARM || n_off < OFFLOAD_GATE_WARM) {
        /* Warming up: the path with fewer samples (offloading first). */
        pick->offload = n_off <= n_here;
        pick->timed = 1;
        return;
    }
    here = atomic_load_explicit(&g->cost[0], memory_order_relaxed);
    off = (uint64_t)atomic_load_explicit(&g->cost[1], memory_order_relaxed) +
          OFFLOAD_GATE_SWITCH_NS;
    was = atomic_load_explicit(&g->prefer, memory_order_relaxed);
    /*
     * A choice changes only when the other path is cheaper by a sixteenth:
     * two paths of about the same cost would otherwise swap at every
     * sample, and the log would say so each time.
     */
    if (was == 2)
        better = here + here / 16 >= off;
    else if (was == 1)
        better = off + here / 16 < here;
    else
        better = off < here;
    /* Read, and written only when it changes: no shared line bounces per update. */
    if (was != 1u + (unsigned)better) {
        atomic_store_explicit(&g->prefer, 1u + (unsigned)better, memory_order_relaxed);
        pick->changed = 1;
    }
    /* Exploring, unless the choice just changed (the log names the new one). */
    if (tick % OFFLOAD_GATE_EXPLORE == 0 && !pick->changed) {
        pick->offload = !better;
        pick->timed = 1;
        return;
    }
    pick->offload = better;
    pick->timed = tick % OFFLOAD_GATE_SAMPLE == 0;
}

void offload_gate_note(const struct offload_gate_pick *pick, uint64_t ns)
{
    struct gate_cell *g = &cells[pick->cell % GATE_CELLS];
    int k = pick->offload != 0;
    uint32_t old, v, n;

    v = ns > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)ns;
    if (v == 0)
        v = 1; /* 0 means "no estimate" */
    old = atomic_load_explicit(&g->cost[k], memory_order_relaxed);
    if (old != 0)
        v = old - old / 8 + v / 8;
    atomic_store_explicit(&g->cost[k], v, memory_order_relaxed);
    n = atomic_load_explicit(&g->samples[k], memory_order_relaxed);
    if (n < OFFLOAD_GATE_WARM)
        atomic_store_explicit(&g->samples[k], n + 1, memory_order_relaxed);
}

void offload_gate_estimates(unsigned slot, int enc, size_t inl, uint32_t *inline_ns,
                            uint32_t *offload_ns)
{
    struct gate_cell *g = &cells[cell_of(slot, enc, inl)];

    *inline_ns = atomic_load_explicit(&g->cost[0], memory_order_relaxed);
    *offload_ns = atomic_load_explicit(&g->cost[1], memory_order_relaxed);
}

void offload_gate_reset(void)
{
    unsigned i;
    int k;

    for (i = 0; i < GATE_CELLS; i++) {
        for (k = 0; k < 2; k++) {
            atomic_store_explicit(&cells[i].cost[k], 0, memory_order_relaxed);
            atomic_store_explicit(&cells[i].samples[k], 0, memory_order_relaxed);
        }
        atomic_store_explicit(&cells[i].prefer, 0, memory_order_relaxed);
    }
}

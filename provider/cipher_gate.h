/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cipher gate: whether a data update that may go to a worker should.
 *
 * Offloading a record costs the calling thread a request: the input
 * copied in, the output copied back from the worker's core, a wait fd
 * drained, a job switch. Running it costs the cipher. With AES-NI (and
 * VAES on OpenSSL 3.5) AES-GCM moves about 10 GB/s and a 16 KiB record
 * costs less than its two copies; AES-CBC encryption, or a CPU without
 * AES instructions, costs ten times more and pays for the request many
 * times over. Which side wins depends on the cipher, its direction, the
 * record's size and the machine, so the gate measures both paths on the
 * calling threads, per cipher slot, direction and power-of-two size
 * class, and takes the cheaper one:
 *
 *   - a class starts by alternating until each path has GATE_WARM samples
 *   - then every OFFLOAD_GATE_EXPLORE-th update takes the other path, so
 *     that its estimate follows the machine (a host that moves the vCPUs
 *     apart, a worker core shared with another process)
 *   - every OFFLOAD_GATE_SAMPLE-th update of the chosen path is timed too
 *
 * A sample is the calling thread's own time: for an offloaded update,
 * from building the request to returning the result, less the time the
 * job was paused (other jobs ran then). Estimates are moving averages
 * (weight 1/8) in shared cells updated without locks: a lost update
 * loses one sample, nothing else.
 *
 * The gate is the cipher_gate key (default 1); 0 offloads every update
 * at or above inline_below, as before the gate (the tests that count
 * offloaded records run that way).
 */
#ifndef OFFLOAD_CIPHER_GATE_H
#define OFFLOAD_CIPHER_GATE_H

#include <stddef.h>
#include <stdint.h>

/* Every how many updates of a warm class the other path is taken. */
#define OFFLOAD_GATE_EXPLORE 256
/* Every how many updates of the chosen path one is timed. */
#define OFFLOAD_GATE_SAMPLE 16
/* Samples of each path before a class decides. */
#define OFFLOAD_GATE_WARM 8
/* Cipher slots and size classes (2^0 .. 2^20 bytes and more). */
#define OFFLOAD_GATE_SLOTS   16
#define OFFLOAD_GATE_CLASSES 21
/*
 * What a job switch costs the thread beyond what the offloaded sample
 * sees (ASYNC_pause_job and the resuming ASYNC_start_job: about 130 ns
 * here, 2-vCPU Xeon; the application's poll of the wait fds comes on
 * top): added to the offloaded estimate before the two are compared.
 */
#define OFFLOAD_GATE_SWITCH_NS 300

/* What the gate says for one update. */
struct offload_gate_pick {
    unsigned cell; /* the class's index, for offload_gate_note */
    int offload;   /* 1: send it to a worker; 0: run it here */
    int timed;     /* 1: time it and offload_gate_note the result */
    int changed;   /* 1: the class's choice is new (for the debug log) */
};

/* The smallest update size of |pick|'s class (for the debug log). */
static inline size_t offload_gate_class_bytes(const struct offload_gate_pick *pick)
{
    return (size_t)1 << (pick->cell % OFFLOAD_GATE_CLASSES);
}

/* On (1, the default) or off; set by the provider core at its first init. */
void offload_gate_configure(int on);
int offload_gate_enabled(void);

/* The path for an update of |inl| bytes by cipher |slot| in direction |enc|. */
void offload_gate_choose(unsigned slot, int enc, size_t inl,
                         struct offload_gate_pick *pick);

/* One timed update of |pick|: |ns| of the calling thread's time. */
void offload_gate_note(const struct offload_gate_pick *pick, uint64_t ns);

/* The estimates of a class, 0 while none (unit tests and the debug log). */
void offload_gate_estimates(unsigned slot, int enc, size_t inl, uint32_t *inline_ns,
                            uint32_t *offload_ns);

/* Forgets every estimate (unit tests). */
void offload_gate_reset(void);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How far apart are CPUs 0 and 1? Prints the round trip of one cache line
 * between two threads pinned to them, and the time to copy 16 KiB that the
 * other CPU has just written (against a copy of cache-hot data).
 *
 * scripts/bench prints this with the machine: every offloaded request
 * crosses between the two CPUs twice, and a VM's two vCPUs may share a
 * cache one day and sit on different dies the next (measured here: 16 KiB
 * AES-GCM at 8 jobs 1.45x with a 16 KiB cross copy of about 250 ns, 1.0x
 * with one of 680 ns).
 *
 *   cc -O2 -pthread scripts/corelat.c -o corelat && ./corelat
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define ROUNDS 100000
#define COPIES 5000
#define BYTES  16384

static _Alignas(64) _Atomic int turn;
_Alignas(64) unsigned char shared[BYTES]; /* not static: the copies must happen */
_Alignas(64) unsigned char local[BYTES];

static int pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void wait_for(int v)
{
    while (atomic_load_explicit(&turn, memory_order_acquire) != v)
        ;
}

static void *partner(void *arg)
{
    int i;

    (void)arg;
    pin(1);
    for (i = 0; i < ROUNDS; i++) {
        wait_for(1);
        atomic_store_explicit(&turn, 0, memory_order_release);
    }
    for (i = 0; i < COPIES; i++) {
        wait_for(3);
        memset(shared, i, sizeof(shared));
        atomic_store_explicit(&turn, 2, memory_order_release);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    double t0, cross = 0, hot;
    int i;

    if (!pin(0) || pthread_create(&t, NULL, partner, NULL) != 0) {
        fprintf(stderr, "corelat: needs CPUs 0 and 1\n");
        return 1;
    }
    t0 = now();
    for (i = 0; i < ROUNDS; i++) {
        atomic_store_explicit(&turn, 1, memory_order_release);
        wait_for(0);
    }
    printf("cpu0<->cpu1: line round trip %.0f ns", (now() - t0) / ROUNDS * 1e9);
    for (i = 0; i < COPIES; i++) {
        atomic_store_explicit(&turn, 3, memory_order_release);
        wait_for(2);
        t0 = now();
        memcpy(local, shared, sizeof(local));
        __asm__ volatile("" ::: "memory");
        cross += now() - t0;
    }
    t0 = now();
    for (i = 0; i < COPIES; i++) {
        memcpy(local, shared, sizeof(local));
        __asm__ volatile("" ::: "memory");
    }
    hot = now() - t0;
    printf(", 16 KiB copy %.0f ns written by cpu1, %.0f ns hot\n", cross / COPIES * 1e9,
           hot / COPIES * 1e9);
    pthread_join(t, NULL);
    return 0;
}

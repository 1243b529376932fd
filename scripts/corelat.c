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
 * Last, what a one-job request pays for sleeping: CPU 0 wakes a thread that
 * sleeps on CPU 1 (an eventfd), that thread works 300 us and wakes CPU 0,
 * which slept in poll() meanwhile: the path of an offloaded RSA operation
 * with one job. The median round trip minus the 300 us is the price of two
 * wake-ups of idle CPUs; an offloaded request with one job pays it where the
 * default provider, computing inline, pays nothing.
 *
 *   cc -O2 -pthread scripts/corelat.c -o corelat && ./corelat
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS   100000
#define COPIES   5000
#define BYTES    16384
#define HANDOFFS 1500
#define WORK_S   300e-6

static _Alignas(64) _Atomic int turn;
static int go_fd, done_fd;                /* the hand-off's two eventfds */
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
    for (i = 0; i < HANDOFFS; i++) {
        uint64_t v;
        double t0;

        if (read(go_fd, &v, sizeof(v)) != sizeof(v)) /* sleeps until woken */
            break;
        t0 = now();
        while (now() - t0 < WORK_S)
            ;
        v = 1;
        if (write(done_fd, &v, sizeof(v)) != sizeof(v))
            break;
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(void)
{
    static double trip[HANDOFFS];
    pthread_t t;
    double t0, cross = 0, hot;
    int i;

    go_fd = eventfd(0, 0);
    done_fd = eventfd(0, 0);
    if (go_fd < 0 || done_fd < 0 || !pin(0) ||
        pthread_create(&t, NULL, partner, NULL) != 0) {
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
    for (i = 0; i < HANDOFFS; i++) {
        uint64_t v = 1;
        struct pollfd p = {.fd = done_fd, .events = POLLIN};

        t0 = now();
        if (write(go_fd, &v, sizeof(v)) != sizeof(v) || poll(&p, 1, -1) != 1 ||
            read(done_fd, &v, sizeof(v)) != sizeof(v))
            break;
        trip[i] = now() - t0 - WORK_S;
    }
    if (i == HANDOFFS) {
        qsort(trip, HANDOFFS, sizeof(trip[0]), by_value);
        printf("cpu0->cpu1->cpu0 sleeping hand-off (300 us of work): +%.1f us median, "
               "+%.1f us p90\n",
               trip[HANDOFFS / 2] * 1e6, trip[HANDOFFS * 9 / 10] * 1e6);
    }
    pthread_join(t, NULL);
    return 0;
}

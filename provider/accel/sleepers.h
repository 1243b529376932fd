/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Threads that sleep until there is work, woken by a submitter that must
 * never block: a counting semaphore plus two counters kept under the
 * caller's mutex.
 *
 * Why not a condition variable: glibc's pthread_cond_signal() may itself
 * wait (FUTEX_WAIT) until threads it woke earlier have run far enough to
 * leave the condition's old group. The submitter is the TLS server's event
 * loop; a woken worker that has not yet been scheduled made it sleep up to
 * 5 ms inside pthread_cond_signal (strace -k of HAProxy under a handshake
 * storm: 15 such waits in 6,000 handshakes, each stalling every
 * connection). sem_post() never waits for anybody.
 *
 * |asleep| counts threads inside offload_sleepers_wait(), |woken| the posts
 * they have not yet consumed; asleep - woken are the threads a wake-up can
 * still reach, so a post is never wasted on a thread already woken.
 */
#ifndef OFFLOAD_SLEEPERS_H
#define OFFLOAD_SLEEPERS_H

#include <pthread.h>
#include <semaphore.h>

struct offload_sleepers {
    sem_t sem;
    unsigned asleep; /* under the caller's mutex */
    unsigned woken;  /* posted, not yet consumed; under the caller's mutex */
};

/*
 * Sets up (or, in a fork()ed child, sets up again) with nobody asleep.
 * Cannot fail: sem_init() refuses only an initial value above
 * SEM_VALUE_MAX or a process-shared semaphore the system lacks.
 */
void offload_sleepers_init(struct offload_sleepers *s);

/* With |lock| held: sleeps until woken; returns with |lock| held again. */
void offload_sleepers_wait(struct offload_sleepers *s, pthread_mutex_t *lock);

/*
 * With the mutex held: wake-ups posted (or claimed) that no thread has
 * consumed yet, i.e. threads already on their way to look for work.
 */
unsigned offload_sleepers_woken(const struct offload_sleepers *s);

/*
 * With the mutex held: claims up to |n| of the idle threads and returns
 * how many; offload_sleepers_post() must then post that many, which may
 * be done after the mutex is released (the woken thread then does not
 * wake only to wait for the mutex).
 */
unsigned offload_sleepers_claim(struct offload_sleepers *s, unsigned n);
void offload_sleepers_post(struct offload_sleepers *s, unsigned n);

/*
 * With the mutex held: wakes every thread asleep. For the rare paths
 * (stop, after fork); the threads then wait for the mutex, which is fine.
 */
void offload_sleepers_wake_all(struct offload_sleepers *s);

#endif

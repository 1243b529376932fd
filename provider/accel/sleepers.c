/* SPDX-License-Identifier: Apache-2.0 */
/* Sleeping threads woken without blocking the waker (see sleepers.h). */
#include <errno.h>
#include <limits.h>

#include "accel/sleepers.h"

void offload_sleepers_init(struct offload_sleepers *s)
{
    s->asleep = s->woken = 0;
    sem_init(&s->sem, 0, 0);
}

void offload_sleepers_wait(struct offload_sleepers *s, pthread_mutex_t *lock)
{
    s->asleep++;
    pthread_mutex_unlock(lock);
    while (sem_wait(&s->sem) != 0 && errno == EINTR)
        ;
    pthread_mutex_lock(lock);
    s->asleep--;
    s->woken--;
}

unsigned offload_sleepers_woken(const struct offload_sleepers *s)
{
    return s->woken;
}

unsigned offload_sleepers_claim(struct offload_sleepers *s, unsigned n)
{
    unsigned idle = s->asleep - s->woken;

    if (n > idle)
        n = idle;
    s->woken += n;
    return n;
}

void offload_sleepers_post(struct offload_sleepers *s, unsigned n)
{
    while (n-- > 0)
        sem_post(&s->sem);
}

void offload_sleepers_wake_all(struct offload_sleepers *s)
{
    offload_sleepers_post(s, offload_sleepers_claim(s, UINT_MAX));
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token thread pool (pkcs11.h): pkcs11_threads threads that run the
 * token calls of paused jobs. They are not the CPU workers (accel.c): a
 * token call may wait for a network round trip, and a thread waiting
 * there costs no CPU, so there are many of them (32 by default) and a
 * request never waits behind a CPU-bound one. The requests are the
 * workers' (struct offload_req): completion, errors and the fd or
 * callback wake-up are offload_req_complete's, as for a worker.
 *
 * Threads start at the first submit. fork(): the child forgets the
 * parent's threads and queue (their jobs are the parent's) and starts its
 * own at its first submit.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include "accel/accel.h"
#include "accel/sleepers.h"
#include "accel/wake.h"
#include "pkcs11.h"

#define POOL_QUEUE 4096

static struct {
    pthread_mutex_t lock;
    struct offload_sleepers idle; /* threads without a request (sleepers.h) */
    struct offload_queue q;
    int have_q;
    pthread_t *threads;
    unsigned nthreads, want;
    int stopping;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER, .want = 32};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void *token_main(void *arg)
{
    sigset_t pipe;

    (void)arg;
    /* A remote module's write to a server that has gone fails with EPIPE here (pkcs11.h).
     */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    pthread_mutex_lock(&T.lock);
    for (;;) {
        struct offload_req *req = offload_queue_pop(&T.q);
        uint32_t st;

        if (req == NULL) {
            if (T.stopping)
                break;
            offload_sleepers_wait(&T.idle, &T.lock);
            continue;
        }
        st = atomic_load(&req->state);
        while (!atomic_compare_exchange_weak(&req->state, &st,
                                             (st & REQ_SLEEPER) | REQ_RUNNING))
            ;
        pthread_mutex_unlock(&T.lock);
        offload_req_execute(req);
        offload_count(req->family, OFFLOAD_ST_COMPLETED);
        if (req->result <= 0)
            offload_count(req->family, OFFLOAD_ST_FAILED);
        offload_req_complete(req);
        offload_req_put(req);
        pthread_mutex_lock(&T.lock);
    }
    pthread_mutex_unlock(&T.lock);
    return NULL;
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&T.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&T.lock);
}

static void atfork_child(void)
{
    pthread_mutex_init(&T.lock, NULL);
    offload_sleepers_init(&T.idle);
    /* The parent's requests: never run here, their memory dropped with the slots. */
    T.q.head = T.q.count = 0;
    free(T.threads);
    T.threads = NULL;
    T.nthreads = 0;
}

static void register_atfork(void)
{
    offload_sleepers_init(&T.idle);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void offload_p11_pool_configure(unsigned threads)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&T.lock);
    T.want = threads > 0 ? threads : 1;
    T.stopping = 0;
    pthread_mutex_unlock(&T.lock);
}

/* With T.lock held. */
static int start(void)
{
    unsigned i;

    if (!T.have_q) {
        if (!offload_queue_init(&T.q, POOL_QUEUE))
            return 0;
        T.have_q = 1;
    }
    if ((T.threads = calloc(T.want, sizeof(*T.threads))) == NULL)
        return 0;
    for (i = 0; i < T.want; i++)
        if (pthread_create(&T.threads[i], NULL, token_main, NULL) != 0)
            break;
    T.nthreads = i;
    if (i == 0) {
        free(T.threads);
        T.threads = NULL;
        return 0;
    }
    OFFLOAD_DEBUG("pkcs11: started %u token threads", i);
    return 1;
}

int offload_p11_pool_submit(struct offload_req *req)
{
    unsigned wake;

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&T.lock);
    if (T.stopping || (T.nthreads == 0 && !start())) {
        pthread_mutex_unlock(&T.lock);
        return 0;
    }
    atomic_store_explicit(&req->state, REQ_QUEUED, memory_order_relaxed);
    req->fork_gen = atomic_load_explicit(&offload_fork_gen, memory_order_relaxed);
    if (!offload_queue_push(&T.q, req)) {
        pthread_mutex_unlock(&T.lock);
        atomic_store_explicit(&req->state, REQ_NEW, memory_order_relaxed);
        offload_count(req->family, OFFLOAD_ST_QUEUE_FULL);
        return 0;
    }
    offload_req_up(req); /* the token thread's reference */
    wake = T.q.count > offload_sleepers_woken(&T.idle)
               ? offload_sleepers_claim(&T.idle, 1)
               : 0;
    pthread_mutex_unlock(&T.lock);
    offload_sleepers_post(&T.idle, wake);
    return 1;
}

int offload_p11_pool_take_back(struct offload_req *req)
{
    int taken = 0;

    pthread_mutex_lock(&T.lock);
    if ((atomic_load(&req->state) & REQ_STATE_MASK) == REQ_QUEUED &&
        offload_queue_remove(&T.q, req)) {
        atomic_store(&req->state, REQ_TAKEN);
        taken = 1;
    }
    pthread_mutex_unlock(&T.lock);
    if (taken)
        offload_req_put(req);
    return taken;
}

void offload_p11_pool_stop(void)
{
    pthread_t *threads;
    unsigned i, n;

    pthread_mutex_lock(&T.lock);
    T.stopping = 1; /* the threads drain the queue, then exit */
    offload_sleepers_wake_all(&T.idle);
    threads = T.threads;
    n = T.nthreads;
    T.threads = NULL;
    T.nthreads = 0;
    pthread_mutex_unlock(&T.lock);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    pthread_mutex_lock(&T.lock);
    if (T.have_q)
        offload_queue_fini(&T.q);
    T.have_q = 0;
    pthread_mutex_unlock(&T.lock);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker threads and the shared bounded queue.
 *
 * Workers start at the first submit (so a fork()ed child gets fresh ones),
 * take one request at a time and never sleep while the queue holds work.
 * When it empties, one worker busy-waits for spin_us before sleeping: a
 * thread woken on the other core costs ~90 us here, more than an ECDSA
 * signature, while a job that just completed usually submits again
 * within a few microseconds.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accel/accel.h"
#include "accel/sleepers.h"
#include "accel/wake.h"

static struct {
    pthread_mutex_t lock;
    struct offload_sleepers idle; /* workers sleep here (sleepers.h: not a condvar) */
    pthread_cond_t quiet;         /* fork() waits here for running to reach 0 */
    int forking;
    struct offload_queue q;
    _Atomic size_t qlen; /* q.count, readable without the lock by spinners */
    pthread_t *threads;
    unsigned nthreads;
    unsigned nspin;
    int stopping;
    unsigned users;
    struct offload_accel_config cfg; /* set by the first acquire */
    _Atomic unsigned in_flight;      /* submitted, not yet completed */
    _Atomic unsigned outstanding;    /* submitted, result not yet collected by its job */
    size_t high_water;               /* survives queue re-creation */
    unsigned running;                /* workers executing a request */
    unsigned costly;                 /* of them, on an expensive one (RSA) */
    struct offload_req *done[16];    /* completions held for a batched signal */
    unsigned ndone;
    uint64_t done_first_ns;
} A = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .quiet = PTHREAD_COND_INITIALIZER,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

uint64_t offload_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Called with A.lock held and the queue empty; returns with it held.
 * A job whose result has been signalled will soon submit again, so up to
 * one worker per such job busy-waits (yielding the core to any runnable
 * thread, such as the event loop) before going to sleep. Jobs
 * whose request is still queued or running do not count, and a worker
 * that just finished an expensive request (RSA) does not spin: its job
 * comes back only after the event loop's own wake-up, and spinning through
 * that only took the core from the event loop (-async_jobs 1 rsa2048 went
 * from 0.93x to 0.89x; ECDSA and X25519 at 32 jobs gain nothing either way).
 */
static void worker_idle(int after_cheap)
{
    unsigned out = atomic_load_explicit(&A.outstanding, memory_order_relaxed);
    unsigned busy = atomic_load_explicit(&A.in_flight, memory_order_relaxed);
    unsigned waiting = out > busy ? out - busy : 0;

    if (after_cheap && A.cfg.spin_us > 0 && A.nspin < waiting) {
        uint64_t deadline = offload_now_ns() + (uint64_t)A.cfg.spin_us * 1000u;
        unsigned i = 0;

        A.nspin++;
        pthread_mutex_unlock(&A.lock);
        while (atomic_load_explicit(&A.qlen, memory_order_relaxed) == 0) {
            cpu_relax();
            if ((++i & 63) == 0) {
                if (offload_now_ns() > deadline)
                    break;
                sched_yield();
            }
        }
        pthread_mutex_lock(&A.lock);
        A.nspin--;
        if (A.q.count > 0 || A.stopping)
            return;
    }
    offload_sleepers_wait(&A.idle, &A.lock);
}

/*
 * Completions are signalled in batches shared by all workers: they are
 * held until BATCH_MAX are held, the oldest has waited BATCH_AGE_NS, or
 * the queue is dry and no worker is still running a cheap one (whoever
 * finishes last signals for everybody). The event loop then wakes once for
 * several jobs instead of once per job — its wake-up and its poll over
 * every job's fd cost more than an ECDSA signature. An expensive request
 * (RSA) is signalled as soon as it completes, and held ones are signalled
 * before one runs, unless the queue is deep (see deep()). A worker that
 * goes dry while the others run RSA signatures signals at once: nobody
 * else would before a signature is done, up to a millisecond on a shared
 * core, and the event loop waiting for the held job may have nothing else
 * to do.
 *
 * A cipher record (req->prompt) is never held: its job's next record waits
 * on it, and the event loop is awake, running records of its own while the
 * workers are busy (busy_inline). Held 16 KiB AES-GCM completions left it
 * with no job to resume and asleep in select(): 0.65x the default provider
 * at 8 jobs; signalled at once, 1.47x.
 */
#define BATCH_MAX    16
#define BATCH_AGE_NS 100000u

/*
 * A worker with work queued gives its core away (sched_yield) once every
 * YIELD_NS of running. The kernel does not preempt a running thread for
 * one that was already runnable (only, at best, for one that just woke):
 * perf sched timehist showed HAProxy's event loop, preempted at a tick,
 * runnable for 1.2 ms behind a worker signing request after request — at
 * worker_policy = idle as well, since a SCHED_IDLE thread that has been
 * picked runs out its slice. Yielding between requests bounds that wait
 * by one request (an RSA-2048 signature, 0.2 ms) and costs one system
 * call per YIELD_NS.
 */
#define YIELD_NS 100000u

struct batch {
    struct offload_req *req[BATCH_MAX];
    unsigned n;
};

/*
 * With A.lock held: every worker has another request waiting behind the one
 * it runs, so holding a completion delays no submission the workers could
 * start sooner — expensive completions are then batched as well.
 */
static int deep(void)
{
    return A.q.count >= A.nthreads;
}

/* With A.lock held: moves the held completions into |b|. */
static void batch_take(struct batch *b)
{
    memcpy(b->req, A.done, A.ndone * sizeof(*b->req));
    b->n = A.ndone;
    A.ndone = 0;
}

/* Without the lock: wakes every submitter in |b|. */
static void batch_flush(struct batch *b)
{
    unsigned i;

    unsigned done[OFFLOAD_FAM_COUNT] = {0};
    int f;

    /* Counted before anyone is woken, once per batch (lines shared with submitters). */
    for (i = 0; i < b->n; i++)
        done[b->req[i]->family]++;
    for (f = 0; f < OFFLOAD_FAM_COUNT; f++)
        if (done[f] > 0)
            atomic_fetch_add_explicit(&offload_stats[f].v[OFFLOAD_ST_COMPLETED], done[f],
                                      memory_order_relaxed);
    atomic_fetch_sub_explicit(&A.in_flight, b->n, memory_order_relaxed);
    for (i = 0; i < b->n; i++) {
        offload_req_complete(b->req[i]);
        offload_req_put(b->req[i]);
    }
    b->n = 0;
}

/* A worker stops running (a request, or a flush): fork() may be waiting for that. */
static void running_done(void)
{
    if (--A.running == 0 && A.forking)
        pthread_cond_signal(&A.quiet);
}

/* With A.lock held; returns with it held. Counts as running: it takes waiter locks. */
static void signal_held(void)
{
    struct batch b;

    batch_take(&b);
    A.running++;
    pthread_mutex_unlock(&A.lock);
    batch_flush(&b);
    pthread_mutex_lock(&A.lock);
    running_done();
}

static void *worker_main(void *arg)
{
    int last_cheap = 1;
    uint64_t yielded = 0;

    (void)arg;
    /*
     * Linux nices threads one by one (a thread id for PRIO_PROCESS): the
     * caller keeps its own priority, and its event loop preempts a worker
     * at once instead of waiting behind it for a scheduler slice. A value
     * that cannot be set (a lower one without CAP_SYS_NICE) is logged.
     */
    if (A.cfg.nice > 0 &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)A.cfg.nice) != 0)
        OFFLOAD_DEBUG("worker: cannot set nice %u", A.cfg.nice);
    /*
     * SCHED_IDLE, per thread as well: any other thread that wakes on this
     * core preempts the worker at once (the kernel checks it on wake-up,
     * CFS and EEVDF alike), where a nice value only shortens its share.
     */
    if (A.cfg.idle_policy &&
        sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){.sched_priority = 0}) !=
            0)
        OFFLOAD_DEBUG("worker: cannot set SCHED_IDLE");
    pthread_mutex_lock(&A.lock);
    for (;;) {
        struct offload_req *req;
        uint32_t st;
        uint64_t t;

        if (A.forking) { /* hold still: no lock of libcrypto's or ours may be taken */
            offload_sleepers_wait(&A.idle, &A.lock);
            continue;
        }
        req = offload_queue_pop(&A.q);
        if (req == NULL) {
            /*
             * Dry: signal what is held unless a running worker will; when
             * stopping, whoever leaves first takes it.
             */
            if (A.ndone > 0 && (A.running == A.costly || A.stopping ||
                                offload_now_ns() - A.done_first_ns >= BATCH_AGE_NS)) {
                signal_held();
                continue;
            }
            if (A.stopping)
                break;
            worker_idle(last_cheap);
            continue;
        }
        atomic_store_explicit(&A.qlen, A.q.count, memory_order_relaxed);
        /* Keep a sleeper's bit; the submitter can no longer take it back. */
        st = atomic_load(&req->state);
        while (!atomic_compare_exchange_weak(&req->state, &st,
                                             (st & REQ_SLEEPER) | REQ_RUNNING))
            ;
        /* Nobody waits behind an expensive request for their completions. */
        if (!req->cheap && A.ndone > 0 && !deep())
            signal_held();
        A.running++;
        A.costly += !req->cheap;
        pthread_mutex_unlock(&A.lock);

        offload_req_execute(req);
        if (req->result <= 0)
            offload_count(req->family, OFFLOAD_ST_FAILED);
        t = offload_now_ns();
        last_cheap = req->cheap;

        pthread_mutex_lock(&A.lock);
        A.costly -= !req->cheap;
        running_done();
        if (A.ndone == 0)
            A.done_first_ns = t;
        A.done[A.ndone++] = req;
        if ((!req->cheap && !deep()) || req->prompt || A.ndone == BATCH_MAX ||
            t - A.done_first_ns >= BATCH_AGE_NS || (A.q.count == 0 && A.running == 0))
            signal_held();
        /* Back to back with the next request: the core goes first (YIELD_NS). */
        if (A.q.count > 0 && t - yielded >= YIELD_NS) {
            pthread_mutex_unlock(&A.lock);
            sched_yield();
            yielded = offload_now_ns();
            pthread_mutex_lock(&A.lock);
        }
    }
    pthread_mutex_unlock(&A.lock);
    OFFLOAD_DEBUG("worker exits");
    return NULL;
}

/*
 * fork(): the child inherits only the forking thread, and every lock as it
 * was. So before forking, wait until no worker is inside a request (which
 * may hold libcrypto's locks) or a wake-up (which holds a waiter's lock),
 * and keep them out until the fork is done. In the child, forget the
 * workers: new ones start at its first request.
 */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&A.lock);
    A.forking = 1;
    while (A.running > 0)
        pthread_cond_wait(&A.quiet, &A.lock);
}

static void atfork_parent(void)
{
    A.forking = 0;
    offload_sleepers_wake_all(&A.idle);
    pthread_mutex_unlock(&A.lock);
}

static void atfork_child(void)
{
    pthread_mutex_init(&A.lock, NULL);
    offload_sleepers_init(&A.idle); /* the parent's sleepers are not here */
    pthread_cond_init(&A.quiet, NULL);
    A.forking = 0;
    /*
     * Queued requests belong to the parent's jobs: the child never runs
     * them (their eventfds are the parent's). Their memory is dropped with
     * the queue's slots, not freed: it is shared with nothing here.
     */
    A.q.head = A.q.count = 0;
    atomic_store(&A.qlen, 0);
    free(A.threads);
    A.threads = NULL;
    A.nthreads = A.nspin = A.running = A.costly = A.ndone = 0;
    atomic_store(&A.in_flight, 0);
    atomic_store(&A.outstanding, 0);
    atomic_fetch_add(&offload_fork_gen, 1);
}

/*
 * exit() with jobs still paused on us: OpenSSL's own atexit cleanup will
 * not tear us down (their contexts still hold the provider) but will free
 * what the workers use. Our handler, registered after OpenSSL's, runs
 * first: it drains the queue and joins the workers; later work runs inline.
 */
static void accel_atexit(void)
{
    pthread_t *threads;
    unsigned i, n;

    pthread_mutex_lock(&A.lock);
    A.stopping = 1;
    offload_sleepers_wake_all(&A.idle);
    threads = A.threads;
    n = A.nthreads;
    A.threads = NULL;
    A.nthreads = 0;
    pthread_mutex_unlock(&A.lock);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    offload_stats_file_stop();
}

static void register_atfork(void)
{
    offload_sleepers_init(&A.idle);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atexit(accel_atexit);
}

int offload_accel_acquire(const struct offload_accel_config *cfg)
{
    int ok = 1;

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&A.lock);
    if (A.users == 0) {
        A.cfg = *cfg;
        ok = offload_queue_init(&A.q, A.cfg.queue_depth);
        A.stopping = 0;
    }
    if (ok)
        A.users++;
    pthread_mutex_unlock(&A.lock);
    return ok;
}

void offload_accel_release(void)
{
    pthread_t *threads;
    unsigned i, n;

    pthread_mutex_lock(&A.lock);
    if (A.users == 0 || --A.users > 0) {
        pthread_mutex_unlock(&A.lock);
        return;
    }
    /* Last user: workers drain the queue, then exit. */
    A.stopping = 1;
    offload_sleepers_wake_all(&A.idle);
    threads = A.threads;
    n = A.nthreads;
    A.threads = NULL;
    A.nthreads = 0;
    pthread_mutex_unlock(&A.lock);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    pthread_mutex_lock(&A.lock);
    if (A.q.high_water > A.high_water)
        A.high_water = A.q.high_water;
    offload_queue_fini(&A.q);
    pthread_mutex_unlock(&A.lock);
    OFFLOAD_DEBUG("accelerator stopped, %u workers joined", n);
}

/* With A.lock held. */
static int start_workers(void)
{
    unsigned i, n = A.cfg.workers;

    A.threads = calloc(n, sizeof(*A.threads));
    if (A.threads == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        if (pthread_create(&A.threads[i], NULL, worker_main, NULL) != 0)
            break;
    }
    A.nthreads = i;
    if (i == 0) {
        free(A.threads);
        A.threads = NULL;
        return 0;
    }
    OFFLOAD_DEBUG("started %u workers, queue depth %zu", i, A.q.cap);
    return 1;
}

int offload_accel_submit(struct offload_req *req)
{
    unsigned wake = 0;

    pthread_mutex_lock(&A.lock);
    if (A.stopping || A.users == 0 || (A.nthreads == 0 && !start_workers())) {
        pthread_mutex_unlock(&A.lock);
        return 0;
    }
    atomic_store_explicit(&req->state, REQ_QUEUED, memory_order_relaxed);
    req->fork_gen = atomic_load_explicit(&offload_fork_gen, memory_order_relaxed);
    if (!offload_queue_push(&A.q, req)) {
        pthread_mutex_unlock(&A.lock);
        atomic_store_explicit(&req->state, REQ_NEW, memory_order_relaxed);
        offload_count(req->family, OFFLOAD_ST_QUEUE_FULL);
        return 0;
    }
    offload_req_up(req); /* the worker's reference */
    atomic_store_explicit(&A.qlen, A.q.count, memory_order_relaxed);
    atomic_fetch_add_explicit(&A.in_flight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&A.outstanding, 1, memory_order_relaxed);
    /* A spinning worker, or one already woken, will take it otherwise. */
    if (A.q.count > A.nspin + offload_sleepers_woken(&A.idle))
        wake = offload_sleepers_claim(&A.idle, 1);
    pthread_mutex_unlock(&A.lock);
    offload_sleepers_post(&A.idle, wake);
    return 1;
}

int offload_accel_take_back(struct offload_req *req)
{
    int taken = 0;

    pthread_mutex_lock(&A.lock);
    if ((atomic_load(&req->state) & REQ_STATE_MASK) == REQ_QUEUED &&
        offload_queue_remove(&A.q, req)) {
        atomic_store(&req->state, REQ_TAKEN);
        atomic_store_explicit(&A.qlen, A.q.count, memory_order_relaxed);
        atomic_fetch_sub_explicit(&A.in_flight, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&A.outstanding, 1, memory_order_relaxed);
        taken = 1;
    }
    pthread_mutex_unlock(&A.lock);
    if (taken)
        offload_req_put(req); /* the worker's reference, never used */
    return taken;
}

void offload_accel_collected(void)
{
    atomic_fetch_sub_explicit(&A.outstanding, 1, memory_order_relaxed);
}

unsigned offload_accel_outstanding(void)
{
    return atomic_load_explicit(&A.outstanding, memory_order_relaxed);
}

unsigned offload_accel_queued(void)
{
    return (unsigned)atomic_load_explicit(&A.qlen, memory_order_relaxed);
}

unsigned offload_accel_in_flight(void)
{
    return atomic_load_explicit(&A.in_flight, memory_order_relaxed);
}

size_t offload_accel_high_water(void)
{
    size_t hw;

    pthread_mutex_lock(&A.lock);
    hw = A.q.high_water > A.high_water ? A.q.high_water : A.high_water;
    pthread_mutex_unlock(&A.lock);
    return hw;
}

unsigned offload_accel_workers(void)
{
    unsigned n;

    pthread_mutex_lock(&A.lock);
    n = A.nthreads;
    pthread_mutex_unlock(&A.lock);
    return n;
}

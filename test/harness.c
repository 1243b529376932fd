/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/err.h>

#include "harness.h"

_Thread_local struct h_wait_stats h_wait;

struct hjob *hjobs_new(size_t n)
{
    struct hjob *jobs = calloc(n, sizeof(*jobs));
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++) {
        jobs[i].index = i;
        jobs[i].fd = -1;
        jobs[i].wctx = ASYNC_WAIT_CTX_new();
        if (jobs[i].wctx == NULL) {
            hjobs_free(jobs, i);
            return NULL;
        }
    }
    return jobs;
}

void hjobs_free(struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++)
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
    free(jobs);
}

static int trampoline(void *arg)
{
    struct hjob *j = *(struct hjob **)arg;

    return j->fn(j->arg);
}

int h_wait_fd(ASYNC_WAIT_CTX *wctx)
{
    OSSL_ASYNC_FD fd[2];
    size_t n = 0;

    if (!ASYNC_WAIT_CTX_get_all_fds(wctx, NULL, &n) || n == 0)
        return -1;
    if (n != 1 || !ASYNC_WAIT_CTX_get_all_fds(wctx, fd, &n))
        return -2;
    return fd[0];
}

int hjob_step(struct hjob *j)
{
    int r;

    if (j->done) {
        j->done = 0;
        j->ret = 0;
    }
    r = ASYNC_start_job(&j->job, j->wctx, &j->ret, trampoline, &j, sizeof(j));
    if (r == ASYNC_PAUSE) {
        int fd = h_wait_fd(j->wctx);

        j->started = 1;
        j->pauses++;
        if (fd < 0 || (j->fd >= 0 && fd != j->fd))
            j->fd_changed = 1;
        j->fd = fd;
    } else if (r == ASYNC_FINISH) {
        j->started = 0;
        j->done = 1;
        j->job = NULL;
        j->runs++;
    }
    return r;
}

/*
 * |j| stopped with |r| (not a pause): -1 on an error, 1 when |on_done|
 * starts it again, 0 when it is done for good.
 */
static int after_stop(struct hjob *j, int r, h_on_done_fn *on_done, void *ctx)
{
    int again;

    if (r != ASYNC_FINISH) {
        fprintf(stderr, "harness: ASYNC_start_job of job %zu: %s\n", j->index,
                r == ASYNC_NO_JOBS ? "ASYNC_NO_JOBS" : "ASYNC_ERR");
        ERR_print_errors_fp(stderr);
        return -1;
    }
    again = on_done != NULL ? on_done(j, ctx) : 0;
    return again < 0 ? -1 : again != 0;
}

/* Steps |j| until it pauses or finishes for good; -1 on error. */
static int advance(struct hjob *j, h_on_done_fn *on_done, void *ctx)
{
    for (;;) {
        int r = hjob_step(j);

        if (r == ASYNC_PAUSE) {
            if (j->fd < 0) {
                fprintf(stderr, "harness: job %zu paused with %s wait fd\n", j->index,
                        j->fd == -1 ? "no" : "more than one");
                return -1;
            }
            return ASYNC_PAUSE;
        }
        r = after_stop(j, r, on_done, ctx);
        if (r <= 0)
            return r < 0 ? -1 : ASYNC_FINISH;
    }
}

int h_run_fd_loop(struct hjob *jobs, size_t n, int timeout_ms, h_on_done_fn *on_done,
                  void *ctx)
{
    struct pollfd *pfd = calloc(n > 0 ? n : 1, sizeof(*pfd));
    size_t *who = calloc(n > 0 ? n : 1, sizeof(*who));
    size_t i, pending = 0;
    int ok = 0;

    if (pfd == NULL || who == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        int r;

        if (jobs[i].started) {
            pending++;
            continue;
        }
        if (jobs[i].done)
            continue;
        r = advance(&jobs[i], on_done, ctx);
        if (r < 0)
            goto out;
        pending += r == ASYNC_PAUSE;
    }
    while (pending > 0) {
        size_t np = 0;
        int r;

        for (i = 0; i < n; i++) {
            if (!jobs[i].started)
                continue;
            pfd[np] = (struct pollfd){.fd = jobs[i].fd, .events = POLLIN};
            who[np++] = i;
        }
        if (np > h_wait.paused_max)
            h_wait.paused_max = np;
        {
            uint64_t c0 = h_clock_ns(CLOCK_THREAD_CPUTIME_ID),
                     w0 = h_clock_ns(CLOCK_MONOTONIC);

            while ((r = poll(pfd, np, timeout_ms)) < 0 && errno == EINTR)
                ;
            h_wait.cpu_ns += h_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
            h_wait.wall_ns += h_clock_ns(CLOCK_MONOTONIC) - w0;
            h_wait.calls++;
        }
        if (r < 0) {
            perror("harness: poll");
            goto out;
        }
        if (r == 0) {
            fprintf(stderr, "harness: %zu paused jobs, no wait fd readable for %d ms\n",
                    np, timeout_ms);
            goto out;
        }
        for (i = 0; i < np; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (pfd[i].revents != POLLIN) {
                fprintf(stderr, "harness: wait fd %d of job %zu: revents 0x%x\n",
                        pfd[i].fd, who[i], (unsigned)pfd[i].revents);
                goto out;
            }
            r = advance(&jobs[who[i]], on_done, ctx);
            if (r < 0)
                goto out;
            h_wait.resumed++;
            pending -= r == ASYNC_FINISH;
        }
    }
    ok = 1;
out:
    free(pfd);
    free(who);
    return ok;
}

/* ---- callback mode ---- */

/* Jobs whose callback fired, by index; filled on worker threads. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t *ring;
    size_t cap, head, count;
    int active;
    pthread_t loop;
    struct h_cb_stats st;
    uint64_t late;
} hq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The wait ctx callback: its argument is the job's index + 1 (never dereferenced). */
static int h_wake(void *arg)
{
    size_t idx = (size_t)(uintptr_t)arg - 1;

    pthread_mutex_lock(&hq.lock);
    if (!hq.active) {
        hq.late++;
    } else {
        hq.st.calls++;
        if (pthread_equal(pthread_self(), hq.loop))
            hq.st.on_loop++;
        if (hq.count == hq.cap)
            hq.st.overflow++;
        else
            hq.ring[(hq.head + hq.count++) % hq.cap] = idx;
        pthread_cond_signal(&hq.cond);
    }
    pthread_mutex_unlock(&hq.lock);
    return 1;
}

/* The next job whose callback came; (size_t)-1 after |ms| without one. */
static size_t h_cb_pop(int ms)
{
    struct timespec dl;
    size_t idx = (size_t)-1;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&hq.lock);
    while (hq.count == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&hq.cond, &hq.lock, &dl);
    if (hq.count > 0) {
        idx = hq.ring[hq.head];
        hq.head = (hq.head + 1) % hq.cap;
        hq.count--;
    }
    pthread_mutex_unlock(&hq.lock);
    return idx;
}

/*
 * Steps |j| until it pauses or finishes for good, filing each pause: owed
 * a callback (ASYNC_STATUS_OK) or to retry (EAGAIN). -1 on error.
 */
static int cb_advance(struct hjob *j, h_on_done_fn *on_done, void *ctx, size_t *waiting)
{
    for (;;) {
        int r = hjob_step(j), status;

        if (r == ASYNC_PAUSE) {
            status = ASYNC_WAIT_CTX_get_status(j->wctx);
            j->eagain = status == ASYNC_STATUS_EAGAIN;
            pthread_mutex_lock(&hq.lock);
            if (j->eagain)
                hq.st.eagain_pauses++;
            else if (status == ASYNC_STATUS_OK)
                hq.st.ok_pauses++;
            pthread_mutex_unlock(&hq.lock);
            if (j->eagain) {
                (*waiting)++;
            } else if (status == ASYNC_STATUS_OK) {
                j->cb_owed++;
            } else {
                fprintf(stderr, "harness: job %zu paused with wait ctx status %d\n",
                        j->index, status);
                return -1;
            }
            return ASYNC_PAUSE;
        }
        r = after_stop(j, r, on_done, ctx);
        if (r <= 0)
            return r < 0 ? -1 : ASYNC_FINISH;
    }
}

int h_run_cb_loop(struct hjob *jobs, size_t n, int timeout_ms, h_on_done_fn *on_done,
                  void *ctx, struct h_cb_stats *st)
{
    size_t i, pending = 0, waiting = 0, cap = 4 * n + 16;
    size_t *ring = calloc(cap, sizeof(*ring));
    int ok = 0, r;

    if (ring == NULL)
        return 0;
    pthread_mutex_lock(&hq.lock);
    hq.ring = ring;
    hq.cap = cap;
    hq.head = hq.count = 0;
    memset(&hq.st, 0, sizeof(hq.st));
    hq.loop = pthread_self();
    hq.active = 1;
    pthread_mutex_unlock(&hq.lock);
    for (i = 0; i < n; i++) {
        if (ASYNC_WAIT_CTX_set_callback(jobs[i].wctx, h_wake,
                                        (void *)(uintptr_t)(i + 1)) != 1) {
            fprintf(stderr, "harness: ASYNC_WAIT_CTX_set_callback of job %zu failed\n",
                    i);
            goto out;
        }
    }
    for (i = 0; i < n; i++) {
        if (jobs[i].started) {
            pending++;
            continue;
        }
        if (jobs[i].done)
            continue;
        r = cb_advance(&jobs[i], on_done, ctx, &waiting);
        if (r < 0)
            goto out;
        pending += r == ASYNC_PAUSE;
    }
    while (pending > 0) {
        /* Jobs refused by a full queue are retried after a short sleep, never spun. */
        size_t idx = h_cb_pop(waiting > 0 ? 1 : timeout_ms);
        struct hjob *j;

        if (idx == (size_t)-1) {
            if (waiting == 0) {
                fprintf(stderr, "harness: no callback within %d ms, %zu jobs paused\n",
                        timeout_ms, pending);
                goto out;
            }
            for (i = 0; i < n; i++) {
                j = &jobs[i];
                if (!j->started || !j->eagain)
                    continue;
                j->eagain = 0;
                waiting--;
                r = cb_advance(j, on_done, ctx, &waiting);
                if (r < 0)
                    goto out;
                pending -= r == ASYNC_FINISH;
            }
            continue;
        }
        if (idx >= n) {
            fprintf(stderr, "harness: callback for job %zu of %zu\n", idx, n);
            goto out;
        }
        j = &jobs[idx];
        /* A callback only for a paused job owed one: once per pause. */
        if (!j->started || j->eagain || j->cb_owed == 0) {
            fprintf(stderr,
                    "harness: callback for job %zu, which is not waiting for one "
                    "(%s)\n",
                    idx,
                    !j->started ? "not paused"
                    : j->eagain ? "EAGAIN"
                                : "answered");
            goto out;
        }
        j->cb_owed--;
        j->callbacks++;
        r = cb_advance(j, on_done, ctx, &waiting);
        if (r < 0)
            goto out;
        pending -= r == ASYNC_FINISH;
    }
    ok = 1;
out:
    pthread_mutex_lock(&hq.lock);
    hq.active = 0;
    hq.st.left = hq.count;
    if (st != NULL)
        *st = hq.st;
    hq.ring = NULL;
    hq.cap = hq.count = hq.head = 0;
    hq.late = 0;
    pthread_mutex_unlock(&hq.lock);
    free(ring);
    return ok;
}

uint64_t h_cb_late(void)
{
    uint64_t n;

    pthread_mutex_lock(&hq.lock);
    n = hq.late;
    pthread_mutex_unlock(&hq.lock);
    return n;
}

/* ---- a batch of tasks, at most max_jobs in flight ---- */

struct h_batch {
    int (*work)(void *task);
    char *tasks;
    size_t stride, n, next;
    size_t *task_of; /* per slot: the task it runs */
    int *rets;
};

static int h_batch_done(struct hjob *j, void *vb)
{
    struct h_batch *b = vb;

    b->rets[b->task_of[j->index]] = j->ret;
    if (b->next == b->n)
        return 0;
    b->task_of[j->index] = b->next;
    j->arg = b->tasks + b->next++ * b->stride;
    return 1; /* the next task, in the same wait ctx */
}

int h_run_tasks(int (*work)(void *task), void *tasks, size_t stride, size_t n,
                size_t max_jobs, int *rets, int timeout_ms, size_t *peak)
{
    size_t slots = n < max_jobs ? n : max_jobs, i;
    struct h_batch b = {work, tasks, stride, n, 0, NULL, rets};
    struct hjob *jobs;
    uint64_t peak0 = h_wait.paused_max;
    int ok;

    if (peak != NULL)
        *peak = 0;
    if (n == 0)
        return 1;
    jobs = hjobs_new(slots);
    b.task_of = calloc(slots, sizeof(*b.task_of));
    if (jobs == NULL || b.task_of == NULL) {
        fprintf(stderr, "harness: out of memory\n");
        hjobs_free(jobs, slots);
        free(b.task_of);
        return 0;
    }
    for (i = 0; i < slots; i++) {
        jobs[i].fn = work;
        jobs[i].arg = b.tasks + i * stride;
        b.task_of[i] = i;
    }
    b.next = slots;
    h_wait.paused_max = 0;
    ok = h_run_fd_loop(jobs, slots, timeout_ms, h_batch_done, &b);
    if (peak != NULL)
        *peak = (size_t)h_wait.paused_max;
    if (h_wait.paused_max < peak0)
        h_wait.paused_max = peak0;
    if (!ok)
        fprintf(stderr, "harness: %zu of %zu tasks started when the loop failed\n",
                b.next, n);
    /* A job left paused keeps its wait ctx (it may still use it). */
    for (i = 0; i < slots; i++)
        if (jobs[i].started)
            jobs[i].wctx = NULL;
    hjobs_free(jobs, slots);
    free(b.task_of);
    return ok;
}

int h_poll_in(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -1;
    return r > 0 && (p.revents & POLLIN) != 0;
}

int h_fd_readable(int fd, int timeout_ms)
{
    return h_poll_in(fd, timeout_ms) > 0;
}

uint64_t h_clock_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void h_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void *note_tid(void *arg)
{
    *(pid_t *)arg = (pid_t)syscall(SYS_gettid);
    return NULL;
}

void h_settle_threads(void)
{
    char path[64];
    pid_t tid = 0;
    pthread_t t;
    int i;

    if (pthread_create(&t, NULL, note_tid, &tid) != 0)
        return;
    pthread_join(t, NULL);
    /*
     * pthread_join returns once the thread's tid is cleared, a moment
     * before the kernel drops its task: wait for /proc to forget it too,
     * or the count taken next includes it (5 s at most).
     */
    snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
    for (i = 0; tid > 0 && i < 5000 && access(path, F_OK) == 0; i++)
        usleep(1000);
}

int h_count_threads(void)
{
    return count_dir("/proc/self/task");
}

int h_wait_threads(int want)
{
    int i, n = h_count_threads();

    for (i = 0; n != want && i < 5000; i++) {
        usleep(1000);
        n = h_count_threads();
    }
    return n;
}

int h_count_fds(void)
{
    int n = count_dir("/proc/self/fd");

    return n > 0 ? n - 1 : n; /* minus the directory stream's own fd */
}

long h_rss_kib(void)
{
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

uint64_t h_process_cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

int h_wait_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    int ms;

    for (ms = 0; ms < timeout_ms; ms++) {
        if (pred(arg))
            return 1;
        h_sleep_ms(1);
    }
    return pred(arg);
}

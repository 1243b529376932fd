/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
        j->started = 1;
        j->pauses++;
        j->fd = h_wait_fd(j->wctx);
    } else if (r == ASYNC_FINISH) {
        j->started = 0;
        j->done = 1;
        j->job = NULL;
        j->runs++;
    }
    return r;
}

/* Steps |j| until it pauses or finishes for good; -1 on error. */
static int advance(struct hjob *j, h_on_done_fn *on_done, void *ctx)
{
    for (;;) {
        int r = hjob_step(j), again;

        if (r == ASYNC_PAUSE) {
            if (j->fd < 0) {
                fprintf(stderr, "harness: job %zu paused with %s wait fd\n", j->index,
                        j->fd == -1 ? "no" : "more than one");
                return -1;
            }
            return ASYNC_PAUSE;
        }
        if (r != ASYNC_FINISH) {
            fprintf(stderr, "harness: ASYNC_start_job of job %zu: %s\n", j->index,
                    r == ASYNC_NO_JOBS ? "ASYNC_NO_JOBS" : "ASYNC_ERR");
            ERR_print_errors_fp(stderr);
            return -1;
        }
        again = on_done != NULL ? on_done(j, ctx) : 0;
        if (again < 0)
            return -1;
        if (again == 0)
            return ASYNC_FINISH;
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

int h_fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return r > 0 && (p.revents & POLLIN) != 0;
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

static void *nothing(void *arg)
{
    return arg;
}

void h_settle_threads(void)
{
    pthread_t t;

    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
}

int h_count_threads(void)
{
    return count_dir("/proc/self/task");
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

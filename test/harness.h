/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loops of the tests: a job that runs any function, the fd-mode
 * loop (poll on each wait ctx's one fd), the callback-mode loop (the wait
 * ctx's callback queues the job, the loop sleeps on a condition variable),
 * a batch runner (n tasks, at most m jobs in flight), and process probes
 * (threads, fds, RSS, CPU time). They report failures on stderr instead of
 * asserting: they also run in forked children and on application threads,
 * where cmocka must not be used.
 */
#ifndef OFFLOAD_TEST_HARNESS_H
#define OFFLOAD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/async.h>

/* Sanitizer builds (gcc defines __SANITIZE_*, clang has __has_feature). */
#if defined(__SANITIZE_THREAD__)
#define H_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define H_UNDER_TSAN 1
#endif
#endif
#ifndef H_UNDER_TSAN
#define H_UNDER_TSAN 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define H_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_UNDER_ASAN 1
#endif
#endif
#ifndef H_UNDER_ASAN
#define H_UNDER_ASAN 0
#endif
#define H_UNDER_SANITIZER (H_UNDER_TSAN || H_UNDER_ASAN)

/* One ASYNC_JOB running fn(arg); everything on the heap (32 KiB job stacks). */
struct hjob {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    int (*fn)(void *arg);
    void *arg;
    size_t index;
    int ret;         /* fn's return value once done */
    int started;     /* in a job (paused or running) */
    int done;        /* ASYNC_FINISH seen */
    unsigned pauses; /* ASYNC_PAUSE answers, all runs */
    unsigned runs;   /* ASYNC_FINISH answers, all runs */
    int fd;          /* the wait fd seen at the last pause, -1 none */
    int fd_changed;  /* a pause showed another fd than the one before, or not one */
    /* callback mode (h_run_cb_loop) */
    int eagain;         /* paused with ASYNC_STATUS_EAGAIN: no callback comes, retry */
    unsigned cb_owed;   /* pauses with ASYNC_STATUS_OK not yet answered by a callback */
    unsigned callbacks; /* callbacks received, all runs */
};

/* |n| jobs with a wait ctx each, fn/arg unset; NULL on allocation failure. */
struct hjob *hjobs_new(size_t n);
void hjobs_free(struct hjob *jobs, size_t n);

/* Starts or resumes |j|: ASYNC_PAUSE, ASYNC_FINISH, or ASYNC_ERR/ASYNC_NO_JOBS. */
int hjob_step(struct hjob *j);

/* The one wait fd of |wctx|; -1 when it has none, -2 when it has several. */
int h_wait_fd(ASYNC_WAIT_CTX *wctx);

/*
 * Called when job |j| finished (j->ret set): return 1 to start it again
 * at once (same wait ctx), 0 to leave it done, -1 to stop the loop with
 * an error.
 */
typedef int h_on_done_fn(struct hjob *j, void *ctx);

/*
 * fd mode: starts the jobs not yet started, then poll()s the wait fds of
 * the paused ones and resumes the readable ones until every job is done.
 * Returns 1, or 0 after printing why (a job error, a pause without
 * exactly one fd, nothing readable for |timeout_ms|).
 */
int h_run_fd_loop(struct hjob *jobs, size_t n, int timeout_ms, h_on_done_fn *on_done,
                  void *ctx);

/*
 * Time the calling thread spent blocked in h_run_fd_loop's poll(): CPU
 * (CLOCK_THREAD_CPUTIME_ID) and wall, the number of poll() calls, the
 * resumes on a readable fd, and the most jobs paused at once (polled
 * together). Per thread; reset it before a measured phase.
 */
struct h_wait_stats {
    uint64_t cpu_ns, wall_ns, calls, resumed, paused_max;
};
extern _Thread_local struct h_wait_stats h_wait;

/*
 * Callback mode: sets every job's wait ctx callback, starts the jobs not
 * yet started and resumes each one when its callback (on a worker thread)
 * has queued it, until every job is done. A job paused with
 * ASYNC_STATUS_EAGAIN (the queue was full: no callback comes) is resumed
 * after a 1 ms sleep, never spun on. Returns 1, or 0 after printing why:
 * a job error, a callback for a job not waiting for one, a pause with
 * another status, no callback for |timeout_ms|. One loop at a time per
 * process. |st| (may be NULL) gets what the loop saw.
 */
struct h_cb_stats {
    uint64_t calls;         /* callbacks received while the loop ran */
    uint64_t on_loop;       /* of them, called on the loop's own thread */
    uint64_t ok_pauses;     /* pauses with ASYNC_STATUS_OK: each owed one callback */
    uint64_t eagain_pauses; /* pauses with ASYNC_STATUS_EAGAIN */
    uint64_t overflow;      /* callbacks that found the loop's queue full */
    uint64_t left;          /* callbacks queued, not consumed, when the loop ended */
};
int h_run_cb_loop(struct hjob *jobs, size_t n, int timeout_ms, h_on_done_fn *on_done,
                  void *ctx, struct h_cb_stats *st);

/* Callbacks that came after the last h_run_cb_loop ended (none is owed then). */
uint64_t h_cb_late(void);

/*
 * Runs work(task) for each of the |n| tasks (|stride| bytes apart from
 * |tasks|) in fd mode, each in its own job, at most |max_jobs| in flight.
 * Each slot keeps one wait ctx for all its jobs, as an event loop keeps
 * one per connection (a wait ctx freed and allocated again per job tends
 * to come back at the same address, which the provider takes for the same
 * job asking again). rets[i] gets task i's return value. Returns 1, or 0
 * after printing why; *peak (may be NULL) gets the most jobs paused at once.
 */
int h_run_tasks(int (*work)(void *task), void *tasks, size_t stride, size_t n,
                size_t max_jobs, int *rets, int timeout_ms, size_t *peak);

/* 1 when |fd| is readable within |timeout_ms|. */
int h_fd_readable(int fd, int timeout_ms);
/* poll(2) of one fd for POLLIN: 1 readable, 0 not, -1 poll() failed. */
int h_poll_in(int fd, int timeout_ms);

uint64_t h_clock_ns(clockid_t c);
void h_sleep_ms(unsigned ms);

/*
 * Creates and joins a thread: a sanitizer runtime starts its own helper
 * thread at the first pthread_create (TSan does), so call this before
 * taking a thread-count baseline.
 */
void h_settle_threads(void);

/*
 * h_count_threads() once it equals want, or after 5 s whatever it is then:
 * a joined thread stays in /proc/self/task a moment after pthread_join.
 * A thread that was not joined never leaves, so the caller's assertion
 * still fails.
 */
int h_wait_threads(int want);

/* Entries of /proc/self/task (threads) and /proc/self/fd (minus the dir's own). */
int h_count_threads(void);
int h_count_fds(void);
/* Resident set size in KiB (/proc/self/statm). */
long h_rss_kib(void);
/* User + system CPU time of the whole process (getrusage), ns. */
uint64_t h_process_cpu_ns(void);

/* Waits until |pred| holds or |timeout_ms| passed; returns the last |pred|. */
int h_wait_until(int (*pred)(void *), void *arg, int timeout_ms);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every ASYNC_* call of the provider: the wait fd of a job's
 * ASYNC_WAIT_CTX, callback mode, the pause loop and the drain.
 *
 * Workers never see an ASYNC_JOB or an ASYNC_WAIT_CTX: a request carries
 * only the waiter (refcounted eventfd) and, in callback mode, the
 * callback and its argument captured here on the job's thread.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/err.h>

#include "accel/wake.h"
#include "async.h"

/* One key for the whole process: one wait fd per ASYNC_WAIT_CTX, however many instances.
 */
static const char waiter_key;

static void waiter_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd,
                           void *custom)
{
    struct offload_waiter *w = custom;

    (void)ctx;
    (void)key;
    (void)fd;
    offload_waiter_kill(w);
    /* A job freed while paused never collects: it is no longer waiting on us. */
    for (unsigned n = atomic_exchange(&w->uncollected, 0); n > 0; n--)
        offload_accel_collected();
    offload_waiter_put(w); /* the ctx's reference */
}

/*
 * Once a wait ctx holds our cleanup callback, this module must stay mapped:
 * the application may free that ctx after unloading the provider (and
 * after OpenSSL dlclose()d us). Pin it for the life of the process.
 */
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_module(void)
{
    Dl_info info;

    if (dladdr((void *)&waiter_cleanup, &info) && info.dli_fname != NULL &&
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD) == NULL)
        OFFLOAD_DEBUG("cannot pin %s: %s", info.dli_fname, dlerror());
}

/* The waiter of |wctx|, created and registered on first use (*created = 1). */
static struct offload_waiter *waiter_for(ASYNC_WAIT_CTX *wctx, int *created)
{
    struct offload_waiter *w = NULL, *old = NULL;
    OSSL_ASYNC_FD fd;
    void *custom = NULL;

    if (ASYNC_WAIT_CTX_get_fd(wctx, &waiter_key, &fd, &custom) && custom != NULL) {
        w = custom;
        if (w->fork_gen == atomic_load_explicit(&offload_fork_gen, memory_order_relaxed))
            return w;
        /*
         * Created before a fork(): that eventfd is shared with the parent.
         * Give this ctx a new one (made first, so its number differs).
         */
        old = w;
        ASYNC_WAIT_CTX_clear_fd(wctx, &waiter_key);
    }
    pthread_once(&pin_once, pin_module);
    w = offload_waiter_new();
    if (old != NULL) {
        offload_waiter_kill(old); /* closes our copy of the parent's eventfd */
        offload_waiter_put(old);
    }
    if (w == NULL)
        return NULL;
    if (!ASYNC_WAIT_CTX_set_wait_fd(wctx, &waiter_key, w->efd, w, waiter_cleanup)) {
        offload_waiter_put(w);
        return NULL;
    }
    OFFLOAD_DEBUG("wait ctx %p: eventfd %d", (void *)wctx, w->efd);
    *created = 1;
    return w;
}

/*
 * The wait ctx of the last job that asked on this thread. Only compared,
 * never dereferenced: a reused address merely costs one heuristic guess.
 * initial-exec puts these 8 bytes in the static TLS surplus glibc keeps for
 * dlopen()ed modules: no __tls_get_addr() call per operation, and no dynamic
 * TLS block, whose tracking made LeakSanitizer's exit scan crash now and then
 * (about one run in thirty of test_tls under ASan).
 */
static _Thread_local __attribute__((tls_model("initial-exec"))) const void *last_wctx;

/* The policy's settings (offload_async_configure). */
static struct {
    unsigned families, busy_inline, workers;
} policy = {(1u << OFFLOAD_FAM_COUNT) - 1, 1, 1};
size_t offload_async_inline_below_ = 8192;

void offload_async_configure(unsigned families, unsigned busy_inline, unsigned workers,
                             size_t inline_below)
{
    policy.families = families;
    policy.busy_inline = busy_inline;
    policy.workers = workers;
    offload_async_inline_below_ = inline_below;
}

enum offload_path offload_async_path(enum offload_family f, int cheap)
{
    ASYNC_JOB *job;
    const void *w;

    if (!((policy.families >> f) & 1u))
        return OFFLOAD_PATH_FAMILY_OFF;
    if ((job = ASYNC_get_current_job()) == NULL)
        return OFFLOAD_PATH_NO_JOB;
    if (!cheap)
        return OFFLOAD_PATH_OFFLOADED;
    /*
     * When every worker already has busy_inline requests waiting, this one
     * would only wait behind them while the calling thread spends its time
     * on wake-ups: a cheap operation (tens of microseconds) runs here. The
     * job keeps its core until the queue drains below the mark, and the
     * completions that pile up meanwhile are collected in one wake-up
     * (ecdsap256 at 32 jobs: 1.58x -> 1.90x the default provider). An
     * expensive one (RSA) is still queued: it would hold the event loop
     * for hundreds of microseconds. One queued request per worker is
     * enough: ECDSA runs as fast at a mark of 1, 2 or 4, while 16 KiB
     * AES-GCM records at 8 jobs gain 1.47x at 1, 1.41x at 2, and lose at 4
     * (0.65x: eight jobs never queue that deep, so the loop never helps).
     */
    if (policy.busy_inline > 0 &&
        offload_accel_queued() >= policy.busy_inline * policy.workers)
        return OFFLOAD_PATH_BUSY;
    /*
     * A cheap operation also loses to the cost of waking the event loop
     * when it is alone: the same job as last time and no other job paused
     * on us means nobody else is waiting for this thread.
     */
    w = ASYNC_get_wait_ctx(job);
    if (w == last_wctx && offload_accel_outstanding() == 0)
        return OFFLOAD_PATH_ALONE;
    last_wctx = w;
    return OFFLOAD_PATH_OFFLOADED;
}

/* ---- counting and the log's line per operation ---- */

static const char *const path_text[OFFLOAD_PATH_COUNT] = {
    [OFFLOAD_PATH_OFFLOADED] = "offloaded",
    [OFFLOAD_PATH_NO_JOB] = "inline (not in a job)",
    [OFFLOAD_PATH_FAMILY_OFF] = "inline (family not in the offload key)",
    [OFFLOAD_PATH_BUSY] = "inline (cheap, workers busy: busy_inline)",
    [OFFLOAD_PATH_ALONE] = "inline (cheap and alone: same job, nothing in flight)",
    [OFFLOAD_PATH_SMALL] = "inline (under inline_below)",
    [OFFLOAD_PATH_CHEAPER] = "inline (measured cheaper here: cipher_gate)",
    [OFFLOAD_PATH_TLS_CBC] = "inline (CBC in TLS mode)",
    [OFFLOAD_PATH_STITCHED] = "inline (stitched TLS cipher)",
    [OFFLOAD_PATH_CALLBACK] = "inline (generation calls back into the application)",
    [OFFLOAD_PATH_PARAMS] = "inline (parameters only, no key pair)",
    [OFFLOAD_PATH_NO_SIZE] = "inline (output size unknown or buffer short)",
    [OFFLOAD_PATH_NO_MEMORY] = "inline (no memory for a request)",
    [OFFLOAD_PATH_NO_WAIT_FD] = "inline (no wait fd for the job)",
    [OFFLOAD_PATH_QUEUE_FULL] = "inline (queue full)",
    [OFFLOAD_PATH_TAKEN_BACK] = "taken back, run in the job (resumed early)",
};

void offload_log_path(enum offload_family f, enum offload_path p, const char *alg,
                      const char *op)
{
    offload_log("%s %s %s: %s", offload_family_names[f], alg != NULL ? alg : "?",
                op != NULL ? op : "?", path_text[p]);
}

/* The log's failure line: "<family> <alg> <op>: failed: <reason>". */
static __attribute__((cold, noinline)) void log_failed(enum offload_family f,
                                                       const char *alg, const char *op)
{
    char head[96];

    snprintf(head, sizeof(head), "%s %s %s", offload_family_names[f],
             alg != NULL ? alg : "?", op != NULL ? op : "?");
    offload_log_failure(head);
}

__attribute__((cold)) void offload_op_failed(enum offload_family f, const char *alg,
                                             const char *op)
{
    offload_count(f, OFFLOAD_ST_FAILED);
    if (offload_log_enabled())
        log_failed(f, alg, op);
}

/* Runs |req| on this thread, counted (and logged) as taking |p|. */
static int run_here(struct offload_req *req, enum offload_path p)
{
    offload_op_path(req->family, p, req->alg, req->op);
    req->result = req->run(req);
    return offload_op_done(req->family, req->result, req->alg, req->op);
}

static void pause_job(enum offload_family f)
{
    offload_count(f, OFFLOAD_ST_PAUSES);
    ASYNC_pause_job();
}

/* A pause for |req|, whose submitter may want to know how long it lasted. */
static void pause_for(struct offload_req *req)
{
    uint64_t t;

    if (!req->timed) {
        pause_job(req->family);
        return;
    }
    t = offload_now_ns();
    pause_job(req->family);
    req->paused_ns += offload_now_ns() - t;
}

enum offload_path offload_async_path_token(void)
{
    return ASYNC_get_current_job() != NULL ? OFFLOAD_PATH_OFFLOADED : OFFLOAD_PATH_NO_JOB;
}

static const struct offload_pool accel_pool = {
    offload_accel_submit, offload_accel_take_back, offload_accel_collected};

int offload_async_run(struct offload_req *req)
{
    return offload_async_run_on(req, &accel_pool);
}

int offload_async_run_on(struct offload_req *req, const struct offload_pool *pool)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *wctx = job != NULL ? ASYNC_get_wait_ctx(job) : NULL;
    int created = 0;
    struct offload_waiter *w = wctx != NULL ? waiter_for(wctx, &created) : NULL;
    int cbmode, submitted;

    if (w == NULL)
        return run_here(req, OFFLOAD_PATH_NO_WAIT_FD);
    cbmode = ASYNC_WAIT_CTX_get_callback(wctx, &req->cb, &req->cbarg);
    req->cbmode = cbmode;
    if (!cbmode)
        req->cb = NULL;
    offload_waiter_up(w);
    req->waiter = w;
    if (cbmode)
        ASYNC_WAIT_CTX_set_status(wctx, ASYNC_STATUS_OK);
    submitted = pool->submit(req);
    if (!submitted && cbmode) {
        /* Queue full: the application retries when it sees EAGAIN. */
        ASYNC_WAIT_CTX_set_status(wctx, ASYNC_STATUS_EAGAIN);
        pause_for(req);
        ASYNC_WAIT_CTX_set_status(wctx, ASYNC_STATUS_OK);
        submitted = pool->submit(req);
    }
    if (!submitted) {
        /* Never an unbounded queue, never a spin: run it here. */
        run_here(req, OFFLOAD_PATH_QUEUE_FULL);
        if (created && !cbmode) {
            /*
             * The wait ctx has a new fd the application learns of only
             * from a pause (HAProxy tracks async fds that way and deletes
             * them all at close): report it with one pause, pre-signalled.
             */
            offload_waiter_signal(w);
            pause_for(req);
            /* Resumed in a fork()ed child: the token is the parent's to take. */
            if (w->fork_gen ==
                atomic_load_explicit(&offload_fork_gen, memory_order_relaxed))
                offload_waiter_drain(w);
        }
        return req->result;
    }
    offload_op_path(req->family, OFFLOAD_PATH_OFFLOADED, req->alg, req->op);
    if (pool->collected != NULL) /* the waiter's cleanup answers for it */
        atomic_fetch_add_explicit(&w->uncollected, 1, memory_order_relaxed);

    /*
     * Always pause, even if a worker was already done: the callback (or the
     * token) resumes exactly this pause, and a job that never yields would
     * keep every other job of the thread waiting behind it.
     */
    pause_for(req);
    if (req->fork_gen != atomic_load_explicit(&offload_fork_gen, memory_order_relaxed)) {
        /*
         * Resumed in a fork()ed child: the parent's workers will never
         * finish it here and the token would be the parent's. fork() waited
         * until no worker was inside a request, so it either ran completely
         * or not at all.
         */
        if (atomic_load_explicit(&req->executed, memory_order_acquire)) {
            offload_req_raise_errors(req);
            goto out;
        }
        return run_here(req, OFFLOAD_PATH_TAKEN_BACK);
    }
    if (!offload_req_done(req)) {
        /*
         * Resumed early, or pauses are blocked (ASYNC_block_pause): run it
         * here if no worker has started it, else sleep until it is done.
         * Either way this job no longer waits for a callback.
         */
        if (cbmode)
            offload_waiter_cancel_call(w, req);
        if (pool->take_back(req)) {
            if (pool->collected != NULL)
                atomic_fetch_sub_explicit(&w->uncollected, 1, memory_order_relaxed);
            return run_here(req, OFFLOAD_PATH_TAKEN_BACK);
        }
        offload_req_wait(req);
    }
    if (!cbmode)
        offload_waiter_drain(w);
    if (pool->collected != NULL) {
        atomic_fetch_sub_explicit(&w->uncollected, 1, memory_order_relaxed);
        pool->collected();
    }
    offload_req_raise_errors(req);
out:
    /* A worker ran it and counted its failure: only the log's line is left. */
    if (req->result <= 0 && offload_log_enabled())
        log_failed(req->family, req->alg, req->op);
    return req->result;
}

int offload_failed_why(int ret, unsigned long before, const char *alg, const char *op,
                       size_t inlen)
{
    if (ret <= 0 && ERR_peek_last_error() == before)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED, "%s %s failed (input of %zu bytes)",
                      alg, op, inlen);
    return ret;
}

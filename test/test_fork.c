/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fork() with busy workers.
 *
 * The parent has RSA-4096 signing jobs in flight (paused, the workers
 * busy, the queue holding the rest) when it forks. Then:
 *   - the child offloads async work (jobs driven by poll) on wait ctxs
 *     created before the fork and on new ones, signs synchronously, and
 *     forks a grandchild that does the same; every signature is checked
 *     (PKCS#1 v1.5 is deterministic: equal to the default provider's);
 *   - the wait fd a pre-fork wait ctx shows in the child is a new eventfd
 *     (another number, and another eventfd-id in /proc/self/fdinfo), in
 *     the grandchild another again;
 *   - the parent completes its in-flight jobs meanwhile, unaffected, and
 *     afterwards none of its wait fds is readable: the child never wrote
 *     to an eventfd it shares with the parent (a token there would be
 *     visible in the parent, the open file is the same). Nor did the
 *     grandchild to the child's;
 *   - children leave with _exit() and a status the parent checks (the
 *     line of the first failed check); a watchdog (alarm) turns a hang
 *     into a failure.
 *
 * test_fork_repeated forks many times while the workers sign with the
 * same key the children then use: a child must never inherit a lock that
 * a worker held at the instant of the fork, nor state a worker was
 * changing. (Before the provider quiesced its workers at fork(), about one
 * child in ten hung on the RSA key's lock, and some signed with a
 * half-updated blinding: a wrong signature.)
 *
 * test_fork_inherited_job: a child resumes a job it inherited paused; it
 * must finish there without the parent's worker or token.
 * test_fork_child_unloads: the child unloads the provider; its teardown
 * joins the child's workers only (the stats file thread configured here
 * runs in the parent) and leaves no thread behind.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "offload.h"
#include "common.h"
#include "harness.h"

#define PROPQ       "provider=" OFFLOAD_PROVIDER_NAME
#define SIG_MAX     512
#define NPRE        8  /* wait ctxs used before the fork, idle at the fork */
#define NBUSY       32 /* jobs in flight at the fork */
#define NNEW        8  /* wait ctxs created in the child */
#define NSYNC       4  /* signatures outside any job, in the child */
#define TIMEOUT_MS  30000
#define WATCHDOG_S  60
#define REPEAT_FORK 100

static const char msg[] =
    "offload fork test: sign me in the parent, the child, the grandchild";

static struct {
    test_env env;
    OSSL_LIB_CTX *defctx;
    OSSL_PROVIDER *defprov;
    EVP_PKEY *key;    /* RSA-4096, in the offload provider */
    EVP_PKEY *refkey; /* the same pair in the default provider */
    unsigned char md[32];
    unsigned char ref[SIG_MAX];
    size_t reflen;
    char stats_path[64];
} S;

/* One signature, the job's (or the caller's) result. */
struct sigop {
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_md(void *arg)
{
    struct sigop *op = arg;

    op->siglen = sizeof(op->sig);
    return test_sha256_sign(S.env.libctx, S.key, PROPQ, S.md, op->sig, &op->siglen);
}

/* The job's own result and signature are right. */
static int job_ok(const struct hjob *j)
{
    const struct sigop *op = j->arg;

    return j->done && j->ret == 1 && op->siglen == S.reflen &&
           memcmp(op->sig, S.ref, S.reflen) == 0;
}

/* Jobs that each sign into a sigop of their own (j->arg). */
static struct hjob *sign_jobs_new(size_t n)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++) {
        jobs[i].fn = sign_md;
        jobs[i].arg = calloc(1, sizeof(struct sigop));
        if (jobs[i].arg == NULL)
            return NULL;
    }
    return jobs;
}

static void sign_jobs_free(struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++)
        free(jobs[i].arg);
    hjobs_free(jobs, n);
}

/* eventfd-id of |fd| from /proc/self/fdinfo (Linux 5.13+); -1 when not shown. */
static long eventfd_id(int fd)
{
    char path[64], line[128];
    long id = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "eventfd-id: %ld", &id) == 1)
            break;
    fclose(f);
    return id;
}

static uint64_t counter(const char *name)
{
    return test_counter(S.env.offload, name);
}

#define C_COMPLETED "offload-signature-" OFFLOAD_STAT_COMPLETED
#define C_OFFLOADED "offload-signature-" OFFLOAD_STAT_OFFLOADED

/* ---- the child's and grandchild's side: no cmocka here ---- */

/* What a generation saw of the pre-fork wait ctxs: their fds and eventfd ids. */
struct seen {
    int fd[NPRE];
    long id[NPRE];
};

static int child_failed_line;

/* Seconds before a hung child is killed; env OFFLOAD_TEST_WATCHDOG (0: never, to debug).
 */
static unsigned watchdog_s(unsigned dflt)
{
    const char *e = getenv("OFFLOAD_TEST_WATCHDOG");

    return e != NULL ? (unsigned)strtoul(e, NULL, 10) : dflt;
}

#define CHILD_CHECK(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "pid %d (%s): %s:%d: check failed: %s\n", (int)getpid(),     \
                    who, __FILE__, __LINE__, #cond);                                     \
            ERR_print_errors_fp(stderr);                                                 \
            child_failed_line = __LINE__;                                                \
            return 0;                                                                    \
        }                                                                                \
    } while (0)

/* The exit status of a failed check: its line, folded into 1..255. */
static int failed_status(void)
{
    return 1 + child_failed_line % 255;
}

static int reap(pid_t pid, const char *what)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return 0;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 1;
    if (WIFEXITED(status))
        fprintf(stderr, "%s exited with status %d (a failed check)\n", what,
                WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "%s killed by signal %d%s\n", what, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (watchdog: it hung)" : "");
    return 0;
}

static int generation(struct hjob *pre, const struct seen *before, int gen);

/* The jobs in flight at the fork, as the child inherited them. */
static struct hjob *inherited;

/*
 * ThreadSanitizer cannot follow threads started after a multi-threaded
 * fork: a child's new worker may get the pthread id of one of the
 * parent's, and TSan dies ("dup thread with used id"). Under TSan the
 * children work inline only (no worker starts there); the parent's side
 * (the fork while workers are busy) is checked all the same.
 */
static const int child_async = !H_UNDER_TSAN;

/*
 * Async and sync work of one generation (1: child, 2: grandchild). The
 * wait ctxs of |pre| were created in the parent; |before| is what the
 * previous generation saw of them. Returns 1 when every check held.
 */
static int generation(struct hjob *pre, const struct seen *before, int gen)
{
    const char *who = gen == 1 ? "child" : "grandchild";
    struct hjob *fresh = sign_jobs_new(NNEW);
    struct seen mine;
    struct sigop *op = calloc(1, sizeof(*op));
    uint64_t comp0 = counter(C_COMPLETED), off0 = counter(C_OFFLOADED);
    size_t i;

    CHILD_CHECK(fresh != NULL && op != NULL);
    if (gen == 1 && inherited != NULL) {
        /*
         * The parent's jobs in flight at the fork are ours too, paused for
         * good: give them up as SSL_free() would, freeing their wait ctxs
         * (closes our copies of the parent's eventfds, nothing more).
         */
        for (i = 0; i < NBUSY; i++) {
            ASYNC_WAIT_CTX_free(inherited[i].wctx);
            inherited[i].wctx = NULL;
        }
    }
    if (!child_async)
        goto sync;
    /* Async: the pre-fork wait ctxs and new ones, one poll loop. */
    for (i = 0; i < NPRE; i++)
        pre[i].done = pre[i].started = 0;
    CHILD_CHECK(h_run_fd_loop(pre, NPRE, TIMEOUT_MS, NULL, NULL));
    CHILD_CHECK(h_run_fd_loop(fresh, NNEW, TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < NPRE; i++) {
        CHILD_CHECK(job_ok(&pre[i]));
        mine.fd[i] = h_wait_fd(pre[i].wctx);
        mine.id[i] = mine.fd[i] >= 0 ? eventfd_id(mine.fd[i]) : -1;
        CHILD_CHECK(mine.fd[i] >= 0);
        /* A new eventfd: another number, another object. */
        CHILD_CHECK(mine.fd[i] != before->fd[i]);
        CHILD_CHECK(mine.id[i] < 0 || mine.id[i] != before->id[i]);
        CHILD_CHECK(!h_fd_readable(mine.fd[i], 0));
    }
    for (i = 0; i < NNEW; i++) {
        CHILD_CHECK(job_ok(&fresh[i]));
        CHILD_CHECK(!h_fd_readable(h_wait_fd(fresh[i].wctx), 0));
    }
    /* Workers of our own did it. */
    CHILD_CHECK(counter(C_OFFLOADED) >= off0 + NPRE + NNEW);
    CHILD_CHECK(counter(C_COMPLETED) >= comp0 + NPRE + NNEW);
    CHILD_CHECK(counter("offload-workers") > 0);

sync:
    /* Sync: outside any job, inline. */
    for (i = 0; i < NSYNC; i++) {
        memset(op, 0, sizeof(*op));
        CHILD_CHECK(sign_md(op) == 1);
        CHILD_CHECK(op->siglen == S.reflen && memcmp(op->sig, S.ref, S.reflen) == 0);
    }

    if (gen == 1) {
        pid_t pid;

        fflush(NULL);
        pid = fork();
        CHILD_CHECK(pid >= 0);
        if (pid == 0) {
            alarm(watchdog_s(WATCHDOG_S));
            _exit(generation(pre, &mine, 2) ? 0 : failed_status());
        }
        /* Meanwhile, more work here on the same wait ctxs. */
        for (i = 0; child_async && i < NPRE; i++)
            pre[i].done = 0;
        CHILD_CHECK(!child_async || h_run_fd_loop(pre, NPRE, TIMEOUT_MS, NULL, NULL));
        CHILD_CHECK(reap(pid, "grandchild"));
        for (i = 0; child_async && i < NPRE; i++) {
            CHILD_CHECK(job_ok(&pre[i]));
            /* Ours again: the same eventfd as before the grandchild's work. */
            CHILD_CHECK(h_wait_fd(pre[i].wctx) == mine.fd[i]);
            /* The grandchild never wrote to it. */
            CHILD_CHECK(!h_fd_readable(mine.fd[i], 0));
        }
    }
    sign_jobs_free(fresh, NNEW);
    free(op);
    return 1;
}

/* ---- the parent's side ---- */

static pid_t spawn_child(struct hjob *pre, const struct seen *parent)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        alarm(watchdog_s(WATCHDOG_S));
        _exit(generation(pre, parent, 1) ? 0 : failed_status());
    }
    return pid;
}

static void check_jobs(const struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!job_ok(&jobs[i])) {
            test_dump_errors("signing job");
            fail_msg("job %zu: done %d, ret %d", i, jobs[i].done, jobs[i].ret);
        }
    }
}

static void test_fork_busy(void **state)
{
    struct hjob *pre = sign_jobs_new(NPRE), *busy = sign_jobs_new(NBUSY);
    struct seen parent;
    size_t i, paused = 0;
    uint64_t inflight;
    pid_t pid;

    (void)state;
    assert_non_null(pre);
    assert_non_null(busy);
    /* Wait ctxs that already carry the provider's eventfd, idle at the fork. */
    assert_true(h_run_fd_loop(pre, NPRE, TIMEOUT_MS, NULL, NULL));
    check_jobs(pre, NPRE);
    for (i = 0; i < NPRE; i++) {
        parent.fd[i] = h_wait_fd(pre[i].wctx);
        assert_true(parent.fd[i] >= 0);
        parent.id[i] = eventfd_id(parent.fd[i]);
        assert_false(h_fd_readable(parent.fd[i], 0));
    }
    /* Jobs in flight: the workers busy, the queue holding the rest. */
    for (i = 0; i < NBUSY; i++) {
        int r = hjob_step(&busy[i]);

        assert_true(r == ASYNC_PAUSE || r == ASYNC_FINISH);
        paused += r == ASYNC_PAUSE;
    }
    inflight = counter("offload-in-flight");
    print_message("forking with %zu jobs paused, %llu requests in flight\n", paused,
                  (unsigned long long)inflight);
    assert_true(paused > 0);
    assert_true(inflight > 0);

    inherited = busy;
    pid = spawn_child(pre, &parent);
    inherited = NULL;
    assert_true(pid > 0);

    /* The parent carries on: its in-flight jobs complete. */
    assert_true(h_run_fd_loop(busy, NBUSY, TIMEOUT_MS, NULL, NULL));
    check_jobs(busy, NBUSY);
    assert_true(reap(pid, "child"));

    /* Nothing of ours in flight: no token may be waiting on any of our fds. */
    assert_int_equal(counter("offload-in-flight"), 0);
    for (i = 0; i < NPRE; i++) {
        assert_int_equal(h_wait_fd(pre[i].wctx), parent.fd[i]);
        assert_false(h_fd_readable(parent.fd[i], 0));
    }
    for (i = 0; i < NBUSY; i++)
        if (busy[i].fd >= 0)
            assert_false(h_fd_readable(busy[i].fd, 0));

    /* And the pre-fork wait ctxs still work here, with their own fds. */
    for (i = 0; i < NPRE; i++)
        pre[i].done = 0;
    assert_true(h_run_fd_loop(pre, NPRE, TIMEOUT_MS, NULL, NULL));
    check_jobs(pre, NPRE);
    for (i = 0; i < NPRE; i++) {
        assert_int_equal(h_wait_fd(pre[i].wctx), parent.fd[i]);
        assert_false(h_fd_readable(parent.fd[i], 0));
    }
    sign_jobs_free(pre, NPRE);
    sign_jobs_free(busy, NBUSY);
}

/*
 * Many forks, each while the workers sign with the key the child then
 * uses, inline and in a job. A child that inherits a lock held by a
 * worker at the fork (the key's blinding lock, a DRBG's, the provider's
 * own) hangs and is killed by its watchdog.
 */
static int child_repeat(void)
{
    const char *who = "child";
    struct hjob *j = sign_jobs_new(1);
    struct sigop *op = calloc(1, sizeof(*op));

    CHILD_CHECK(j != NULL && op != NULL);
    CHILD_CHECK(sign_md(op) == 1);
    CHILD_CHECK(op->siglen == S.reflen && memcmp(op->sig, S.ref, S.reflen) == 0);
    if (!child_async) {
        sign_jobs_free(j, 1);
        free(op);
        return 1;
    }
    CHILD_CHECK(h_run_fd_loop(j, 1, TIMEOUT_MS, NULL, NULL));
    if (!job_ok(j))
        fprintf(stderr, "child job: done %d ret %d siglen %zu pauses %u\n", j->done,
                j->ret, ((struct sigop *)j->arg)->siglen, j->pauses);
    CHILD_CHECK(job_ok(j));
    return 1;
}

static int restart_busy(struct hjob *j, void *ctx)
{
    unsigned *left = ctx;

    if (!job_ok(j))
        return -1;
    if (*left == 0)
        return 0;
    (*left)--;
    return 1;
}

static void test_fork_repeated(void **state)
{
    struct hjob *busy = sign_jobs_new(NBUSY);
    unsigned round, failures = 0;

    (void)state;
    assert_non_null(busy);
    for (round = 0; round < REPEAT_FORK; round++) {
        unsigned more = NBUSY;
        size_t i;
        pid_t pid;

        for (i = 0; i < NBUSY; i++) {
            busy[i].done = 0;
            assert_true(hjob_step(&busy[i]) == ASYNC_PAUSE || busy[i].done);
        }
        /* Let the workers get into their signatures; fork at varying instants. */
        h_sleep_ms(round % 4);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(watchdog_s(WATCHDOG_S / 4));
            _exit(child_repeat() ? 0 : failed_status());
        }
        assert_true(h_run_fd_loop(busy, NBUSY, TIMEOUT_MS, restart_busy, &more));
        if (!reap(pid, "child"))
            failures++;
    }
    if (failures > 0)
        fail_msg("%u of %d children failed or hung", failures, REPEAT_FORK);
    sign_jobs_free(busy, NBUSY);
}

/*
 * A child resumes a job it inherited paused (its request queued or
 * running in the parent at the fork). Nothing in the child will ever
 * complete that request: the job must not wait for it forever, nor read
 * the token the parent's worker writes to the eventfd both processes
 * share. Expected: the job finishes in the child (running the operation
 * there) and the parent's copy of the job completes as usual.
 *
 * (Before 987a17c the child slept in offload_req_wait() forever: the
 * request was neither done nor in the queue atfork_child had emptied.)
 */
static int child_resume(struct hjob *j)
{
    const char *who = "child";
    int r = hjob_step(j);

    while (r == ASYNC_PAUSE) {
        CHILD_CHECK(j->fd >= 0);
        CHILD_CHECK(h_fd_readable(j->fd, TIMEOUT_MS));
        r = hjob_step(j);
    }
    CHILD_CHECK(r == ASYNC_FINISH);
    CHILD_CHECK(job_ok(j));
    return 1;
}

static void test_fork_inherited_job(void **state)
{
    struct hjob *j = sign_jobs_new(2);
    unsigned round;

    (void)state;
    assert_non_null(j);
    for (round = 0; round < 8; round++) {
        pid_t pid;

        /* j[1] keeps a worker busy, so j[0]'s request is queued at the fork or running.
         */
        j[0].done = j[1].done = 0;
        assert_int_equal(hjob_step(&j[1]), ASYNC_PAUSE);
        assert_int_equal(hjob_step(&j[0]), ASYNC_PAUSE);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(watchdog_s(WATCHDOG_S / 4));
            _exit(child_resume(&j[round & 1]) ? 0 : failed_status());
        }
        assert_true(h_run_fd_loop(j, 2, TIMEOUT_MS, NULL, NULL));
        check_jobs(j, 2);
        assert_true(reap(pid, "child"));
    }
    sign_jobs_free(j, 2);
}

/*
 * The child offloads, then unloads everything (as a child that cleans up
 * before exiting does): the provider's teardown in the child must join
 * the child's workers only and leave no thread behind, also with the
 * stats file thread configured (it runs in the parent, not here).
 *
 * The jobs in flight at the fork sign with EVP_PKEY_CTXs the test owns
 * (not made inside the job), so that the child can give up its copies
 * of them: an inherited paused job would otherwise hold references to
 * the provider and keep OpenSSL from ever tearing it down.
 */
struct prepared {
    EVP_PKEY_CTX *ctx;
    struct sigop op;
};

static int sign_prepared(void *arg)
{
    struct prepared *p = arg;

    p->op.siglen = sizeof(p->op.sig);
    return EVP_PKEY_sign(p->ctx, p->op.sig, &p->op.siglen, S.md, sizeof(S.md)) > 0;
}

static int prepared_ok(const struct hjob *j)
{
    const struct prepared *p = j->arg;

    return j->done && j->ret == 1 && p->op.siglen == S.reflen &&
           memcmp(p->op.sig, S.ref, S.reflen) == 0;
}

static void prepared_free(struct hjob *jobs, size_t n)
{
    size_t i;

    for (i = 0; jobs != NULL && i < n; i++) {
        struct prepared *p = jobs[i].arg;

        if (p != NULL)
            EVP_PKEY_CTX_free(p->ctx);
        free(p);
    }
    hjobs_free(jobs, n);
}

static int child_unload(struct hjob *busy)
{
    const char *who = "child";
    struct hjob *j = sign_jobs_new(4);
    size_t i;
    int n, base = h_count_threads(); /* this thread (and a sanitizer's) */

    CHILD_CHECK(j != NULL);
    /* Give up the inherited jobs: their wait ctxs and contexts. */
    prepared_free(busy, NBUSY);
    if (child_async) {
        CHILD_CHECK(h_run_fd_loop(j, 4, TIMEOUT_MS, NULL, NULL));
        for (i = 0; i < 4; i++)
            CHILD_CHECK(job_ok(&j[i]));
        CHILD_CHECK(counter("offload-workers") > 0);
    }
    sign_jobs_free(j, 4);
    EVP_PKEY_free(S.key);
    EVP_PKEY_free(S.refkey);
    S.key = S.refkey = NULL;
    test_ref_close(S.defctx, S.defprov);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    n = h_wait_threads(base);
    if (n != base)
        fprintf(stderr, "child: %d threads after unloading, %d at the fork\n", n, base);
    CHILD_CHECK(n == base);
    return 1;
}

static void test_fork_child_unloads(void **state)
{
    struct hjob *busy = hjobs_new(NBUSY);
    size_t i;
    pid_t pid;

    (void)state;
    assert_non_null(busy);
    for (i = 0; i < NBUSY; i++) {
        struct prepared *p = calloc(1, sizeof(*p));

        assert_non_null(p);
        busy[i].fn = sign_prepared;
        busy[i].arg = p;
        p->ctx = test_sha256_sign_ctx(S.env.libctx, S.key, PROPQ);
        assert_non_null(p->ctx);
    }
    for (i = 0; i < NBUSY; i++)
        assert_true(hjob_step(&busy[i]) == ASYNC_PAUSE || busy[i].done);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(watchdog_s(WATCHDOG_S / 4));
        _exit(child_unload(busy) ? 0 : failed_status());
    }
    assert_true(h_run_fd_loop(busy, NBUSY, TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < NBUSY; i++)
        assert_true(prepared_ok(&busy[i]));
    assert_true(reap(pid, "child"));
    prepared_free(busy, NBUSY);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    EVP_PKEY_CTX *kctx = NULL, *dctx = NULL;
    OSSL_PARAM *params = NULL;
    unsigned int mdlen = sizeof(S.md);
    char conf[128];
    int ok = 0;

    (void)state;
    if (!ASYNC_init_thread(4 * (NPRE + NBUSY + NNEW), 0))
        return -1;
    /* The stats file: its thread runs in the parent only. */
    snprintf(S.stats_path, sizeof(S.stats_path), "/tmp/offload-fork-stats-%d",
             (int)getpid());
    snprintf(conf, sizeof(conf), "workers = 2\nstats_file = %s\n", S.stats_path);
    if (!test_env_open(&S.env, conf))
        return -1;
    if ((S.defctx = test_ref_open(&S.defprov)) == NULL)
        return -1;
    /*
     * RSA-4096 (1.5 ms a signature): NBUSY requests keep two workers busy
     * for 24 ms, far longer than starting the jobs takes even under TSan,
     * whose instrumented job starts let the workers drain 32 RSA-2048
     * requests before the fork once in a while.
     */
    kctx = EVP_PKEY_CTX_new_from_name(S.env.libctx, "RSA", PROPQ);
    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 4096) <= 0 ||
        EVP_PKEY_generate(kctx, &S.key) <= 0 || !test_pkey_in(S.key, "offload"))
        goto out;
    dctx = EVP_PKEY_CTX_new_from_name(S.defctx, "RSA", NULL);
    if (EVP_PKEY_todata(S.key, EVP_PKEY_KEYPAIR, &params) <= 0 || dctx == NULL ||
        EVP_PKEY_fromdata_init(dctx) <= 0 ||
        EVP_PKEY_fromdata(dctx, &S.refkey, EVP_PKEY_KEYPAIR, params) <= 0)
        goto out;
    if (!EVP_Digest(msg, sizeof(msg) - 1, S.md, &mdlen, EVP_sha256(), NULL))
        goto out;
    S.reflen = sizeof(S.ref);
    if (!test_sha256_sign(S.defctx, S.refkey, NULL, S.md, S.ref, &S.reflen))
        goto out;
    ok = 1;
out:
    if (!ok)
        test_dump_errors("group setup");
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_CTX_free(dctx);
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(S.key);
    EVP_PKEY_free(S.refkey);
    test_ref_close(S.defctx, S.defprov);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    unlink(S.stats_path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_busy),
        cmocka_unit_test(test_fork_repeated),
        cmocka_unit_test(test_fork_inherited_job),
        cmocka_unit_test(test_fork_child_unloads),
    };

    if (getenv("OFFLOAD_TEST_FILTER") != NULL) /* e.g. "test_fork_busy", "*abandoned*" */
        cmocka_set_test_filter(getenv("OFFLOAD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

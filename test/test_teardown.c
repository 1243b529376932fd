/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unloading the provider (freeing the library context that loaded it)
 * with work in flight.
 *
 *   - complete_then_unload: jobs paused on RSA signatures are completed,
 *     then everything is freed; after each of several load/unload cycles
 *     the process has exactly the threads and fds it had before the first
 *     load (the workers were joined, every eventfd closed);
 *   - abandoned_fd / abandoned_cb: jobs still paused when the library
 *     context is freed; the application gave them up first (freed their
 *     wait ctxs and the EVP contexts it owns, as SSL_free does). Nothing
 *     crashes, no worker outlives the teardown, no fd is left open, no
 *     token lands on a recycled fd number and no callback comes after its
 *     wait ctx was freed;
 *   - abandoned_job_holds_ctx: a job that made its own EVP_PKEY_CTX (on
 *     its stack, as libssl's handshake code does) is abandoned. OpenSSL
 *     then never tears the provider down (the job holds references to it)
 *     so its workers stay: checked in a child process that must survive
 *     freeing the library context and exit() (OPENSSL_cleanup) cleanly;
 *   - exit_in_flight: a process exit()s with requests queued and running
 *     (libcrypto's atexit cleanup must not pull its state from under a
 *     worker);
 *   - wait_ctx_outlives_provider: a wait ctx that carries the provider's
 *     eventfd (and cleanup function) is freed after the provider was
 *     unloaded; and one kept across an unload and a new load still shows
 *     exactly one wait fd.
 *
 * Under valgrind (meson test --setup valgrind teardown) the provider must
 * leak nothing definitely; abandoned jobs stay reachable (pointers kept in
 * a static array), as an application's would.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

#define PROPQ      "provider=" OFFLOAD_PROVIDER_NAME
#define NJOBS      16
#define CYCLES     4
#define SIG_MAX    512
#define TIMEOUT_MS 30000
#define CONF       "workers = 2\n"

static const char msg[] = "offload teardown test";

static struct {
    int threads0, fds0;    /* before the first load */
    OSSL_PARAM *keyparams; /* an RSA-2048 key pair, imported at every load */
    unsigned char md[32];
    unsigned char ref[SIG_MAX];
    size_t reflen;
} S;

/* Abandoned jobs, reachable for leak checkers (an application keeps them too). */
static struct hjob *volatile abandoned[8]; /* volatile: stores kept, never read */
static size_t nabandoned;

/* One load of the provider with the test key in it. */
struct loaded {
    test_env env;
    EVP_PKEY *key;
};

static int load(struct loaded *l)
{
    EVP_PKEY_CTX *ctx = NULL;
    int ok;

    memset(l, 0, sizeof(*l));
    if (!test_env_open(&l->env, CONF))
        return 0;
    ctx = EVP_PKEY_CTX_new_from_name(l->env.libctx, "RSA", PROPQ);
    ok = ctx != NULL && EVP_PKEY_fromdata_init(ctx) > 0 &&
         EVP_PKEY_fromdata(ctx, &l->key, EVP_PKEY_KEYPAIR, S.keyparams) > 0 &&
         test_pkey_in(l->key, OFFLOAD_PROVIDER_NAME);
    EVP_PKEY_CTX_free(ctx);
    if (!ok)
        test_dump_errors("key import");
    return ok;
}

static void unload(struct loaded *l)
{
    EVP_PKEY_free(l->key);
    test_env_close(&l->env);
}

/* A signature with an EVP_PKEY_CTX the test owns (made outside the job). */
struct prepared {
    EVP_PKEY_CTX *ctx;
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_prepared(void *arg)
{
    struct prepared *p = arg;

    p->siglen = sizeof(p->sig);
    return EVP_PKEY_sign(p->ctx, p->sig, &p->siglen, S.md, sizeof(S.md)) > 0;
}

static EVP_PKEY_CTX *sign_ctx(struct loaded *l)
{
    return test_sha256_sign_ctx(l->env.libctx, l->key, PROPQ);
}

static struct hjob *prepared_jobs(struct loaded *l, size_t n)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;

    assert_non_null(jobs);
    for (i = 0; i < n; i++) {
        struct prepared *p = calloc(1, sizeof(*p));

        assert_non_null(p);
        p->ctx = sign_ctx(l);
        assert_non_null(p->ctx);
        jobs[i].fn = sign_prepared;
        jobs[i].arg = p;
    }
    return jobs;
}

/* Frees the test's contexts of |jobs|; their wait ctxs too when |wctx|. */
static void prepared_release(struct hjob *jobs, size_t n, int wctx)
{
    size_t i;

    for (i = 0; i < n; i++) {
        struct prepared *p = jobs[i].arg;

        EVP_PKEY_CTX_free(p->ctx);
        p->ctx = NULL;
        if (wctx) {
            ASYNC_WAIT_CTX_free(jobs[i].wctx);
            jobs[i].wctx = NULL;
        }
    }
}

static void prepared_free(struct hjob *jobs, size_t n)
{
    size_t i;

    prepared_release(jobs, n, 0);
    for (i = 0; i < n; i++)
        free(jobs[i].arg);
    hjobs_free(jobs, n);
}

static void check_signed(const struct hjob *j)
{
    const struct prepared *p = j->arg;

    if (j->ret != 1)
        test_dump_errors("signing job");
    assert_true(j->done);
    assert_int_equal(j->ret, 1);
    assert_int_equal(p->siglen, S.reflen);
    assert_memory_equal(p->sig, S.ref, S.reflen);
}

/* Starts every job; returns how many paused. */
static size_t start_all(struct hjob *jobs, size_t n)
{
    size_t i, paused = 0;

    for (i = 0; i < n; i++) {
        int r = hjob_step(&jobs[i]);

        assert_true(r == ASYNC_PAUSE || r == ASYNC_FINISH);
        paused += r == ASYNC_PAUSE;
    }
    return paused;
}

/* The process is back to what it was before the first load. */
static void assert_baseline(const char *when)
{
    int threads = h_wait_threads(S.threads0), fds = h_count_fds();

    if (threads != S.threads0 || fds != S.fds0)
        fail_msg("%s: %d threads (%d before the first load), %d fds (%d before)", when,
                 threads, S.threads0, fds, S.fds0);
}

static void keep_abandoned(struct hjob *jobs)
{
    assert_true(nabandoned < sizeof(abandoned) / sizeof(abandoned[0]));
    abandoned[nabandoned++] = jobs;
}

/* ---- complete, then unload ---- */

static void test_complete_then_unload(void **state)
{
    int cycle;

    (void)state;
    for (cycle = 0; cycle < CYCLES; cycle++) {
        struct loaded l;
        struct hjob *jobs;
        size_t i, paused;

        assert_true(load(&l));
        jobs = prepared_jobs(&l, NJOBS);
        paused = start_all(jobs, NJOBS);
        assert_true(paused > 0);
        assert_true(test_counter(l.env.offload, "offload-in-flight") > 0);
        assert_true(h_count_threads() > S.threads0); /* workers started */
        assert_true(h_run_fd_loop(jobs, NJOBS, TIMEOUT_MS, NULL, NULL));
        for (i = 0; i < NJOBS; i++)
            check_signed(&jobs[i]);
        prepared_free(jobs, NJOBS);
        unload(&l);
        assert_baseline("after complete and unload");
    }
}

/* ---- abandoned jobs, the application's contexts freed ---- */

static void test_abandoned_fd(void **state)
{
    struct loaded l;
    struct hjob *jobs;
    int grabbed[NJOBS];
    size_t i, paused;

    (void)state;
    assert_true(load(&l));
    jobs = prepared_jobs(&l, NJOBS);
    paused = start_all(jobs, NJOBS);
    assert_true(paused > 0);
    assert_true(test_counter(l.env.offload, "offload-in-flight") > 0);
    /* Given up while paused: wait ctxs (closing their eventfds) and contexts. */
    prepared_release(jobs, NJOBS, 1);
    keep_abandoned(jobs);
    /* Take the numbers just closed: no worker may write to them now. */
    for (i = 0; i < NJOBS; i++) {
        grabbed[i] = eventfd(0, EFD_CLOEXEC);
        assert_true(grabbed[i] >= 0);
    }
    unload(&l);
    for (i = 0; i < NJOBS; i++) {
        assert_false(h_fd_readable(grabbed[i], 0));
        close(grabbed[i]);
    }
    assert_baseline("after abandoning paused jobs and unloading");
}

static struct {
    pthread_mutex_t lock;
    unsigned calls;
} CB = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int count_cb(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&CB.lock);
    CB.calls++;
    pthread_mutex_unlock(&CB.lock);
    return 1;
}

static unsigned cb_calls(void)
{
    unsigned n;

    pthread_mutex_lock(&CB.lock);
    n = CB.calls;
    pthread_mutex_unlock(&CB.lock);
    return n;
}

static void test_abandoned_cb(void **state)
{
    struct loaded l;
    struct hjob *jobs;
    unsigned before;
    size_t i, paused;

    (void)state;
    assert_true(load(&l));
    jobs = prepared_jobs(&l, NJOBS);
    for (i = 0; i < NJOBS; i++)
        assert_int_equal(ASYNC_WAIT_CTX_set_callback(jobs[i].wctx, count_cb, NULL), 1);
    paused = start_all(jobs, NJOBS);
    assert_int_equal(paused, NJOBS); /* callback mode always pauses */
    prepared_release(jobs, NJOBS, 1);
    keep_abandoned(jobs);
    before = cb_calls();
    unload(&l); /* the workers drain the queue: no callback may reach a freed ctx */
    assert_int_equal(cb_calls(), before);
    print_message("%u of %d callbacks came before the wait ctxs were freed\n", before,
                  NJOBS);
    assert_baseline("after abandoning paused callback-mode jobs and unloading");
}

/* In a forked child: a crash must kill it (cmocka's handlers would carry on testing). */
static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    size_t i;

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    alarm(60);
}

/* ---- abandoned jobs that hold their own EVP context ---- */

struct owned {
    EVP_PKEY *key;
    OSSL_LIB_CTX *libctx;
    size_t siglen;
    unsigned char sig[SIG_MAX];
};

static int sign_owned(void *arg)
{
    struct owned *o = arg;

    o->siglen = sizeof(o->sig);
    return test_sha256_sign(o->libctx, o->key, PROPQ, S.md, o->sig, &o->siglen);
}

static int child_abandon_owned(void)
{
    struct loaded l;
    struct hjob *jobs;
    size_t i, paused = 0;

    if (!load(&l) || (jobs = hjobs_new(NJOBS)) == NULL)
        return 0;
    for (i = 0; i < NJOBS; i++) {
        struct owned *o = calloc(1, sizeof(*o));

        if (o == NULL)
            return 0;
        o->key = l.key;
        o->libctx = l.env.libctx;
        jobs[i].fn = sign_owned;
        jobs[i].arg = o;
        paused += hjob_step(&jobs[i]) == ASYNC_PAUSE;
    }
    if (paused == 0)
        return 0;
    for (i = 0; i < NJOBS; i++) {
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
        jobs[i].wctx = NULL;
    }
    abandoned[nabandoned++] = jobs; /* no cmocka in the child */
    unload(&l);
    /* The jobs' contexts keep the provider alive: its workers too. */
    fprintf(stderr, "child: %d threads after freeing the library context (%d before)\n",
            h_count_threads(), S.threads0);
    /* Let the workers finish what was queued (exiting meanwhile: test_exit_in_flight). */
    h_sleep_ms(500);
    return 1;
}

static void test_abandoned_job_holds_ctx(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        /* exit(), not _exit(): OPENSSL_cleanup runs with the workers alive. */
        exit(child_abandon_owned() ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: %s %d", WIFEXITED(status) ? "exit status" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/*
 * exit() while requests are queued and running: OPENSSL_cleanup (atexit)
 * frees libcrypto's global state; a worker still inside the soft engine
 * must not be using it then. Jobs in flight at exit are what a server
 * has when it exits on SIGTERM in the middle of handshakes.
 */
#define EXIT_JOBS   64
#define EXIT_ROUNDS 16

static int child_exit_in_flight(void)
{
    struct loaded l;
    struct hjob *jobs;
    size_t i, paused = 0;

    if (!load(&l) || (jobs = hjobs_new(EXIT_JOBS)) == NULL)
        return 0;
    for (i = 0; i < EXIT_JOBS; i++) {
        struct owned *o = calloc(1, sizeof(*o));

        if (o == NULL)
            return 0;
        o->key = l.key;
        o->libctx = l.env.libctx;
        jobs[i].fn = sign_owned;
        jobs[i].arg = o;
        paused += hjob_step(&jobs[i]) == ASYNC_PAUSE;
    }
    abandoned[nabandoned++] = jobs;
    return paused > 0;
}

static void test_exit_in_flight(void **state)
{
    int round, crashed = 0;

    (void)state;
    for (round = 0; round < EXIT_ROUNDS; round++) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_default_signals();
            exit(child_exit_in_flight() ? 0 : 1);
        }
        while (waitpid(pid, &status, 0) < 0)
            assert_int_equal(errno, EINTR);
        assert_false(WIFEXITED(status) && WEXITSTATUS(status) != 0);
        if (WIFSIGNALED(status)) {
            fprintf(stderr,
                    "round %d: the child exiting with work in flight: signal %d\n", round,
                    WTERMSIG(status));
            crashed++;
        }
    }
    if (crashed > 0)
        fail_msg("%d of %d processes crashed in exit() with work in flight", crashed,
                 EXIT_ROUNDS);
}

/* ---- a wait ctx that outlives the provider ---- */

static int child_wctx_outlives(void)
{
    struct loaded l;
    struct hjob *jobs;
    int fd;

    if (!load(&l))
        return 10;
    jobs = prepared_jobs(&l, 1);
    if (!h_run_fd_loop(jobs, 1, TIMEOUT_MS, NULL, NULL) || jobs[0].ret != 1)
        return 11;
    fd = h_wait_fd(jobs[0].wctx);
    if (fd < 0)
        return 12;
    prepared_release(jobs, 1, 0);
    unload(&l);
    /* The provider is gone; the ctx still holds its eventfd and cleanup. */
    ASYNC_WAIT_CTX_free(jobs[0].wctx);
    jobs[0].wctx = NULL;
    if (fcntl(fd, F_GETFD) != -1)
        return 13; /* the eventfd was not closed */
    free(jobs[0].arg);
    hjobs_free(jobs, 1);
    return 0;
}

static void test_wait_ctx_outlives_provider(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        _exit(child_wctx_outlives());
    }
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child freeing a wait ctx after the unload: %s %d",
                 WIFEXITED(status) ? "exit status" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_wait_ctx_across_reload(void **state)
{
    struct loaded l;
    struct hjob *jobs;
    int fd;

    (void)state;
    assert_true(load(&l));
    jobs = prepared_jobs(&l, 1);
    assert_true(h_run_fd_loop(jobs, 1, TIMEOUT_MS, NULL, NULL));
    check_signed(&jobs[0]);
    fd = h_wait_fd(jobs[0].wctx);
    assert_true(fd >= 0);
    prepared_release(jobs, 1, 0);
    unload(&l);

    /* Loaded again; the same wait ctx serves a new job. */
    assert_true(load(&l));
    ((struct prepared *)jobs[0].arg)->ctx = sign_ctx(&l);
    assert_non_null(((struct prepared *)jobs[0].arg)->ctx);
    assert_true(h_run_fd_loop(jobs, 1, TIMEOUT_MS, NULL, NULL));
    check_signed(&jobs[0]);
    /* Exactly one wait fd, and nothing left to read on it. */
    fd = h_wait_fd(jobs[0].wctx);
    if (fd < 0)
        fail_msg("the wait ctx shows %s wait fd after a reload",
                 fd == -1 ? "no" : "more than one");
    assert_false(h_fd_readable(fd, 0));
    prepared_free(jobs, 1);
    unload(&l);
    assert_baseline("after a reload");
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    OSSL_PROVIDER *prov = NULL;
    OSSL_LIB_CTX *def = test_ref_open(&prov);
    EVP_PKEY_CTX *kctx = NULL;
    EVP_PKEY *key = NULL;
    unsigned int mdlen = sizeof(S.md);
    int ok;

    (void)state;
    if (!ASYNC_init_thread(4 * NJOBS, 0))
        return -1;
    /* The key pair and the reference signature come from the default provider. */
    kctx = EVP_PKEY_CTX_new_from_name(def, "RSA", NULL);
    ok = prov != NULL && kctx != NULL && EVP_PKEY_keygen_init(kctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048) > 0 &&
         EVP_PKEY_generate(kctx, &key) > 0 &&
         EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &S.keyparams) > 0 &&
         EVP_Digest(msg, sizeof(msg) - 1, S.md, &mdlen, EVP_sha256(), NULL) > 0;
    S.reflen = sizeof(S.ref);
    ok = ok && test_sha256_sign(def, key, NULL, S.md, S.ref, &S.reflen);
    if (!ok)
        test_dump_errors("group setup");
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_free(key);
    test_ref_close(def, prov);
    /* What the process has before the provider is ever loaded. */
    h_settle_threads();
    S.threads0 = h_count_threads();
    S.fds0 = h_count_fds();
    return ok ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    OSSL_PARAM_free(S.keyparams);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_then_unload),
        cmocka_unit_test(test_abandoned_fd),
        cmocka_unit_test(test_abandoned_cb),
        cmocka_unit_test(test_abandoned_job_holds_ctx),
        cmocka_unit_test(test_exit_in_flight),
        cmocka_unit_test(test_wait_ctx_outlives_provider),
        cmocka_unit_test(test_wait_ctx_across_reload),
    };

    if (getenv("OFFLOAD_TEST_FILTER") != NULL) /* e.g. "test_fork_busy", "*abandoned*" */
        cmocka_set_test_filter(getenv("OFFLOAD_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

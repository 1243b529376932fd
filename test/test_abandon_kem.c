/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Abandoned jobs of the kem and asymcipher families: RSA-4096 decryption
 * (OAEP) and RSASVE decapsulation (slow enough to be in flight), RSASVE
 * encapsulation, and on 3.5 ML-KEM-768 and X448MLKEM1024 encapsulation and
 * decapsulation and ML-DSA-65 signing, each paused in a job on a request
 * of offload's workers.
 *
 *   abandoned_then_unload_fd / _cb
 *        the application gives the paused jobs up as SSL_free does (frees
 *        their wait ctxs and the EVP_PKEY_CTXs it made for them, and the
 *        buffers it passed), then frees the library context with the
 *        requests still queued or running: nothing crashes, no worker
 *        outlives the unload, no fd stays open, no token lands on the fd
 *        numbers just closed, no callback comes after its wait ctx went;
 *   abandoned_provider_lives, abandoned_keys_freed
 *        the same with the provider kept loaded (and in the second the
 *        application's keys freed too, as SSL_free frees an ephemeral key
 *        share while its decapsulation is in flight): every request completes
 *        (completed counts them all, in-flight returns to 0), no token on
 *        the closed fds' numbers, and a new job on a new wait ctx then
 *        works (the default provider alone checks its result);
 *   abandoned_job_holds_ctx
 *        (in a child) jobs that made their own EVP_PKEY_CTX are abandoned;
 *        the library context is freed, exit() runs OpenSSL's cleanup with
 *        the workers alive: the child exits 0;
 *   exit_in_flight
 *        (in children) exit() with these requests queued and running.
 *
 * Under ASan (and valgrind: meson test --setup valgrind abandon_kem)
 * nothing may be touched after it was freed and nothing leaks definitely;
 * the abandoned jobs stay reachable from a static array, as an
 * application's would.
 */
#include <dlfcn.h>
#include <errno.h>
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
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"

#define CONF       "workers = 2\nbusy_inline = 0\n"
#define MAX_OPS    32
#define BUF        8192
#define TIMEOUT_MS 60000

enum kind { K_RSA, K_MLKEM, K_HYBRID, K_MLDSA, K_N };
static const char *const kind_names[K_N] = {"RSA", "ML-KEM-768", "X448MLKEM1024",
                                            "ML-DSA-65"};
enum op { DECRYPT, DECAP, ENCAP, SIGN };
static const unsigned char tbs[] = "offload abandons a signature";

static struct {
    int threads0, fds0;
    OSSL_PARAM *keyparams[K_N]; /* key pairs made by the default, imported at each load */
    int present[K_N];
    unsigned char ct[K_N][BUF]; /* a valid ciphertext of each (RSA: OAEP) */
    size_t ctlen[K_N];
    unsigned char rsasve_ct[BUF];
    size_t rsasve_ctlen;
    EVP_PKEY *refkey[K_N]; /* the same pairs, in the reference */
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
} S;

/* Abandoned jobs, reachable for leak checkers. */
static struct hjob *volatile abandoned[16];
static size_t nabandoned;

struct loaded {
    test_env env;
    EVP_PKEY *key[K_N];
};

static EVP_PKEY *import(OSSL_LIB_CTX *lib, const char *propq, enum kind k)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(lib, kind_names[k], propq);
    EVP_PKEY *key = NULL;

    if (c == NULL || EVP_PKEY_fromdata_init(c) <= 0 ||
        EVP_PKEY_fromdata(c, &key, EVP_PKEY_KEYPAIR, S.keyparams[k]) <= 0)
        key = NULL;
    EVP_PKEY_CTX_free(c);
    return key;
}

static int load(struct loaded *l)
{
    int k;

    memset(l, 0, sizeof(*l));
    if (!test_env_open(&l->env, CONF))
        return 0;
    for (k = 0; k < K_N; k++) {
        if (!S.present[k])
            continue;
        l->key[k] = import(l->env.libctx, OFFLOAD_PROPQ, (enum kind)k);
        if (l->key[k] == NULL || !test_pkey_in(l->key[k], OFFLOAD_PROVIDER_NAME)) {
            test_dump_errors("key import");
            return 0;
        }
    }
    return 1;
}

static void unload(struct loaded *l)
{
    int k;

    for (k = 0; k < K_N; k++)
        EVP_PKEY_free(l->key[k]);
    test_env_close(&l->env);
}

/* ---- one operation, its context made by the test or by the job ---- */

struct task {
    enum op op;
    enum kind kind;
    OSSL_LIB_CTX *libctx; /* own: the job makes its context here */
    EVP_PKEY *key;        /* own: ... for this key */
    EVP_PKEY_CTX *ctx;    /* prepared: made and initialised by the test */
    unsigned char out[BUF], sec[BUF];
    size_t outlen, seclen;
};

static int init_ctx(EVP_PKEY_CTX *c, enum op op, enum kind k)
{
    OSSL_PARAM rsasve[] = {OSSL_PARAM_utf8_string(OSSL_KEM_PARAM_OPERATION,
                                                  (char *)OSSL_KEM_PARAM_OPERATION_RSASVE,
                                                  0),
                           OSSL_PARAM_END};
    const OSSL_PARAM *p = k == K_RSA ? rsasve : NULL;

    if (op == SIGN) { /* EVP_PKEY_sign_message_init (3.4+) */
        int (*smi)(EVP_PKEY_CTX *, EVP_SIGNATURE *, const OSSL_PARAM *) =
            (int (*)(EVP_PKEY_CTX *, EVP_SIGNATURE *, const OSSL_PARAM *))dlsym(
                RTLD_DEFAULT, "EVP_PKEY_sign_message_init");
        EVP_SIGNATURE *sig =
            EVP_SIGNATURE_fetch(EVP_PKEY_CTX_get0_libctx(c), kind_names[k], NULL);
        int ok = smi != NULL && sig != NULL && smi(c, sig, NULL) > 0;

        EVP_SIGNATURE_free(sig);
        return ok;
    }
    if (op == DECRYPT)
        return EVP_PKEY_decrypt_init(c) > 0 &&
               EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0;
    return op == DECAP ? EVP_PKEY_decapsulate_init(c, p) > 0
                       : EVP_PKEY_encapsulate_init(c, p) > 0;
}

static int run_task(void *arg)
{
    struct task *t = arg;
    EVP_PKEY_CTX *own = NULL, *c = t->ctx;
    const unsigned char *ct =
        t->kind == K_RSA && t->op == DECAP ? S.rsasve_ct : S.ct[t->kind];
    size_t ctlen = t->kind == K_RSA && t->op == DECAP ? S.rsasve_ctlen : S.ctlen[t->kind];
    int ok;

    if (c == NULL) {
        own = c = EVP_PKEY_CTX_new_from_pkey(t->libctx, t->key, NULL);
        if (c == NULL || !init_ctx(c, t->op, t->kind)) {
            EVP_PKEY_CTX_free(own);
            return 0;
        }
    }
    t->outlen = sizeof(t->out);
    t->seclen = sizeof(t->sec);
    if (t->op == SIGN)
        ok = EVP_PKEY_sign(c, t->out, &t->outlen, tbs, sizeof(tbs)) > 0;
    else if (t->op == DECRYPT)
        ok = EVP_PKEY_decrypt(c, t->out, &t->outlen, ct, ctlen) > 0;
    else if (t->op == DECAP)
        ok = EVP_PKEY_decapsulate(c, t->out, &t->outlen, ct, ctlen) > 0;
    else
        ok = EVP_PKEY_encapsulate(c, t->out, &t->outlen, t->sec, &t->seclen) > 0;
    EVP_PKEY_CTX_free(own);
    return ok;
}

/* The mix of operations, |per| of each kind and op there is. */
static size_t make_tasks(struct loaded *l, struct task **tasks, int prepared, size_t per)
{
    static const enum op ops[] = {DECRYPT, DECAP, ENCAP, SIGN};
    size_t n = 0, i, r;
    int k;

    *tasks = calloc(MAX_OPS, sizeof(**tasks));
    assert_non_null(*tasks);
    for (r = 0; r < per; r++)
        for (k = 0; k < K_N; k++)
            for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                struct task *t = &(*tasks)[n];

                if (!S.present[k] || (k != K_RSA && ops[i] == DECRYPT) ||
                    ((k == K_MLDSA) != (ops[i] == SIGN)))
                    continue;
                assert_true(n < MAX_OPS);
                t->op = ops[i];
                t->kind = (enum kind)k;
                t->libctx = l->env.libctx;
                t->key = l->key[k];
                if (prepared) {
                    t->ctx = EVP_PKEY_CTX_new_from_pkey(l->env.libctx, l->key[k], NULL);
                    assert_non_null(t->ctx);
                    assert_true(init_ctx(t->ctx, t->op, t->kind));
                }
                n++;
            }
    return n;
}

static struct hjob *start_jobs(struct task *tasks, size_t n, int cb, int (*cbfn)(void *))
{
    struct hjob *jobs = hjobs_new(n);
    size_t i, paused = 0;

    assert_non_null(jobs);
    for (i = 0; i < n; i++) {
        jobs[i].fn = run_task;
        jobs[i].arg = &tasks[i];
        if (cb)
            assert_int_equal(ASYNC_WAIT_CTX_set_callback(jobs[i].wctx, cbfn, NULL), 1);
        paused += hjob_step(&jobs[i]) == ASYNC_PAUSE;
    }
    assert_true(nabandoned < sizeof(abandoned) / sizeof(abandoned[0]));
    abandoned[nabandoned++] = jobs;
    print_message("  %zu jobs started, %zu paused on offload's workers\n", n, paused);
    assert_int_equal(paused, n); /* every one went to a worker */
    return jobs;
}

/* Gives the jobs up: wait ctxs (closing their eventfds) and the test's contexts. */
static void give_up(struct hjob *jobs, struct task *tasks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
        jobs[i].wctx = NULL;
        EVP_PKEY_CTX_free(tasks[i].ctx);
        tasks[i].ctx = NULL;
    }
}

static void assert_baseline(const char *when)
{
    int threads = h_wait_threads(S.threads0), fds = h_count_fds();

    if (threads != S.threads0 || fds != S.fds0)
        fail_msg("%s: %d threads (%d before the first load), %d fds (%d before)", when,
                 threads, S.threads0, fds, S.fds0);
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

/* ---- the tests ---- */

static void abandon_then_unload(int cb)
{
    struct loaded l;
    struct task *tasks;
    struct hjob *jobs;
    int grabbed[MAX_OPS];
    unsigned before;
    size_t i, n;

    assert_true(load(&l));
    n = make_tasks(&l, &tasks, 1, 2);
    jobs = start_jobs(tasks, n, cb, count_cb);
    assert_true(test_counter(l.env.offload, OFFLOAD_PARAM_IN_FLIGHT) > 0);
    give_up(jobs, tasks, n);
    free(tasks); /* the buffers the calls were given: no worker writes there */
    for (i = 0; i < n; i++) {
        grabbed[i] = eventfd(0, EFD_CLOEXEC);
        assert_true(grabbed[i] >= 0);
    }
    before = cb_calls();
    print_message(
        "  given up; %llu requests in flight at the unload\n",
        (unsigned long long)test_counter(l.env.offload, OFFLOAD_PARAM_IN_FLIGHT));
    unload(&l); /* drains the queue and joins the workers */
    assert_int_equal(cb_calls(), before);
    for (i = 0; i < n; i++) {
        assert_false(h_fd_readable(grabbed[i], 0));
        close(grabbed[i]);
    }
    assert_baseline(cb ? "after abandoning callback-mode jobs and unloading"
                       : "after abandoning fd-mode jobs and unloading");
}

static void test_abandoned_then_unload_fd(void **state)
{
    (void)state;
    abandon_then_unload(0);
}

static void test_abandoned_then_unload_cb(void **state)
{
    (void)state;
    abandon_then_unload(1);
}

static int idle(void *arg)
{
    return test_counter(arg, OFFLOAD_PARAM_IN_FLIGHT) == 0;
}

/*
 * |free_keys|: the application frees its keys too, as SSL_free does with an
 * ephemeral key share; a request still needs the key (the default's context
 * of ML-KEM, the hybrids, ML-DSA and SLH-DSA holds no reference of its own).
 */
static void abandon_provider_lives(int free_keys)
{
    struct loaded l;
    struct task *tasks, *again;
    struct hjob *jobs, *fresh;
    int grabbed[MAX_OPS];
    uint64_t kem0, acip0, sig0, kem1, acip1, sig1;
    size_t i, n, m;

    assert_true(load(&l));
    kem0 = test_counter(l.env.offload, "offload-kem-completed");
    acip0 = test_counter(l.env.offload, "offload-asymcipher-completed");
    sig0 = test_counter(l.env.offload, "offload-signature-completed");
    n = make_tasks(&l, &tasks, 1, 2);
    jobs = start_jobs(tasks, n, 0, NULL);
    give_up(jobs, tasks, n);
    free(tasks);
    for (i = 0; free_keys && i < K_N; i++) {
        EVP_PKEY_free(l.key[i]);
        l.key[i] = NULL;
    }
    for (i = 0; i < n; i++) {
        grabbed[i] = eventfd(0, EFD_CLOEXEC);
        assert_true(grabbed[i] >= 0);
    }
    assert_true(h_wait_until(idle, l.env.offload, TIMEOUT_MS));
    for (i = 0; free_keys && i < K_N; i++)
        if (S.present[i]) /* for the jobs below */
            assert_non_null(l.key[i] = import(l.env.libctx, OFFLOAD_PROPQ, (enum kind)i));
    kem1 = test_counter(l.env.offload, "offload-kem-completed");
    acip1 = test_counter(l.env.offload, "offload-asymcipher-completed");
    sig1 = test_counter(l.env.offload, "offload-signature-completed");
    print_message("  abandoned: kem completed +%llu, asymcipher +%llu, signature +%llu, "
                  "of %zu\n",
                  (unsigned long long)(kem1 - kem0), (unsigned long long)(acip1 - acip0),
                  (unsigned long long)(sig1 - sig0), n);
    assert_int_equal((kem1 - kem0) + (acip1 - acip0) + (sig1 - sig0), n);
    h_sleep_ms(20);
    for (i = 0; i < n; i++) {
        assert_false(h_fd_readable(grabbed[i], 0));
        close(grabbed[i]);
    }
    /* The provider carries on: a new job of each kind, on new wait ctxs. */
    m = make_tasks(&l, &again, 0, 1);
    fresh = hjobs_new(m);
    assert_non_null(fresh);
    for (i = 0; i < m; i++) {
        fresh[i].fn = run_task;
        fresh[i].arg = &again[i];
    }
    assert_true(h_run_fd_loop(fresh, m, TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < m; i++) {
        struct task *t = &again[i];
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(S.ref, S.refkey[t->kind], NULL);
        unsigned char sec[BUF];
        size_t seclen = sizeof(sec);

        assert_true(fresh[i].done);
        assert_int_equal(fresh[i].ret, 1);
        assert_true(fresh[i].pauses >= 1);
        assert_non_null(c);
        if (t->op == SIGN) { /* the default verifies it */
            EVP_MD_CTX *m = EVP_MD_CTX_new();

            assert_non_null(m);
            assert_int_equal(EVP_DigestVerifyInit_ex(m, NULL, NULL, S.ref, NULL,
                                                     S.refkey[t->kind], NULL),
                             1);
            assert_int_equal(EVP_DigestVerify(m, t->out, t->outlen, tbs, sizeof(tbs)), 1);
            EVP_MD_CTX_free(m);
        } else if (t->op == ENCAP) { /* the default decapsulates it to the same secret */
            assert_true(init_ctx(c, DECAP, t->kind));
            assert_int_equal(EVP_PKEY_decapsulate(c, sec, &seclen, t->out, t->outlen), 1);
            assert_int_equal(seclen, t->seclen);
            assert_memory_equal(sec, t->sec, seclen);
        } else if (t->op == DECAP) { /* the default's own answer */
            const unsigned char *ct = t->kind == K_RSA ? S.rsasve_ct : S.ct[t->kind];
            size_t ctlen = t->kind == K_RSA ? S.rsasve_ctlen : S.ctlen[t->kind];

            assert_true(init_ctx(c, DECAP, t->kind));
            assert_int_equal(EVP_PKEY_decapsulate(c, sec, &seclen, ct, ctlen), 1);
            assert_int_equal(seclen, t->outlen);
            assert_memory_equal(sec, t->out, seclen);
        } else {
            assert_int_equal(t->outlen, 30);
            assert_memory_equal(t->out, "offload abandons a decryption", 30);
        }
        EVP_PKEY_CTX_free(c);
    }
    print_message("  afterwards %zu new jobs completed and check out\n", m);
    hjobs_free(fresh, m);
    free(again);
    unload(&l);
    assert_baseline("after abandoned jobs completed and the unload");
}

static void test_abandoned_provider_lives(void **state)
{
    (void)state;
    abandon_provider_lives(0);
}

static void test_abandoned_keys_freed(void **state)
{
    (void)state;
    abandon_provider_lives(1);
}

static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    size_t i;

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    alarm(60);
}

/* In a child: jobs that made their own contexts, abandoned; |hold| ms before exit(). */
static int child_abandon_owned(unsigned hold)
{
    struct loaded l;
    struct task *tasks;
    struct hjob *jobs;
    size_t i, n, paused = 0;

    if (!load(&l))
        return 0;
    n = make_tasks(&l, &tasks, 0, 2);
    if ((jobs = hjobs_new(n)) == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        jobs[i].fn = run_task;
        jobs[i].arg = &tasks[i];
        paused += hjob_step(&jobs[i]) == ASYNC_PAUSE;
    }
    abandoned[nabandoned++] = jobs;
    if (paused == 0)
        return 0;
    if (hold == 0) /* exit() at once, with the requests queued and running */
        return 1;
    for (i = 0; i < n; i++) {
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
        jobs[i].wctx = NULL;
    }
    unload(&l); /* the jobs' own contexts keep the provider alive */
    h_sleep_ms(hold);
    return 1;
}

static void in_child(unsigned hold, int rounds)
{
    int round, bad = 0;

    for (round = 0; round < rounds; round++) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_default_signals();
            exit(child_abandon_owned(hold) ? 0 : 1); /* exit(): OPENSSL_cleanup runs */
        }
        while (waitpid(pid, &status, 0) < 0)
            assert_int_equal(errno, EINTR);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "round %d: child %s %d\n", round,
                    WIFEXITED(status) ? "exit status" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            bad++;
        }
    }
    if (bad > 0)
        fail_msg("%d of %d children did not exit cleanly", bad, rounds);
}

static void test_abandoned_job_holds_ctx(void **state)
{
    (void)state;
    in_child(300, 1);
}

static void test_exit_in_flight(void **state)
{
    (void)state;
    in_child(0, 8);
}

/* ---- setup ---- */

static int make_key(enum kind k)
{
    EVP_KEM *kem = EVP_KEM_fetch(S.ref, kind_names[k], NULL);
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *c;
    unsigned char sec[BUF];
    size_t seclen = sizeof(sec);
    int ok;

    EVP_SIGNATURE *sig = EVP_SIGNATURE_fetch(S.ref, kind_names[k], NULL);

    EVP_KEM_free(kem);
    EVP_SIGNATURE_free(sig);
    ERR_clear_error();
    if (kem == NULL && sig == NULL) {
        print_message("%s: not offered here\n", kind_names[k]);
        return OpenSSL_version_num() < 0x30500000L;
    }
    key = k == K_RSA ? EVP_PKEY_Q_keygen(S.ref, NULL, "RSA", (size_t)4096)
                     : EVP_PKEY_Q_keygen(S.ref, NULL, kind_names[k]);
    c = key != NULL ? EVP_PKEY_CTX_new_from_pkey(S.ref, key, NULL) : NULL;
    S.ctlen[k] = sizeof(S.ct[k]);
    if (k == K_MLDSA) {
        ok = c != NULL;
    } else if (k == K_RSA) {
        static const char pt[] = "offload abandons a decryption";

        ok = c != NULL && EVP_PKEY_encrypt_init(c) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_encrypt(c, S.ct[k], &S.ctlen[k], (const unsigned char *)pt,
                              sizeof(pt)) > 0;
        EVP_PKEY_CTX_free(c);
        c = EVP_PKEY_CTX_new_from_pkey(S.ref, key, NULL);
        S.rsasve_ctlen = sizeof(S.rsasve_ct);
        ok = ok && c != NULL && init_ctx(c, ENCAP, k) &&
             EVP_PKEY_encapsulate(c, S.rsasve_ct, &S.rsasve_ctlen, sec, &seclen) > 0;
    } else {
        ok = c != NULL && init_ctx(c, ENCAP, k) &&
             EVP_PKEY_encapsulate(c, S.ct[k], &S.ctlen[k], sec, &seclen) > 0;
    }
    ok = ok && EVP_PKEY_todata(key, EVP_PKEY_KEYPAIR, &S.keyparams[k]) > 0;
    EVP_PKEY_CTX_free(c);
    S.refkey[k] = key;
    S.present[k] = ok;
    return ok;
}

static int group_setup(void **state)
{
    int k;

    (void)state;
    if (!ASYNC_init_thread(4 * MAX_OPS, 0) || (S.ref = test_ref_open(&S.refprov)) == NULL)
        return -1;
    print_message("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION));
    for (k = 0; k < K_N; k++)
        if (!make_key((enum kind)k)) {
            test_dump_errors(kind_names[k]);
            return -1;
        }
    if (!S.present[K_RSA])
        return -1;
    h_settle_threads();
    S.threads0 = h_count_threads();
    S.fds0 = h_count_fds();
    return 0;
}

static int group_teardown(void **state)
{
    int k;

    (void)state;
    for (k = 0; k < K_N; k++) {
        OSSL_PARAM_free(S.keyparams[k]);
        EVP_PKEY_free(S.refkey[k]);
    }
    test_ref_close(S.ref, S.refprov);
    ASYNC_cleanup_thread();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abandoned_then_unload_fd),
        cmocka_unit_test(test_abandoned_then_unload_cb),
        cmocka_unit_test(test_abandoned_provider_lives),
        cmocka_unit_test(test_abandoned_keys_freed),
        cmocka_unit_test(test_abandoned_job_holds_ctx),
        cmocka_unit_test(test_exit_in_flight),
    };

    if (getenv("OFFLOAD_TEST_FILTER") != NULL) /* e.g. "*keys_freed*" */
        cmocka_set_test_filter(getenv("OFFLOAD_TEST_FILTER"));
    return cmocka_run_group_tests_name("abandon_kem", tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker threads as the scheduler sees them: with worker_nice = N each
 * worker runs at nice N and the application's threads keep theirs.
 * Read from /proc/self/task/<tid>/stat (field 19, the nice value) after
 * RSA signatures in jobs have started the workers. With worker_policy =
 * idle they run SCHED_IDLE (sched_getscheduler() of each thread id).
 */
#include <dirent.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "common.h"
#include "harness.h"
#include "offload.h"

#define WORKERS 2
#define NICE    7
#define N_JOBS  8

struct task {
    OSSL_LIB_CTX *libctx;
    EVP_PKEY *key;
    unsigned char md[32], sig[512];
    size_t siglen;
};

static int sign_work(void *vt)
{
    struct task *t = vt;

    t->siglen = sizeof(t->sig);
    return test_sha256_sign(t->libctx, t->key, NULL, t->md, t->sig, &t->siglen);
}

/* The nice value of thread |tid| (field 19 of its stat line), or 100. */
static int thread_nice(const char *tid)
{
    char path[300], line[1024], *p;
    int field, nice = 100;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
    if ((f = fopen(path, "r")) == NULL)
        return 100;
    if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL) {
        /* After "pid (comm)": field 3 is the state; the nice value is field 19. */
        for (field = 2, p++; *p != '\0' && field < 19; p++)
            if (*p == ' ')
                field++;
        nice = atoi(p);
    }
    fclose(f);
    return nice;
}

/* The scheduling policy of thread |tid| (SCHED_OTHER, SCHED_IDLE, ...), or -1. */
static int thread_policy(const char *tid)
{
    return sched_getscheduler((pid_t)atoi(tid));
}

/* How many of this process's threads have |attr|(tid) == |value|. */
static int threads_where(int (*attr)(const char *tid), int value)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && attr(de->d_name) == value)
            n++;
    closedir(d);
    return n;
}

static void run_jobs(test_env *env)
{
    struct task tasks[N_JOBS];
    int rets[N_JOBS], i;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(env->libctx, NULL, "RSA", (size_t)2048);

    assert_non_null(key);
    for (i = 0; i < N_JOBS; i++) {
        memset(&tasks[i], 0, sizeof(tasks[i]));
        tasks[i].libctx = env->libctx;
        tasks[i].key = key;
        tasks[i].md[0] = (unsigned char)i;
    }
    assert_int_equal(h_run_tasks(sign_work, tasks, sizeof(tasks[0]), N_JOBS, N_JOBS, rets,
                                 POLL_TIMEOUT_MS, NULL),
                     1);
    for (i = 0; i < N_JOBS; i++)
        assert_int_equal(rets[i], 1);
    test_wait_idle(env->offload);
    assert_true(test_counter(env->offload, "offload-signature-completed") >= N_JOBS);
    EVP_PKEY_free(key);
}

static void test_worker_nice(void **state)
{
    test_env env;
    char conf[128];
    int mine = getpriority(PRIO_PROCESS, 0), i;

    (void)state;
    snprintf(conf, sizeof(conf), "workers = %d\nworker_nice = %d\n", WORKERS, NICE);
    assert_int_not_equal(mine, NICE);
    assert_true(test_env_open(&env, conf));
    run_jobs(&env);
    /*
     * The workers, and no thread of ours: this one kept its own value. A
     * worker sets its nice value as it starts; on a loaded machine one may
     * not have run yet when the jobs are done, so wait for it (10 s at most).
     */
    for (i = 0; i < 1000 && threads_where(thread_nice, NICE) < WORKERS; i++)
        usleep(10000);
    assert_int_equal(threads_where(thread_nice, NICE), WORKERS);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), mine);
    test_env_close(&env);
}

/*
 * worker_policy = idle: the workers run SCHED_IDLE, so any thread of the
 * application that wakes preempts them at once; the application's own
 * threads keep SCHED_OTHER. And the default leaves every thread alone.
 */
static void test_worker_policy(void **state)
{
    test_env env;
    int i;

    (void)state;
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
    assert_true(test_env_open(&env, "workers = 2\n"));
    run_jobs(&env);
    assert_int_equal(threads_where(thread_policy, SCHED_IDLE), 0);
    test_env_close(&env);

    assert_true(test_env_open(&env, "workers = 2\nworker_policy = idle\n"));
    run_jobs(&env);
    for (i = 0; i < 1000 && threads_where(thread_policy, SCHED_IDLE) < WORKERS; i++)
        usleep(10000);
    assert_int_equal(threads_where(thread_policy, SCHED_IDLE), WORKERS);
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
    test_env_close(&env);
    /* The accelerator stopped with its last user: no idle thread is left. */
    assert_int_equal(threads_where(thread_policy, SCHED_IDLE), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_nice),
        cmocka_unit_test(test_worker_policy),
    };

    return cmocka_run_group_tests_name("workers", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offload_demo: the provider loaded from openssl.cnf doing real work.
 *
 * Signs with RSA-2048 and ECDSA P-256 three ways — the default provider,
 * offload called directly (no job: runs inline), and offload under 32
 * ASYNC_JOBs driven by a poll() loop on their wait fds — checks every
 * signature with the default provider, and prints what it gained: the
 * signing rate and how much of the calling thread stayed free.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "offload.h"

#define JOBS 32

struct job {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    EVP_PKEY_CTX *ctx;
    unsigned char sig[512];
    size_t siglen;
    int todo, done, ok;
};

static unsigned char tbs[32];

static double now(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sign_once(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen)
{
    *siglen = 512;
    return EVP_PKEY_sign(ctx, sig, siglen, tbs, sizeof(tbs)) > 0;
}

static int job_fn(void *arg)
{
    struct job *j = *(struct job **)arg;

    while (j->done < j->todo) {
        if (!sign_once(j->ctx, j->sig, &j->siglen))
            return 0;
        j->done++;
    }
    return 1;
}

static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *pkey, const char *propq)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, propq);

    if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    if (EVP_PKEY_is_a(pkey, "RSA"))
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    return ctx;
}

static int verify_default(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, "provider=default");
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) > 0;

    if (ok && EVP_PKEY_is_a(pkey, "RSA"))
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    ok = ok && EVP_PKEY_verify(ctx, sig, siglen, tbs, sizeof(tbs)) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Signs |n| times without jobs; returns seconds. */
static double run_plain(EVP_PKEY *pkey, const char *propq, int n, int *bad)
{
    EVP_PKEY_CTX *ctx = sign_ctx(pkey, propq);
    unsigned char sig[512];
    size_t siglen;
    double t0 = now(CLOCK_MONOTONIC);
    int i;

    for (i = 0; i < n; i++)
        if (!sign_once(ctx, sig, &siglen))
            (*bad)++;
    t0 = now(CLOCK_MONOTONIC) - t0;
    if (!verify_default(pkey, sig, siglen))
        (*bad)++;
    EVP_PKEY_CTX_free(ctx);
    return t0;
}

/* Signs |n| times spread over JOBS jobs; returns seconds, *cpu the caller's CPU time. */
static double run_async(EVP_PKEY *pkey, int n, double *cpu, int *bad)
{
    static struct job jobs[JOBS];
    struct pollfd pfd[JOBS];
    int idx[JOBS], i, left = JOBS, ret;
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);

    for (i = 0; i < JOBS; i++) {
        struct job *j = &jobs[i];

        memset(j, 0, sizeof(*j));
        j->wctx = ASYNC_WAIT_CTX_new();
        j->ctx = sign_ctx(pkey, "provider=offload");
        j->todo = n / JOBS;
    }
    for (i = 0; i < JOBS; i++) {
        struct job *j = &jobs[i];

        ret = ASYNC_start_job(&j->job, j->wctx, &j->ok, job_fn, &j, sizeof(j));
        if (ret == ASYNC_FINISH)
            left--;
        else if (ret != ASYNC_PAUSE)
            (*bad)++, left--;
    }
    while (left > 0) {
        int np = 0;

        for (i = 0; i < JOBS; i++) {
            OSSL_ASYNC_FD fd;
            size_t nfd = 0;

            if (jobs[i].job == NULL)
                continue;
            ASYNC_WAIT_CTX_get_all_fds(jobs[i].wctx, NULL, &nfd);
            if (nfd != 1)
                continue;
            ASYNC_WAIT_CTX_get_all_fds(jobs[i].wctx, &fd, &nfd);
            pfd[np].fd = fd;
            pfd[np].events = POLLIN;
            idx[np++] = i;
        }
        if (poll(pfd, np, 1000) <= 0)
            continue;
        for (i = 0; i < np; i++) {
            struct job *j = &jobs[idx[i]];

            if (!(pfd[i].revents & POLLIN))
                continue;
            ret = ASYNC_start_job(&j->job, j->wctx, &j->ok, job_fn, &j, sizeof(j));
            if (ret == ASYNC_FINISH || ret == ASYNC_ERR) {
                left--;
                if (ret == ASYNC_ERR || !j->ok)
                    (*bad)++;
            }
        }
    }
    *cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    t0 = now(CLOCK_MONOTONIC) - t0;
    for (i = 0; i < JOBS; i++) {
        if (!verify_default(pkey, jobs[i].sig, jobs[i].siglen))
            (*bad)++;
        EVP_PKEY_CTX_free(jobs[i].ctx);
        ASYNC_WAIT_CTX_free(jobs[i].wctx);
    }
    return t0;
}

static uint64_t counter(const char *name)
{
    OSSL_PROVIDER *p = OSSL_PROVIDER_load(NULL, OFFLOAD_PROVIDER_NAME);
    uint64_t v = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_uint64(name, &v), OSSL_PARAM_END};

    OSSL_PROVIDER_get_params(p, params);
    OSSL_PROVIDER_unload(p);
    return v;
}

static int print_provider(OSSL_PROVIDER *p, void *arg)
{
    const char *version = "?";
    OSSL_PARAM params[] = {OSSL_PARAM_utf8_ptr("version", (char **)&version, 0),
                           OSSL_PARAM_END};

    (void)arg;
    OSSL_PROVIDER_get_params(p, params);
    printf("  %-8s %s\n", OSSL_PROVIDER_get0_name(p), version);
    return 1;
}

int main(int argc, char **argv)
{
    const char *algs[][2] = {{"RSA-2048", "RSA"}, {"ECDSA P-256", "EC"}};
    int counts[] = {argc > 1 ? atoi(argv[1]) : 1920, argc > 2 ? atoi(argv[2]) : 19200};
    int a, bad = 0;

    if (!OSSL_PROVIDER_available(NULL, OFFLOAD_PROVIDER_NAME)) {
        fprintf(stderr, "offload is not loaded: set OPENSSL_CONF=conf/offload.cnf and "
                        "OPENSSL_MODULES=build/provider\n");
        return 1;
    }
    printf("providers loaded from %s:\n",
           getenv("OPENSSL_CONF") ? getenv("OPENSSL_CONF") : "the default openssl.cnf");
    OSSL_PROVIDER_do_all(NULL, print_provider, NULL);
    ASYNC_init_thread(JOBS, JOBS);
    printf("\n%-12s %-34s %8s %10s %9s %14s\n", "algorithm", "path", "signs", "signs/s",
           "vs dflt", "caller busy");
    for (a = 0; a < 2; a++) {
        EVP_PKEY *pkey = strcmp(algs[a][1], "RSA") == 0
                             ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                             : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        int n = counts[a] / JOBS * JOBS;
        double t_def, t_inl, t_async, cpu;

        if (pkey == NULL) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        t_def = run_plain(pkey, "provider=default", n, &bad);
        t_inl = run_plain(pkey, "provider=offload", n, &bad);
        t_async = run_async(pkey, n, &cpu, &bad);
        printf("%-12s %-34s %8d %10.0f %8.2fx %13s\n", algs[a][0], "default provider", n,
               n / t_def, 1.0, "100%");
        printf("%-12s %-34s %8d %10.0f %8.2fx %13s\n", "", "offload, no job (inline)", n,
               n / t_inl, t_def / t_inl, "100%");
        printf("%-12s %-34s %8d %10.0f %8.2fx %12.0f%%\n", "",
               "offload, 32 async jobs (poll loop)", n, n / t_async, t_def / t_async,
               100.0 * cpu / t_async);
        EVP_PKEY_free(pkey);
    }
    printf(
        "\ncounters: offloaded=%llu pauses=%llu completed=%llu inline=%llu failed=%llu "
        "queue high-water=%llu workers=%llu\n",
        (unsigned long long)counter("offload-signature-offloaded"),
        (unsigned long long)counter("offload-signature-pauses"),
        (unsigned long long)counter("offload-signature-completed"),
        (unsigned long long)counter("offload-signature-inline"),
        (unsigned long long)counter("offload-signature-failed"),
        (unsigned long long)counter(OFFLOAD_PARAM_QUEUE_HIGH_WATER),
        (unsigned long long)counter(OFFLOAD_PARAM_WORKERS));
    printf("every signature checked with the default provider: %s\n",
           bad == 0 ? "all valid" : "FAILURES");
    ASYNC_cleanup_thread();
    return bad == 0 ? 0 : 1;
}

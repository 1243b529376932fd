/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signs with a token key through offload, one at a time and in jobs
 * (scripts/bench_p11_remote.sh, measurement A).
 *
 *   p11_bench [-s SECONDS] [-j JOBS] [-m sync|jobs|both] URI
 *
 * The library context is the default one, configured by OPENSSL_CONF (an
 * openssl.cnf that loads offload with pkcs11_module set, offload
 * preferred). The key is loaded by URI through OSSL_STORE; each signature
 * is EVP_PKEY_sign of a SHA-256 digest (PKCS#1 v1.5 for RSA, ECDSA for
 * EC), the first one verified. Then, for SECONDS each (default 3):
 *
 *   sync   one signature after another on this thread, outside any job
 *          (offload runs it on this thread's token session: each call
 *          waits for its round trip);
 *   jobs   JOBS (default 32) ASYNC_JOBs, one signature per job run, each
 *          started again when it finishes, driven by the test harness's
 *          fd loop (poll on the paused jobs' wait fds, resume the readable
 *          ones): offload hands each call to its token threads.
 *
 * -m runs one of the two (default both). Prints per mode the signatures,
 * signs/s, the process CPU per signature and the provider's signature
 * counters, then the ratio, and a last line for scripts:
 * "RESULT sync=<signs/s> jobs=<signs/s> ratio=<x>" (a mode not run: 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "common.h"
#include "harness.h"

struct slot {
    EVP_PKEY_CTX *ctx;
    unsigned char sig[1024];
};

struct run {
    uint64_t deadline_ns;
    uint64_t signs;
    int failed;
};

static const unsigned char md[32] = "0123456789abcdef0123456789abcde";

static EVP_PKEY *load_key(const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    EVP_PKEY *key = NULL;

    while (st != NULL && key == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
        if (info == NULL)
            break;
    }
    OSSL_STORE_close(st);
    return key;
}

static int sign_once(struct slot *s)
{
    size_t len = sizeof(s->sig);

    return EVP_PKEY_sign(s->ctx, s->sig, &len, md, sizeof(md)) > 0;
}

static int job_sign(void *arg)
{
    return sign_once(arg);
}

static int on_done(struct hjob *j, void *ctx)
{
    struct run *r = ctx;

    if (j->ret != 1) {
        r->failed = 1;
        return -1;
    }
    r->signs++;
    return h_clock_ns(CLOCK_MONOTONIC) < r->deadline_ns ? 1 : 0;
}

static void counters(OSSL_PROVIDER *prov, uint64_t v[3])
{
    v[0] = test_counter(prov, "offload-signature-offloaded");
    v[1] = test_counter(prov, "offload-signature-inline");
    v[2] = test_counter(prov, "offload-signature-pauses");
}

static void report(const char *what, uint64_t signs, uint64_t wall_ns, uint64_t cpu_ns,
                   const uint64_t c0[3], const uint64_t c1[3])
{
    printf("%-8s %8llu signs in %.2f s: %9.1f signs/s, %6.0f us CPU per sign; "
           "signature offloaded %llu, inline %llu, pauses %llu\n",
           what, (unsigned long long)signs, (double)wall_ns / 1e9,
           (double)signs * 1e9 / (double)wall_ns,
           signs ? (double)cpu_ns / 1e3 / (double)signs : 0.0,
           (unsigned long long)(c1[0] - c0[0]), (unsigned long long)(c1[1] - c0[1]),
           (unsigned long long)(c1[2] - c0[2]));
}

int main(int argc, char **argv)
{
    double secs = 3;
    size_t njobs = 32, i;
    int opt, bad = 0, rc = 1, do_sync = 1, do_jobs = 1;
    EVP_PKEY *key = NULL;
    OSSL_PROVIDER *prov = NULL;
    struct slot *slots = NULL;
    struct hjob *jobs = NULL;
    struct run run = {0};
    uint64_t t0, t1, cpu0, c0[3], c1[3], nsync;
    double sync_rate = 0, jobs_rate = 0;

    while ((opt = getopt(argc, argv, "s:j:m:")) != -1) {
        if (opt == 's')
            secs = atof(optarg);
        else if (opt == 'j')
            njobs = (size_t)atoi(optarg);
        else if (opt == 'm' && strcmp(optarg, "sync") == 0)
            do_jobs = 0;
        else if (opt == 'm' && strcmp(optarg, "jobs") == 0)
            do_sync = 0;
        else if (opt != 'm' || strcmp(optarg, "both") != 0)
            bad = 1;
    }
    if (bad || optind != argc - 1 || secs <= 0 || njobs < 1 || njobs > 1024) {
        fprintf(stderr,
                "usage: p11_bench [-s SECONDS] [-j JOBS] [-m sync|jobs|both] URI\n");
        return 2;
    }
    /* The handle of the instance OPENSSL_CONF loaded (for its counters). */
    if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) ||
        !OSSL_PROVIDER_available(NULL, OFFLOAD_PROVIDER_NAME) ||
        (prov = OSSL_PROVIDER_load(NULL, OFFLOAD_PROVIDER_NAME)) == NULL) {
        fprintf(stderr, "p11_bench: offload is not loaded (OPENSSL_CONF?)\n");
        test_dump_errors("provider");
        return 1;
    }
    key = load_key(argv[optind]);
    if (key == NULL) {
        fprintf(stderr, "p11_bench: cannot load %s\n", argv[optind]);
        test_dump_errors("store");
        goto out;
    }
    slots = calloc(njobs, sizeof(*slots));
    jobs = hjobs_new(njobs);
    if (slots == NULL || jobs == NULL)
        goto out;
    for (i = 0; i < njobs; i++) {
        slots[i].ctx = test_sha256_sign_ctx(NULL, key, NULL);
        if (slots[i].ctx == NULL) {
            test_dump_errors("sign ctx");
            goto out;
        }
        jobs[i].fn = job_sign;
        jobs[i].arg = &slots[i];
    }
    {
        size_t len = sizeof(slots[0].sig);

        if (EVP_PKEY_sign(slots[0].ctx, slots[0].sig, &len, md, sizeof(md)) <= 0 ||
            !test_sha256_verify(NULL, key, NULL, md, slots[0].sig, len)) {
            fprintf(stderr, "p11_bench: the first signature failed or does not verify\n");
            test_dump_errors("sign");
            goto out;
        }
    }
    printf("key: %s %d bits, %s\n", EVP_PKEY_get0_type_name(key), EVP_PKEY_get_bits(key),
           argv[optind]);

    if (!do_sync)
        goto jobs;
    counters(prov, c0);
    cpu0 = h_process_cpu_ns();
    t0 = h_clock_ns(CLOCK_MONOTONIC);
    run.deadline_ns = t0 + (uint64_t)(secs * 1e9);
    for (nsync = 0; (t1 = h_clock_ns(CLOCK_MONOTONIC)) < run.deadline_ns; nsync++)
        if (!sign_once(&slots[0])) {
            test_dump_errors("sync sign");
            goto out;
        }
    counters(prov, c1);
    report("sync", nsync, t1 - t0, h_process_cpu_ns() - cpu0, c0, c1);
    sync_rate = (double)nsync * 1e9 / (double)(t1 - t0);

jobs:
    if (!do_jobs)
        goto done;
    counters(prov, c0);
    memset(&h_wait, 0, sizeof(h_wait));
    cpu0 = h_process_cpu_ns();
    t0 = h_clock_ns(CLOCK_MONOTONIC);
    run.deadline_ns = t0 + (uint64_t)(secs * 1e9);
    if (!h_run_fd_loop(jobs, njobs, POLL_TIMEOUT_MS, on_done, &run) || run.failed) {
        fprintf(stderr, "p11_bench: the job loop failed\n");
        test_dump_errors("jobs");
        goto out;
    }
    t1 = h_clock_ns(CLOCK_MONOTONIC);
    counters(prov, c1);
    {
        char what[32];

        snprintf(what, sizeof(what), "jobs %zu", njobs);
        report(what, run.signs, t1 - t0, h_process_cpu_ns() - cpu0, c0, c1);
    }
    printf("         poll: %llu calls, %.0f%% of the time, at most %llu jobs paused at "
           "once\n",
           (unsigned long long)h_wait.calls,
           100.0 * (double)h_wait.wall_ns / (double)(t1 - t0),
           (unsigned long long)h_wait.paused_max);
    jobs_rate = (double)run.signs * 1e9 / (double)(t1 - t0);
done:
    if (do_sync && do_jobs)
        printf("ratio jobs/sync: %.2fx\n", sync_rate > 0 ? jobs_rate / sync_rate : 0.0);
    printf("RESULT sync=%.1f jobs=%.1f ratio=%.2f\n", sync_rate, jobs_rate,
           sync_rate > 0 ? jobs_rate / sync_rate : 0.0);
    rc = 0;
out:
    for (i = 0; slots != NULL && i < njobs; i++)
        EVP_PKEY_CTX_free(slots[i].ctx);
    hjobs_free(jobs, njobs);
    free(slots);
    EVP_PKEY_free(key);
    OSSL_PROVIDER_unload(prov);
    return rc;
}

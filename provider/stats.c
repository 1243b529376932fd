/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters: process-wide, per family, readable with
 * OSSL_PROVIDER_get_params() and, for a server nobody can attach to,
 * from a stats file that a small thread rewrites twice a second, replaced
 * atomically with rename(): "name value" lines (plain), or the Prometheus
 * text exposition format (prometheus) for node_exporter's textfile
 * collector.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

#include "accel/accel.h"
#include "config.h"
#include "prov.h"

const char *const offload_family_names[OFFLOAD_FAM_COUNT] = {
    OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_FAMILY_CIPHER,
    OFFLOAD_FAMILY_KEYGEN,    OFFLOAD_FAMILY_KEM,     OFFLOAD_FAMILY_ASYMCIPHER};
const char *const offload_stat_names[OFFLOAD_ST_COUNT] = {
    OFFLOAD_STAT_OFFLOADED, OFFLOAD_STAT_INLINE,     OFFLOAD_STAT_COMPLETED,
    OFFLOAD_STAT_FAILED,    OFFLOAD_STAT_QUEUE_FULL, OFFLOAD_STAT_PAUSES};
struct offload_counters offload_stats[OFFLOAD_FAM_COUNT];

#define NSTATS    ((OFFLOAD_FAM_COUNT + 1) * OFFLOAD_ST_COUNT)
#define KEY_LEN   48
#define NGETTABLE (4 + NSTATS + 3 + 1)

static OSSL_PARAM gettable[NGETTABLE];
static char stat_keys[NSTATS][KEY_LEN];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

/* Key k: stat k / (FAM_COUNT+1), family k % (FAM_COUNT+1) - 1 (-1: total). */
static void build_names(void)
{
    size_t n = 0, k;

    gettable[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0);
    gettable[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0);
    gettable[n++] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0);
    gettable[n++] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, NULL);
    for (k = 0; k < NSTATS; k++) {
        int s = (int)(k / (OFFLOAD_FAM_COUNT + 1)),
            f = (int)(k % (OFFLOAD_FAM_COUNT + 1)) - 1;

        if (f < 0)
            snprintf(stat_keys[k], KEY_LEN, "offload-%s", offload_stat_names[s]);
        else
            snprintf(stat_keys[k], KEY_LEN, "offload-%s-%s", offload_family_names[f],
                     offload_stat_names[s]);
        gettable[n++] = OSSL_PARAM_construct_uint64(stat_keys[k], NULL);
    }
    gettable[n++] = OSSL_PARAM_construct_uint64(OFFLOAD_PARAM_QUEUE_HIGH_WATER, NULL);
    gettable[n++] = OSSL_PARAM_construct_uint64(OFFLOAD_PARAM_WORKERS, NULL);
    gettable[n++] = OSSL_PARAM_construct_uint64(OFFLOAD_PARAM_IN_FLIGHT, NULL);
    gettable[n] = OSSL_PARAM_construct_end();
}

static uint64_t stat_of(size_t k)
{
    int s = (int)(k / (OFFLOAD_FAM_COUNT + 1)),
        f = (int)(k % (OFFLOAD_FAM_COUNT + 1)) - 1;
    uint64_t v = 0;

    if (f >= 0)
        return atomic_load_explicit(&offload_stats[f].v[s], memory_order_relaxed);
    for (f = 0; f < OFFLOAD_FAM_COUNT; f++)
        v += atomic_load_explicit(&offload_stats[f].v[s], memory_order_relaxed);
    return v;
}

const OSSL_PARAM *offload_stats_gettable(void)
{
    pthread_once(&names_once, build_names);
    return gettable;
}

int offload_stats_get_param(OSSL_PARAM *p)
{
    size_t k;

    pthread_once(&names_once, build_names);
    if (strcmp(p->key, OFFLOAD_PARAM_QUEUE_HIGH_WATER) == 0)
        return OSSL_PARAM_set_uint64(p, offload_accel_high_water());
    if (strcmp(p->key, OFFLOAD_PARAM_WORKERS) == 0)
        return OSSL_PARAM_set_uint64(p, offload_accel_workers());
    if (strcmp(p->key, OFFLOAD_PARAM_IN_FLIGHT) == 0)
        return OSSL_PARAM_set_uint64(p, offload_accel_in_flight());
    for (k = 0; k < NSTATS; k++)
        if (strcmp(p->key, stat_keys[k]) == 0)
            return OSSL_PARAM_set_uint64(p, stat_of(k));
    return 1; /* not ours: left unmodified */
}

void offload_stats_log(void)
{
    int f;

    for (f = 0; f < OFFLOAD_FAM_COUNT; f++)
        offload_log("%s: offloaded=%llu inline=%llu completed=%llu failed=%llu "
                    "queue-full=%llu pauses=%llu",
                    offload_family_names[f],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_OFFLOADED],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_INLINE],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_COMPLETED],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_FAILED],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_QUEUE_FULL],
                    (unsigned long long)offload_stats[f].v[OFFLOAD_ST_PAUSES]);
}

/* ---- the stats file ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stop;
    int format; /* enum offload_stats_format */
    char path[256];
} F = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void write_plain(FILE *f)
{
    size_t k;

    fprintf(f, "pid %d\n", (int)getpid());
    for (k = 0; k < NSTATS; k++)
        fprintf(f, "%s %llu\n", stat_keys[k], (unsigned long long)stat_of(k));
    fprintf(f, "%s %llu\n%s %u\n%s %u\n", OFFLOAD_PARAM_QUEUE_HIGH_WATER,
            (unsigned long long)offload_accel_high_water(), OFFLOAD_PARAM_WORKERS,
            offload_accel_workers(), OFFLOAD_PARAM_IN_FLIGHT, offload_accel_in_flight());
}

/*
 * Prometheus names of the counters, in the order of enum offload_stat, and
 * their help lines (no backslash or newline: they would need escaping).
 */
static const struct {
    const char *name, *help;
} prom_counters[OFFLOAD_ST_COUNT] = {
    {"offload_requests_offloaded_total",
     "Operations accepted by the workers' queue (offload-<family>-offloaded)."},
    {"offload_requests_inline_total",
     "Operations run on the calling thread (offload-<family>-inline)."},
    {"offload_requests_completed_total",
     "Operations finished by a worker (offload-<family>-completed)."},
    {"offload_requests_failed_total",
     "Operations that ended with an error, wherever they ran "
     "(offload-<family>-failed)."},
    {"offload_queue_full_total",
     "Submits refused because the queue held queue_depth requests "
     "(offload-<family>-queue-full)."},
    {"offload_pauses_total", "ASYNC_pause_job calls made (offload-<family>-pauses)."}};

/*
 * One sample per family and no family-less total: Prometheus sums the
 * labelled samples itself (sum without (family) (...)), and a total in
 * the same metric would be counted twice by such a sum.
 */
static void write_prometheus(FILE *f)
{
    int s, fam;

    for (s = 0; s < OFFLOAD_ST_COUNT; s++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", prom_counters[s].name,
                prom_counters[s].help, prom_counters[s].name);
        for (fam = 0; fam < OFFLOAD_FAM_COUNT; fam++)
            fprintf(f, "%s{family=\"%s\"} %llu\n", prom_counters[s].name,
                    offload_family_names[fam],
                    (unsigned long long)atomic_load_explicit(&offload_stats[fam].v[s],
                                                             memory_order_relaxed));
    }
    fprintf(f,
            "# HELP offload_queue_high_water Most requests queued at once since the "
            "process started (offload-queue-high-water).\n"
            "# TYPE offload_queue_high_water gauge\n"
            "offload_queue_high_water %llu\n"
            "# HELP offload_workers Worker threads running (offload-workers).\n"
            "# TYPE offload_workers gauge\n"
            "offload_workers %u\n"
            "# HELP offload_in_flight Requests submitted to the workers and not yet "
            "completed (offload-in-flight).\n"
            "# TYPE offload_in_flight gauge\n"
            "offload_in_flight %u\n",
            (unsigned long long)offload_accel_high_water(), offload_accel_workers(),
            offload_accel_in_flight());
}

/*
 * The temporary file is in the same directory (rename() is atomic there
 * only) and ends in ".tmp": node_exporter's textfile collector reads
 * "*.prom" files alone, so it never sees one half written.
 */
static void write_stats(void)
{
    char tmp[300];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", F.path, (int)getpid());
    f = fopen(tmp, "w");
    if (f == NULL)
        return;
    if (F.format == OFFLOAD_STATS_PROMETHEUS)
        write_prometheus(f);
    else
        write_plain(f);
    if (fclose(f) == 0)
        rename(tmp, F.path);
    else
        unlink(tmp);
}

static void *stats_main(void *arg)
{
    struct timespec ts;

    (void)arg;
    pthread_mutex_lock(&F.lock);
    while (!F.stop) {
        write_stats();
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&F.cond, &F.lock, &ts);
    }
    write_stats();
    pthread_mutex_unlock(&F.lock);
    return NULL;
}

/* The writer thread does not exist in a fork()ed child; its lock must be free there. */
static void stats_prepare(void)
{
    pthread_mutex_lock(&F.lock);
}

static void stats_parent(void)
{
    pthread_mutex_unlock(&F.lock);
}

static void stats_child(void)
{
    pthread_mutex_init(&F.lock, NULL);
    pthread_cond_init(&F.cond, NULL);
    F.running = 0;
}

static pthread_once_t stats_atfork_once = PTHREAD_ONCE_INIT;

static void stats_atfork(void)
{
    pthread_atfork(stats_prepare, stats_parent, stats_child);
}

void offload_stats_file_start(const char *path, int format)
{
    pthread_once(&names_once, build_names);
    pthread_once(&stats_atfork_once, stats_atfork);
    pthread_mutex_lock(&F.lock);
    if (!F.running) {
        snprintf(F.path, sizeof(F.path), "%s", path);
        F.format = format;
        F.stop = 0;
        F.running = pthread_create(&F.thread, NULL, stats_main, NULL) == 0;
    }
    pthread_mutex_unlock(&F.lock);
}

void offload_stats_file_stop(void)
{
    pthread_mutex_lock(&F.lock);
    if (!F.running) {
        pthread_mutex_unlock(&F.lock);
        return;
    }
    F.stop = 1;
    pthread_cond_signal(&F.cond);
    pthread_mutex_unlock(&F.lock);
    pthread_join(F.thread, NULL);
    F.running = 0;
}

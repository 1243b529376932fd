/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stats file in the Prometheus text format (stats_format =
 * prometheus): with offload loaded, a key generation, RSA signatures out
 * of a job (inline) and inside jobs (offloaded); the file the provider
 * rewrites must pass `promtool check metrics` (Debian's prometheus
 * package, installed by scripts/bootstrap: without it this test fails),
 * hold what those operations made, and agree with the provider params for
 * every family and counter, both while the provider runs and after the
 * final write at unload. Every read of it while it is rewritten is a
 * whole file (temporary file + rename), and no temporary file stays.
 *
 * Also: an unknown stats_format, in the section or in
 * OFFLOAD_STATS_FORMAT, fails the load with a readable reason;
 * OFFLOAD_STATS_FORMAT overrides the key; without either the file stays
 * in the plain "name value" format.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common.h"
#include "harness.h"

#define N_INLINE  3 /* RSA signatures out of a job */
#define N_JOBS    5 /* RSA signatures, each in its own job */
#define WORKERS   2
#define WAIT_MS   10000
#define FILE_NAME "offload.prom"

/* The families and counters as the file names them (include/offload.h, README). */
#define NFAM  6
#define NSTAT 6
static const char *const fam_names[NFAM] = {
    OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_FAMILY_CIPHER,
    OFFLOAD_FAMILY_KEYGEN,    OFFLOAD_FAMILY_KEM,     OFFLOAD_FAMILY_ASYMCIPHER};
enum { F_SIGNATURE }; /* fam_names[0] */
enum { S_OFFLOADED, S_INLINE, S_COMPLETED, S_FAILED, S_QUEUE_FULL, S_PAUSES };
static const char *const stat_names[NSTAT] = {
    OFFLOAD_STAT_OFFLOADED, OFFLOAD_STAT_INLINE,     OFFLOAD_STAT_COMPLETED,
    OFFLOAD_STAT_FAILED,    OFFLOAD_STAT_QUEUE_FULL, OFFLOAD_STAT_PAUSES};
static const char *const prom_names[NSTAT] = {
    "offload_requests_offloaded_total", "offload_requests_inline_total",
    "offload_requests_completed_total", "offload_requests_failed_total",
    "offload_queue_full_total",         "offload_pauses_total"};
#define G_HIGH_WATER "offload_queue_high_water"
#define G_WORKERS    "offload_workers"
#define G_IN_FLIGHT  "offload_in_flight"

static char dir[] = "/tmp/offload-stats-prom-XXXXXX";
/* What a test loaded, freed by close_env (a key keeps its provider alive). */
static test_env env;
static EVP_PKEY *key;
static char path[sizeof(dir) + sizeof(FILE_NAME) + 1];

/* ---- reading the file ---- */

/* The whole file, NUL-terminated (malloc()ed), or NULL when it cannot be read. */
static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 8192);

            assert_non_null(nb);
            buf = nb;
            cap += 8192;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* One sample line: name, the family label ("" without one), value. */
struct sample {
    char name[64], family[32];
    unsigned long long value;
};

struct expo {
    struct sample s[128];
    size_t n;
    char typed[16][64], types[16][16]; /* # TYPE lines */
    size_t ntyped;
    size_t helps;
};

static const char *type_of(const struct expo *e, const char *name)
{
    size_t i;

    for (i = 0; i < e->ntyped; i++)
        if (strcmp(e->typed[i], name) == 0)
            return e->types[i];
    return NULL;
}

/*
 * What we read back: promtool checks the syntax; this takes the samples
 * out and fails on what our output must not hold (an unknown line, a
 * sample before its TYPE, a label other than family).
 */
static void parse(const char *text, struct expo *e)
{
    char *copy = strdup(text), *line, *save = NULL;

    assert_non_null(copy);
    memset(e, 0, sizeof(*e));
    for (line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct sample *s = &e->s[e->n];
        char name[64], type[16];

        if (sscanf(line, "# TYPE %63s %15s", name, type) == 2) {
            assert_true(e->ntyped < 16);
            strcpy(e->typed[e->ntyped], name);
            strcpy(e->types[e->ntyped++], type);
            continue;
        }
        if (strncmp(line, "# HELP ", 7) == 0) {
            e->helps++;
            continue;
        }
        assert_true(e->n < 128);
        if (sscanf(line, "%63[a-z_]{family=\"%31[a-z]\"} %llu", s->name, s->family,
                   &s->value) == 3 ||
            sscanf(line, "%63[a-z_] %llu", s->name, &s->value) == 2) {
            if (type_of(e, s->name) == NULL)
                fail_msg("sample before its # TYPE line: \"%s\"", line);
            e->n++;
            continue;
        }
        fail_msg("not a line our stats file writes: \"%s\"", line);
    }
    free(copy);
}

/* The value of |name| with family |family| ("" none); fails when absent or twice. */
static unsigned long long sample_of(const struct expo *e, const char *name,
                                    const char *family)
{
    size_t i, found = e->n;

    for (i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && strcmp(e->s[i].family, family) == 0) {
            if (found != e->n)
                fail_msg("%s{family=\"%s\"} appears twice", name, family);
            found = i;
        }
    if (found == e->n)
        fail_msg("no sample %s{family=\"%s\"} in the stats file", name, family);
    return e->s[found].value;
}

/* `promtool check metrics < |p|`: its exit status, its output printed. */
static int promtool_check(const char *p)
{
    char cmd[512], line[512];
    FILE *out;
    int st;

    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool not found in PATH: install Debian's prometheus package "
                 "(scripts/bootstrap does)");
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", p);
    out = popen(cmd, "r");
    assert_non_null(out);
    while (fgets(line, sizeof(line), out) != NULL)
        print_message("  promtool: %s", line);
    st = pclose(out);
    assert_true(st != -1 && WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The provider params the file shows: every family's counters, the gauges. */
struct snap {
    uint64_t v[NFAM][NSTAT], high_water, workers, in_flight;
};

static void take(OSSL_PROVIDER *prov, struct snap *sn)
{
    char key[64];
    int f, s;

    for (f = 0; f < NFAM; f++)
        for (s = 0; s < NSTAT; s++) {
            snprintf(key, sizeof(key), "offload-%s-%s", fam_names[f], stat_names[s]);
            sn->v[f][s] = test_counter(prov, key);
            assert_int_not_equal(sn->v[f][s], UINT64_MAX);
        }
    sn->high_water = test_counter(prov, OFFLOAD_PARAM_QUEUE_HIGH_WATER);
    sn->workers = test_counter(prov, OFFLOAD_PARAM_WORKERS);
    sn->in_flight = test_counter(prov, OFFLOAD_PARAM_IN_FLIGHT);
}

/* How many of the file's samples differ from |sn| (read while waiting for it). */
static int differences(const struct expo *e, const struct snap *sn)
{
    int f, s, n = 0;

    for (f = 0; f < NFAM; f++)
        for (s = 0; s < NSTAT; s++)
            n += sample_of(e, prom_names[s], fam_names[f]) != sn->v[f][s];
    n += sample_of(e, G_HIGH_WATER, "") != sn->high_water;
    n += sample_of(e, G_WORKERS, "") != sn->workers;
    n += sample_of(e, G_IN_FLIGHT, "") != sn->in_flight;
    return n;
}

/*
 * The file at |path| (|text|) passes promtool, has what we write and no
 * more (a HELP and a TYPE per metric, counters per family with no
 * family-less total, three gauges), and shows |sn|, sample by sample.
 */
static void check_file(const char *text, const struct snap *sn, struct expo *e)
{
    int f, s;

    assert_int_equal(promtool_check(path), 0);
    parse(text, e);
    assert_int_equal(e->n, NFAM * NSTAT + 3);
    assert_int_equal(e->ntyped, NSTAT + 3);
    assert_int_equal(e->helps, NSTAT + 3);
    for (s = 0; s < NSTAT; s++) {
        assert_string_equal(type_of(e, prom_names[s]), "counter");
        for (f = 0; f < NFAM; f++)
            assert_int_equal(sample_of(e, prom_names[s], fam_names[f]), sn->v[f][s]);
    }
    assert_string_equal(type_of(e, G_HIGH_WATER), "gauge");
    assert_string_equal(type_of(e, G_WORKERS), "gauge");
    assert_string_equal(type_of(e, G_IN_FLIGHT), "gauge");
    assert_int_equal(sample_of(e, G_HIGH_WATER, ""), sn->high_water);
    assert_int_equal(sample_of(e, G_WORKERS, ""), sn->workers);
    assert_int_equal(sample_of(e, G_IN_FLIGHT, ""), sn->in_flight);
}

/* ---- the operations ---- */

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

/*
 * A whole file: the last metric's sample ends it. A reader that caught
 * the file half written would see it cut anywhere.
 */
static int whole(const char *text)
{
    size_t len = strlen(text);
    const char *last = text + len - 1;

    if (len < 2 || text[len - 1] != '\n')
        return 0;
    while (last > text && last[-1] != '\n')
        last--;
    return strncmp(last, G_IN_FLIGHT " ", strlen(G_IN_FLIGHT) + 1) == 0;
}

/* No "<file>.<pid>.tmp" left beside it. */
static void assert_no_tmp(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp") != NULL)
            fail_msg("temporary file left in %s: %s", dir, de->d_name);
    closedir(d);
}

static void test_prometheus_file(void **state)
{
    char conf[512];
    struct task tasks[N_JOBS], t0;
    int rets[N_JOBS];
    uint64_t sig_inline0, sig_off0, sig_done0, sig_failed0, keygen_inline0;
    struct expo e;
    char *text = NULL;
    int i, reads = 0;
    uint64_t t_end;
    struct snap sn;
    struct stat st0, st1;

    (void)state;
    snprintf(
        conf, sizeof(conf),
        "workers = %d\nbusy_inline = 0\nstats_file = %s\nstats_format = prometheus\n",
        WORKERS, path);
    assert_true(test_env_open(&env, conf));
    sig_inline0 = test_counter(env.offload, "offload-signature-inline");
    sig_off0 = test_counter(env.offload, "offload-signature-offloaded");
    sig_done0 = test_counter(env.offload, "offload-signature-completed");
    sig_failed0 = test_counter(env.offload, "offload-signature-failed");
    keygen_inline0 = test_counter(env.offload, "offload-keygen-inline");

    /* One key generation and N_INLINE signatures on this thread, N_JOBS in jobs. */
    memset(&t0, 0, sizeof(t0));
    t0.libctx = env.libctx;
    t0.key = key = EVP_PKEY_Q_keygen(env.libctx, NULL, "RSA", (size_t)2048);
    assert_non_null(t0.key);
    assert_true(test_pkey_in(t0.key, OFFLOAD_PROVIDER_NAME));
    for (i = 0; i < N_INLINE; i++) {
        t0.md[0] = (unsigned char)i;
        assert_int_equal(sign_work(&t0), 1);
    }
    for (i = 0; i < N_JOBS; i++) {
        tasks[i] = t0;
        tasks[i].md[0] = (unsigned char)(100 + i);
    }
    assert_int_equal(h_run_tasks(sign_work, tasks, sizeof(tasks[0]), N_JOBS, N_JOBS, rets,
                                 POLL_TIMEOUT_MS, NULL),
                     1);
    for (i = 0; i < N_JOBS; i++)
        assert_int_equal(rets[i], 1);
    test_wait_idle(env.offload);

    /*
     * Rewritten twice a second: wait until it shows what the params show
     * now that nothing is in flight; every read on the way is a whole file.
     */
    take(env.offload, &sn);
    t_end = h_clock_ns(CLOCK_MONOTONIC) + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        free(text);
        text = slurp(path);
        if (text != NULL) {
            reads++;
            if (!whole(text))
                fail_msg("read %d of %s is not a whole file:\n%s", reads, path, text);
            parse(text, &e);
            if (differences(&e, &sn) == 0)
                break;
        } else if (errno != ENOENT) {
            fail_msg("cannot read %s: %s", path, strerror(errno));
        }
        if (h_clock_ns(CLOCK_MONOTONIC) > t_end)
            fail_msg("%s does not show the provider's counters after %d ms:\n%s", path,
                     WAIT_MS, text != NULL ? text : "(no file)");
        h_sleep_ms(50);
    }
    print_message("  %s after %d reads:\n", path, reads);
    fputs(text, stdout);
    check_file(text, &sn, &e);
    /* What the operations made, not only what the params say. */
    assert_int_equal(sample_of(&e, prom_names[S_OFFLOADED], OFFLOAD_FAMILY_SIGNATURE),
                     sig_off0 + N_JOBS);
    assert_int_equal(sample_of(&e, prom_names[S_COMPLETED], OFFLOAD_FAMILY_SIGNATURE),
                     sig_done0 + N_JOBS);
    assert_int_equal(sample_of(&e, prom_names[S_INLINE], OFFLOAD_FAMILY_SIGNATURE),
                     sig_inline0 + N_INLINE);
    assert_int_equal(sample_of(&e, prom_names[S_FAILED], OFFLOAD_FAMILY_SIGNATURE),
                     sig_failed0);
    assert_true(sample_of(&e, prom_names[S_PAUSES], OFFLOAD_FAMILY_SIGNATURE) >= N_JOBS);
    assert_int_equal(sample_of(&e, prom_names[S_INLINE], OFFLOAD_FAMILY_KEYGEN),
                     keygen_inline0 + 1);
    assert_int_equal(sample_of(&e, G_WORKERS, ""), WORKERS);
    assert_int_equal(sample_of(&e, G_IN_FLIGHT, ""), 0);
    assert_true(sample_of(&e, G_HIGH_WATER, "") >= 1);

    /* One more signature, then unload: the final write has it. */
    t0.md[0] = 0xff;
    assert_int_equal(sign_work(&t0), 1);
    EVP_PKEY_free(key);
    key = NULL;
    take(env.offload, &sn); /* the params go with the provider */
    assert_int_equal(sn.v[F_SIGNATURE][S_INLINE], sig_inline0 + N_INLINE + 1);
    test_env_close(&env);
    free(text);
    text = slurp(path);
    assert_non_null(text);
    assert_true(whole(text));
    check_file(text, &sn, &e);
    /* Not replaced any more: the writer stopped with the last instance. */
    assert_int_equal(stat(path, &st0), 0);
    h_sleep_ms(1200);
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st0.st_ino, st1.st_ino);
    assert_no_tmp();
    free(text);
    unlink(path);
}

/* ---- the format switch: the environment, the default ---- */

/*
 * Loads with |lines| and stats_file = <dir>/|name| (a name of its own: a
 * writer left from a failed test writes elsewhere), waits for the file and
 * returns it as the final write at unload left it.
 */
static char *file_with(const char *name, const char *lines)
{
    char conf[512], p[sizeof(path) + 32];
    char *text = NULL;
    int i;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    snprintf(conf, sizeof(conf), "stats_file = %s\n%s", p, lines);
    assert_true(test_env_open(&env, conf));
    for (i = 0; i < WAIT_MS / 50 && (text = slurp(p)) == NULL; i++)
        h_sleep_ms(50);
    test_env_close(&env);
    if (text == NULL)
        fail_msg("no %s after %d ms", p, WAIT_MS);
    free(text);
    text = slurp(p);
    assert_non_null(text);
    unlink(p);
    assert_no_tmp();
    return text;
}

static void test_env_overrides(void **state)
{
    char *text;
    struct expo e;

    (void)state;
    assert_int_equal(setenv(OFFLOAD_ENV_STATS_FORMAT, "prometheus", 1), 0);
    text = file_with("env.prom", "stats_format = plain\n");
    unsetenv(OFFLOAD_ENV_STATS_FORMAT);
    assert_true(whole(text));
    parse(text, &e);
    assert_string_equal(type_of(&e, prom_names[S_INLINE]), "counter");
    free(text);
}

static void test_plain_default(void **state)
{
    char *text;

    (void)state;
    text = file_with("plain.txt", "");
    print_message("  plain:\n%.200s...\n", text);
    assert_true(strncmp(text, "pid ", 4) == 0);
    assert_non_null(strstr(text, "\noffload-signature-inline "));
    assert_non_null(strstr(text, "\noffload-inline "));
    assert_null(strstr(text, "# TYPE"));
    free(text);
}

/*
 * Each test's teardown, also after a failure: the next test's instance
 * must be the process's first again (the first one configures the stats
 * file).
 */
static int close_env(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    key = NULL;
    if (env.offload != NULL)
        test_env_close(&env);
    else if (env.libctx != NULL)
        OSSL_LIB_CTX_free(env.libctx);
    memset(&env, 0, sizeof(env));
    return 0;
}

/* ---- bad values: refused at load, with the key and the value ---- */

/* OSSL_PROVIDER_load with |lines| in offload's section must fail with |expect|. */
static void expect_refused(const char *lines, const char *expect)
{
    char cpath[] = "/tmp/offload-stats-prom-cnf-XXXXXX";
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    BIO *bio = BIO_new(BIO_s_mem());
    int fd = mkstemp(cpath);
    char *data = NULL, *copy;
    FILE *f;
    long len;

    assert_non_null(ctx);
    assert_non_null(bio);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders = provs\n"
            "[provs]\ndefault = dflt\noffload = offl\n[dflt]\nactivate = 1\n"
            "[offl]\nmodule = offload.so\n%s\n",
            lines);
    assert_int_equal(fclose(f), 0);
    ERR_clear_error();
    assert_int_equal(OSSL_LIB_CTX_load_config(ctx, cpath), 1);
    unlink(cpath);
    assert_null(OSSL_PROVIDER_load(ctx, OFFLOAD_PROVIDER_NAME));
    assert_false(OSSL_PROVIDER_available(ctx, OFFLOAD_PROVIDER_NAME));
    ERR_print_errors(bio);
    len = BIO_get_mem_data(bio, &data);
    assert_true(len > 0);
    copy = calloc(1, (size_t)len + 1);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)len);
    print_message("  \"%s\":\n%s", lines, copy);
    assert_non_null(strstr(copy, expect));
    assert_non_null(strstr(copy, "expected plain or prometheus"));
    free(copy);
    BIO_free(bio);
    OSSL_LIB_CTX_free(ctx);
}

static void test_bad_format(void **state)
{
    char conf[512];

    (void)state;
    snprintf(conf, sizeof(conf), "stats_file = %s\nstats_format = json", path);
    expect_refused(conf, "stats_format = \"json\"");
    expect_refused("stats_format =", "stats_format = \"\"");
    assert_int_equal(setenv(OFFLOAD_ENV_STATS_FORMAT, "openmetrics", 1), 0);
    snprintf(conf, sizeof(conf), "stats_file = %s\nstats_format = prometheus", path);
    expect_refused(conf, "stats_format = \"openmetrics\" (from OFFLOAD_STATS_FORMAT)");
    unsetenv(OFFLOAD_ENV_STATS_FORMAT);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_format),
        cmocka_unit_test_teardown(test_prometheus_file, close_env),
        cmocka_unit_test_teardown(test_env_overrides, close_env),
        cmocka_unit_test_teardown(test_plain_default, close_env),
    };
    int failed;

    /* Only what each test sets: none from the caller's environment. */
    unsetenv(OFFLOAD_ENV_STATS_FILE);
    unsetenv(OFFLOAD_ENV_STATS_FORMAT);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, FILE_NAME);
    failed = cmocka_run_group_tests_name("stats_prom", tests, NULL, NULL);
    unlink(path);
    rmdir(dir);
    return failed;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Post-quantum signatures through offload (OpenSSL 3.5+): ML-DSA-44/65/87
 * and every SLH-DSA parameter set the default provider offers (asked of
 * the default provider itself, EVP_SIGNATURE_do_all_provided).
 *
 *   keygen   every key is generated through offload inside a job (fd
 *            mode), and once more in callback mode: keygen offloaded and
 *            completed grow by the number of generations, inline not
 *   sign     inside jobs, in fd and in callback mode, with both APIs
 *            (EVP_PKEY_sign_message_init + EVP_PKEY_sign, looked up with
 *            dlsym; EVP_DigestSignInit_ex + one-shot EVP_DigestSign), each
 *            with and without a context string: signature offloaded and
 *            completed grow by exactly the number of signatures, inline
 *            and failed not; out of a job they run inline
 *   verify   every signature by the default provider alone (a reference
 *            library context), with its context string; with another
 *            context string it must not verify (the string was used)
 *
 * The SLH-DSA "s" sets take hundreds of milliseconds per signature: they
 * sign twice in jobs (fd and callback, two of the four API/context
 * combinations, alternating between sets) and never out of a job.
 *
 * On OpenSSL 3.0 the default provider offers none of these: the test
 * asserts that offload offers none either, and passes. From 3.5 on every
 * one of them must be there.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common.h"
#include "harness.h"

#define MAX_ALGS   32
#define MAX_TASKS  256
#define PARAM_CTX  "context-string" /* OSSL_SIGNATURE_PARAM_CONTEXT_STRING (3.2+) */
#define N_COMBOS   4                /* API x context string */
#define N_EXPECTED (3 + 12)         /* ML-DSA-44/65/87, SLH-DSA 2 x 6 */

typedef int sign_message_init_fn(EVP_PKEY_CTX *ctx, EVP_SIGNATURE *algo,
                                 const OSSL_PARAM params[]);

struct alg {
    char name[40];
    int slow;       /* an SLH-DSA "s" set */
    EVP_PKEY *key;  /* in offload, generated in a job */
    EVP_PKEY *pub;  /* its public half, in the reference */
    size_t sigsize; /* EVP_PKEY_get_size */
};

static struct {
    test_env env;
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
    sign_message_init_fn *sign_message_init;
    struct alg algs[MAX_ALGS];
    size_t nalgs;
    struct hjob *kept[16]; /* every job set, freed at the end: no wait ctx comes back */
    size_t nkept, keptn[16];
} S;

static const unsigned char msg[] = "offload signs post-quantum, in jobs and out";
static const unsigned char ctxstr[] = "offload test context";
static const unsigned char otherctx[] = "another context";

/* ---- counters ---- */

enum { C_INLINE, C_OFFLOADED, C_COMPLETED, C_FAILED, C_N };
static const char *const stat_names[C_N] = {OFFLOAD_STAT_INLINE, OFFLOAD_STAT_OFFLOADED,
                                            OFFLOAD_STAT_COMPLETED, OFFLOAD_STAT_FAILED};

struct snap {
    uint64_t sig[C_N], gen[C_N];
};

static void take(struct snap *s)
{
    char name[64];
    int k;

    test_wait_idle(S.env.offload);
    for (k = 0; k < C_N; k++) {
        snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_SIGNATURE,
                 stat_names[k]);
        s->sig[k] = test_counter(S.env.offload, name);
        snprintf(name, sizeof(name), "offload-%s-%s", OFFLOAD_FAMILY_KEYGEN,
                 stat_names[k]);
        s->gen[k] = test_counter(S.env.offload, name);
        assert_true(s->sig[k] != UINT64_MAX && s->gen[k] != UINT64_MAX);
    }
}

/* The signature and keygen counters moved by exactly |sig| and |gen| since |a|. */
static void expect(const char *what, const struct snap *a, const uint64_t sig[C_N],
                   const uint64_t gen[C_N])
{
    struct snap b;
    int k, bad = 0;

    take(&b);
    for (k = 0; k < C_N; k++) {
        uint64_t ds = b.sig[k] - a->sig[k], dg = b.gen[k] - a->gen[k];

        if (ds != sig[k] || dg != gen[k]) {
            print_message("%s: signature-%s +%llu (want %llu), keygen-%s +%llu (want "
                          "%llu)\n",
                          what, stat_names[k], (unsigned long long)ds,
                          (unsigned long long)sig[k], stat_names[k],
                          (unsigned long long)dg, (unsigned long long)gen[k]);
            bad = 1;
        }
    }
    if (!bad)
        print_message(
            "  %s: signature inline +%llu offloaded +%llu completed +%llu, "
            "keygen inline +%llu offloaded +%llu completed +%llu\n",
            what, (unsigned long long)sig[C_INLINE], (unsigned long long)sig[C_OFFLOADED],
            (unsigned long long)sig[C_COMPLETED], (unsigned long long)gen[C_INLINE],
            (unsigned long long)gen[C_OFFLOADED], (unsigned long long)gen[C_COMPLETED]);
    assert_false(bad);
}

/* Runs |fn| over |args| (|stride| apart), one job each, fd or callback mode. */
static void run_jobs(int cb, size_t n, int (*fn)(void *), void *args, size_t stride)
{
    struct hjob *jobs = hjobs_new(n);
    size_t i;

    assert_non_null(jobs);
    assert_true(S.nkept < sizeof(S.kept) / sizeof(S.kept[0]));
    S.keptn[S.nkept] = n;
    S.kept[S.nkept++] = jobs;
    for (i = 0; i < n; i++) {
        jobs[i].fn = fn;
        jobs[i].arg = (char *)args + i * stride;
    }
    if (cb)
        assert_true(h_run_cb_loop(jobs, n, POLL_TIMEOUT_MS * 4, NULL, NULL, NULL));
    else
        assert_true(h_run_fd_loop(jobs, n, POLL_TIMEOUT_MS * 4, NULL, NULL));
    for (i = 0; i < n; i++) {
        assert_true(jobs[i].done);
        assert_true(jobs[i].pauses >= 1); /* each went to a worker */
    }
}

/* ---- what the default provider offers ---- */

static void collect(EVP_SIGNATURE *sig, void *arg)
{
    const char *name = EVP_SIGNATURE_get0_name(sig);
    size_t i;

    (void)arg;
    if (name == NULL ||
        (strncasecmp(name, "ML-DSA-", 7) != 0 && strncasecmp(name, "SLH-DSA-", 8) != 0))
        return;
    for (i = 0; i < S.nalgs; i++)
        if (strcasecmp(S.algs[i].name, name) == 0)
            return;
    if (S.nalgs < MAX_ALGS) {
        struct alg *a = &S.algs[S.nalgs++];
        size_t len = strlen(name);

        snprintf(a->name, sizeof(a->name), "%s", name);
        a->slow = strncasecmp(name, "SLH-DSA-", 8) == 0 && name[len - 1] == 's';
    }
}

/* Offload offers exactly the post-quantum signatures the default does. */
static void test_offered(void **state)
{
    static const char *const probes[] = {
        "ML-DSA-44",          "ML-DSA-65",          "ML-DSA-87",
        "SLH-DSA-SHA2-128s",  "SLH-DSA-SHA2-128f",  "SLH-DSA-SHA2-192s",
        "SLH-DSA-SHA2-192f",  "SLH-DSA-SHA2-256s",  "SLH-DSA-SHA2-256f",
        "SLH-DSA-SHAKE-128s", "SLH-DSA-SHAKE-128f", "SLH-DSA-SHAKE-192s",
        "SLH-DSA-SHAKE-192f", "SLH-DSA-SHAKE-256s", "SLH-DSA-SHAKE-256f"};
    size_t i, found = 0;

    (void)state;
    for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        EVP_SIGNATURE *d = EVP_SIGNATURE_fetch(S.ref, probes[i], NULL);
        EVP_SIGNATURE *o = EVP_SIGNATURE_fetch(S.env.libctx, probes[i], OFFLOAD_PROPQ);
        EVP_KEYMGMT *k = EVP_KEYMGMT_fetch(S.env.libctx, probes[i], OFFLOAD_PROPQ);

        ERR_clear_error();
        if ((d != NULL) != (o != NULL) || (d != NULL) != (k != NULL))
            fail_msg("%s: default %s it, offload %s the signature and %s the key type",
                     probes[i], d != NULL ? "offers" : "lacks",
                     o != NULL ? "offers" : "lacks", k != NULL ? "offers" : "lacks");
        found += d != NULL;
        EVP_SIGNATURE_free(d);
        EVP_SIGNATURE_free(o);
        EVP_KEYMGMT_free(k);
    }
    print_message("OpenSSL %s: the default provider offers %zu post-quantum signatures "
                  "(%zu of the names probed)\n",
                  OpenSSL_version(OPENSSL_VERSION), S.nalgs, found);
    assert_int_equal(found, S.nalgs);
    if (OpenSSL_version_num() >= 0x30500000L) {
        assert_int_equal(S.nalgs, N_EXPECTED);
        assert_non_null(S.sign_message_init);
    } else if (S.nalgs == 0) {
        print_message("no ML-DSA or SLH-DSA in this OpenSSL, nor in offload: nothing "
                      "more to run\n");
    }
}

/* ---- key generation ---- */

struct gen_task {
    struct alg *a;
    EVP_PKEY *key;
};

static int gen_job(void *arg)
{
    struct gen_task *t = arg;
    EVP_PKEY_CTX *pc =
        EVP_PKEY_CTX_new_from_name(S.env.libctx, t->a->name, OFFLOAD_PROPQ);
    int ok = pc != NULL && EVP_PKEY_keygen_init(pc) > 0 &&
             EVP_PKEY_generate(pc, &t->key) > 0 &&
             test_pkey_in(t->key, OFFLOAD_PROVIDER_NAME);

    EVP_PKEY_CTX_free(pc);
    return ok;
}

static EVP_PKEY *public_in_ref(EVP_PKEY *key, const char *type)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *out = NULL;

    if (EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &params) > 0 &&
        (pctx = EVP_PKEY_CTX_new_from_name(S.ref, type, NULL)) != NULL &&
        EVP_PKEY_fromdata_init(pctx) > 0)
        EVP_PKEY_fromdata(pctx, &out, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return out;
}

/* A key pair: its private half is there (an octet string "priv"). */
static int has_private(const EVP_PKEY *key)
{
    size_t len = 0;

    return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0, &len) >
               0 &&
           len > 0;
}

static void test_keygen_in_jobs(void **state)
{
    struct gen_task t[MAX_ALGS];
    uint64_t sig0[C_N] = {0}, gen[C_N] = {0};
    struct snap a;
    size_t i;
    int cb;

    (void)state;
    if (S.nalgs == 0)
        return;
    for (cb = 1; cb >= 0; cb--) { /* fd last: those keys sign below */
        memset(t, 0, sizeof(t));
        for (i = 0; i < S.nalgs; i++)
            t[i].a = &S.algs[i];
        take(&a);
        run_jobs(cb, S.nalgs, gen_job, t, sizeof(t[0]));
        gen[C_OFFLOADED] = gen[C_COMPLETED] = S.nalgs;
        expect(cb ? "keygen in jobs (callback)" : "keygen in jobs (fd)", &a, sig0, gen);
        for (i = 0; i < S.nalgs; i++) {
            assert_non_null(t[i].key);
            assert_true(has_private(t[i].key));
            if (cb) {
                EVP_PKEY_free(t[i].key);
                continue;
            }
            S.algs[i].key = t[i].key;
            S.algs[i].pub = public_in_ref(t[i].key, S.algs[i].name);
            assert_non_null(S.algs[i].pub);
            S.algs[i].sigsize = (size_t)EVP_PKEY_get_size(t[i].key);
            assert_true(S.algs[i].sigsize > 0);
        }
    }
}

/* ---- signing ---- */

struct sign_task {
    struct alg *a;
    int message_api; /* EVP_PKEY_sign_message_init + EVP_PKEY_sign; else DigestSign */
    int with_ctx;    /* a context string */
    unsigned char *sig;
    size_t siglen;
    int in_job;
};

static void ctx_params(OSSL_PARAM p[2], int with_ctx, const unsigned char *c, size_t len)
{
    p[0] = with_ctx ? OSSL_PARAM_construct_octet_string(PARAM_CTX, (void *)c, len)
                    : OSSL_PARAM_construct_end();
    p[1] = OSSL_PARAM_construct_end();
}

static int sign_task(void *arg)
{
    struct sign_task *t = arg;
    OSSL_PARAM p[2];
    int ok = 0;

    t->in_job = ASYNC_get_current_job() != NULL;
    t->siglen = t->a->sigsize;
    ctx_params(p, t->with_ctx, ctxstr, sizeof(ctxstr) - 1);
    if (t->message_api) {
        EVP_SIGNATURE *s = EVP_SIGNATURE_fetch(S.env.libctx, t->a->name, OFFLOAD_PROPQ);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(S.env.libctx, t->a->key, NULL);

        ok = s != NULL && pc != NULL && S.sign_message_init(pc, s, p) > 0 &&
             strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pc)),
                    OFFLOAD_PROVIDER_NAME) == 0 &&
             EVP_PKEY_sign(pc, t->sig, &t->siglen, msg, sizeof(msg) - 1) > 0;
        EVP_PKEY_CTX_free(pc);
        EVP_SIGNATURE_free(s);
    } else {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pc = NULL;

        ok = m != NULL &&
             EVP_DigestSignInit_ex(m, &pc, NULL, S.env.libctx, OFFLOAD_PROPQ, t->a->key,
                                   p) > 0 &&
             strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pc)),
                    OFFLOAD_PROVIDER_NAME) == 0 &&
             EVP_DigestSign(m, t->sig, &t->siglen, msg, sizeof(msg) - 1) > 0;
        EVP_MD_CTX_free(m);
    }
    if (!ok)
        test_dump_errors(t->a->name);
    return ok;
}

/* The default provider alone verifies |sig| with context string |c| (NULL: none). */
static int verify_ref(const struct alg *a, const unsigned char *sig, size_t siglen,
                      const unsigned char *c, size_t clen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    OSSL_PARAM p[2];
    int ok;

    ctx_params(p, c != NULL, c, clen);
    ok = m != NULL &&
         EVP_DigestVerifyInit_ex(m, NULL, NULL, S.ref, NULL, a->pub, p) > 0 &&
         EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg) - 1) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return ok;
}

static void check_signed(const struct sign_task *t, int in_job)
{
    const char *api = t->message_api ? "sign_message_init + sign" : "DigestSign";

    if (t->in_job != in_job)
        fail_msg("%s %s: ran %s a job", t->a->name, api, t->in_job ? "in" : "out of");
    if (t->siglen == 0 || t->siglen > t->a->sigsize)
        fail_msg("%s %s: signature of %zu bytes (at most %zu)", t->a->name, api,
                 t->siglen, t->a->sigsize);
    if (!verify_ref(t->a, t->sig, t->siglen, t->with_ctx ? ctxstr : NULL,
                    sizeof(ctxstr) - 1))
        fail_msg("%s %s%s: the default provider does not verify it", t->a->name, api,
                 t->with_ctx ? " with a context string" : "");
    /* Under another context string (or none) it must not verify. */
    if (verify_ref(t->a, t->sig, t->siglen, t->with_ctx ? NULL : otherctx,
                   sizeof(otherctx) - 1))
        fail_msg("%s %s: verifies under another context string", t->a->name, api);
}

static struct sign_task *tasks_new(size_t n)
{
    struct sign_task *t = calloc(n, sizeof(*t));

    assert_non_null(t);
    return t;
}

static void tasks_free(struct sign_task *t, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(t[i].sig);
    free(t);
}

static void task_set(struct sign_task *t, struct alg *a, int combo)
{
    t->a = a;
    t->message_api = combo & 1;
    t->with_ctx = (combo >> 1) & 1;
    t->sig = malloc(a->sigsize);
    assert_non_null(t->sig);
}

/* Out of a job: the fast sets, two combinations each; inline. */
static void test_sign_out_of_job(void **state)
{
    uint64_t sig[C_N] = {0}, gen0[C_N] = {0};
    struct sign_task *t;
    struct snap a;
    size_t i, n = 0;

    (void)state;
    if (S.nalgs == 0)
        return;
    t = tasks_new(2 * S.nalgs);
    take(&a);
    for (i = 0; i < S.nalgs; i++) {
        assert_non_null(S.algs[i].key);
        if (S.algs[i].slow)
            continue;
        task_set(&t[n], &S.algs[i], 1); /* sign_message, no context */
        assert_int_equal(sign_task(&t[n]), 1);
        n++;
        task_set(&t[n], &S.algs[i], 2); /* DigestSign, with a context */
        assert_int_equal(sign_task(&t[n]), 1);
        n++;
    }
    sig[C_INLINE] = n;
    expect("signatures out of a job", &a, sig, gen0);
    for (i = 0; i < n; i++)
        check_signed(&t[i], 0);
    print_message("  %zu signatures out of a job verified by the default provider\n", n);
    tasks_free(t, 2 * S.nalgs);
}

/*
 * In jobs, |cb| mode: the fast sets in every combination, each slow set in
 * one (a different one per set and mode), all at once.
 */
static void sign_in_jobs(int cb)
{
    uint64_t sig[C_N] = {0}, gen0[C_N] = {0};
    struct sign_task *t = tasks_new(MAX_TASKS);
    struct snap a;
    size_t i, n = 0, nslow = 0;
    int combo;

    for (i = 0; i < S.nalgs; i++) {
        struct alg *al = &S.algs[i];

        assert_non_null(al->key);
        if (al->slow) {
            task_set(&t[n++], al, (int)((nslow++ * 2 + (size_t)cb) % N_COMBOS));
            continue;
        }
        for (combo = 0; combo < N_COMBOS; combo++)
            task_set(&t[n++], al, combo);
    }
    assert_true(n <= MAX_TASKS);
    take(&a);
    run_jobs(cb, n, sign_task, t, sizeof(t[0]));
    sig[C_OFFLOADED] = sig[C_COMPLETED] = n;
    expect(cb ? "signatures in jobs (callback)" : "signatures in jobs (fd)", &a, sig,
           gen0);
    for (i = 0; i < n; i++) {
        assert_true(S.kept[S.nkept - 1][i].done);
        assert_int_equal(S.kept[S.nkept - 1][i].ret, 1);
        check_signed(&t[i], 1);
    }
    print_message("  %zu signatures in jobs (%s) verified by the default provider, %zu "
                  "of them SLH-DSA \"s\"\n",
                  n, cb ? "callback" : "fd", nslow);
    tasks_free(t, MAX_TASKS);
}

static void test_sign_in_jobs_fd(void **state)
{
    (void)state;
    if (S.nalgs > 0)
        sign_in_jobs(0);
}

static void test_sign_in_jobs_cb(void **state)
{
    (void)state;
    if (S.nalgs > 0)
        sign_in_jobs(1);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    /* busy_inline = 0: nothing here is cheap, but no rule may move work inline. */
    if (!test_env_open(&S.env, "busy_inline = 0\n"))
        return -1;
    if ((S.ref = test_ref_open(&S.refprov)) == NULL)
        return -1;
    S.sign_message_init =
        (sign_message_init_fn *)dlsym(RTLD_DEFAULT, "EVP_PKEY_sign_message_init");
    EVP_SIGNATURE_do_all_provided(S.ref, collect, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < S.nkept; i++)
        hjobs_free(S.kept[i], S.keptn[i]);
    for (i = 0; i < S.nalgs; i++) {
        EVP_PKEY_free(S.algs[i].key);
        EVP_PKEY_free(S.algs[i].pub);
    }
    test_ref_close(S.ref, S.refprov);
    test_env_close(&S.env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered),         cmocka_unit_test(test_keygen_in_jobs),
        cmocka_unit_test(test_sign_out_of_job), cmocka_unit_test(test_sign_in_jobs_fd),
        cmocka_unit_test(test_sign_in_jobs_cb),
    };

    return cmocka_run_group_tests_name("pq_sign", tests, group_setup, group_teardown);
}

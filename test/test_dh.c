/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finite-field Diffie-Hellman and DSA keys through offload (OpenSSL 3.0
 * and 3.5):
 *
 *   ffdhe2048  key pairs of the RFC 7919 group generated through offload
 *              inside jobs (fd and callback mode: keygen offloaded), and
 *              derived inside jobs (keyexch offloaded) against peers the
 *              default provider alone made; the default provider derives
 *              the same secret from the other side
 *   ffdhe3072  the same once
 *   cross      a key pair of the default provider imported into offload and
 *              derived there in a job; a key pair of offload exported to
 *              the default provider alone and derived there
 *   paramgen   DH (a 512-bit safe prime), DHX and DSA (1024/160) parameter
 *              generation inside a job with an application callback
 *              (EVP_PKEY_CTX_set_cb): the callback is called, always on the
 *              calling thread, the job never pauses and the keygen counter
 *              shows one inline generation; key pairs from those parameters
 *              are then generated in jobs (offloaded), pass the default
 *              provider's pairwise check, and a DHX pair derives with the
 *              default's pair of the same parameters
 *
 * Every counter delta is exact: busy_inline = 0 and a fresh wait ctx per
 * job (kept to the end, so no address comes back).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/dsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common.h"
#include "harness.h"

#define NJOBS      4
#define SECRET_MAX 512

enum fam { F_KEYGEN, F_KEYEXCH, F_N };
enum stat { C_INLINE, C_OFFLOADED, C_COMPLETED, C_FAILED, C_N };
static const char *const fam_names[F_N] = {OFFLOAD_FAMILY_KEYGEN, OFFLOAD_FAMILY_KEYEXCH};
static const char *const stat_names[C_N] = {OFFLOAD_STAT_INLINE, OFFLOAD_STAT_OFFLOADED,
                                            OFFLOAD_STAT_COMPLETED, OFFLOAD_STAT_FAILED};

static struct {
    test_env env;
    OSSL_LIB_CTX *ref;
    OSSL_PROVIDER *refprov;
    pthread_t main_thread;
    struct hjob *kept[32];
    size_t nkept, keptn[32];
} S;

/* ---- counters ---- */

struct snap {
    uint64_t v[F_N][C_N];
};

static void take(struct snap *s)
{
    char name[64];
    int f, k;

    test_wait_idle(S.env.offload);
    for (f = 0; f < F_N; f++)
        for (k = 0; k < C_N; k++) {
            snprintf(name, sizeof(name), "offload-%s-%s", fam_names[f], stat_names[k]);
            s->v[f][k] = test_counter(S.env.offload, name);
            assert_true(s->v[f][k] != UINT64_MAX);
        }
}

/* Family |f| moved by |inl| inline and |off| offloaded (= completed) runs, |f| only. */
static void expect(const char *what, const struct snap *a, enum fam f, uint64_t inl,
                   uint64_t off)
{
    struct snap b;
    int g, k, bad = 0;

    take(&b);
    for (g = 0; g < F_N; g++)
        for (k = 0; k < C_N; k++) {
            uint64_t d = b.v[g][k] - a->v[g][k], w = 0;

            if (g == (int)f)
                w = k == C_INLINE ? inl : k == C_FAILED ? 0 : off;
            if (d != w) {
                print_message("%s: offload-%s-%s moved by %llu, expected %llu\n", what,
                              fam_names[g], stat_names[k], (unsigned long long)d,
                              (unsigned long long)w);
                bad = 1;
            }
        }
    if (!bad)
        print_message("  %-46s %s inline +%llu offloaded +%llu completed +%llu\n", what,
                      fam_names[f], (unsigned long long)inl, (unsigned long long)off,
                      (unsigned long long)off);
    assert_false(bad);
}

/* Runs fn over |n| args (|stride| apart), one job each; returns the jobs. */
static struct hjob *run_jobs(int cb, size_t n, int (*fn)(void *), void *args,
                             size_t stride)
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
        assert_true(h_run_cb_loop(jobs, n, POLL_TIMEOUT_MS, NULL, NULL, NULL));
    else
        assert_true(h_run_fd_loop(jobs, n, POLL_TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < n; i++) {
        assert_true(jobs[i].done);
        if (jobs[i].ret != 1)
            fail_msg("job %zu of %zu failed", i, n);
    }
    return jobs;
}

/* ---- keys ---- */

/* |src| (|selection|) as a key of |libctx|/|propq|; NULL on failure. */
static EVP_PKEY *move_key(const EVP_PKEY *src, OSSL_LIB_CTX *libctx, const char *propq,
                          int selection)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ictx = NULL;
    EVP_PKEY *dst = NULL;

    if (EVP_PKEY_todata(src, selection, &params) == 1 &&
        (ictx = EVP_PKEY_CTX_new_from_name(libctx, EVP_PKEY_get0_type_name(src),
                                           propq)) != NULL &&
        EVP_PKEY_fromdata_init(ictx) == 1)
        (void)EVP_PKEY_fromdata(ictx, &dst, selection, params);
    if (dst == NULL)
        test_dump_errors("move key");
    EVP_PKEY_CTX_free(ictx);
    OSSL_PARAM_free(params);
    return dst;
}

static EVP_PKEY *to_ref(const EVP_PKEY *k, int sel)
{
    EVP_PKEY *r = move_key(k, S.ref, NULL, sel);

    assert_non_null(r);
    assert_true(test_pkey_in(r, "default"));
    return r;
}

static EVP_PKEY *to_offload(const EVP_PKEY *k, int sel)
{
    EVP_PKEY *r = move_key(k, S.env.libctx, OFFLOAD_PROPQ, sel);

    assert_non_null(r);
    assert_true(test_pkey_in(r, OFFLOAD_PROVIDER_NAME));
    return r;
}

/* A key pair of |group| made by the default provider alone. */
static EVP_PKEY *ref_keygen_group(const char *group)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(S.ref, "DH", NULL);
    EVP_PKEY *k = NULL;

    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_keygen_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_group_name(pc, group), 1);
    assert_int_equal(EVP_PKEY_generate(pc, &k), 1);
    EVP_PKEY_CTX_free(pc);
    return k;
}

/* A key pair from the parameters |params| (a key of the reference). */
static EVP_PKEY *ref_keygen_from(EVP_PKEY *params)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(S.ref, params, NULL);
    EVP_PKEY *k = NULL;

    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_keygen_init(pc), 1);
    assert_int_equal(EVP_PKEY_generate(pc, &k), 1);
    EVP_PKEY_CTX_free(pc);
    return k;
}

/* The default provider alone finds |k| (of offload) a consistent key pair. */
static void assert_pair_ok(const EVP_PKEY *k)
{
    EVP_PKEY *r = to_ref(k, EVP_PKEY_KEYPAIR);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(S.ref, r, NULL);

    assert_non_null(pc);
    if (EVP_PKEY_pairwise_check(pc) != 1) {
        test_dump_errors("pairwise check");
        fail_msg("%s key pair of offload: the default's pairwise check refuses it",
                 EVP_PKEY_get0_type_name(k));
    }
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(r);
}

/* The secret of |priv| and |peer| in |libctx| (|propq|); its length, 0 on failure. */
static size_t derive(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *priv,
                     EVP_PKEY *peer, unsigned char *out)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(libctx, priv, propq);
    size_t len = SECRET_MAX;
    int ok = pc != NULL && EVP_PKEY_derive_init(pc) == 1 &&
             EVP_PKEY_derive_set_peer(pc, peer) == 1 &&
             EVP_PKEY_derive(pc, out, &len) == 1;

    if (!ok)
        test_dump_errors("derive");
    EVP_PKEY_CTX_free(pc);
    return ok ? len : 0;
}

/* ---- what the jobs do ---- */

struct gen_task {
    const char *group; /* a named group, or NULL: from |templ| */
    EVP_PKEY *templ;   /* parameters, a key of offload */
    EVP_PKEY *key;     /* out */
};

static int gen_job(void *arg)
{
    struct gen_task *t = arg;
    EVP_PKEY_CTX *pc = t->group != NULL
                           ? EVP_PKEY_CTX_new_from_name(S.env.libctx, "DH", OFFLOAD_PROPQ)
                           : EVP_PKEY_CTX_new_from_pkey(S.env.libctx, t->templ, NULL);
    int ok = pc != NULL && EVP_PKEY_keygen_init(pc) == 1 &&
             (t->group == NULL || EVP_PKEY_CTX_set_group_name(pc, t->group) == 1) &&
             EVP_PKEY_generate(pc, &t->key) == 1 &&
             test_pkey_in(t->key, OFFLOAD_PROVIDER_NAME);

    if (!ok)
        test_dump_errors("keygen in a job");
    EVP_PKEY_CTX_free(pc);
    return ok;
}

struct kex_task {
    EVP_PKEY *priv, *peer; /* keys of offload */
    unsigned char secret[SECRET_MAX];
    size_t len;
};

static int kex_job(void *arg)
{
    struct kex_task *t = arg;

    t->len = derive(S.env.libctx, OFFLOAD_PROPQ, t->priv, t->peer, t->secret);
    return t->len > 0;
}

/*
 * |n| key pairs of |group| made in jobs (|cb| mode), each derived in a job
 * with a fresh peer of the default provider, which derives the same
 * secret from its side.
 */
static void group_round(const char *group, int cb, size_t n)
{
    struct gen_task g[NJOBS];
    struct kex_task *k = calloc(n, sizeof(*k));
    EVP_PKEY *dpeer[NJOBS], *opub[NJOBS];
    unsigned char s[SECRET_MAX];
    char what[96];
    struct snap a;
    size_t i;

    assert_non_null(k);
    assert_true(n <= NJOBS);
    memset(g, 0, sizeof(g));
    for (i = 0; i < n; i++)
        g[i].group = group;
    take(&a);
    run_jobs(cb, n, gen_job, g, sizeof(g[0]));
    snprintf(what, sizeof(what), "%s keygen in jobs (%s)", group, cb ? "cb" : "fd");
    expect(what, &a, F_KEYGEN, 0, n);
    for (i = 0; i < n; i++) {
        char name[64] = "";

        assert_int_equal(EVP_PKEY_get_utf8_string_param(g[i].key,
                                                        OSSL_PKEY_PARAM_GROUP_NAME, name,
                                                        sizeof(name), NULL),
                         1);
        assert_string_equal(name, group);
        assert_pair_ok(g[i].key);
        dpeer[i] = ref_keygen_group(group);
        k[i].priv = g[i].key;
        k[i].peer = to_offload(dpeer[i], EVP_PKEY_PUBLIC_KEY);
    }
    take(&a);
    run_jobs(cb, n, kex_job, k, sizeof(k[0]));
    snprintf(what, sizeof(what), "%s derive in jobs (%s)", group, cb ? "cb" : "fd");
    expect(what, &a, F_KEYEXCH, 0, n);
    for (i = 0; i < n; i++) {
        size_t len;

        opub[i] = to_ref(g[i].key, EVP_PKEY_PUBLIC_KEY);
        len = derive(S.ref, NULL, dpeer[i], opub[i], s);
        assert_true(len > 0);
        assert_int_equal(k[i].len, len);
        assert_memory_equal(k[i].secret, s, len);
        EVP_PKEY_free(opub[i]);
        EVP_PKEY_free(dpeer[i]);
        EVP_PKEY_free(k[i].peer);
        EVP_PKEY_free(g[i].key);
    }
    print_message("  %s: %zu secrets (%zu bytes) equal the default provider's\n", group,
                  n, k[0].len);
    free(k);
}

static void test_ffdhe2048_fd(void **state)
{
    (void)state;
    group_round("ffdhe2048", 0, NJOBS);
}

static void test_ffdhe2048_cb(void **state)
{
    (void)state;
    group_round("ffdhe2048", 1, NJOBS);
}

static void test_ffdhe3072_once(void **state)
{
    (void)state;
    group_round("ffdhe3072", 0, 1);
}

/* Keys of one side used by the other. */
static void test_cross(void **state)
{
    EVP_PKEY *dkey = ref_keygen_group("ffdhe2048"),
             *dpeer = ref_keygen_group("ffdhe2048");
    EVP_PKEY *dkey_in_off = to_offload(dkey, EVP_PKEY_KEYPAIR);
    EVP_PKEY *dpeer_pub = to_offload(dpeer, EVP_PKEY_PUBLIC_KEY);
    struct gen_task g = {"ffdhe2048", NULL, NULL};
    struct kex_task k;
    unsigned char s[SECRET_MAX];
    EVP_PKEY *okey_in_ref, *dpeer_ref_pub;
    struct snap a;
    size_t len;

    (void)state;
    /* The default's key pair, derived by offload in a job. */
    memset(&k, 0, sizeof(k));
    k.priv = dkey_in_off;
    k.peer = dpeer_pub;
    take(&a);
    run_jobs(0, 1, kex_job, &k, sizeof(k));
    expect("default's key derived by offload in a job", &a, F_KEYEXCH, 0, 1);
    len = derive(S.ref, NULL, dkey, dpeer, s);
    assert_true(len > 0);
    assert_int_equal(k.len, len);
    assert_memory_equal(k.secret, s, len);

    /* Offload's key pair (made in a job), derived by the default alone. */
    run_jobs(0, 1, gen_job, &g, sizeof(g));
    okey_in_ref = to_ref(g.key, EVP_PKEY_KEYPAIR);
    dpeer_ref_pub = to_ref(dpeer, EVP_PKEY_PUBLIC_KEY);
    take(&a);
    len = derive(S.ref, NULL, okey_in_ref, dpeer_ref_pub, s);
    expect("offload's key derived by the default alone", &a, F_KEYEXCH, 0, 0);
    assert_true(len > 0);
    memset(&k, 0, sizeof(k));
    k.priv = g.key;
    k.peer = dpeer_pub;
    assert_int_equal(kex_job(&k), 1); /* and by offload, out of a job: inline */
    expect("offload's key derived by the default alone", &a, F_KEYEXCH, 1, 0);
    assert_int_equal(k.len, len);
    assert_memory_equal(k.secret, s, len);
    print_message("  both ways: the secrets agree\n");
    EVP_PKEY_free(okey_in_ref);
    EVP_PKEY_free(dpeer_ref_pub);
    EVP_PKEY_free(g.key);
    EVP_PKEY_free(dkey);
    EVP_PKEY_free(dpeer);
    EVP_PKEY_free(dkey_in_off);
    EVP_PKEY_free(dpeer_pub);
}

/* ---- parameter generation with an application callback ---- */

struct pgen_task {
    const char *type; /* DH, DHX, DSA */
    int bits, qbits;  /* qbits 0: a safe prime (DH's generator type) */
    EVP_PKEY *params; /* out */
    unsigned calls, off_thread;
    int in_job;
};

static int pgen_cb(EVP_PKEY_CTX *ctx)
{
    struct pgen_task *t = EVP_PKEY_CTX_get_app_data(ctx);

    t->calls++;
    if (!pthread_equal(pthread_self(), S.main_thread))
        t->off_thread++;
    return 1;
}

static int pgen_job(void *arg)
{
    struct pgen_task *t = arg;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(S.env.libctx, t->type, OFFLOAD_PROPQ);
    int ok, dsa = strcmp(t->type, "DSA") == 0;
    OSSL_PARAM gen_type[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_FFC_TYPE, (char *)"generator", 0),
        OSSL_PARAM_END};

    t->in_job = ASYNC_get_current_job() != NULL;
    ok = pc != NULL && EVP_PKEY_paramgen_init(pc) == 1;
    if (ok && dsa)
        ok = EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, t->bits) == 1 &&
             EVP_PKEY_CTX_set_dsa_paramgen_q_bits(pc, t->qbits) == 1;
    else if (ok && t->qbits == 0)
        /*
         * By name: EVP_PKEY_CTX_set_dh_paramgen_type(pc, DH_PARAMGEN_TYPE_GENERATOR)
         * crashes in libcrypto itself (3.0.19 and 3.5.7, the default alone too).
         */
        ok = EVP_PKEY_CTX_set_params(pc, gen_type) == 1 &&
             EVP_PKEY_CTX_set_dh_paramgen_prime_len(pc, t->bits) == 1;
    else if (ok)
        ok = EVP_PKEY_CTX_set_dh_paramgen_prime_len(pc, t->bits) == 1 &&
             EVP_PKEY_CTX_set_dh_paramgen_subprime_len(pc, t->qbits) == 1;
    if (ok) {
        EVP_PKEY_CTX_set_app_data(pc, t);
        EVP_PKEY_CTX_set_cb(pc, pgen_cb);
        ok = EVP_PKEY_paramgen(pc, &t->params) == 1 &&
             test_pkey_in(t->params, OFFLOAD_PROVIDER_NAME);
    }
    if (!ok)
        test_dump_errors("paramgen");
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/*
 * |type| parameters generated in a job with a callback (inline: the
 * callback runs on this thread), then a key pair from them in a job.
 */
static EVP_PKEY *paramgen_then_keygen(struct pgen_task *t, EVP_PKEY **params)
{
    struct gen_task g = {NULL, NULL, NULL};
    struct hjob *j;
    struct snap a;
    char what[96];
    int bits = 0;

    take(&a);
    j = run_jobs(0, 1, pgen_job, t, sizeof(*t));
    snprintf(what, sizeof(what), "%s paramgen %d bits in a job, callback", t->type,
             t->bits);
    expect(what, &a, F_KEYGEN, 1, 0);
    assert_true(t->in_job);
    assert_int_equal(j->pauses, 0); /* it never went to a worker */
    print_message("    the callback: %u calls, %u off the calling thread\n", t->calls,
                  t->off_thread);
    assert_true(t->calls > 0);
    assert_int_equal(t->off_thread, 0);
    assert_int_equal(EVP_PKEY_get_int_param(t->params, OSSL_PKEY_PARAM_BITS, &bits), 1);
    assert_int_equal(bits, t->bits);

    g.templ = t->params;
    take(&a);
    run_jobs(0, 1, gen_job, &g, sizeof(g));
    snprintf(what, sizeof(what), "%s keygen from those parameters in a job", t->type);
    expect(what, &a, F_KEYGEN, 0, 1);
    assert_true(EVP_PKEY_parameters_eq(g.key, t->params) == 1);
    assert_pair_ok(g.key);
    *params = t->params;
    return g.key;
}

static void test_paramgen_dh(void **state)
{
    struct pgen_task t = {"DH", 512, 0, NULL, 0, 0, 0};
    EVP_PKEY *params, *key;

    (void)state;
    key = paramgen_then_keygen(&t, &params);
    EVP_PKEY_free(key);
    EVP_PKEY_free(params);
}

static void test_paramgen_dhx(void **state)
{
    struct pgen_task t = {"DHX", 1024, 160, NULL, 0, 0, 0};
    EVP_PKEY *params, *key, *rparams, *dpair, *dpub, *opub;
    struct kex_task k;
    unsigned char s[SECRET_MAX];
    struct snap a;
    size_t len;

    (void)state;
    key = paramgen_then_keygen(&t, &params);
    /* The default's pair of the same parameters: both sides derive one secret. */
    rparams = to_ref(params, EVP_PKEY_KEY_PARAMETERS);
    dpair = ref_keygen_from(rparams);
    memset(&k, 0, sizeof(k));
    k.priv = key;
    k.peer = dpub = to_offload(dpair, EVP_PKEY_PUBLIC_KEY);
    take(&a);
    run_jobs(1, 1, kex_job, &k, sizeof(k));
    expect("DHX derive in a job (cb)", &a, F_KEYEXCH, 0, 1);
    opub = to_ref(key, EVP_PKEY_PUBLIC_KEY);
    len = derive(S.ref, NULL, dpair, opub, s);
    assert_true(len > 0);
    assert_int_equal(k.len, len);
    assert_memory_equal(k.secret, s, len);
    EVP_PKEY_free(opub);
    EVP_PKEY_free(dpub);
    EVP_PKEY_free(dpair);
    EVP_PKEY_free(rparams);
    EVP_PKEY_free(key);
    EVP_PKEY_free(params);
}

static void test_paramgen_dsa(void **state)
{
    struct pgen_task t = {"DSA", 1024, 160, NULL, 0, 0, 0};
    EVP_PKEY *params, *key;

    (void)state;
    key = paramgen_then_keygen(&t, &params);
    EVP_PKEY_free(key);
    EVP_PKEY_free(params);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    S.main_thread = pthread_self();
    if (!test_env_open(&S.env, "busy_inline = 0\n"))
        return -1;
    if ((S.ref = test_ref_open(&S.refprov)) == NULL)
        return -1;
    print_message("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION));
    return 0;
}

static int group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < S.nkept; i++)
        hjobs_free(S.kept[i], S.keptn[i]);
    test_ref_close(S.ref, S.refprov);
    test_env_close(&S.env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffdhe2048_fd),   cmocka_unit_test(test_ffdhe2048_cb),
        cmocka_unit_test(test_ffdhe3072_once), cmocka_unit_test(test_cross),
        cmocka_unit_test(test_paramgen_dh),    cmocka_unit_test(test_paramgen_dhx),
        cmocka_unit_test(test_paramgen_dsa),
    };

    return cmocka_run_group_tests_name("dh", tests, group_setup, group_teardown);
}

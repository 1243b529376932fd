/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof X25519 and X448 vectors through the offload provider: keys built by
 * offload's key management from the raw bytes, secrets derived by
 * offload's key exchange, each vector also run by the default provider
 * alone (the verdicts must agree; vectors_pkey.c). The valid vectors are
 * run again inside ASYNC jobs (EC_ASYNC_JOBS in flight, fd and callback
 * mode: vj_run_tasks), with the offloaded counter asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "harness.h"
#include "vectors_jobs.h"
#include "vectors_pkey.h"

#define EC_ASYNC_JOBS 32

static int xdh_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct kex_group *gs;
    const char *curve = wp_str(group, "curve");
    const char *type = curve == NULL                      ? NULL
                       : strcmp(curve, "curve25519") == 0 ? "X25519"
                       : strcmp(curve, "curve448") == 0   ? "X448"
                                                          : NULL;

    (void)s;
    if (type == NULL) {
        printf("    XDH group on curve \"%s\": not known here\n",
               curve != NULL ? curve : "(none)");
        return 0;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->type = type;
    *out = gs;
    return 1;
}
/* X25519/X448 on side |w|: keys from the raw bytes, then derive. */
static int xdh_side(enum side w, const struct kex_group *gs, const struct wp_case *c,
                    struct kex_counts *k, struct kex_result *r)
{
    EVP_PKEY *priv = NULL, *peer = NULL;
    int rc, ok = 0;

    memset(r, 0, sizeof(*r));
    if (xdh_raw_key(w, gs->type, OSSL_PKEY_PARAM_PRIV_KEY, wp_str(c->json, "private"),
                    &priv) != 1) {
        test_dump_errors("private key");
        printf("    cannot build the private key in %s\n", side_prov(w));
        goto out;
    }
    rc = xdh_raw_key(w, gs->type, OSSL_PKEY_PARAM_PUB_KEY, wp_str(c->json, "public"),
                     &peer);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        k->import_refused += w == OFFLOAD_SIDE;
        ok = 1; /* refused */
        goto out;
    }
    ok = kex_derive(w, k, priv, peer, r);
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(peer);
    return ok;
}

static enum wp_outcome xdh_check(const struct wp_suite *s, void *vgs,
                                 const struct wp_case *c)
{
    struct kex_result o, ref;
    enum wp_outcome v = WP_ERROR;

    if (xdh_side(OFFLOAD_SIDE, vgs, c, s->data, &o) &&
        xdh_side(REFERENCE_SIDE, vgs, c, s->data, &ref))
        v = kex_judge(s, c, &o, &ref);
    OPENSSL_cleanse(&o, sizeof(o));
    OPENSSL_cleanse(&ref, sizeof(ref));
    return v;
}
#define XDH_SUITE(f)                                                                     \
    {                                                                                    \
        .file = f, .schema = "xdh_comp_schema_v1.json", .group_type = "XdhComp",         \
        .group_open = xdh_group_open, .group_close = kex_group_close, .check = xdh_check \
    }
static void test_x25519(void **state)
{
    struct wp_suite s = XDH_SUITE("x25519_test.json");

    (void)state;
    run_kex_suite(&s);
}

/* ------------------------------------------------------------------ */
/* X25519 and X448 inside ASYNC jobs                                            */
/* ------------------------------------------------------------------ */

struct xdh_task {
    long tcid;
    EVP_PKEY *key;  /* offload private key */
    EVP_PKEY *peer; /* offload peer key */
    unsigned char *expect, *out, *sync_out;
    size_t expectlen, outlen, outsize, sync_outlen;
    int sync_verdict; /* derive result outside a job */
};

struct xdh_load {
    struct xdh_task *tasks;
    size_t n, cap;
};

static void xdh_load_free(struct xdh_load *L)
{
    size_t i;

    for (i = 0; i < L->n; i++) {
        struct xdh_task *t = &L->tasks[i];

        EVP_PKEY_free(t->key);
        EVP_PKEY_free(t->peer);
        free(t->expect);
        free(t->out);
        free(t->sync_out);
    }
    free(L->tasks);
    memset(L, 0, sizeof(*L));
}

/* A task for every valid vector (wp_walk visitor). */
static int xdh_collect(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                       void *ctx)
{
    const struct kex_group *gs = vgs;
    struct xdh_load *L = ctx;
    struct xdh_task *t;

    (void)s;
    if (c->result != WP_VALID)
        return 1;
    if (L->n == L->cap) {
        size_t cap = L->cap != 0 ? 2 * L->cap : 64;
        struct xdh_task *nt = realloc(L->tasks, cap * sizeof(*nt));

        if (nt == NULL)
            return 0;
        L->tasks = nt;
        L->cap = cap;
    }
    t = &L->tasks[L->n++];
    memset(t, 0, sizeof(*t));
    t->tcid = c->tcid;
    t->outsize = SECRET_MAX;
    t->out = malloc(t->outsize);
    t->sync_out = malloc(t->outsize);
    return t->out != NULL && t->sync_out != NULL &&
           xdh_raw_key(OFFLOAD_SIDE, gs->type, OSSL_PKEY_PARAM_PRIV_KEY,
                       wp_str(c->json, "private"), &t->key) == 1 &&
           xdh_raw_key(OFFLOAD_SIDE, gs->type, OSSL_PKEY_PARAM_PUB_KEY,
                       wp_str(c->json, "public"), &t->peer) == 1 &&
           wp_hex(c->json, "shared", &t->expect, &t->expectlen);
}

/* The job of an X25519/X448 task: offload derives the shared secret. */
static int xdh_work(void *vt)
{
    struct xdh_task *t = vt;

    t->outlen = t->outsize;
    return derive_in(OFFLOAD_SIDE, t->key, t->peer, t->out, &t->outlen) == D_OK;
}

static void test_x448(void **state)
{
    struct wp_suite s = XDH_SUITE("x448_test.json");

    (void)state;
    run_kex_suite(&s);
}

/* The valid vectors of |file| derived in jobs, |w|: fd or callback mode. */
static void run_xdh_async(const char *file, enum vj_where w)
{
    const struct wp_suite s = XDH_SUITE(file);
    struct xdh_load L;
    uint64_t off0, fail0, off1, fail1;
    size_t i, n = 0, equal = 0, differ = 0;
    int ran = 0, collected, *rets = NULL;

    memset(&L, 0, sizeof(L));
    collected = wp_walk(&s, xdh_collect, &L) && L.n > 0;
    if (collected) {
        n = L.n;
        for (i = 0; i < n; i++) {
            struct xdh_task *t = &L.tasks[i];

            t->sync_outlen = t->outsize;
            t->sync_verdict =
                derive_in(OFFLOAD_SIDE, t->key, t->peer, t->sync_out, &t->sync_outlen);
        }
        rets = calloc(n, sizeof(*rets));
    }
    off0 = test_counter(vec_env.offload, CTR_KEX_OFFLOADED);
    fail0 = test_counter(vec_env.offload, CTR_KEX_FAILED);
    if (rets != NULL) {
        ran =
            vj_run_tasks(w, xdh_work, L.tasks, sizeof(*L.tasks), n, EC_ASYNC_JOBS, rets);
    }
    off1 = test_counter(vec_env.offload, CTR_KEX_OFFLOADED);
    fail1 = test_counter(vec_env.offload, CTR_KEX_FAILED);

    for (i = 0; ran && i < n; i++) {
        struct xdh_task *t = &L.tasks[i];
        int ok = rets[i] == 1 && t->sync_verdict == D_OK && t->outlen == t->expectlen &&
                 memcmp(t->out, t->expect, t->expectlen) == 0 &&
                 t->sync_outlen == t->outlen &&
                 memcmp(t->out, t->sync_out, t->outlen) == 0;

        if (rets[i] != 1)
            test_dump_errors("X25519 job");
        equal += ok;
        differ += !ok;
        if (!ok)
            printf(
                "    %s async: tcId %ld: derive in the job %s, outside %s; the secrets "
                "differ from \"shared\" or from each other\n",
                s.file, t->tcid, rets[i] == 1 ? "done" : "FAILED",
                t->sync_verdict == D_OK ? "done" : "FAILED");
    }
    printf("[wycheproof] %s (%s, %d jobs max): %zu valid vectors: %zu secrets equal to "
           "\"shared\" and to the derivation outside a job, %zu differ; keyexch "
           "counters: offloaded +%llu, failed +%llu\n",
           s.file, vj_where_name(w), EC_ASYNC_JOBS, n, equal, differ,
           (unsigned long long)(off1 - off0), (unsigned long long)(fail1 - fail0));
    fflush(stdout);
    xdh_load_free(&L);
    free(rets);
    ASYNC_cleanup_thread();

    assert_true(collected);
    assert_true(ran);
    assert_true(n > 0);
    assert_int_equal(differ, 0);
    assert_int_equal(equal, n);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && fail1 != UINT64_MAX);
    /* At least one derivation per two jobs went to the workers. */
    assert_true(off1 - off0 >= (n + 1) / 2);
    assert_int_equal(fail1 - fail0, 0);
}

static void test_x25519_async(void **state)
{
    (void)state;
    run_xdh_async("x25519_test.json", VJ_FD);
    run_xdh_async("x25519_test.json", VJ_CB);
}

static void test_x448_async(void **state)
{
    (void)state;
    run_xdh_async("x448_test.json", VJ_FD);
    run_xdh_async("x448_test.json", VJ_CB);
}

static int teardown(void **state)
{
    vj_free_kept();
    return vec_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x25519),
        cmocka_unit_test(test_x25519_async),
        cmocka_unit_test(test_x448),
        cmocka_unit_test(test_x448_async),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, teardown);
}

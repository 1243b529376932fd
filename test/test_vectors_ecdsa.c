/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof ECDSA vectors through the offload provider: P-256/SHA-256,
 * P-384/SHA-384 and P-521/SHA-512 verification of DER signatures (keys decoded by the
 * default provider and moved into offload, verification fetched with
 * "provider=offload"; vectors_pkey.c). The valid P-256 and P-521 vectors
 * are run again inside ASYNC jobs (EC_ASYNC_JOBS in flight, fd and
 * callback mode: vj_run_tasks):
 * verification itself always runs inline (never counted), so each job
 * also signs the vector's message with an offload key on the curve, checked by
 * the default provider, and the offloaded counter is asserted.
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
#include <openssl/evp.h>

#include "harness.h"
#include "vectors_jobs.h"
#include "vectors_pkey.h"

#define EC_ASYNC_JOBS 32

/* ECDSA and EdDSA verification                                        */
/* ------------------------------------------------------------------ */

/* ECDSA groups: the sig_group of the RSA files (public key and digest), on a curve. */
static int ecdsa_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct sig_group *gs;
    json_object *pk = NULL;
    const char *wp = NULL, *curve;

    (void)s;
    if (json_object_object_get_ex(group, "publicKey", &pk))
        wp = wp_str(pk, "curve");
    curve = ossl_curve(wp);
    if (curve == NULL) {
        printf("    ECDSA group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    if (!sig_group_load(group, 0, &gs))
        return 0;
    if (!key_on_curve(gs->pub, curve)) {
        printf("    ECDSA group key is not an EC key on %s\n", curve);
        sig_group_close(gs);
        return 0;
    }
    *out = gs;
    return 1;
}

#define ECDSA_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        .file = f, .schema = "ecdsa_verify_schema_v1.json", .group_type = "EcdsaVerify", \
        .group_open = ecdsa_group_open, .group_close = sig_group_close,                  \
        .check = verify_check                                                            \
    }
static void test_ecdsa_secp256r1_sha256(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp256r1_sha256_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_ecdsa_secp384r1_sha384(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp384r1_sha384_test.json");

    (void)state;
    run_verify_suite(&s);
}

/* ------------------------------------------------------------------ */
/* ECDSA P-256 inside ASYNC jobs                                       */
/* ------------------------------------------------------------------ */

struct ecdsa_task {
    long tcid;
    EVP_PKEY *key;    /* the group's offload public key */
    EVP_PKEY *signer; /* offload key pair on the curve signing msg in the same job */
    struct sig_spec spec;
    unsigned char *msg, *sig, *out;
    size_t msglen, siglen, outlen, outsize;
    int sync_verdict; /* offload's verdict, no job */
    int verdict;      /* offload's verdict inside the job */
};

struct ecdsa_load {
    struct ecdsa_task *tasks;
    size_t n, cap;
    EVP_PKEY *signer;
};

static void ecdsa_load_free(struct ecdsa_load *L)
{
    size_t i;

    for (i = 0; i < L->n; i++) {
        struct ecdsa_task *t = &L->tasks[i];

        EVP_PKEY_free(t->key);
        EVP_PKEY_free(t->signer);
        free(t->msg);
        free(t->sig);
        free(t->out);
    }
    free(L->tasks);
    EVP_PKEY_free(L->signer);
    memset(L, 0, sizeof(*L));
}

/* A task for every valid vector (wp_walk visitor). */
static int ecdsa_collect(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                         void *ctx)
{
    struct sig_group *gs = vgs;
    struct ecdsa_load *L = ctx;
    struct ecdsa_task *t;

    (void)s;
    if (c->result != WP_VALID)
        return 1;
    if (L->n == L->cap) {
        size_t cap = L->cap != 0 ? 2 * L->cap : 64;
        struct ecdsa_task *nt = realloc(L->tasks, cap * sizeof(*nt));

        if (nt == NULL)
            return 0;
        L->tasks = nt;
        L->cap = cap;
    }
    t = &L->tasks[L->n++];
    memset(t, 0, sizeof(*t));
    t->tcid = c->tcid;
    t->key = gs->pub;
    EVP_PKEY_up_ref(t->key);
    t->signer = L->signer;
    EVP_PKEY_up_ref(t->signer);
    t->spec = gs->spec;
    t->outsize = (size_t)EVP_PKEY_get_size(t->signer);
    t->out = malloc(t->outsize);
    return t->out != NULL && sig_fields(c, &t->msg, &t->msglen, &t->sig, &t->siglen);
}

/* The job of an ECDSA task: offload verifies the vector and signs its message. */
static int ecdsa_work(void *vt)
{
    struct ecdsa_task *t = vt;

    t->verdict = verify_in(OFFLOAD_PROPQ, OFFLOAD_PROVIDER_NAME, t->key, &t->spec, t->msg,
                           t->msglen, t->sig, t->siglen);
    t->outlen = t->outsize;
    return offload_sign(t->signer, &t->spec, t->msg, t->msglen, t->out, &t->outlen);
}

/* An EC key pair generated by offload's key management. */
static EVP_PKEY *offload_ec_keygen(const char *curve)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(vec_env.libctx, "EC", OFFLOAD_PROPQ);
    EVP_PKEY *pkey = NULL;

    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(kctx, curve) != 1 ||
        EVP_PKEY_keygen(kctx, &pkey) != 1 || !test_pkey_in(pkey, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("EC keygen in offload");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(kctx);
    return pkey;
}

static void test_ecdsa_secp521r1_sha512(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp521r1_sha512_test.json");

    (void)state;
    run_verify_suite(&s);
}

/*
 * The valid vectors of |file| verified in jobs (|w|: fd or callback
 * mode), each job also signing its message with an offload key on |curve|.
 */
static void run_ecdsa_async(const char *file, const char *curve, enum vj_where w)
{
    const struct wp_suite s = ECDSA_VERIFY_SUITE(file);
    struct ecdsa_load L;
    uint64_t off0, fail0, off1, fail1;
    size_t i, n = 0, same = 0, differ = 0, signed_ok = 0, sig_verified = 0;
    int ran = 0, collected, *rets = NULL;

    memset(&L, 0, sizeof(L));
    L.signer = offload_ec_keygen(curve);
    assert_non_null(L.signer);
    collected = wp_walk(&s, ecdsa_collect, &L) && L.n > 0;
    if (collected) {
        n = L.n;
        for (i = 0; i < n; i++) {
            struct ecdsa_task *t = &L.tasks[i];

            t->sync_verdict =
                offload_verify(t->key, &t->spec, t->msg, t->msglen, t->sig, t->siglen);
        }
        rets = calloc(L.n, sizeof(*rets));
    }
    off0 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    fail0 = test_counter(vec_env.offload, CTR_SIG_FAILED);
    if (rets != NULL) {
        ran = vj_run_tasks(w, ecdsa_work, L.tasks, sizeof(*L.tasks), L.n, EC_ASYNC_JOBS,
                           rets);
    }
    off1 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    fail1 = test_counter(vec_env.offload, CTR_SIG_FAILED);

    for (i = 0; ran && i < L.n; i++) {
        struct ecdsa_task *t = &L.tasks[i];
        int v = 0;

        if (t->verdict == 1 && t->sync_verdict == 1)
            same++;
        else
            differ++;
        if (rets[i] == 1) {
            signed_ok++;
            v = verify_in(DEFAULT_PROPQ, "default", t->signer, &t->spec, t->msg,
                          t->msglen, t->out, t->outlen);
            sig_verified += v == 1;
        }
        if (rets[i] != 1)
            test_dump_errors("ECDSA job");
        if (t->verdict != 1 || t->sync_verdict != 1 || rets[i] != 1 || v != 1)
            printf("    %s async: tcId %ld: verdict in job %d, outside %d; signing %s, "
                   "the default provider %s the signature\n",
                   s.file, t->tcid, t->verdict, t->sync_verdict,
                   rets[i] == 1 ? "done" : "FAILED", v == 1 ? "verifies" : "REJECTS");
    }
    printf("[wycheproof] %s (%s, %d jobs max): %zu valid vectors: %zu verified in the "
           "job and outside, %zu differ; %zu signed in the job with a %s offload key, "
           "%zu verified by the default provider; signature counters: offloaded +%llu, "
           "failed +%llu\n",
           s.file, vj_where_name(w), EC_ASYNC_JOBS, L.n, same, differ, signed_ok, curve,
           sig_verified, (unsigned long long)(off1 - off0),
           (unsigned long long)(fail1 - fail0));
    fflush(stdout);
    ecdsa_load_free(&L);
    free(rets);
    ASYNC_cleanup_thread();

    assert_true(collected);
    assert_true(ran);
    assert_int_equal(differ, 0);
    assert_true(n > 0);
    assert_int_equal(same, n);
    assert_int_equal(signed_ok, same);
    assert_int_equal(sig_verified, same);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && fail1 != UINT64_MAX);
    /*
     * Verification runs inline by design (never counted); the signatures
     * made in the same jobs went to the workers: at least one per two jobs
     * (the first of a burst may stay inline by policy).
     */
    assert_true(off1 - off0 >= (same + 1) / 2);
    assert_int_equal(fail1 - fail0, 0);
}

static void test_ecdsa_p256_async(void **state)
{
    (void)state;
    run_ecdsa_async("ecdsa_secp256r1_sha256_test.json", "P-256", VJ_FD);
    run_ecdsa_async("ecdsa_secp256r1_sha256_test.json", "P-256", VJ_CB);
}

static void test_ecdsa_p521_async(void **state)
{
    (void)state;
    run_ecdsa_async("ecdsa_secp521r1_sha512_test.json", "P-521", VJ_FD);
    run_ecdsa_async("ecdsa_secp521r1_sha512_test.json", "P-521", VJ_CB);
}

static int teardown(void **state)
{
    vj_free_kept();
    return vec_group_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecdsa_secp256r1_sha256),
        cmocka_unit_test(test_ecdsa_secp384r1_sha384),
        cmocka_unit_test(test_ecdsa_secp521r1_sha512),
        cmocka_unit_test(test_ecdsa_p256_async),
        cmocka_unit_test(test_ecdsa_p521_async),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, teardown);
}

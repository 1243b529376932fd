/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof RSA vectors through the offload provider: PKCS#1 v1.5
 * verification (2048/SHA-256, 3072/SHA-384), RSA-PSS verification (MGF1,
 * salt 32 and 0), and PKCS#1 v1.5 signature generation, which must
 * reproduce every vector's signature byte for byte (and reject it with a
 * bit flipped). Keys are decoded by the default provider and moved into
 * offload's key management; every operation is fetched with
 * "provider=offload" and asserted to run there (vectors_pkey.c).
 *
 * The generation file is run a second time inside ASYNC jobs (up to
 * MAX_JOBS in flight, fd mode: h_run_tasks) to prove that the worker
 * threads produce the exact signatures, with the counters asserted.
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
#include <openssl/rsa.h>

#include "harness.h"
#include "vectors_pkey.h"

#define MAX_JOBS 16

static int pkcs1_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct sig_group *gs;
    int need_private = strcmp(s->group_type, "RsassaPkcs1Generate") == 0;

    if (!sig_group_load(group, need_private, &gs))
        return 0;
    gs->spec.pad = RSA_PKCS1_PADDING;
    *out = gs;
    return 1;
}

static int pss_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct sig_group *gs;
    const char *mgf = wp_str(group, "mgf");
    long slen;

    (void)s;
    if (mgf == NULL || strcmp(mgf, "MGF1") != 0) {
        printf("    RSA-PSS group with mask generation \"%s\": only MGF1 is supported; "
               "its tests are not run\n",
               mgf != NULL ? mgf : "(none)");
        return -1;
    }
    if (!wp_int(group, "sLen", &slen) || slen < 0) {
        printf("    RSA-PSS group without a usable sLen\n");
        return 0;
    }
    if (!sig_group_load(group, 0, &gs))
        return 0;
    if (!copy_name(gs->spec.mgf1, sizeof(gs->spec.mgf1), wp_str(group, "mgfSha"))) {
        printf("    RSA-PSS group without a usable mgfSha\n");
        sig_group_close(gs);
        return 0;
    }
    gs->spec.pad = RSA_PKCS1_PSS_PADDING;
    gs->spec.saltlen = (int)slen;
    *out = gs;
    return 1;
}

/* ------------------------------------------------------------------ */
/* RSA signature generation                                            */
/* ------------------------------------------------------------------ */

struct siggen_counts {
    size_t signs, sign_failed;
    size_t match, mismatch; /* our signature vs. the vector's */
    size_t verified, verify_rejected;
    size_t flipped_rejected, flipped_accepted; /* derived negatives */
};

/*
 * Valid and acceptable vectors: offload signs msg (PKCS#1 v1.5 is
 * deterministic) and must reproduce sig byte for byte, and sig must
 * verify. The verdict is "accepted" only when both hold. Every vector's
 * sig with one bit flipped must also be rejected (derived negative).
 * Invalid vectors (none in the current file): the verification of sig
 * is the verdict; there is nothing to sign against.
 */
static enum wp_outcome siggen_check(const struct wp_suite *s, void *vgs,
                                    const struct wp_case *c)
{
    struct sig_group *gs = vgs;
    struct siggen_counts *k = s->data;
    unsigned char *msg = NULL, *sig = NULL, *out = NULL;
    size_t msglen, siglen, outlen;
    int vrc, frc, match = 0;
    enum wp_outcome o = WP_ERROR;

    if (!sig_fields(c, &msg, &msglen, &sig, &siglen))
        return WP_ERROR;
    vrc = offload_verify(gs->pub, &gs->spec, msg, msglen, sig, siglen);
    if (vrc < 0)
        goto out;
    k->verified += vrc == 1;
    k->verify_rejected += vrc == 0;
    if (siglen > 0) {
        sig[siglen / 2] ^= 0x01;
        frc = offload_verify(gs->pub, &gs->spec, msg, msglen, sig, siglen);
        sig[siglen / 2] ^= 0x01;
        if (frc < 0)
            goto out;
        if (frc == 1) {
            k->flipped_accepted++;
            wp_print_case("FAIL: signature with a flipped bit verifies", s, c);
        } else {
            k->flipped_rejected++;
        }
    }
    if (c->result == WP_INVALID) {
        o = vrc == 1 ? WP_ACCEPT : WP_REJECT;
        goto out;
    }
    outlen = (size_t)EVP_PKEY_get_size(gs->priv);
    out = malloc(outlen);
    if (out == NULL)
        goto out;
    k->signs++;
    if (!offload_sign(gs->priv, &gs->spec, msg, msglen, out, &outlen)) {
        k->sign_failed++;
        test_dump_errors("offload sign");
        wp_print_case("signing through offload failed", s, c);
    } else {
        match = outlen == siglen && memcmp(out, sig, siglen) == 0;
        k->match += match;
        k->mismatch += !match;
        if (!match)
            wp_print_case("our signature differs from the vector's", s, c);
    }
    o = match && vrc == 1 ? WP_ACCEPT : WP_REJECT;
out:
    free(out);
    free(msg);
    free(sig);
    return o;
}

/* ------------------------------------------------------------------ */
/* The suites                                                          */
/* ------------------------------------------------------------------ */

#define PKCS1_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        f, "rsassa_pkcs1_verify_schema_v1.json", "RsassaPkcs1Verify", pkcs1_group_open,  \
            sig_group_close, verify_check, NULL                                          \
    }
#define PSS_VERIFY_SUITE(f)                                                              \
    {                                                                                    \
        f, "rsassa_pss_verify_schema_v1.json", "RsassaPssVerify", pss_group_open,        \
            sig_group_close, verify_check, NULL                                          \
    }
static void test_rsa_pkcs1_2048_sha256(void **state)
{
    static const struct wp_suite s =
        PKCS1_VERIFY_SUITE("rsa_signature_2048_sha256_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pkcs1_3072_sha384(void **state)
{
    static const struct wp_suite s =
        PKCS1_VERIFY_SUITE("rsa_signature_3072_sha384_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pss_2048_sha256_mgf1_32(void **state)
{
    static const struct wp_suite s =
        PSS_VERIFY_SUITE("rsa_pss_2048_sha256_mgf1_32_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pss_2048_sha256_mgf1_0(void **state)
{
    static const struct wp_suite s =
        PSS_VERIFY_SUITE("rsa_pss_2048_sha256_mgf1_0_test.json");

    (void)state;
    run_verify_suite(&s);
}

#define SIGGEN_FILE "rsa_pkcs1_2048_sig_gen_test.json"

static void test_rsa_pkcs1_2048_sig_gen(void **state)
{
    struct siggen_counts k = {0};
    const struct wp_suite s = {SIGGEN_FILE,
                               "rsassa_pkcs1_generate_schema_v1.json",
                               "RsassaPkcs1Generate",
                               pkcs1_group_open,
                               sig_group_close,
                               siggen_check,
                               &k};
    struct wp_stats st;
    uint64_t inl0 = test_counter(vec_env.offload, CTR_SIG_INLINE);
    uint64_t off0 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    uint64_t inl1, off1;

    (void)state;
    assert_true(inl0 != UINT64_MAX && off0 != UINT64_MAX);
    wp_run(&s, &st);
    inl1 = test_counter(vec_env.offload, CTR_SIG_INLINE);
    off1 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    printf("[wycheproof] %s: %zu signed (%zu failed), %zu equal to the vector, %zu "
           "differ; "
           "%zu vector signatures verify, %zu rejected; %zu bit-flipped signatures "
           "rejected, %zu accepted; %zu invalid vectors in the file; signature "
           "counters: "
           "inline +%llu, offloaded +%llu\n",
           SIGGEN_FILE, k.signs, k.sign_failed, k.match, k.mismatch, k.verified,
           k.verify_rejected, k.flipped_rejected, k.flipped_accepted,
           st.invalid_rejected + st.invalid_accepted, (unsigned long long)(inl1 - inl0),
           (unsigned long long)(off1 - off0));
    fflush(stdout);
    assert_true(k.signs > 0);
    assert_int_equal(k.sign_failed, 0);
    assert_int_equal(k.flipped_accepted, 0);
    /* Every signature ran in offload, on this thread: counted inline, never
     * offloaded. */
    assert_int_equal(inl1 - inl0, k.signs);
    assert_int_equal(off1 - off0, 0);
}

/* ------------------------------------------------------------------ */
/* Signature generation inside ASYNC jobs                              */
/* ------------------------------------------------------------------ */

struct sign_task {
    EVP_PKEY *pkey; /* offload key pair (a reference) */
    struct sig_spec spec;
    unsigned char *msg, *expect, *out;
    size_t msglen, expectlen, outlen, outsize;
    long tcid;
    enum wp_result result;
    int ret; /* the job's return value */
};

struct siggen_load {
    struct sign_task *tasks;
    size_t n, cap;
};

static int sign_work(void *vt)
{
    struct sign_task *t = vt;

    t->outlen = t->outsize;
    return offload_sign(t->pkey, &t->spec, t->msg, t->msglen, t->out, &t->outlen);
}

/* The RSA signing tasks, at most MAX_JOBS in flight. */
static int run_sign_jobs(struct sign_task *tasks, size_t n, size_t *peak)
{
    int *rets = calloc(n, sizeof(*rets));
    size_t i;
    int ok;

    if (rets == NULL)
        return 0;
    ok = h_run_tasks(sign_work, tasks, sizeof(*tasks), n, MAX_JOBS, rets, POLL_TIMEOUT_MS,
                     peak);
    for (i = 0; i < n; i++) {
        tasks[i].ret = rets[i];
        if (rets[i] != 1)
            test_dump_errors("signing job");
    }
    free(rets);
    return ok;
}

static void free_tasks(struct sign_task *tasks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        EVP_PKEY_free(tasks[i].pkey);
        free(tasks[i].msg);
        free(tasks[i].expect);
        free(tasks[i].out);
    }
    free(tasks);
}

/* A signing task for each valid and acceptable vector (wp_walk visitor). */
static int collect_task(const struct wp_suite *s, void *vgs, const struct wp_case *c,
                        void *ctx)
{
    struct sig_group *gs = vgs;
    struct siggen_load *L = ctx;
    struct sign_task *k;

    (void)s;
    if (c->result == WP_INVALID)
        return 1; /* nothing to sign against (none in the file) */
    if (L->n == L->cap) {
        size_t cap = L->cap != 0 ? 2 * L->cap : 64;
        struct sign_task *nt = realloc(L->tasks, cap * sizeof(*nt));

        if (nt == NULL)
            return 0;
        L->tasks = nt;
        L->cap = cap;
    }
    k = &L->tasks[L->n];
    memset(k, 0, sizeof(*k));
    L->n++;
    k->tcid = c->tcid;
    k->result = c->result;
    k->spec = gs->spec;
    k->pkey = gs->priv;
    EVP_PKEY_up_ref(k->pkey);
    k->outsize = (size_t)EVP_PKEY_get_size(k->pkey);
    k->out = malloc(k->outsize);
    return k->out != NULL &&
           sig_fields(c, &k->msg, &k->msglen, &k->expect, &k->expectlen);
}

static void test_rsa_pkcs1_2048_sig_gen_async(void **state)
{
    static const struct wp_suite s = {SIGGEN_FILE,
                                      "rsassa_pkcs1_generate_schema_v1.json",
                                      "RsassaPkcs1Generate",
                                      pkcs1_group_open,
                                      sig_group_close,
                                      siggen_check,
                                      NULL};
    struct siggen_load L;
    uint64_t off0, inl0, qf0, fail0, pause0, off1, inl1, qf1, fail1, pause1;
    size_t i, peak = 0, valid_ok = 0, valid_bad = 0, acc_match = 0, acc_differ = 0;
    int collected, ran;

    (void)state;
    memset(&L, 0, sizeof(L));
    collected = wp_walk(&s, collect_task, &L);
    if (!collected) {
        free_tasks(L.tasks, L.n);
        fail_msg("%s: cannot load the vectors for the async run", SIGGEN_FILE);
    }

    off0 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    inl0 = test_counter(vec_env.offload, CTR_SIG_INLINE);
    qf0 = test_counter(vec_env.offload, CTR_SIG_QUEUE_FULL);
    fail0 = test_counter(vec_env.offload, CTR_SIG_FAILED);
    pause0 = test_counter(vec_env.offload, CTR_SIG_PAUSES);
    ran = run_sign_jobs(L.tasks, L.n, &peak);
    off1 = test_counter(vec_env.offload, CTR_SIG_OFFLOADED);
    inl1 = test_counter(vec_env.offload, CTR_SIG_INLINE);
    qf1 = test_counter(vec_env.offload, CTR_SIG_QUEUE_FULL);
    fail1 = test_counter(vec_env.offload, CTR_SIG_FAILED);
    pause1 = test_counter(vec_env.offload, CTR_SIG_PAUSES);

    for (i = 0; ran && i < L.n; i++) {
        const struct sign_task *k = &L.tasks[i];
        int match = k->ret == 1 && k->outlen == k->expectlen &&
                    memcmp(k->out, k->expect, k->expectlen) == 0;

        if (k->result == WP_VALID) {
            valid_ok += match;
            valid_bad += !match;
        } else {
            acc_match += match;
            acc_differ += !match;
        }
        if (!match)
            printf("    %s async: tcId %ld (%s): %s\n", SIGGEN_FILE, k->tcid,
                   wp_result_name(k->result),
                   k->ret == 1 ? "signature differs from the vector" : "signing failed");
    }
    printf("[wycheproof] %s (async, %d jobs max, at most %zu paused at once): %zu "
           "signatures: "
           "%zu valid equal, %zu valid differ, %zu acceptable equal, %zu acceptable "
           "differ; signature counters: offloaded +%llu, inline +%llu, queue-full "
           "+%llu, "
           "failed +%llu, pauses +%llu\n",
           SIGGEN_FILE, MAX_JOBS, peak, L.n, valid_ok, valid_bad, acc_match, acc_differ,
           (unsigned long long)(off1 - off0), (unsigned long long)(inl1 - inl0),
           (unsigned long long)(qf1 - qf0), (unsigned long long)(fail1 - fail0),
           (unsigned long long)(pause1 - pause0));
    fflush(stdout);

    free_tasks(L.tasks, L.n);
    ASYNC_cleanup_thread();

    assert_true(ran);
    assert_true(L.n > 0);
    assert_int_equal(valid_ok + valid_bad + acc_match + acc_differ, L.n);
    assert_true(valid_ok > 0);
    assert_int_equal(valid_bad, 0);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && inl1 != UINT64_MAX &&
                qf1 != UINT64_MAX && fail1 != UINT64_MAX);
    /* The workers signed: offloaded grew, and only a full queue sends one inline. */
    assert_true(off1 > off0);
    assert_int_equal((off1 - off0) + (inl1 - inl0), L.n);
    assert_int_equal(inl1 - inl0, qf1 - qf0);
    assert_int_equal(fail1 - fail0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_pkcs1_2048_sha256),
        cmocka_unit_test(test_rsa_pkcs1_3072_sha384),
        cmocka_unit_test(test_rsa_pss_2048_sha256_mgf1_32),
        cmocka_unit_test(test_rsa_pss_2048_sha256_mgf1_0),
        cmocka_unit_test(test_rsa_pkcs1_2048_sig_gen),
        cmocka_unit_test(test_rsa_pkcs1_2048_sig_gen_async),
    };

    return cmocka_run_group_tests(tests, vec_group_setup, vec_group_teardown);
}

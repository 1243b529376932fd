/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bad input never crashes the provider and always leaves a readable
 * reason on the caller's error queue: a bad configuration value, key
 * types an operation cannot use, unknown padding and parameters, short
 * output buffers (also inside an ASYNC_JOB, where the signing step runs
 * on a worker thread), oversized PSS salts, truncated signatures and
 * empty or wrongly sized inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "common.h"
#include "harness.h"
#include "offload.h"

#define SIG_COUNTER(stat) ("offload-" OFFLOAD_FAMILY_SIGNATURE "-" stat)

static test_env env;
static EVP_PKEY *rsa, *ec, *ed;

static const unsigned char message[] = "offload bad input test message";

/* ---- the provider configuration ---- */

/*
 * A config file like test_env_open's; |activate| 0 leaves the offload
 * section to OSSL_PROVIDER_load, which then runs its init with |lines|.
 */
static void write_config(char *path, const char *lines, int activate)
{
    int fd = mkstemp(path);
    FILE *f;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders = provs\nalg_section = algs\n"
            "[provs]\ndefault = dflt\noffload = offl\n"
            "[dflt]\nactivate = 1\n"
            "[offl]\nmodule = offload.so\n%s%s\n"
            "[algs]\ndefault_properties = ?provider=offload\n",
            activate ? "activate = 1\n" : "", lines);
    assert_int_equal(fclose(f), 0);
}

struct badconf {
    const char *line;
    const char *expect; /* text that must appear in the errors */
};

static const struct badconf badconfs[] = {
    {"workers = banana\n", "workers = \"banana\""},
    {"workers = 0\n", "workers = \"0\""},
    {"workers = 257\n", "workers = \"257\""},
    {"queue_depth = -1\n", "queue_depth = \"-1\""},
    {"inline_below = 12k\n", "inline_below = \"12k\""},
    {"cipher_gate = 2\n", "cipher_gate = \"2\""},
    {"spin_us = 10001\n", "spin_us = \"10001\""},
    {"worker_nice = 20\n", "worker_nice = \"20\""},
    {"worker_policy = fifo\n", "worker_policy = \"fifo\""},
    {"busy_inline = -3\n", "busy_inline = \"-3\""},
    {"offload = signature,bogus\n", "offload = \"signature,bogus\""},
    {"debug = yes\n", "debug = \"yes\""},
};

/*
 * A bad value in the provider's section: loading fails, offload is not
 * available, and the error queue says which key and value. (Runs first:
 * the first instance's configuration rules the process.)
 */
static void test_bad_config(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(badconfs) / sizeof(badconfs[0]); i++) {
        char path[] = "/tmp/offload-badinput-XXXXXX";
        OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *prov;
        BIO *bio = BIO_new(BIO_s_mem());
        char *text = NULL;
        long len;

        assert_non_null(ctx);
        assert_non_null(bio);
        write_config(path, badconfs[i].line, 0);
        ERR_clear_error();
        assert_int_equal(OSSL_LIB_CTX_load_config(ctx, path), 1);
        unlink(path);
        prov = OSSL_PROVIDER_load(ctx, OFFLOAD_PROVIDER_NAME);
        assert_null(prov);
        assert_false(OSSL_PROVIDER_available(ctx, OFFLOAD_PROVIDER_NAME));
        assert_int_not_equal(ERR_peek_error(), 0);
        ERR_print_errors(bio);
        len = BIO_get_mem_data(bio, &text);
        assert_true(len > 0);
        print_message("  config \"%.*s\":\n%.*s", (int)strlen(badconfs[i].line) - 1,
                      badconfs[i].line, (int)len, text);
        /* BIO_s_mem data is not NUL-terminated: search a copy */
        {
            char *copy = calloc(1, (size_t)len + 1);

            assert_non_null(copy);
            memcpy(copy, text, (size_t)len);
            assert_non_null(strstr(copy, badconfs[i].expect));
            free(copy);
        }
        BIO_free(bio);
        OSSL_LIB_CTX_free(ctx);
    }
}

/*
 * With "activate = 1" (as test_env_open and conf/offload.cnf write it),
 * OpenSSL 3.0 treats a failed activation as non-fatal and drops its
 * errors: the config loads, but offload must not be active.
 */
static void test_bad_config_activate(void **state)
{
    char path[] = "/tmp/offload-badinput-XXXXXX";
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    (void)state;
    assert_non_null(ctx);
    write_config(path, "workers = banana\n", 1);
    (void)OSSL_LIB_CTX_load_config(ctx, path);
    unlink(path);
    assert_false(OSSL_PROVIDER_available(ctx, OFFLOAD_PROVIDER_NAME));
    assert_true(OSSL_PROVIDER_available(ctx, "default"));
    ERR_clear_error();
    OSSL_LIB_CTX_free(ctx);
}

/* ---- helpers for the operations ---- */

static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *key)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, key, OFFLOAD_PROPQ);

    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_sign_init(pctx), 1);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pctx)),
                        OFFLOAD_PROVIDER_NAME);
    return pctx;
}

static EVP_PKEY_CTX *verify_ctx(EVP_PKEY *key)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, key, OFFLOAD_PROPQ);

    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_verify_init(pctx), 1);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_CTX_get0_provider(pctx)),
                        OFFLOAD_PROVIDER_NAME);
    return pctx;
}

static void set_str(EVP_PKEY_CTX *pctx, const char *key, const char *val)
{
    OSSL_PARAM p[2];

    p[0] = OSSL_PARAM_construct_utf8_string(key, (char *)val, 0);
    p[1] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_PKEY_CTX_set_params(pctx, p), 1);
}

static size_t digest_of(const char *md, unsigned char *out)
{
    size_t len = 0;

    assert_int_equal(
        EVP_Q_digest(env.libctx, md, NULL, message, sizeof(message), out, &len), 1);
    assert_true(len > 0);
    return len;
}

/* ---- ASYNC_JOB plumbing: keep the job's frame small (32 KiB stacks) ---- */

struct sign_op {
    EVP_PKEY_CTX *pctx;
    unsigned char *sig;
    size_t siglen;
    const unsigned char *tbs;
    size_t tbslen;
    int ret;
    int in_job;
};

static int sign_job(void *arg)
{
    struct sign_op *op = arg;

    op->in_job = ASYNC_get_current_job() != NULL;
    op->ret = EVP_PKEY_sign(op->pctx, op->sig, &op->siglen, op->tbs, op->tbslen);
    return op->ret;
}

/* Runs |op| in a job, fd mode (h_run_fd_loop: poll on every pause); returns the pauses.
 */
static int run_sign_job(struct sign_op *op)
{
    struct hjob *j = hjobs_new(1);
    int pauses;

    assert_non_null(j);
    j->fn = sign_job;
    j->arg = op;
    assert_true(h_run_fd_loop(j, 1, POLL_TIMEOUT_MS, NULL, NULL));
    assert_true(j->done);
    assert_true(j->pauses < 1000);
    assert_int_equal(j->ret, op->ret);
    assert_true(op->in_job);
    pauses = (int)j->pauses;
    hjobs_free(j, 1);
    return pauses;
}

/* ---- the cases ---- */

/* The label of a key for messages: "RSA", "EC", "ED25519". */
static const char *kname(const EVP_PKEY *key)
{
    return EVP_PKEY_get0_type_name(key);
}

static void msg(char *buf, size_t len, const EVP_PKEY *key, const char *what)
{
    snprintf(buf, len, "%s %s", kname(key), what);
}

/*
 * A verification of a malformed signature: it must not succeed (OpenSSL
 * reports "did not verify" as 0 without necessarily queuing a reason);
 * any reason queued must be readable.
 */
static void expect_rejected(const char *what, int ret)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    print_message("  %-44s ret=%d reason \"%s\"\n", what, ret,
                  e == 0           ? "(none queued)"
                  : reason != NULL ? reason
                                   : "(null)");
    assert_int_not_equal(ret, 1);
    if (e != 0) {
        assert_non_null(reason);
        assert_true(reason[0] != '\0');
    }
    ERR_clear_error();
}

#define EXPECT_REJECTED(what, call)                                                      \
    do {                                                                                 \
        int r_;                                                                          \
        ERR_clear_error();                                                               \
        r_ = (call);                                                                     \
        expect_rejected((what), r_);                                                     \
    } while (0)

/*
 * Key types an operation cannot use. OpenSSL 3.0 picks the signature
 * algorithm from the key type (EVP_PKEY_sign_init_ex2, which takes an
 * explicit EVP_SIGNATURE, only exists from 3.2), so the mismatches
 * reachable here are operations the key's algorithm lacks.
 */
static void test_wrong_key_type(void **state)
{
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *x;
    unsigned char out[64];
    size_t outlen = sizeof(out);
    int r;

    (void)state;
    /* ECDSA has no verify-recover */
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, ec, OFFLOAD_PROPQ);
    assert_non_null(pctx);
    EXPECT_FAILURE("verify_recover_init with an EC key",
                   EVP_PKEY_verify_recover_init(pctx));
    EVP_PKEY_CTX_free(pctx);

    /* nor does Ed25519 */
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, ed, OFFLOAD_PROPQ);
    assert_non_null(pctx);
    EXPECT_FAILURE("verify_recover_init with an Ed25519 key",
                   EVP_PKEY_verify_recover_init(pctx));
    EVP_PKEY_CTX_free(pctx);

    /* Ed25519 signs messages, not digests: EVP_PKEY_sign is refused */
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, ed, OFFLOAD_PROPQ);
    assert_non_null(pctx);
    ERR_clear_error();
    r = EVP_PKEY_sign_init(pctx);
    if (r > 0)
        r = EVP_PKEY_sign(pctx, out, &outlen, message, sizeof(message));
    test_expect_failure("EVP_PKEY_sign with an Ed25519 key", r);
    EVP_PKEY_CTX_free(pctx);

    /* a key type of ours with no signature at all */
    x = EVP_PKEY_Q_keygen(env.libctx, OFFLOAD_PROPQ, "X25519");
    assert_non_null(x);
    assert_true(test_pkey_in(x, OFFLOAD_PROVIDER_NAME));
    pctx = EVP_PKEY_CTX_new_from_pkey(env.libctx, x, OFFLOAD_PROPQ);
    assert_non_null(pctx);
    EXPECT_FAILURE("sign_init with an X25519 key", EVP_PKEY_sign_init(pctx));
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(x);
}

static void test_unknown_padding(void **state)
{
    EVP_PKEY_CTX *pctx = sign_ctx(rsa);

    (void)state;
    EXPECT_FAILURE("set_rsa_padding(12345)", EVP_PKEY_CTX_set_rsa_padding(pctx, 12345));
    EXPECT_FAILURE("set_rsa_padding(-1)", EVP_PKEY_CTX_set_rsa_padding(pctx, -1));
    EVP_PKEY_CTX_free(pctx);
    pctx = verify_ctx(rsa);
    EXPECT_FAILURE("set_rsa_padding(12345) for verify",
                   EVP_PKEY_CTX_set_rsa_padding(pctx, 12345));
    EVP_PKEY_CTX_free(pctx);
}

static int set_one(EVP_PKEY_CTX *pctx, const char *key, const char *val)
{
    OSSL_PARAM p[2];

    p[0] = OSSL_PARAM_construct_utf8_string(key, (char *)val, 0);
    p[1] = OSSL_PARAM_construct_end();
    return EVP_PKEY_CTX_set_params(pctx, p);
}

static void test_garbage_params(void **state)
{
    EVP_PKEY_CTX *pctx = sign_ctx(rsa);

    (void)state;
    EXPECT_FAILURE("digest = NO-SUCH-MD",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_DIGEST, "NO-SUCH-MD"));
    EXPECT_FAILURE("saltlen without PSS padding",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "digest"));
    set_str(pctx, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss");
    EXPECT_FAILURE("saltlen = -7", set_one(pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "-7"));
    EXPECT_FAILURE("mgf1-digest = nonsense",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_MGF1_DIGEST, "nonsense"));
    EVP_PKEY_CTX_free(pctx);

    pctx = sign_ctx(ec);
    EXPECT_FAILURE("ECDSA digest = nonsense",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_DIGEST, "nonsense"));
    EVP_PKEY_CTX_free(pctx);
}

/* An unknown padding name must be refused, not ignored. */
static void test_garbage_pad_mode(void **state)
{
    EVP_PKEY_CTX *pctx = sign_ctx(rsa);
    int pad = -1;

    (void)state;
    EXPECT_FAILURE("pad-mode = nonsense",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_PAD_MODE, "nonsense"));
    assert_true(EVP_PKEY_CTX_get_rsa_padding(pctx, &pad) > 0); /* 3.0 returns 5 here */
    assert_int_equal(pad, RSA_PKCS1_PADDING);
    EVP_PKEY_CTX_free(pctx);
}

/* A salt length that is not a number must be refused, not read as 0. */
static void test_garbage_saltlen(void **state)
{
    EVP_PKEY_CTX *pctx = sign_ctx(rsa);

    (void)state;
    set_str(pctx, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss");
    set_str(pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "20");
    EXPECT_FAILURE("saltlen = garbage",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "garbage"));
    EXPECT_FAILURE("saltlen = 32abc",
                   set_one(pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "32abc"));
    EVP_PKEY_CTX_free(pctx);
}

/* A signature into a buffer one byte too short (or empty): refused, outside any job. */
static void test_short_buffer(void **state)
{
    EVP_PKEY *key = *(EVP_PKEY **)*state;
    unsigned char dg[64], sig[512];
    size_t dglen = digest_of("SHA256", dg), need = 0, siglen;
    EVP_PKEY_CTX *pctx = sign_ctx(key);
    EVP_MD_CTX *mctx;
    char what[80];

    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_sign(pctx, NULL, &need, dg, dglen), 1);
    assert_true(need > 1 && need <= sizeof(sig));
    siglen = need - 1;
    msg(what, sizeof(what), key, "EVP_PKEY_sign, buffer 1 short");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen));
    siglen = 0;
    msg(what, sizeof(what), key, "EVP_PKEY_sign, empty buffer");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen));
    /* the context still works afterwards */
    siglen = need;
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen), 1);
    EVP_PKEY_CTX_free(pctx);

    mctx = EVP_MD_CTX_new();
    assert_non_null(mctx);
    assert_int_equal(
        EVP_DigestSignInit_ex(mctx, NULL, "SHA256", env.libctx, OFFLOAD_PROPQ, key, NULL),
        1);
    assert_int_equal(EVP_DigestSignUpdate(mctx, message, sizeof(message)), 1);
    siglen = need - 1;
    msg(what, sizeof(what), key, "EVP_DigestSignFinal, buffer 1 short");
    EXPECT_FAILURE(what, EVP_DigestSignFinal(mctx, sig, &siglen));
    EVP_MD_CTX_free(mctx);
}

/*
 * A one-shot EVP_DigestSign/EVP_DigestVerify finishes its context, even
 * when it fails (OpenSSL 3.5 refuses a second call; 3.0 allowed it): each
 * call below gets a context of its own.
 */
static EVP_MD_CTX *ed25519_ctx(int sign)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();

    assert_non_null(mctx);
    if (sign)
        assert_int_equal(
            EVP_DigestSignInit_ex(mctx, NULL, NULL, env.libctx, OFFLOAD_PROPQ, ed, NULL),
            1);
    else
        assert_int_equal(EVP_DigestVerifyInit_ex(mctx, NULL, NULL, env.libctx,
                                                 OFFLOAD_PROPQ, ed, NULL),
                         1);
    return mctx;
}

static void test_short_buffer_ed25519(void **state)
{
    unsigned char sig[64];
    size_t siglen = 63;
    EVP_MD_CTX *mctx = ed25519_ctx(1);

    (void)state;
    EXPECT_FAILURE("ED25519 EVP_DigestSign, 63-byte buffer",
                   EVP_DigestSign(mctx, sig, &siglen, message, sizeof(message)));
    EVP_MD_CTX_free(mctx);
    mctx = ed25519_ctx(1);
    siglen = sizeof(sig);
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, message, sizeof(message)), 1);
    assert_int_equal(siglen, 64);
    EVP_MD_CTX_free(mctx);
}

/* The same inside an ASYNC_JOB: the error is on this thread's queue afterwards. */
static void test_short_buffer_in_job(void **state)
{
    EVP_PKEY *key = *(EVP_PKEY **)*state;
    unsigned char *dg = malloc(64), *sig = malloc(512);
    size_t need = 0;
    struct sign_op op;
    char what[80];

    assert_non_null(dg);
    assert_non_null(sig);
    memset(&op, 0, sizeof(op));
    op.tbs = dg;
    op.tbslen = digest_of("SHA256", dg);
    op.sig = sig;
    op.pctx = sign_ctx(key);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(op.pctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_sign(op.pctx, NULL, &need, op.tbs, op.tbslen), 1);
    assert_true(need > 1 && need <= 512);
    op.siglen = need - 1;
    ERR_clear_error();
    run_sign_job(&op);
    msg(what, sizeof(what), key, "sign in a job, buffer 1 short");
    test_expect_failure(what, op.ret);

    /* and the same context then signs fine in a job */
    op.siglen = need;
    run_sign_job(&op);
    assert_int_equal(op.ret, 1);
    assert_true(op.siglen > 0 && op.siglen <= need);
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_CTX_free(op.pctx);
    free(dg);
    free(sig);
}

/* A PSS salt longer than the key allows, inline and on a worker. */
static void test_pss_salt_too_large(void **state)
{
    unsigned char *dg = malloc(64), *sig = malloc(512);
    size_t siglen = 512;
    struct sign_op op;
    uint64_t offloaded, failed;

    (void)state;
    assert_non_null(dg);
    assert_non_null(sig);
    memset(&op, 0, sizeof(op));
    op.tbs = dg;
    op.tbslen = digest_of("SHA256", dg);
    op.sig = sig;

    /* 2048-bit key, SHA-256: at most 256 - 32 - 2 = 222 bytes of salt */
    op.pctx = sign_ctx(rsa);
    set_str(op.pctx, OSSL_SIGNATURE_PARAM_PAD_MODE, "pss");
    set_str(op.pctx, OSSL_SIGNATURE_PARAM_DIGEST, "SHA256");
    set_str(op.pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "223");
    EXPECT_FAILURE("PSS salt 223, inline",
                   EVP_PKEY_sign(op.pctx, sig, &siglen, op.tbs, op.tbslen));

    /* In a job RSA goes to a worker: its error is replayed on this thread. */
    op.siglen = 512;
    offloaded = test_counter(env.offload, SIG_COUNTER(OFFLOAD_STAT_OFFLOADED));
    failed = test_counter(env.offload, SIG_COUNTER(OFFLOAD_STAT_FAILED));
    assert_int_not_equal(offloaded, UINT64_MAX);
    assert_int_not_equal(failed, UINT64_MAX);
    ERR_clear_error();
    run_sign_job(&op);
    test_expect_failure("PSS salt 223, in a job (on a worker)", op.ret);
    assert_true(test_counter(env.offload, SIG_COUNTER(OFFLOAD_STAT_OFFLOADED)) >
                offloaded);
    assert_true(test_counter(env.offload, SIG_COUNTER(OFFLOAD_STAT_FAILED)) > failed);

    /* and the largest salt that fits works on the worker */
    set_str(op.pctx, OSSL_SIGNATURE_PARAM_PSS_SALTLEN, "222");
    op.siglen = 512;
    run_sign_job(&op);
    assert_int_equal(op.ret, 1);
    assert_int_equal(op.siglen, 256);
    EVP_PKEY_CTX_free(op.pctx);
    free(dg);
    free(sig);
}

/* A signature cut short does not verify; the context still verifies the whole one. */
static void test_truncated_signature(void **state)
{
    EVP_PKEY *key = *(EVP_PKEY **)*state;
    unsigned char dg[64], sig[512];
    size_t dglen = digest_of("SHA256", dg), siglen = sizeof(sig);
    EVP_PKEY_CTX *pctx = sign_ctx(key);
    EVP_MD_CTX *mctx;
    char what[80];

    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen), 1);
    EVP_PKEY_CTX_free(pctx);

    pctx = verify_ctx(key);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    msg(what, sizeof(what), key, "verify, signature minus 1 byte");
    EXPECT_REJECTED(what, EVP_PKEY_verify(pctx, sig, siglen - 1, dg, dglen));
    msg(what, sizeof(what), key, "verify, half a signature");
    EXPECT_REJECTED(what, EVP_PKEY_verify(pctx, sig, siglen / 2, dg, dglen));
    msg(what, sizeof(what), key, "verify, 1-byte signature");
    EXPECT_REJECTED(what, EVP_PKEY_verify(pctx, sig, 1, dg, dglen));
    assert_int_equal(EVP_PKEY_verify(pctx, sig, siglen, dg, dglen), 1);
    EVP_PKEY_CTX_free(pctx);

    mctx = EVP_MD_CTX_new();
    assert_non_null(mctx);
    assert_int_equal(EVP_DigestVerifyInit_ex(mctx, NULL, "SHA256", env.libctx,
                                             OFFLOAD_PROPQ, key, NULL),
                     1);
    msg(what, sizeof(what), key, "EVP_DigestVerify, signature minus 1 byte");
    EXPECT_REJECTED(what,
                    EVP_DigestVerify(mctx, sig, siglen - 1, message, sizeof(message)));
    EVP_MD_CTX_free(mctx);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_ed25519_short_signature(void **state)
{
    unsigned char sig[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *mctx = ed25519_ctx(1);

    (void)state;
    assert_int_equal(EVP_DigestSign(mctx, sig, &siglen, message, sizeof(message)), 1);
    assert_int_equal(siglen, 64);
    EVP_MD_CTX_free(mctx);

    mctx = ed25519_ctx(0);
    EXPECT_REJECTED("ED25519 verify, 63-byte signature",
                    EVP_DigestVerify(mctx, sig, 63, message, sizeof(message)));
    EVP_MD_CTX_free(mctx);
    mctx = ed25519_ctx(0);
    EXPECT_REJECTED("ED25519 verify, empty signature",
                    EVP_DigestVerify(mctx, sig, 0, message, sizeof(message)));
    EVP_MD_CTX_free(mctx);
    mctx = ed25519_ctx(0);
    assert_int_equal(EVP_DigestVerify(mctx, sig, 64, message, sizeof(message)), 1);
    EVP_MD_CTX_free(mctx);
}

/* NULL or empty input where a SHA-256 digest is expected. */
static void test_empty_tbs(void **state)
{
    EVP_PKEY *key = *(EVP_PKEY **)*state;
    unsigned char sig[512], dg[64];
    size_t siglen, dglen = digest_of("SHA256", dg);
    EVP_PKEY_CTX *pctx = sign_ctx(key);
    char what[80];

    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    siglen = sizeof(sig);
    msg(what, sizeof(what), key, "sign, NULL tbs");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, NULL, 0));
    siglen = sizeof(sig);
    msg(what, sizeof(what), key, "sign, zero-length tbs");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, dg, 0));
    siglen = sizeof(sig);
    assert_int_equal(EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen), 1);
    EVP_PKEY_CTX_free(pctx);

    pctx = verify_ctx(key);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    msg(what, sizeof(what), key, "verify, NULL tbs");
    EXPECT_REJECTED(what, EVP_PKEY_verify(pctx, sig, siglen, NULL, 0));
    assert_int_equal(EVP_PKEY_verify(pctx, sig, siglen, dg, dglen), 1);
    EVP_PKEY_CTX_free(pctx);
}

/* Told SHA-256, handed a digest of another length. */
static void test_wrong_digest_length(void **state)
{
    EVP_PKEY *key = *(EVP_PKEY **)*state;
    unsigned char sig[512], dg[64];
    size_t siglen = sizeof(sig), dglen = digest_of("SHA1", dg);
    EVP_PKEY_CTX *pctx = sign_ctx(key);
    char what[80];

    assert_int_equal(dglen, 20);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()), 1);
    msg(what, sizeof(what), key, "SHA-256 sign, 20-byte digest");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, dg, dglen));
    siglen = sizeof(sig);
    msg(what, sizeof(what), key, "SHA-256 sign, 48-byte digest");
    EXPECT_FAILURE(what, EVP_PKEY_sign(pctx, sig, &siglen, dg, 48));
    EVP_PKEY_CTX_free(pctx);
}

/*
 * A second instance (another library context) shares the process's one
 * accelerator. When its section asks for other values, it loads, and
 * says on stderr which keys are not applied; with the same values it
 * says nothing.
 */
static char *second_instance_stderr(const char *lines)
{
    char path[] = "/tmp/offload-badinput-XXXXXX", out[] = "/tmp/offload-stderr-XXXXXX";
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    int fd = mkstemp(out), saved = dup(STDERR_FILENO);
    char *text = calloc(1, 4096);
    ssize_t n;

    assert_non_null(ctx);
    assert_non_null(text);
    assert_true(fd >= 0 && saved >= 0);
    write_config(path, lines, 1);
    fflush(stderr);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    assert_int_equal(OSSL_LIB_CTX_load_config(ctx, path), 1);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    unlink(path);
    assert_true(OSSL_PROVIDER_available(ctx, OFFLOAD_PROVIDER_NAME));
    n = pread(fd, text, 4095, 0);
    assert_true(n >= 0);
    close(fd);
    unlink(out);
    OSSL_LIB_CTX_free(ctx);
    print_message("  second instance with \"%s\": stderr \"%s\"\n", lines, text);
    return text;
}

static void test_second_instance_config(void **state)
{
    char *text;

    (void)state;
    text = second_instance_stderr("queue_depth = 3\nbusy_inline = 3\n");
    assert_non_null(strstr(text, "queue_depth, busy_inline not applied"));
    assert_non_null(strstr(text, "configured by the first instance (workers="));
    free(text);
    text = second_instance_stderr("");
    assert_null(strstr(text, "not applied"));
    free(text);
    ERR_clear_error();
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    if (!test_env_open(&env, NULL))
        return -1;
    rsa = EVP_PKEY_Q_keygen(env.libctx, OFFLOAD_PROPQ, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(env.libctx, OFFLOAD_PROPQ, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(env.libctx, OFFLOAD_PROPQ, "ED25519");
    if (rsa == NULL || ec == NULL || ed == NULL ||
        !test_pkey_in(rsa, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(ec, OFFLOAD_PROVIDER_NAME) ||
        !test_pkey_in(ed, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("keygen in offload");
        return -1;
    }
    ERR_clear_error();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    rsa = ec = ed = NULL;
    test_env_close(&env);
    return 0;
}

/* A test run once per key: its state points at the key's variable. */
#define PER_KEY(fn, key)                                                                 \
    {                                                                                    \
#fn "/" #key, fn, NULL, NULL, (void *)&key                                       \
    }

int main(void)
{
    /* First, before any offload instance exists: the first one's config wins. */
    const struct CMUnitTest config_tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_config_activate),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_instance_config),
        cmocka_unit_test(test_wrong_key_type),
        cmocka_unit_test(test_unknown_padding),
        cmocka_unit_test(test_garbage_params),
        cmocka_unit_test(test_garbage_pad_mode),
        cmocka_unit_test(test_garbage_saltlen),
        PER_KEY(test_short_buffer, rsa),
        PER_KEY(test_short_buffer, ec),
        cmocka_unit_test(test_short_buffer_ed25519),
        PER_KEY(test_short_buffer_in_job, rsa),
        PER_KEY(test_short_buffer_in_job, ec),
        cmocka_unit_test(test_pss_salt_too_large),
        PER_KEY(test_truncated_signature, rsa),
        PER_KEY(test_truncated_signature, ec),
        cmocka_unit_test(test_ed25519_short_signature),
        PER_KEY(test_empty_tbs, rsa),
        PER_KEY(test_empty_tbs, ec),
        PER_KEY(test_wrong_digest_length, rsa),
        PER_KEY(test_wrong_digest_length, ec),
    };
    int failed = cmocka_run_group_tests_name("badinput-config", config_tests, NULL, NULL);

    failed += cmocka_run_group_tests_name("badinput", tests, group_setup, group_teardown);
    return failed;
}

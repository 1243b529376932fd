/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <cmocka.h>

#include "common.h"

int test_env_open(test_env *env, const char *conf_lines)
{
    char path[] = "/tmp/offload-test-XXXXXX";
    int fd;
    FILE *f;
    int ok = 0;

    memset(env, 0, sizeof(*env));
    env->libctx = OSSL_LIB_CTX_new();
    if (env->libctx == NULL)
        return 0;
    fd = mkstemp(path);
    if (fd < 0)
        return 0;
    f = fdopen(fd, "w");
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders = provs\nalg_section = algs\n"
            "[provs]\ndefault = dflt\noffload = offl\n"
            "[dflt]\nactivate = 1\n"
            "[offl]\nmodule = offload.so\nactivate = 1\n%s\n"
            "[algs]\ndefault_properties = ?provider=offload\n",
            conf_lines != NULL ? conf_lines : "");
    fclose(f);
    if (OSSL_LIB_CTX_load_config(env->libctx, path) <= 0) {
        test_dump_errors("load config");
        goto out;
    }
    /* OpenSSL treats a failed activation from config as non-fatal: check. */
    if (!OSSL_PROVIDER_available(env->libctx, "offload")) {
        test_dump_errors("offload not activated by the config");
        goto out;
    }
    env->deflt = OSSL_PROVIDER_load(env->libctx, "default");
    env->offload = OSSL_PROVIDER_load(env->libctx, "offload");
    ok = env->deflt != NULL && env->offload != NULL;
    if (!ok)
        test_dump_errors("load providers");
out:
    unlink(path);
    return ok;
}

void test_env_close(test_env *env)
{
    OSSL_PROVIDER_unload(env->offload);
    OSSL_PROVIDER_unload(env->deflt);
    OSSL_LIB_CTX_free(env->libctx);
    memset(env, 0, sizeof(*env));
}

OSSL_LIB_CTX *test_ref_open(OSSL_PROVIDER **prov)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    *prov = ctx != NULL ? OSSL_PROVIDER_load(ctx, "default") : NULL;
    if (*prov == NULL) {
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void test_ref_close(OSSL_LIB_CTX *libctx, OSSL_PROVIDER *prov)
{
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(libctx);
}

uint64_t test_counter(OSSL_PROVIDER *prov, const char *name)
{
    uint64_t v = UINT64_MAX;
    OSSL_PARAM params[2];

    params[0] = OSSL_PARAM_construct_uint64(name, &v);
    params[1] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(prov, params) || !OSSL_PARAM_modified(&params[0]))
        return UINT64_MAX;
    return v;
}

int test_pkey_in(const EVP_PKEY *pkey, const char *provname)
{
    const OSSL_PROVIDER *p = EVP_PKEY_get0_provider(pkey);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), provname) == 0;
}

/* A context for |key| initialised to sign (or verify) that way. */
static EVP_PKEY_CTX *sha256_ctx(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq,
                                int verify)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(libctx, key, propq);

    if (ctx == NULL ||
        (verify ? EVP_PKEY_verify_init(ctx) : EVP_PKEY_sign_init(ctx)) <= 0 ||
        (EVP_PKEY_is_a(key, "RSA") &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) ||
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

EVP_PKEY_CTX *test_sha256_sign_ctx(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq)
{
    return sha256_ctx(libctx, key, propq, 0);
}

int test_sha256_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq,
                       const unsigned char *md, const unsigned char *sig, size_t siglen)
{
    EVP_PKEY_CTX *ctx = sha256_ctx(libctx, key, propq, 1);
    int ok = ctx != NULL && EVP_PKEY_verify(ctx, sig, siglen, md, 32) == 1;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

int test_sha256_sign(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq,
                     const unsigned char *md, unsigned char *sig, size_t *siglen)
{
    EVP_PKEY_CTX *ctx = test_sha256_sign_ctx(libctx, key, propq);
    int ok = ctx != NULL && EVP_PKEY_sign(ctx, sig, siglen, md, 32) > 0;

    EVP_PKEY_CTX_free(ctx);
    return ok;
}

const char *test_vector_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("WYCHEPROOF_DIR");

    /* meson sets it; the build-time default serves a test run by hand. */
    if (dir == NULL || dir[0] == '\0')
        dir = OFFLOAD_TEST_VECTOR_DIR;
    snprintf(buf, len, "%s/%s", dir, name);
    if (access(buf, R_OK) != 0)
        fprintf(stderr, "test vectors: cannot read %s: %s\n", buf, strerror(errno));
    return buf;
}

long test_unhex(const char *hex, unsigned char **out)
{
    size_t n = strlen(hex), i;
    unsigned char *b;

    if (n % 2 != 0)
        return -1;
    b = malloc(n / 2 + 1);
    if (b == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned int v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(b);
            return -1;
        }
        b[i] = (unsigned char)v;
    }
    *out = b;
    return (long)(n / 2);
}

void test_dump_errors(const char *what)
{
    fprintf(stderr, "--- OpenSSL errors (%s):\n", what);
    ERR_print_errors_fp(stderr);
}

void test_expect_failure(const char *what, int ret)
{
    unsigned long e;
    const char *reason, *data = NULL;
    int flags = 0;

    print_message("  %-52s ret=%d", what, ret);
    if (ret > 0)
        print_message("  <- accepted, should have failed\n");
    assert_true(ret <= 0);
    e = ERR_peek_last_error_data(&data, &flags);
    if (e == 0)
        print_message("  <- failed, but no error queued\n");
    assert_int_not_equal(e, 0);
    reason = ERR_reason_error_string(e);
    print_message(" reason \"%s\"%s%s%s\n", reason != NULL ? reason : "(null)",
                  (flags & ERR_TXT_STRING) && data != NULL && *data != '\0' ? " (" : "",
                  (flags & ERR_TXT_STRING) && data != NULL ? data : "",
                  (flags & ERR_TXT_STRING) && data != NULL && *data != '\0' ? ")" : "");
    assert_non_null(reason);
    assert_true(reason[0] != '\0');
    ERR_clear_error();
}

void test_wait_idle(OSSL_PROVIDER *prov)
{
    int ms;

    for (ms = 0; ms < POLL_TIMEOUT_MS; ms++) {
        if (test_counter(prov, OFFLOAD_PARAM_IN_FLIGHT) == 0)
            return;
        usleep(1000);
    }
    fail_msg("requests still in flight after %d ms", POLL_TIMEOUT_MS);
}

void test_assert_int_params_equal(const EVP_PKEY *a, const EVP_PKEY *b)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_BITS, OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PKEY_PARAM_MAX_SIZE};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int va = -1, vb = -2;

        assert_int_equal(EVP_PKEY_get_int_param(a, names[i], &va), 1);
        assert_int_equal(EVP_PKEY_get_int_param(b, names[i], &vb), 1);
        print_message("    %s = %d\n", names[i], va);
        assert_true(va > 0);
        assert_int_equal(va, vb);
    }
}

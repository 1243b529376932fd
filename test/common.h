/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the test programs. */
#ifndef OFFLOAD_TEST_COMMON_H
#define OFFLOAD_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "offload.h"

/* Property queries: our implementations, or the default provider's. */
#define OFFLOAD_PROPQ "provider=" OFFLOAD_PROVIDER_NAME
#define DEFAULT_PROPQ "provider=default"

/* How long an event loop waits for a wake-up (fd or callback) before failing. */
#define POLL_TIMEOUT_MS 30000

/*
 * A fresh library context with "default" and "offload" loaded, offload
 * preferred (default_properties "?provider=offload"). |conf_lines|, when
 * not NULL, are extra lines for the offload provider section
 * ("queue_depth = 4\n..."): they take effect for the first instance of
 * the process only (the accelerator is process-wide).
 */
typedef struct {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *deflt;
    OSSL_PROVIDER *offload;
} test_env;

int test_env_open(test_env *env, const char *conf_lines);
void test_env_close(test_env *env);

/*
 * The reference: a second library context with the default provider
 * alone, and the handle that test_ref_close() unloads (OpenSSL 3.0 leaks a
 * provider still loaded when its context is freed). NULL on failure.
 */
OSSL_LIB_CTX *test_ref_open(OSSL_PROVIDER **prov);
void test_ref_close(OSSL_LIB_CTX *libctx, OSSL_PROVIDER *prov);

/* Counter "offload-..." of |prov| (see include/offload.h); UINT64_MAX on failure. */
uint64_t test_counter(OSSL_PROVIDER *prov, const char *name);

/* 1 when |pkey| lives in the provider named |provname|. */
int test_pkey_in(const EVP_PKEY *pkey, const char *provname);

/*
 * The signature the stress tests make: SHA-256, and PKCS#1 v1.5 padding
 * for an RSA key. A context for |key| from |libctx| (|propq| may be NULL),
 * initialised for signing; NULL on failure.
 */
EVP_PKEY_CTX *test_sha256_sign_ctx(OSSL_LIB_CTX *libctx, EVP_PKEY *key,
                                   const char *propq);

/* 1 when |sig| is a valid signature of the 32-byte digest |md| that way. */
int test_sha256_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq,
                       const unsigned char *md, const unsigned char *sig, size_t siglen);

/* Signs the 32-byte digest |md| that way; *siglen: room in, length out. */
int test_sha256_sign(OSSL_LIB_CTX *libctx, EVP_PKEY *key, const char *propq,
                     const unsigned char *md, unsigned char *sig, size_t *siglen);

/* Path of a Wycheproof file: $WYCHEPROOF_DIR/<name> (set by meson). */
const char *test_vector_path(const char *name, char *buf, size_t len);

/* Hex to bytes; returns length or -1. *out is malloc()ed. */
long test_unhex(const char *hex, unsigned char **out);

/*
 * For cmocka tests of bad input: asserts that the call under test failed
 * (|ret| <= 0) and left an error whose reason string is readable; prints
 * |what|, the reason and its data, and clears the queue.
 */
void test_expect_failure(const char *what, int ret);

/* The call under test runs on an empty error queue: no stale reason can pass. */
#define EXPECT_FAILURE(what, call)                                                       \
    do {                                                                                 \
        int r_;                                                                          \
        ERR_clear_error();                                                               \
        r_ = (call);                                                                     \
        test_expect_failure((what), r_);                                                 \
    } while (0)

/* cmocka: waits (bounded) until |prov| has nothing in flight, so tests do not overlap. */
void test_wait_idle(OSSL_PROVIDER *prov);

/* cmocka: |a| and |b| report the same bits, security bits and maximum size. */
void test_assert_int_params_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* Prints the OpenSSL error queue to stderr and clears it. */
void test_dump_errors(const char *what);

#endif

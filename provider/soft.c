/* SPDX-License-Identifier: Apache-2.0 */
/* The soft engine: the default provider in a private library context. */
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "prov.h"
#include "soft.h"

static struct {
    pthread_mutex_t lock;
    unsigned users;
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *prov;
    void *provctx;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

int offload_soft_acquire(void)
{
    int ok = 1;

    pthread_mutex_lock(&S.lock);
    if (S.users == 0) {
        /* A fresh context reads no config file, so it never loads us again. */
        S.libctx = OSSL_LIB_CTX_new();
        S.prov = S.libctx != NULL ? OSSL_PROVIDER_load(S.libctx, "default") : NULL;
        S.provctx = S.prov != NULL ? OSSL_PROVIDER_get0_provider_ctx(S.prov) : NULL;
        if (S.provctx == NULL) {
            OSSL_PROVIDER_unload(S.prov);
            OSSL_LIB_CTX_free(S.libctx);
            S.prov = NULL;
            S.libctx = NULL;
            ok = 0;
        }
    }
    if (ok)
        S.users++;
    pthread_mutex_unlock(&S.lock);
    return ok;
}

void offload_soft_release(void)
{
    pthread_mutex_lock(&S.lock);
    if (S.users > 0 && --S.users == 0) {
        OSSL_PROVIDER_unload(S.prov);
        OSSL_LIB_CTX_free(S.libctx);
        S.prov = NULL;
        S.libctx = NULL;
        S.provctx = NULL;
    }
    pthread_mutex_unlock(&S.lock);
}

void *offload_soft_provctx(void)
{
    return S.provctx;
}

OSSL_PROVIDER *offload_soft_prov(void)
{
    return S.prov;
}

OSSL_LIB_CTX *offload_soft_libctx(void)
{
    return S.libctx;
}

const OSSL_ALGORITHM *offload_soft_query(int operation_id)
{
    int no_cache = 0;

    return S.prov != NULL ? OSSL_PROVIDER_query_operation(S.prov, operation_id, &no_cache)
                          : NULL;
}

/* 1 when the first name of the ':'-separated |names| is |name|. */
static int first_name_is(const char *names, const char *name)
{
    size_t n = strlen(name);

    return strncasecmp(names, name, n) == 0 && (names[n] == '\0' || names[n] == ':');
}

const OSSL_DISPATCH *offload_soft_find(int operation_id, const char *name,
                                       const char **names)
{
    const OSSL_ALGORITHM *alg;
    int no_cache = 0;

    alg = OSSL_PROVIDER_query_operation(S.prov, operation_id, &no_cache);
    for (; alg != NULL && alg->algorithm_names != NULL; alg++) {
        if (!first_name_is(alg->algorithm_names, name))
            continue;
        /* Skip variants selected by properties (e.g. "fips=no" siblings are fine). */
        if (names != NULL)
            *names = alg->algorithm_names;
        return alg->implementation;
    }
    return NULL;
}

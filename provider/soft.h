/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The soft engine: the default provider, loaded into a private
 * OSSL_LIB_CTX of our own and called at the dispatch level. Our families
 * hold its contexts and key data and call its OSSL_FUNC_* functions
 * directly, so the inline path costs one function-pointer call.
 */
#ifndef OFFLOAD_SOFT_H
#define OFFLOAD_SOFT_H

#include <openssl/core.h>
#include <openssl/types.h>

/* Loads the default provider into the private context (refcounted, process-wide). */
int offload_soft_acquire(void);
void offload_soft_release(void);

/* The default provider's context, to pass to its functions. */
void *offload_soft_provctx(void);
OSSL_PROVIDER *offload_soft_prov(void);
/* The private library context (digests of token signatures are fetched there). */
OSSL_LIB_CTX *offload_soft_libctx(void);

/*
 * The default implementation of |operation_id| whose first name is |name|
 * (case-insensitive); NULL when the default provider does not offer it.
 * |names| receives its full name list.
 */
const OSSL_DISPATCH *offload_soft_find(int operation_id, const char *name,
                                       const char **names);

/* The default provider's algorithms of |operation_id| (its own table). */
const OSSL_ALGORITHM *offload_soft_query(int operation_id);

/* The function |id| of |d|, or NULL. */
static inline void (*offload_soft_fn(const OSSL_DISPATCH *d, int id))(void)
{
    for (; d != NULL && d->function_id != 0; d++)
        if (d->function_id == id)
            return d->function;
    return NULL;
}

/*
 * For the bind loops of the families: takes function |id| of the soft
 * implementation |alg->soft| into |alg->field| and, when the soft engine
 * has it, appends our |ours| to the dispatch table being written at |d|,
 * so every table mirrors exactly what the default provider offers.
 */
#define OFFLOAD_SOFT_BIND(alg, d, field, id, ours)                                       \
    do {                                                                                 \
        (alg)->field = (void *)offload_soft_fn((alg)->soft, id);                         \
        if ((alg)->field != NULL)                                                        \
            *(d)++ = (OSSL_DISPATCH){id, (void (*)(void))(ours)};                        \
    } while (0)

#endif

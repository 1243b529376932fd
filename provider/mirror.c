/* SPDX-License-Identifier: Apache-2.0 */
/* The mirror (mirror.h): a family's table, the default's copied entry by entry. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/provider.h>

#include "mirror.h"
#include "prov.h"
#include "soft.h"

int offload_first_name_is(const char *names, const char *name)
{
    size_t n = strlen(name);

    return names != NULL && strncasecmp(names, name, n) == 0 &&
           (names[n] == '\0' || names[n] == ':');
}

void offload_first_name(const char *names, char *buf, size_t len)
{
    size_t n = strcspn(names, ":");

    if (n >= len)
        n = len - 1;
    memcpy(buf, names, n);
    buf[n] = '\0';
}

static size_t count_fns(const OSSL_DISPATCH *d)
{
    size_t n = 0;

    for (; d != NULL && d->function_id != 0; d++)
        n++;
    return n;
}

size_t offload_mirror_bind(struct offload_mirror *m, int operation_id,
                           offload_intercept_fn *icp)
{
    const OSSL_ALGORITHM *src = offload_soft_query(operation_id), *a;
    struct offload_intercept ic[OFFLOAD_MAX_INTERCEPTS];
    size_t nalg = 0, nfn = 0, i, k, nic;
    OSSL_DISPATCH *d;

    offload_mirror_unbind(m);
    for (a = src; a != NULL && a->algorithm_names != NULL; a++) {
        nalg++;
        nfn += count_fns(a->implementation) + 1;
    }
    if (nalg == 0)
        return 0;
    /* The algorithm table, then every dispatch table, in one block. */
    m->mem = calloc(1, (nalg + 1) * sizeof(OSSL_ALGORITHM) + nfn * sizeof(OSSL_DISPATCH));
    if (m->mem == NULL)
        return 0;
    m->algs = m->mem;
    d = (OSSL_DISPATCH *)(m->algs + nalg + 1);
    for (i = 0, a = src; i < nalg; i++, a++) {
        const OSSL_DISPATCH *s;

        nic = m->own_slots || i < OFFLOAD_SLOTS ? icp(i, a, ic) : 0;
        if (i == OFFLOAD_SLOTS && !m->own_slots)
            OFFLOAD_DEBUG("%s: %zu algorithms, only the first %d intercepted",
                          m->description, nalg, OFFLOAD_SLOTS);
        m->algs[i] = (OSSL_ALGORITHM){
            a->algorithm_names, "provider=" OFFLOAD_PROVIDER_NAME, d, m->description};
        for (s = a->implementation; s->function_id != 0; s++, d++) {
            *d = *s;
            for (k = 0; k < nic; k++)
                if (ic[k].id == s->function_id && ic[k].fn != NULL)
                    d->function = ic[k].fn;
        }
        *d++ = (OSSL_DISPATCH){0, NULL};
    }
    m->algs[nalg] = (OSSL_ALGORITHM){NULL, NULL, NULL, NULL};
    m->n = nalg;
    return nalg;
}

void offload_mirror_unbind(struct offload_mirror *m)
{
    free(m->mem);
    m->mem = NULL;
    m->algs = NULL;
    m->n = 0;
}

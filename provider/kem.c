/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key encapsulation: every KEM the default provider offers (RSA's RSASVE;
 * on 3.5 ML-KEM-512/768/1024 and the hybrids X25519MLKEM768,
 * SecP256r1MLKEM768, ...), mirrored with nothing intercepted yet: their
 * keys are ours (keymgmt.c mirrors every key type), and a KEM of another
 * provider would make libcrypto export each key to it first, one export
 * per TLS key share. Offloading encapsulate and decapsulate is a matter
 * of intercepts here, as in keyexch.c.
 */
#include "families.h"
#include "mirror.h"

static struct offload_mirror kem_mirror = {.description = "offload kem"};

static size_t kem_intercepts(size_t slot, const OSSL_ALGORITHM *alg,
                             struct offload_intercept *out)
{
    (void)slot;
    (void)alg;
    (void)out;
    return 0;
}

size_t offload_kem_bind(void)
{
    return offload_mirror_bind(&kem_mirror, OSSL_OP_KEM, kem_intercepts);
}

void offload_kem_unbind(void)
{
    offload_mirror_unbind(&kem_mirror);
}

const OSSL_ALGORITHM *offload_kem_algorithms(void)
{
    return kem_mirror.algs;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mirror: key management, signatures, key exchange, ciphers and (3.5)
 * symmetric key management are the
 * default provider's own tables, copied entry by entry at bind time
 * (every function id, known to us or not), with a few entries replaced by
 * intercepts of ours. Our provider context is the default's, key data
 * and operation contexts are the default's: whatever we do not intercept
 * is called by libcrypto directly, without a hop through us.
 *
 * An intercept that must call *its algorithm's* default function (which
 * sign? which gen_cleanup?) cannot learn it from the context it is handed
 * (that is the default's, opaque to us): each intercept exists once per
 * slot, slot i being the i-th algorithm of its family, and calls the
 * family's generic function with i. OFFLOAD_TRAMPOLINES writes those
 * per-slot functions and the array of them, for any family and function.
 */
#ifndef OFFLOAD_MIRROR_H
#define OFFLOAD_MIRROR_H

#include <stddef.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>

/*
 * Function ids the OpenSSL 3.0 headers lack. What is offered is decided at
 * run time from the default provider's tables, never from the headers.
 */
#ifndef OSSL_OP_SKEYMGMT
#define OSSL_OP_SKEYMGMT 15
#endif
#ifndef OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT
#define OSSL_FUNC_CIPHER_ENCRYPT_SKEY_INIT 19
#define OSSL_FUNC_CIPHER_DECRYPT_SKEY_INIT 20
typedef int OSSL_FUNC_cipher_encrypt_skey_init_fn(void *cctx, void *skeydata,
                                                  const unsigned char *iv, size_t ivlen,
                                                  const OSSL_PARAM params[]);
typedef int OSSL_FUNC_cipher_decrypt_skey_init_fn(void *cctx, void *skeydata,
                                                  const unsigned char *iv, size_t ivlen,
                                                  const OSSL_PARAM params[]);
#endif
#ifndef OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES
#define OSSL_FUNC_SIGNATURE_QUERY_KEY_TYPES 26
#endif
#ifndef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT
#define OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_INIT 27
#endif
#ifndef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE
#define OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_UPDATE 28
#endif
#ifndef OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL
#define OSSL_FUNC_SIGNATURE_SIGN_MESSAGE_FINAL 29
#endif

/* Algorithms per family that get intercepts; any further ones are copied as they are.
 */
#define OFFLOAD_SLOTS 128

/* X(i, ...) for every slot i, 0x00 .. 0x7f. */
#define OFFLOAD_SLOT_ROW_(X, r, ...)                                                     \
    X(0x##r##0, __VA_ARGS__)                                                             \
    X(0x##r##1, __VA_ARGS__)                                                             \
    X(0x##r##2, __VA_ARGS__)                                                             \
    X(0x##r##3, __VA_ARGS__)                                                             \
    X(0x##r##4, __VA_ARGS__)                                                             \
    X(0x##r##5, __VA_ARGS__)                                                             \
    X(0x##r##6, __VA_ARGS__)                                                             \
    X(0x##r##7, __VA_ARGS__)                                                             \
    X(0x##r##8, __VA_ARGS__)                                                             \
    X(0x##r##9, __VA_ARGS__)                                                             \
    X(0x##r##a, __VA_ARGS__)                                                             \
    X(0x##r##b, __VA_ARGS__)                                                             \
    X(0x##r##c, __VA_ARGS__)                                                             \
    X(0x##r##d, __VA_ARGS__)                                                             \
    X(0x##r##e, __VA_ARGS__)                                                             \
    X(0x##r##f, __VA_ARGS__)
#define OFFLOAD_FOR_SLOTS(X, ...)                                                        \
    OFFLOAD_SLOT_ROW_(X, 0, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 1, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 2, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 3, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 4, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 5, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 6, __VA_ARGS__)                                                 \
    OFFLOAD_SLOT_ROW_(X, 7, __VA_ARGS__)

#define OFFLOAD_UNPAREN_(...) __VA_ARGS__
#define OFFLOAD_TRAMP_DEF_(i, fntype, ret, name, params, args)                           \
    static fntype name##_##i;                                                            \
    static ret name##_##i params                                                         \
    {                                                                                    \
        return name(i, OFFLOAD_UNPAREN_ args);                                           \
    }
#define OFFLOAD_TRAMP_VOID_DEF_(i, fntype, name, params, args)                           \
    static fntype name##_##i;                                                            \
    static void name##_##i params                                                        \
    {                                                                                    \
        name(i, OFFLOAD_UNPAREN_ args);                                                  \
    }
#define OFFLOAD_TRAMP_PTR_(i, name) name##_##i,

/*
 * For every slot i: "static ret name_<i> params", declared as |fntype| (an
 * OSSL_FUNC_*_fn, so the compiler checks it), returning name(i, args);
 * and name_slot[i] pointing at it. |params| and |args| are parenthesised:
 *
 *   OFFLOAD_TRAMPOLINES(OSSL_FUNC_signature_sign_init_fn, int, sig_sign_init,
 *                       (void *ctx, void *key, const OSSL_PARAM p[]), (ctx, key, p))
 */
#define OFFLOAD_TRAMPOLINES(fntype, ret, name, params, args)                             \
    OFFLOAD_FOR_SLOTS(OFFLOAD_TRAMP_DEF_, fntype, ret, name, params, args)               \
    static fntype *const name##_slot[OFFLOAD_SLOTS] = {                                  \
        OFFLOAD_FOR_SLOTS(OFFLOAD_TRAMP_PTR_, name)};
/* The same for functions returning nothing. */
#define OFFLOAD_TRAMPOLINES_VOID(fntype, name, params, args)                             \
    OFFLOAD_FOR_SLOTS(OFFLOAD_TRAMP_VOID_DEF_, fntype, name, params, args)               \
    static fntype *const name##_slot[OFFLOAD_SLOTS] = {                                  \
        OFFLOAD_FOR_SLOTS(OFFLOAD_TRAMP_PTR_, name)};

/*
 * The same for a family that numbers its own slots (struct offload_mirror's
 * own_slots): 16 of them, 0x0 .. 0xf.
 */
#define OFFLOAD_TRAMPOLINES16(fntype, ret, name, params, args)                           \
    OFFLOAD_SLOT_ROW_(OFFLOAD_TRAMP_DEF_, 0, fntype, ret, name, params, args)            \
    static fntype *const name##_slot[16] = {                                             \
        OFFLOAD_SLOT_ROW_(OFFLOAD_TRAMP_PTR_, 0, name)};
#define OFFLOAD_TRAMPOLINES16_VOID(fntype, name, params, args)                           \
    OFFLOAD_SLOT_ROW_(OFFLOAD_TRAMP_VOID_DEF_, 0, fntype, name, params, args)            \
    static fntype *const name##_slot[16] = {                                             \
        OFFLOAD_SLOT_ROW_(OFFLOAD_TRAMP_PTR_, 0, name)};

/* One replaced entry: the default's function |id| becomes |fn|. */
struct offload_intercept {
    int id;
    void (*fn)(void);
};
#define OFFLOAD_MAX_INTERCEPTS 16

/*
 * Called by offload_mirror_bind for the default's algorithm |alg|, the
 * |slot|-th of its family: records what the family needs of it and
 * writes its intercepts (at most OFFLOAD_MAX_INTERCEPTS) into |out|;
 * returns how many. Only ids the default offers are replaced; an
 * intercept for an id it lacks is dropped.
 */
typedef size_t offload_intercept_fn(size_t slot, const OSSL_ALGORITHM *alg,
                                    struct offload_intercept *out);

/*
 * For the intercept functions, whose default algorithm is |a|: its
 * function |id| as a pointer of |type| (NULL when it has none), and an
 * intercept replacing |id| with |fn|.
 */
#define OFFLOAD_FN(type, id) ((type *)offload_mirror_fn(a->implementation, (id)))
#define OFFLOAD_ICP(id, fn)  ((struct offload_intercept){(id), (void (*)(void))(fn)})

/* A family's mirrored algorithm table. */
struct offload_mirror {
    const char *description; /* "offload signature" */
    /*
     * 0: the intercept callback sees the first OFFLOAD_SLOTS algorithms,
     * |slot| being the algorithm's index. 1: it sees every algorithm and
     * numbers the few it intercepts itself (ciphers: the default offers
     * some 150, offload intercepts ten of them, ChaCha20-Poly1305 last).
     */
    int own_slots;
    size_t n;             /* algorithms offered */
    OSSL_ALGORITHM *algs; /* n + 1 entries, NULL-terminated */
    void *mem;            /* one allocation for |algs| and every table */
};

/*
 * Builds |m| from the default provider's algorithms of |operation_id|:
 * the same names, "provider=offload", the default's dispatch table with
 * the intercepts of |icp|. Returns the number of algorithms (0 on failure).
 */
size_t offload_mirror_bind(struct offload_mirror *m, int operation_id,
                           offload_intercept_fn *icp);
void offload_mirror_unbind(struct offload_mirror *m);

/* The function |id| of |d|, or NULL. */
static inline void (*offload_mirror_fn(const OSSL_DISPATCH *d, int id))(void)
{
    for (; d != NULL && d->function_id != 0; d++)
        if (d->function_id == id)
            return d->function;
    return NULL;
}

/* The first of the ':'-separated |names| is |name| (case-insensitive). */
int offload_first_name_is(const char *names, const char *name);
/* The first of |names| into |buf| (cut to |len| - 1 characters). */
void offload_first_name(const char *names, char *buf, size_t len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token keys as ordinary keys. Offload's key management is the default's
 * (its key data ARE the default's key data): a token's private key becomes
 * a default key data holding only its public half (RSA: n, e; EC: the
 * group and the point), made with the default keymgmt's NEW and IMPORT,
 * and a link in a side table, keyed by the key data's address, to the
 * token object (slot, CKA_ID, label, key type). Signing inits look the
 * link up; the keymgmt's FREE (which comes through offload for RSA and
 * EC) removes it, DUP carries it over, HAS answers "private key" for a
 * linked key, and LOAD hands the store loader's key data over.
 */
#ifndef OFFLOAD_P11_KEY_H
#define OFFLOAD_P11_KEY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pkcs11.h"

struct offload_p11_key {
    _Atomic unsigned refs;
    CK_SLOT_ID slot;
    CK_KEY_TYPE type; /* CKK_RSA or CKK_EC */
    unsigned char id[64];
    size_t idlen;
    char label[64];
    /* The object's handle in module generation |gen| (0: not found yet). */
    _Atomic CK_OBJECT_HANDLE handle;
    _Atomic unsigned gen;
};

void offload_p11_key_up(struct offload_p11_key *k);
void offload_p11_key_put(struct offload_p11_key *k);

/* The link of key data |kd|, with a reference; NULL for an ordinary key (no lock then).
 */
struct offload_p11_key *offload_p11_key_get(const void *kd);
/* Links |kd| to |k| (the table takes its own reference); 0 out of memory. */
int offload_p11_key_link(void *kd, struct offload_p11_key *k);
/* |kd| is going: its link too. */
void offload_p11_key_unlink(void *kd);
/* Links in the table (tests, teardown). */
size_t offload_p11_key_count(void);

/*
 * The private key object of |k| on |session| (cached per module
 * generation; found again by CKA_ID and label after a fork);
 * CK_INVALID_HANDLE after raising.
 */
CK_OBJECT_HANDLE offload_p11_key_handle(struct offload_p11_key *k,
                                        CK_SESSION_HANDLE session);

/*
 * The key data for token object |obj| (of class |cls|) on |session|:
 * a default RSA or EC key data with the public half, *type "RSA" or "EC",
 * and for a private key *link, a new link (one reference). NULL with
 * *type NULL for a key type offload does not take (nothing raised); NULL
 * after raising otherwise.
 */
void *offload_p11_keydata(CK_SLOT_ID slot, CK_SESSION_HANDLE session,
                          CK_OBJECT_HANDLE obj, CK_OBJECT_CLASS cls, const char **type,
                          struct offload_p11_key **link);
/* Frees key data made by offload_p11_keydata (and its link). */
void offload_p11_keydata_free(const char *type, void *kd);

/*
 * The reference the store loader hands libcrypto (OSSL_OBJECT_PARAM_REFERENCE),
 * which comes back to the keymgmt's LOAD: ours when its size is this
 * struct's and its magic matches.
 */
#define OFFLOAD_P11_REF_MAGIC 0x6f66666c6f503131ULL /* "offloP11" */
struct offload_p11_obj {
    const char *type; /* "RSA", "EC" */
    void *kd;         /* NULL once LOAD took it */
};
struct offload_p11_ref {
    uint64_t magic;
    struct offload_p11_obj *obj;
    uint64_t pid; /* getpid(): a reference of another process is not ours */
};

/*
 * The keymgmt's LOAD for |type| ("RSA", "EC"): when |ref| is ours, 1 and
 * *kd the key data it names (taken: NULL if already taken or of another
 * type, after raising); 0 when it is not ours.
 */
int offload_p11_ref_load(const char *type, const void *ref, size_t refsz, void **kd);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token keys as ordinary keys (p11_key.h): the links of key data to token
 * objects, the key data made from a token object's public half, and the
 * store loader's references.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "ctxstate.h"
#include "p11_key.h"
#include "prov.h"
#include "soft.h"

/* ---- the links: a small chained hash under one mutex ---- */

#define LINK_BUCKETS 64

struct link {
    struct link *next;
    const void *kd;
    struct offload_p11_key *k;
};

static pthread_mutex_t link_lock = PTHREAD_MUTEX_INITIALIZER;
static struct link *links[LINK_BUCKETS];
static _Atomic size_t nlinks; /* 0: no lookup takes the mutex */

void offload_p11_key_up(struct offload_p11_key *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
}

void offload_p11_key_put(struct offload_p11_key *k)
{
    if (k != NULL && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        free(k);
}

static struct link **link_slot(const void *kd)
{
    struct link **pp = &links[offload_ctxstate_hash(kd) % LINK_BUCKETS];

    while (*pp != NULL && (*pp)->kd != kd)
        pp = &(*pp)->next;
    return pp;
}

struct offload_p11_key *offload_p11_key_get(const void *kd)
{
    struct offload_p11_key *k = NULL;
    struct link *l;

    if (kd == NULL || atomic_load_explicit(&nlinks, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&link_lock);
    if ((l = *link_slot(kd)) != NULL) {
        k = l->k;
        offload_p11_key_up(k);
    }
    pthread_mutex_unlock(&link_lock);
    return k;
}

int offload_p11_key_link(void *kd, struct offload_p11_key *k)
{
    struct link *l = malloc(sizeof(*l)), **pp;

    if (l == NULL)
        return 0;
    offload_p11_key_up(k);
    l->kd = kd;
    l->k = k;
    pthread_mutex_lock(&link_lock);
    pp = link_slot(kd);
    if (*pp != NULL) { /* a stale link of freed key data at this address */
        struct link *old = *pp;

        *pp = old->next;
        offload_p11_key_put(old->k);
        free(old);
        atomic_fetch_sub(&nlinks, 1);
    }
    l->next = links[offload_ctxstate_hash(kd) % LINK_BUCKETS];
    links[offload_ctxstate_hash(kd) % LINK_BUCKETS] = l;
    atomic_fetch_add(&nlinks, 1);
    pthread_mutex_unlock(&link_lock);
    return 1;
}

void offload_p11_key_unlink(void *kd)
{
    struct link *l, **pp;

    if (kd == NULL || atomic_load_explicit(&nlinks, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&link_lock);
    pp = link_slot(kd);
    if ((l = *pp) != NULL) {
        *pp = l->next;
        atomic_fetch_sub(&nlinks, 1);
    }
    pthread_mutex_unlock(&link_lock);
    if (l != NULL) {
        offload_p11_key_put(l->k);
        free(l);
    }
}

size_t offload_p11_key_count(void)
{
    return atomic_load(&nlinks);
}

/* ---- reading a token object ---- */

/* Attribute |type| of |obj| into a new buffer (*len its length); NULL when absent. */
static unsigned char *get_attr(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                               CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    unsigned char *buf;

    if (f->C_GetAttributeValue(s, obj, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0)
        return NULL;
    if ((buf = malloc(a.ulValueLen)) == NULL)
        return NULL;
    a.pValue = buf;
    if (f->C_GetAttributeValue(s, obj, &a, 1) != CKR_OK) {
        free(buf);
        return NULL;
    }
    *len = a.ulValueLen;
    return buf;
}

/* The first object of |cls| with |k|'s CKA_ID (or, without one, its label). */
static CK_OBJECT_HANDLE find_by_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                                   CK_OBJECT_CLASS cls, const struct offload_p11_key *k)
{
    CK_ATTRIBUTE t[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0, nt = 1;
    CK_RV rv;

    if (k->idlen > 0)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)k->id, k->idlen};
    else if (k->label[0] != '\0')
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)k->label, strlen(k->label)};
    if ((rv = f->C_FindObjectsInit(s, t, nt)) != CKR_OK) {
        OFFLOAD_P11_RAISE("C_FindObjectsInit", rv, NULL);
        return CK_INVALID_HANDLE;
    }
    rv = f->C_FindObjects(s, &h, 1, &n);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        OFFLOAD_P11_RAISE("C_FindObjects", rv, NULL);
        return CK_INVALID_HANDLE;
    }
    return n == 1 ? h : CK_INVALID_HANDLE;
}

CK_OBJECT_HANDLE offload_p11_key_handle(struct offload_p11_key *k,
                                        CK_SESSION_HANDLE session)
{
    unsigned gen = offload_p11_generation();
    CK_FUNCTION_LIST *f;
    CK_OBJECT_HANDLE h;

    if (atomic_load(&k->gen) == gen && (h = atomic_load(&k->handle)) != CK_INVALID_HANDLE)
        return h;
    if ((f = offload_p11_fns()) == NULL)
        return CK_INVALID_HANDLE;
    h = find_by_id(f, session, CKO_PRIVATE_KEY, k);
    if (h == CK_INVALID_HANDLE) {
        OFFLOAD_RAISE(
            NULL, OFFLOAD_R_PKCS11_NO_OBJECT,
            "the private key \"%s\" is no longer on the token (or not logged in)",
            k->label);
        return CK_INVALID_HANDLE;
    }
    atomic_store(&k->handle, h);
    atomic_store(&k->gen, gen);
    return h;
}

/* ---- key data from a token object ---- */

/* The default keymgmt's function |id| for |type|. */
static void (*km_fn(const char *type, int id))(void)
{
    return offload_soft_fn(offload_soft_find(OSSL_OP_KEYMGMT, type, NULL), id);
}

static void *import(const char *type, int selection, OSSL_PARAM *params)
{
    OSSL_FUNC_keymgmt_new_fn *new_ =
        (OSSL_FUNC_keymgmt_new_fn *)km_fn(type, OSSL_FUNC_KEYMGMT_NEW);
    OSSL_FUNC_keymgmt_import_fn *imp =
        (OSSL_FUNC_keymgmt_import_fn *)km_fn(type, OSSL_FUNC_KEYMGMT_IMPORT);
    OSSL_FUNC_keymgmt_free_fn *free_ =
        (OSSL_FUNC_keymgmt_free_fn *)km_fn(type, OSSL_FUNC_KEYMGMT_FREE);
    void *kd;

    if (new_ == NULL || imp == NULL || free_ == NULL || params == NULL)
        return NULL;
    if ((kd = new_(offload_soft_provctx())) == NULL)
        return NULL;
    if (!imp(kd, selection, params)) {
        free_(kd);
        return NULL;
    }
    return kd;
}

static void *rsa_keydata(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                         CK_OBJECT_HANDLE pub)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = get_attr(f, s, obj, CKA_MODULUS, &nlen);
    unsigned char *e = get_attr(f, s, obj, CKA_PUBLIC_EXPONENT, &elen);
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    void *kd = NULL;

    if ((n == NULL || e == NULL) && pub != CK_INVALID_HANDLE) {
        free(n);
        free(e);
        n = get_attr(f, s, pub, CKA_MODULUS, &nlen);
        e = get_attr(f, s, pub, CKA_PUBLIC_EXPONENT, &elen);
    }
    if (n != NULL && e != NULL && b != NULL &&
        (bn = BN_bin2bn(n, (int)nlen, NULL)) != NULL &&
        (be = BN_bin2bn(e, (int)elen, NULL)) != NULL &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be))
        p = OSSL_PARAM_BLD_to_param(b);
    kd = import("RSA", OSSL_KEYMGMT_SELECT_PUBLIC_KEY, p);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    if (kd == NULL)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_OBJECT,
                      "the RSA key's CKA_MODULUS and CKA_PUBLIC_EXPONENT are unreadable");
    return kd;
}

static void *ec_keydata(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                        CK_OBJECT_HANDLE pub)
{
    size_t plen = 0, qlen = 0;
    unsigned char *par = get_attr(f, s, obj, CKA_EC_PARAMS, &plen);
    unsigned char *q = get_attr(f, s, obj, CKA_EC_POINT, &qlen);
    const unsigned char *in;
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *os = NULL;
    const char *group = NULL;
    const unsigned char *pt;
    size_t ptlen;
    void *kd = NULL;

    if (par == NULL && pub != CK_INVALID_HANDLE)
        par = get_attr(f, s, pub, CKA_EC_PARAMS, &plen);
    if (q == NULL && pub != CK_INVALID_HANDLE)
        q = get_attr(f, s, pub, CKA_EC_POINT, &qlen);
    if (par != NULL && (in = par, oid = d2i_ASN1_OBJECT(NULL, &in, (long)plen)) != NULL)
        group = OBJ_nid2sn(OBJ_obj2nid(oid));
    if (group == NULL || q == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_OBJECT,
                      "the EC key's %s is missing (a named curve and a public key object "
                      "with the same CKA_ID are needed)",
                      group == NULL ? "CKA_EC_PARAMS curve" : "CKA_EC_POINT");
        goto out;
    }
    /* CKA_EC_POINT is the DER OCTET STRING of the point; some modules give it bare. */
    pt = q;
    ptlen = qlen;
    in = q;
    if ((os = d2i_ASN1_OCTET_STRING(NULL, &in, (long)qlen)) != NULL && in == q + qlen) {
        pt = ASN1_STRING_get0_data(os);
        ptlen = (size_t)ASN1_STRING_length(os);
    }
    {
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
            OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptlen),
            OSSL_PARAM_END};

        kd = import(
            "EC", OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS,
            p);
    }
    if (kd == NULL)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_OBJECT,
                      "the EC key's point does not import on curve %s", group);
out:
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(oid);
    free(par);
    free(q);
    return kd;
}

void *offload_p11_keydata(CK_SLOT_ID slot, CK_SESSION_HANDLE session,
                          CK_OBJECT_HANDLE obj, CK_OBJECT_CLASS cls, const char **type,
                          struct offload_p11_key **link)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    struct offload_p11_key *k;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    unsigned char *v;
    size_t len = 0;
    void *kd;

    *type = NULL;
    *link = NULL;
    if (f == NULL || f->C_GetAttributeValue(session, obj, &a, 1) != CKR_OK ||
        (kt != CKK_RSA && kt != CKK_EC))
        return NULL;
    if ((k = calloc(1, sizeof(*k))) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a token key");
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->slot = slot;
    k->type = kt;
    if ((v = get_attr(f, session, obj, CKA_ID, &len)) != NULL && len <= sizeof(k->id)) {
        memcpy(k->id, v, len);
        k->idlen = len;
    }
    free(v);
    if ((v = get_attr(f, session, obj, CKA_LABEL, &len)) != NULL) {
        len = len < sizeof(k->label) - 1 ? len : sizeof(k->label) - 1;
        memcpy(k->label, v, len);
    }
    free(v);
    if (cls == CKO_PRIVATE_KEY)
        pub = find_by_id(f, session, CKO_PUBLIC_KEY, k);
    kd = kt == CKK_RSA ? rsa_keydata(f, session, obj, pub)
                       : ec_keydata(f, session, obj, pub);
    if (kd == NULL) {
        free(k);
        *type = kt == CKK_RSA ? "RSA" : "EC";
        return NULL;
    }
    *type = kt == CKK_RSA ? "RSA" : "EC";
    if (cls == CKO_PRIVATE_KEY) {
        atomic_store(&k->handle, obj);
        atomic_store(&k->gen, offload_p11_generation());
        if (!offload_p11_key_link(kd, k)) {
            offload_p11_keydata_free(*type, kd);
            free(k);
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a token key's link");
            return NULL;
        }
        *link = k;
    } else {
        free(k);
    }
    return kd;
}

void offload_p11_keydata_free(const char *type, void *kd)
{
    OSSL_FUNC_keymgmt_free_fn *free_ =
        (OSSL_FUNC_keymgmt_free_fn *)km_fn(type, OSSL_FUNC_KEYMGMT_FREE);

    offload_p11_key_unlink(kd);
    if (free_ != NULL && kd != NULL)
        free_(kd);
}

int offload_p11_ref_load(const char *type, const void *ref, size_t refsz, void **kd)
{
    struct offload_p11_ref r;

    *kd = NULL;
    if (ref == NULL || refsz != sizeof(r))
        return 0;
    memcpy(&r, ref, sizeof(r));
    if (r.magic != OFFLOAD_P11_REF_MAGIC || r.pid != (uint64_t)getpid() || r.obj == NULL)
        return 0;
    if (r.obj->kd == NULL || strcmp(r.obj->type, type) != 0) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_OBJECT,
                      "a %s token key asked of the %s key management, or loaded twice",
                      r.obj->type, type);
        return 1;
    }
    *kd = r.obj->kd;
    r.obj->kd = NULL;
    return 1;
}

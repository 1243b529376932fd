/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OSSL_STORE loader of pkcs11: URIs (RFC 7512, p11_uri.h), so that
 * OSSL_STORE_open() and `openssl pkeyutl -inkey 'pkcs11:...'` find token
 * keys. The first LOAD finds the URI's token, logs in (the URI's
 * pin-value or pin-source, the pkcs11_pin_file key, else the passphrase
 * callback, asked for the token's PIN), and finds the matching objects:
 * private keys (type=private), public keys (type=public), or private
 * keys first and then public keys (no type). Each LOAD then hands one key
 * to libcrypto as an OSSL_OBJECT_PKEY, data type "RSA" or "EC", by
 * reference: the reference comes back to offload's key management LOAD
 * (keymgmt.c), which takes the key data made here (p11_key.h). Private
 * keys are linked to their token object; public keys come back as
 * ordinary public keys. Certificates, secret keys and data objects are
 * not loaded (yet).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "p11_key.h"
#include "p11_uri.h"
#include "pkcs11.h"
#include "prov.h"
#include "store_pkcs11.h"

#define MAX_OBJECTS 64

struct store_ctx {
    struct offload_p11_uri uri;
    char text[160]; /* the URI without its query, for the errors */
    int searched, eof;
    int failed; /* a LOAD raised (not just the end of the objects) */
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE h[MAX_OBJECTS];
    CK_OBJECT_CLASS cls[MAX_OBJECTS];
    size_t n, next;
};

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;

static void *store_open(void *provctx, const char *uri)
{
    struct store_ctx *c;
    char err[160];

    (void)provctx;
    if (!offload_is_running()) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NOT_RUNNING, NULL);
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a pkcs11: store context");
        return NULL;
    }
    if (!offload_p11_uri_parse(uri, &c->uri, err, sizeof(err))) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_URI, "%s", err);
        free(c);
        return NULL;
    }
    snprintf(c->text, sizeof(c->text), "%.*s", (int)strcspn(uri, "?"), uri);
    if (!offload_p11_enabled(1)) {
        offload_p11_uri_free(&c->uri);
        free(c);
        return NULL;
    }
    return c;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM p[] = {OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
                                   OSSL_PARAM_END};

    (void)provctx;
    return p;
}

static int store_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
    (void)ctx;
    (void)params;
    return 1; /* what to expect: we return keys, libcrypto filters */
}

/* Logs in when a PIN is known (the URI, the pin file, else the callback). */
static int login(struct store_ctx *c, CK_SESSION_HANDLE s,
                 OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    char pin[256];
    size_t len = 0;
    int r, ok;

    if (offload_p11_logged_in(c->slot))
        return 1;
    if ((r = offload_p11_pin(&c->uri, pin, sizeof(pin))) < 0)
        return 0;
    if (r == 0) {
        OSSL_PARAM p[] = {OSSL_PARAM_utf8_string(OSSL_PASSPHRASE_PARAM_INFO,
                                                 (char *)"PKCS#11 token PIN",
                                                 strlen("PKCS#11 token PIN")),
                          OSSL_PARAM_END};

        if (c->uri.type == OFFLOAD_P11_PUBLIC || pw_cb == NULL ||
            !pw_cb(pin, sizeof(pin) - 1, &len, p, pw_cbarg))
            return 1; /* public objects only */
        pin[len] = '\0';
    }
    ok = offload_p11_login(c->slot, s, pin);
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

/* Appends the objects of class |cls| matching the URI. */
static int find(struct store_ctx *c, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s,
                CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_ULONG nt = 1, got = 0, i;
    CK_RV rv;

    if (c->uri.object != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, c->uri.object, strlen(c->uri.object)};
    if (c->uri.has_id)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, c->uri.id, c->uri.idlen};
    if ((rv = f->C_FindObjectsInit(s, t, nt)) != CKR_OK) {
        OFFLOAD_P11_RAISE("C_FindObjectsInit", rv, c->text);
        return 0;
    }
    rv = f->C_FindObjects(s, c->h + c->n, MAX_OBJECTS - c->n, &got);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        OFFLOAD_P11_RAISE("C_FindObjects", rv, c->text);
        return 0;
    }
    for (i = 0; i < got; i++)
        c->cls[c->n + i] = cls;
    c->n += got;
    return 1;
}

static int search(struct store_ctx *c, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    CK_SESSION_HANDLE s;
    enum offload_p11_type t = c->uri.type;

    if (f == NULL || !offload_p11_find_slot(&c->uri, &c->slot))
        return 0;
    if ((s = offload_p11_session(c->slot)) == CK_INVALID_HANDLE ||
        !login(c, s, pw_cb, pw_cbarg))
        return 0;
    if ((t == OFFLOAD_P11_ANY || t == OFFLOAD_P11_PRIVATE) &&
        !find(c, f, s, CKO_PRIVATE_KEY))
        return 0;
    if ((t == OFFLOAD_P11_ANY || t == OFFLOAD_P11_PUBLIC) &&
        !find(c, f, s, CKO_PUBLIC_KEY))
        return 0;
    if (c->n == 0) {
        OFFLOAD_RAISE(
            NULL, OFFLOAD_R_PKCS11_NO_OBJECT, "%s%s", c->text,
            t == OFFLOAD_P11_CERT || t == OFFLOAD_P11_SECRET || t == OFFLOAD_P11_DATA
                ? " (only keys are loaded)"
            : offload_p11_logged_in(c->slot) ? ""
                                             : " (not logged in: no PIN given)");
        return 0;
    }
    return 1;
}

static int load_one(struct store_ctx *c, OSSL_CALLBACK *object_cb, void *object_cbarg,
                    OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg);

/* A LOAD's token calls, with no SIGPIPE if a remote token's server is gone. */
static int store_load(void *ctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    struct offload_p11_nopipe np;
    int ok;

    offload_p11_nopipe_begin(&np);
    ok = load_one(ctx, object_cb, object_cbarg, pw_cb, pw_cbarg);
    offload_p11_nopipe_end(&np);
    return ok;
}

static int load_one(struct store_ctx *c, OSSL_CALLBACK *object_cb, void *object_cbarg,
                    OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    CK_SESSION_HANDLE s;

    if (!c->searched) {
        c->searched = 1;
        if (!search(c, pw_cb, pw_cbarg)) {
            c->eof = c->failed = 1;
            return 0;
        }
    }
    while (c->next < c->n) {
        size_t i = c->next++;
        struct offload_p11_key *link = NULL;
        struct offload_p11_obj obj = {NULL, NULL};
        struct offload_p11_ref ref = {OFFLOAD_P11_REF_MAGIC, &obj, (uint64_t)getpid()};
        int type = OSSL_OBJECT_PKEY, ok;

        if ((s = offload_p11_session(c->slot)) == CK_INVALID_HANDLE) {
            c->failed = 1;
            return 0;
        }
        obj.kd = offload_p11_keydata(c->slot, s, c->h[i], c->cls[i], &obj.type, &link);
        if (obj.kd == NULL) {
            if (obj.type != NULL) { /* a key of ours that would not load: said why */
                c->failed = 1;
                return 0;
            }
            continue; /* a key type offload does not take */
        }
        {
            OSSL_PARAM p[] = {
                OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
                /* with its length: libcrypto's decoders copy data_size bytes */
                OSSL_PARAM_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)obj.type,
                                       strlen(obj.type)),
                OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref)),
                OSSL_PARAM_END};

            ok = object_cb(p, object_cbarg);
        }
        if (obj.kd != NULL) /* libcrypto did not take it */
            offload_p11_keydata_free(obj.type, obj.kd);
        offload_p11_key_put(link);
        if (c->next == c->n)
            c->eof = 1;
        return ok;
    }
    c->eof = 1;
    return 0;
}

static int store_eof(void *ctx)
{
    struct store_ctx *c = ctx;

    return c->eof || (c->searched && c->next >= c->n);
}

static int store_close(void *ctx)
{
    struct store_ctx *c = ctx;

    offload_p11_uri_free(&c->uri);
    free(c);
    return 1;
}

static const OSSL_DISPATCH store_fns[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {0, NULL}};

static const OSSL_ALGORITHM store_algs[] = {
    {"pkcs11", "provider=" OFFLOAD_PROVIDER_NAME, store_fns,
     "offload: PKCS#11 token keys by pkcs11: URI"},
    {NULL, NULL, NULL, NULL}};

const OSSL_ALGORITHM *offload_store_algorithms(void)
{
    return store_algs;
}

/* ---- the loader for the decoder of key-URI files (decoder_p11uri.c) ---- */

struct by_type {
    const char *type; /* "RSA", "EC" */
    OSSL_CALLBACK *cb;
    void *cbarg;
    int taken, result;
};

/* The objects of store_load: passes the first of the wanted type on, skips the others. */
static int pass_by_type(const OSSL_PARAM params[], void *arg)
{
    struct by_type *w = arg;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_DATA_TYPE);
    const char *type = NULL;

    if (w->taken || p == NULL || !OSSL_PARAM_get_utf8_string_ptr(p, &type) ||
        strcmp(type, w->type) != 0)
        return 1; /* not this one: store_load frees it */
    w->taken = 1;
    w->result = w->cb(params, w->cbarg);
    return w->result;
}

int offload_store_p11_load_uri(const char *uri, const char *type, OSSL_CALLBACK *cb,
                               void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                               void *pw_cbarg)
{
    struct by_type w = {type, cb, cbarg, 0, 0};
    struct store_ctx *c = store_open(NULL, uri);
    int failed;

    if (c == NULL)
        return 0;
    while (!w.taken && !store_eof(c))
        if (!store_load(c, pass_by_type, &w, pw_cb, pw_cbarg) && c->failed)
            break;
    failed = c->failed;
    store_close(c);
    if (w.taken)
        return w.result ? 1 : 0;
    return failed ? 0 : -1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* One private-key call on a token key (p11_call.h). */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>

#include "async.h"
#include "p11_call.h"

/* r || s of |len| bytes as a DER ECDSA-Sig-Value into |out|. */
static int ecdsa_der(const unsigned char *rs, size_t len, unsigned char *out, size_t room,
                     size_t *outlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)(len / 2), NULL);
    BIGNUM *s = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
    unsigned char *p = out;
    int n = -1;

    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s)) {
        r = s = NULL; /* the signature's */
        if (i2d_ECDSA_SIG(sig, NULL) <= (int)room)
            n = i2d_ECDSA_SIG(sig, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    if (n <= 0)
        return 0;
    *outlen = (size_t)n;
    return 1;
}

/* C_DeriveKey of a session secret, its CKA_VALUE into c->out, then C_DestroyObject. */
static CK_RV derive(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                    CK_MECHANISM *m, struct offload_p11_call *c, const char **fn)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    CK_ULONG len = c->outsize;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE_LEN, &len, sizeof(len)},
    };
    CK_ATTRIBUTE v = {CKA_VALUE, c->out, c->outsize};
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CK_RV rv;

    *fn = "C_DeriveKey";
    if ((rv = f->C_DeriveKey(s, m, h, t, sizeof(t) / sizeof(t[0]), &secret)) != CKR_OK)
        return rv;
    *fn = "C_GetAttributeValue";
    rv = f->C_GetAttributeValue(s, secret, &v, 1);
    f->C_DestroyObject(s, secret);
    if (rv == CKR_OK)
        c->outlen = v.ulValueLen;
    return rv;
}

static int call_once(struct offload_p11_call *c, CK_RV *rvp)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    CK_MECHANISM m = {c->mech, c->prmlen > 0 ? (void *)&c->prm : NULL, c->prmlen};
    unsigned char raw[160];
    CK_ULONG len = c->ecdsa ? sizeof(raw) : c->outsize;
    const char *fn_init = c->decrypt ? "C_DecryptInit" : "C_SignInit";
    const char *fn = c->decrypt ? "C_Decrypt" : "C_Sign";
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    *rvp = CKR_OK;
    if (f == NULL || (s = offload_p11_session(c->key->slot)) == CK_INVALID_HANDLE ||
        (h = offload_p11_key_handle(c->key, s)) == CK_INVALID_HANDLE)
        return 0;
    if (c->derive) {
        rv = derive(f, s, h, &m, c, &fn);
        fn_init = NULL;
        if (rv == CKR_OK)
            return 1;
    } else {
        rv = c->decrypt ? f->C_DecryptInit(s, &m, h) : f->C_SignInit(s, &m, h);
    }
    if (rv == CKR_OK && !c->derive) {
        fn_init = NULL;
        rv = c->decrypt ? f->C_Decrypt(s, c->in, c->inlen, c->out, &len)
                        : f->C_Sign(s, c->in, c->inlen, c->ecdsa ? raw : c->out, &len);
    }
    if (rv != CKR_OK) {
        *rvp = rv;
        OFFLOAD_P11_RAISE(fn_init != NULL ? fn_init : fn, rv, c->key->label);
        offload_p11_session_failed(c->key->slot, rv);
        return 0;
    }
    if (!c->ecdsa) {
        c->outlen = len;
        return 1;
    }
    if (!ecdsa_der(raw, len, c->out, c->outsize, &c->outlen)) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "ECDSA signature of %lu bytes from the token", (unsigned long)len);
        return 0;
    }
    return 1;
}

static int call_run(struct offload_req *req)
{
    struct offload_p11_call *c = offload_p11_call_of(req);
    struct offload_p11_nopipe np;
    CK_RV rv;
    int ok;

    offload_p11_nopipe_begin(&np); /* a remote token's server may be gone */
    ok = call_once(c, &rv);
    if (!ok && (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)) {
        atomic_store(&c->key->gen, 0); /* found again, once */
        ok = call_once(c, &rv);
    }
    offload_p11_nopipe_end(&np);
    return ok;
}

static void call_release(struct offload_req *req)
{
    struct offload_p11_call *c = offload_p11_call_of(req);

    OPENSSL_cleanse(c->in, c->inroom);
    OPENSSL_cleanse(c->out, c->outsize);
    offload_p11_key_put(c->key);
}

struct offload_req *offload_p11_call_new(struct offload_p11_key *k, size_t inroom,
                                         size_t outsize, size_t extra)
{
    struct offload_req *req =
        offload_req_new(call_run, call_release, OFFLOAD_FAM_SIGNATURE,
                        sizeof(struct offload_p11_call) + inroom + outsize + extra);
    struct offload_p11_call *c;

    if (req == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a token request");
        return NULL;
    }
    c = offload_p11_call_of(req);
    memset(c, 0, sizeof(*c));
    c->in = req->payload + sizeof(*c);
    c->inroom = inroom;
    c->out = c->in + inroom;
    c->outsize = outsize;
    c->extra = c->out + outsize;
    memset(c->in, 0, inroom + outsize);
    offload_p11_key_up(k);
    c->key = k;
    return req;
}

static const struct offload_pool token_pool = {offload_p11_pool_submit,
                                               offload_p11_pool_take_back, NULL};

int offload_p11_call_run(struct offload_req *req, enum offload_family f, const char *alg,
                         const char *op)
{
    enum offload_path p = offload_async_path_token();

    req->family = f;
    req->alg = alg;
    req->op = op;
    if (p == OFFLOAD_PATH_OFFLOADED)
        return offload_async_run_on(req, &token_pool) > 0;
    offload_op_path(f, p, alg, op);
    return offload_op_done(f, call_run(req), alg, op) > 0;
}

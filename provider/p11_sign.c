/* SPDX-License-Identifier: Apache-2.0 */
/* Signing with a token key (p11_sign.h). */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "async.h"
#include "p11_sign.h"
#include "soft.h"

/* ---- the context's state ---- */

struct offload_p11_sigctx *offload_p11_sigctx_new(struct offload_p11_key *k)
{
    struct offload_p11_sigctx *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        offload_p11_key_put(k);
        return NULL;
    }
    c->key = k;
    return c;
}

void offload_p11_sigctx_free(void *p)
{
    struct offload_p11_sigctx *c = p;

    if (c == NULL)
        return;
    offload_p11_key_put(c->key);
    EVP_MD_CTX_free(c->md);
    free(c);
}

void *offload_p11_sigctx_dup(const void *p)
{
    const struct offload_p11_sigctx *c = p;
    struct offload_p11_sigctx *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    if (c->md != NULL &&
        ((d->md = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->md, c->md))) {
        EVP_MD_CTX_free(d->md);
        free(d);
        return NULL;
    }
    offload_p11_key_up(c->key);
    d->key = c->key;
    return d;
}

int offload_p11_sigctx_digest_init(struct offload_p11_sigctx *c, const char *mdname)
{
    EVP_MD *md = EVP_MD_fetch(offload_soft_libctx(), mdname, NULL);
    int ok;

    if (md == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM, "digest \"%s\" is unknown", mdname);
        return 0;
    }
    if (c->md == NULL)
        c->md = EVP_MD_CTX_new();
    ok = c->md != NULL && EVP_DigestInit_ex(c->md, md, NULL);
    EVP_MD_free(md);
    if (!ok)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a digest context");
    return ok;
}

/* ---- the mechanism ---- */

static const struct {
    int nid;
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
} hashes[] = {
    {NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1},      {NID_sha224, CKM_SHA224, CKG_MGF1_SHA224},
    {NID_sha256, CKM_SHA256, CKG_MGF1_SHA256}, {NID_sha384, CKM_SHA384, CKG_MGF1_SHA384},
    {NID_sha512, CKM_SHA512, CKG_MGF1_SHA512},
};

/* The table's row of digest |name| (and its size); -1 after raising. */
static int hash_row(const char *name, size_t *size)
{
    EVP_MD *md = EVP_MD_fetch(offload_soft_libctx(), name, NULL);
    int nid = md != NULL ? EVP_MD_get_type(md) : NID_undef;
    size_t i;

    if (md != NULL)
        *size = (size_t)EVP_MD_get_size(md);
    EVP_MD_free(md);
    for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
        if (hashes[i].nid == nid)
            return (int)i;
    OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                  "digest \"%s\" (SHA-1 and SHA-2 only)", name);
    return -1;
}

/* What a token signature takes: the mechanism and the bytes to sign. */
struct sign_job {
    struct offload_p11_key *key; /* a reference */
    CK_MECHANISM_TYPE mech;
    CK_RSA_PKCS_PSS_PARAMS pss;
    int has_pss;
    int ecdsa;
    unsigned char *in, *out; /* in the request's payload */
    size_t inlen, outlen, outsize;
};

/* The default's context |ctx|: its digest, RSA padding, PSS salt length, MGF1 digest. */
static int ctx_params(void *ctx, OSSL_FUNC_signature_get_ctx_params_fn *get, int rsa,
                      char *md, char *mgf1, int *pad, int *saltlen)
{
    OSSL_PARAM p[] = {OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, md, 64),
                      OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, pad),
                      OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, saltlen),
                      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, mgf1, 64),
                      OSSL_PARAM_END};

    md[0] = mgf1[0] = '\0';
    *pad = RSA_PKCS1_PADDING;
    *saltlen = RSA_PSS_SALTLEN_DIGEST;
    if (!rsa)
        p[1] = (OSSL_PARAM)OSSL_PARAM_END; /* ECDSA: the digest alone */
    return get != NULL && get(ctx, p);
}

/* PKCS#1 v1.5: the DigestInfo of |dig| for digest |nid|, into |out| (|room| bytes). */
static int digest_info(int nid, const unsigned char *dig, size_t diglen,
                       unsigned char *out, size_t room, size_t *outlen)
{
    X509_SIG *xs = X509_SIG_new();
    X509_ALGOR *a = NULL;
    ASN1_OCTET_STRING *os = NULL;
    unsigned char *p = out;
    int len = -1;

    if (xs != NULL) {
        X509_SIG_getm(xs, &a, &os);
        if (X509_ALGOR_set0(a, OBJ_nid2obj(nid), V_ASN1_NULL, NULL) &&
            ASN1_OCTET_STRING_set(os, dig, (int)diglen) &&
            i2d_X509_SIG(xs, NULL) <= (int)room)
            len = i2d_X509_SIG(xs, &p);
    }
    X509_SIG_free(xs);
    if (len <= 0)
        return 0;
    *outlen = (size_t)len;
    return 1;
}

/*
 * Fills |j| (mechanism, and |j->in| with |dig| or its DigestInfo) for the
 * token key |k| and the context's parameters. 1, or 0 after raising.
 */
static int prepare(struct sign_job *j, const struct offload_p11_key *k, void *ctx,
                   OSSL_FUNC_signature_get_ctx_params_fn *get, const unsigned char *dig,
                   size_t diglen, size_t room)
{
    char md[64], mgf1[64];
    int pad, saltlen, row = -1;
    size_t hlen = 0;

    if (!ctx_params(ctx, get, k->type == CKK_RSA, md, mgf1, &pad, &saltlen)) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM, "the signature context's parameters");
        return 0;
    }
    if (md[0] != '\0' && (row = hash_row(md, &hlen)) < 0)
        return 0;
    if (row >= 0 && diglen != hlen) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM,
                      "input of %zu bytes for a %s digest of %zu bytes", diglen, md,
                      hlen);
        return 0;
    }
    if (k->type == CKK_EC) {
        j->mech = CKM_ECDSA;
        j->ecdsa = 1;
    } else if (pad == RSA_PKCS1_PADDING) {
        j->mech = CKM_RSA_PKCS;
        if (row >= 0)
            return digest_info(hashes[row].nid, dig, diglen, j->in, room, &j->inlen) ||
                   (OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a DigestInfo"), 0);
    } else if (pad == RSA_PKCS1_PSS_PADDING && row >= 0) {
        int mrow = row;
        size_t mlen, max = j->outsize > hlen + 2 ? j->outsize - hlen - 2 : 0;

        if (mgf1[0] != '\0' && (mrow = hash_row(mgf1, &mlen)) < 0)
            return 0;
        j->mech = CKM_RSA_PKCS_PSS;
        j->has_pss = 1;
        j->pss.hashAlg = hashes[row].hash;
        j->pss.mgf = hashes[mrow].mgf;
        /* -1 digest, -2 auto and -3 max (the most that fits), -4 auto up to the digest */
        j->pss.sLen = saltlen >= 0                        ? (CK_ULONG)saltlen
                      : saltlen == RSA_PSS_SALTLEN_DIGEST ? hlen
                      : saltlen == -4                     ? (hlen < max ? hlen : max)
                                                          : max;
    } else {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                      "RSA padding mode %d%s (PKCS#1 v1.5 and PSS only)", pad,
                      pad == RSA_PKCS1_PSS_PADDING ? " without a digest" : "");
        return 0;
    }
    memcpy(j->in, dig, diglen);
    j->inlen = diglen;
    return 1;
}

/* ---- the token call ---- */

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

static int sign_once(struct sign_job *j, CK_RV *rvp)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    CK_MECHANISM m = {j->mech, j->has_pss ? &j->pss : NULL,
                      j->has_pss ? sizeof(j->pss) : 0};
    unsigned char raw[160];
    CK_ULONG len = j->ecdsa ? sizeof(raw) : j->outsize;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    *rvp = CKR_OK;
    if (f == NULL || (s = offload_p11_session(j->key->slot)) == CK_INVALID_HANDLE ||
        (h = offload_p11_key_handle(j->key, s)) == CK_INVALID_HANDLE)
        return 0;
    if ((rv = f->C_SignInit(s, &m, h)) != CKR_OK) {
        *rvp = rv;
        OFFLOAD_P11_RAISE("C_SignInit", rv, j->key->label);
        offload_p11_session_failed(j->key->slot, rv);
        return 0;
    }
    if ((rv = f->C_Sign(s, j->in, j->inlen, j->ecdsa ? raw : j->out, &len)) != CKR_OK) {
        *rvp = rv;
        OFFLOAD_P11_RAISE("C_Sign", rv, j->key->label);
        offload_p11_session_failed(j->key->slot, rv);
        return 0;
    }
    if (!j->ecdsa) {
        j->outlen = len;
        return 1;
    }
    if (!ecdsa_der(raw, len, j->out, j->outsize, &j->outlen)) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "ECDSA signature of %lu bytes from the token", (unsigned long)len);
        return 0;
    }
    return 1;
}

static int sign_run(struct offload_req *req)
{
    struct sign_job *j = (struct sign_job *)req->payload;
    CK_RV rv;

    if (sign_once(j, &rv))
        return 1;
    if (rv != CKR_KEY_HANDLE_INVALID && rv != CKR_OBJECT_HANDLE_INVALID)
        return 0;
    /* The handle went stale (the token's objects changed): find it again, once. */
    atomic_store(&j->key->gen, 0);
    return sign_once(j, &rv);
}

static void sign_release(struct offload_req *req)
{
    struct sign_job *j = (struct sign_job *)req->payload;

    OPENSSL_cleanse(j->in, j->inlen);
    offload_p11_key_put(j->key);
}

static const struct offload_pool token_pool = {offload_p11_pool_submit,
                                               offload_p11_pool_take_back, NULL};

int offload_p11_sign(struct offload_p11_sigctx *c, void *ctx,
                     OSSL_FUNC_signature_get_ctx_params_fn *get_ctx_params, int final,
                     const unsigned char *tbs, size_t tbslen, unsigned char *sig,
                     size_t *siglen, size_t sigsize, const char *alg, const char *op)
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int diglen = 0;
    size_t room = tbslen + 64; /* the input, or its DigestInfo */
    struct offload_req *req;
    struct sign_job *j;
    enum offload_path p;
    int ret;

    if (final) {
        if (c->md == NULL || (tbs != NULL && !EVP_DigestUpdate(c->md, tbs, tbslen)) ||
            !EVP_DigestFinal_ex(c->md, dig, &diglen)) {
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED, "%s: the digest to sign", alg);
            return 0;
        }
        tbs = dig;
        tbslen = diglen;
        room = tbslen + 64;
    }
    req = offload_req_new(sign_run, sign_release, OFFLOAD_FAM_SIGNATURE,
                          sizeof(*j) + room + sigsize);
    if (req == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a token signature request");
        return 0;
    }
    j = (struct sign_job *)req->payload;
    memset(j, 0, sizeof(*j));
    j->in = req->payload + sizeof(*j);
    j->out = j->in + room;
    j->outsize = sigsize;
    offload_p11_key_up(c->key);
    j->key = c->key;
    if (!prepare(j, c->key, ctx, get_ctx_params, tbs, tbslen, room)) {
        offload_req_put(req);
        OPENSSL_cleanse(dig, sizeof(dig));
        return 0;
    }
    OPENSSL_cleanse(dig, sizeof(dig));
    req->alg = alg;
    req->op = op;
    p = offload_async_path_token();
    if (p == OFFLOAD_PATH_OFFLOADED) {
        ret = offload_async_run_on(req, &token_pool);
    } else {
        offload_op_path(OFFLOAD_FAM_SIGNATURE, p, alg, op);
        ret = offload_op_done(OFFLOAD_FAM_SIGNATURE, sign_run(req), alg, op);
    }
    if (ret > 0) {
        memcpy(sig, j->out, j->outlen);
        *siglen = j->outlen;
    }
    offload_req_put(req);
    return ret > 0;
}

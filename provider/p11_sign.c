/* SPDX-License-Identifier: Apache-2.0 */
/* Signing with a token key (p11_sign.h). */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "p11_call.h"
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
static int prepare(struct offload_p11_call *j, const struct offload_p11_key *k, void *ctx,
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
        j->prmlen = sizeof(j->prm.pss);
        j->prm.pss.hashAlg = hashes[row].hash;
        j->prm.pss.mgf = hashes[mrow].mgf;
        /* -1 digest, -2 auto and -3 max (the most that fits), -4 auto up to the digest */
        j->prm.pss.sLen = saltlen >= 0                        ? (CK_ULONG)saltlen
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

int offload_p11_sign(struct offload_p11_sigctx *c, void *ctx,
                     OSSL_FUNC_signature_get_ctx_params_fn *get_ctx_params, int final,
                     const unsigned char *tbs, size_t tbslen, unsigned char *sig,
                     size_t *siglen, size_t sigsize, const char *alg, const char *op)
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int diglen = 0;
    struct offload_req *req;
    struct offload_p11_call *j;
    int ret;

    if (final) {
        if (c->md == NULL || (tbs != NULL && !EVP_DigestUpdate(c->md, tbs, tbslen)) ||
            !EVP_DigestFinal_ex(c->md, dig, &diglen)) {
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED, "%s: the digest to sign", alg);
            return 0;
        }
        tbs = dig;
        tbslen = diglen;
    }
    /* The input, or its DigestInfo (at most 19 bytes more). */
    if ((req = offload_p11_call_new(c->key, tbslen + 64, sigsize, 0)) == NULL)
        return 0;
    j = offload_p11_call_of(req);
    ret = prepare(j, c->key, ctx, get_ctx_params, tbs, tbslen, tbslen + 64);
    OPENSSL_cleanse(dig, sizeof(dig));
    if (ret)
        ret = offload_p11_call_run(req, OFFLOAD_FAM_SIGNATURE, alg, op);
    if (ret) {
        memcpy(sig, j->out, j->outlen);
        *siglen = j->outlen;
    }
    offload_req_put(req);
    return ret;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* RSA decryption with a token key (p11_decrypt.h). */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "p11_call.h"
#include "p11_decrypt.h"
#include "soft.h"

void offload_p11_key_ext_free(void *k)
{
    offload_p11_key_put(k);
}

void *offload_p11_key_ext_dup(const void *k)
{
    offload_p11_key_up((struct offload_p11_key *)k);
    return (void *)k;
}

static const struct {
    int nid;
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
} oaep_hashes[] = {
    {NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1},      {NID_sha224, CKM_SHA224, CKG_MGF1_SHA224},
    {NID_sha256, CKM_SHA256, CKG_MGF1_SHA256}, {NID_sha384, CKM_SHA384, CKG_MGF1_SHA384},
    {NID_sha512, CKM_SHA512, CKG_MGF1_SHA512},
};

static int oaep_row(const char *name)
{
    EVP_MD *md = EVP_MD_fetch(offload_soft_libctx(), name, NULL);
    int nid = md != NULL ? EVP_MD_get_type(md) : NID_undef;
    size_t i;

    EVP_MD_free(md);
    for (i = 0; i < sizeof(oaep_hashes) / sizeof(oaep_hashes[0]); i++)
        if (oaep_hashes[i].nid == nid)
            return (int)i;
    OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                  "OAEP digest \"%s\" (SHA-1 and SHA-2 only)", name);
    return -1;
}

int offload_p11_decrypt(struct offload_p11_key *k, void *ctx,
                        OSSL_FUNC_asym_cipher_get_ctx_params_fn *get_ctx_params,
                        unsigned char *out, size_t *outlen, size_t outsize, size_t need,
                        const unsigned char *in, size_t inlen, const char *alg)
{
    char md[64] = "", mgf1[64] = "";
    int pad = RSA_PKCS1_PADDING, row, mrow;
    void *label = NULL;
    size_t labellen = 0;
    OSSL_PARAM p[] = {
        OSSL_PARAM_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &pad),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, md, sizeof(md)),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, mgf1, sizeof(mgf1)),
        OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, &label, 0),
        OSSL_PARAM_END};
    struct offload_req *req;
    struct offload_p11_call *c;
    int ret;

    if (get_ctx_params == NULL || !get_ctx_params(ctx, p)) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM, "the asym cipher context's parameters");
        return 0;
    }
    if (pad == RSA_PKCS1_OAEP_PADDING && OSSL_PARAM_modified(&p[3]))
        labellen = p[3].return_size;
    if (inlen > need) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM,
                      "%s: ciphertext of %zu bytes for a key of %zu", alg, inlen, need);
        return 0;
    }
    if ((req = offload_p11_call_new(k, inlen, need, labellen)) == NULL)
        return 0;
    c = offload_p11_call_of(req);
    c->decrypt = 1;
    memcpy(c->in, in, inlen);
    c->inlen = inlen;
    switch (pad) {
    case RSA_PKCS1_PADDING:
        c->mech = CKM_RSA_PKCS;
        break;
    case RSA_NO_PADDING:
        c->mech = CKM_RSA_X_509;
        break;
    case RSA_PKCS1_OAEP_PADDING:
        if ((row = oaep_row(md[0] != '\0' ? md : "SHA1")) < 0 ||
            (mrow = oaep_row(mgf1[0] != '\0' ? mgf1
                             : md[0] != '\0' ? md
                                             : "SHA1")) < 0) {
            offload_req_put(req);
            return 0;
        }
        c->mech = CKM_RSA_PKCS_OAEP;
        c->prmlen = sizeof(c->prm.oaep);
        c->prm.oaep.hashAlg = oaep_hashes[row].hash;
        c->prm.oaep.mgf = oaep_hashes[mrow].mgf;
        c->prm.oaep.source = CKZ_DATA_SPECIFIED;
        if (labellen > 0) {
            memcpy(c->extra, label, labellen);
            c->prm.oaep.pSourceData = c->extra;
            c->prm.oaep.ulSourceDataLen = labellen;
        }
        break;
    default:
        offload_req_put(req);
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                      "%s: RSA padding mode %d (PKCS#1 v1.5, OAEP and none only)", alg,
                      pad);
        return 0;
    }
    ret = offload_p11_call_run(req, OFFLOAD_FAM_ASYMCIPHER, alg, "decrypt");
    if (ret && c->outlen > outsize) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "%s: plaintext of %zu bytes, buffer has %zu", alg, c->outlen,
                      outsize);
        ret = 0;
    }
    if (ret) {
        memcpy(out, c->out, c->outlen);
        *outlen = c->outlen;
    }
    offload_req_put(req);
    return ret;
}

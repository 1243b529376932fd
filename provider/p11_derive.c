/* SPDX-License-Identifier: Apache-2.0 */
/* ECDH with a token key (p11_derive.h). */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "p11_call.h"
#include "p11_derive.h"
#include "soft.h"

struct offload_p11_kexctx *offload_p11_kexctx_new(struct offload_p11_key *k)
{
    struct offload_p11_kexctx *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        offload_p11_key_put(k);
        return NULL;
    }
    c->key = k;
    return c;
}

void offload_p11_kexctx_free(void *p)
{
    struct offload_p11_kexctx *c = p;

    if (c == NULL)
        return;
    offload_p11_key_put(c->key);
    free(c->peer);
    free(c);
}

void *offload_p11_kexctx_dup(const void *p)
{
    const struct offload_p11_kexctx *c = p;
    struct offload_p11_kexctx *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    if (c->peer != NULL) {
        if ((d->peer = malloc(c->peerlen)) == NULL) {
            free(d);
            return NULL;
        }
        memcpy(d->peer, c->peer, c->peerlen);
        d->peerlen = c->peerlen;
    }
    offload_p11_key_up(c->key);
    d->key = c->key;
    return d;
}

int offload_p11_kexctx_peer(struct offload_p11_kexctx *c, void *peer)
{
    OSSL_FUNC_keymgmt_get_params_fn *get =
        (OSSL_FUNC_keymgmt_get_params_fn *)offload_soft_fn(
            offload_soft_find(OSSL_OP_KEYMGMT, "EC", NULL), OSSL_FUNC_KEYMGMT_GET_PARAMS);
    unsigned char buf[160];
    OSSL_PARAM p[] = {
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf)),
        OSSL_PARAM_END};

    if (get == NULL || !get(peer, p) || !OSSL_PARAM_modified(p) ||
        p[0].return_size == 0) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM, "ECDH: the peer's public point");
        return 0;
    }
    free(c->peer);
    if ((c->peer = malloc(p[0].return_size)) == NULL) {
        c->peerlen = 0;
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "ECDH: the peer's point");
        return 0;
    }
    memcpy(c->peer, buf, p[0].return_size);
    c->peerlen = p[0].return_size;
    return 1;
}

int offload_p11_derive(struct offload_p11_kexctx *c, void *ctx,
                       OSSL_FUNC_keyexch_get_ctx_params_fn *get_ctx_params,
                       unsigned char *secret, size_t *secretlen, size_t outlen,
                       size_t need, const char *alg)
{
    char kdf[64] = "";
    int cofactor = -1, ret;
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, kdf, sizeof(kdf)),
        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, &cofactor),
        OSSL_PARAM_END};
    struct offload_req *req;
    struct offload_p11_call *j;

    if (c->peer == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_NO_KEY, "%s: no peer key set", alg);
        return 0;
    }
    if (get_ctx_params == NULL || !get_ctx_params(ctx, p)) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_PARAM, "the key exchange context's parameters");
        return 0;
    }
    if (kdf[0] != '\0') {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                      "%s with the %s KDF (plain only)", alg, kdf);
        return 0;
    }
    if (need > outlen) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BUFFER_TOO_SMALL,
                      "%s secret needs %zu bytes, buffer has %zu", alg, need, outlen);
        return 0;
    }
    if ((req = offload_p11_call_new(c->key, c->peerlen, need, 0)) == NULL)
        return 0;
    j = offload_p11_call_of(req);
    j->derive = 1;
    j->mech = cofactor == 1 ? CKM_ECDH1_COFACTOR_DERIVE : CKM_ECDH1_DERIVE;
    memcpy(j->in, c->peer, c->peerlen);
    j->inlen = c->peerlen;
    j->prmlen = sizeof(j->prm.ecdh);
    j->prm.ecdh.kdf = CKD_NULL;
    j->prm.ecdh.pPublicData = j->in;
    j->prm.ecdh.ulPublicDataLen = c->peerlen;
    ret = offload_p11_call_run(req, OFFLOAD_FAM_KEYEXCH, alg, "derive");
    if (ret) {
        memcpy(secret, j->out, j->outlen);
        *secretlen = j->outlen;
    }
    offload_req_put(req);
    return ret;
}

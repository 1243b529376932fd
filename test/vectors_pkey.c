/* SPDX-License-Identifier: Apache-2.0 */
/* Public-key helpers of the Wycheproof vector tests (see vectors_pkey.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "vectors_pkey.h"

test_env vec_env;
OSSL_LIB_CTX *vec_defctx;
OSSL_PROVIDER *vec_defprov;

/* ------------------------------------------------------------------ */
/* Keys: default decoders, then offload's key management               */
/* ------------------------------------------------------------------ */

/*
 * DER (hex) decoded by the default provider's decoders; |quiet|: a
 * failure is an expected verdict, its errors are dropped, not printed.
 */
EVP_PKEY *decode_default_q(const char *hex, const char *structure, int selection,
                           int quiet)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    long n = hex != NULL ? test_unhex(hex, &der) : -1;
    size_t len;
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx;

    if (n <= 0) {
        free(der);
        return NULL;
    }
    p = der;
    len = (size_t)n;
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", structure, NULL, selection,
                                         vec_env.libctx, DEFAULT_PROPQ);
    if (dctx == NULL || !OSSL_DECODER_from_data(dctx, &p, &len) || pkey == NULL) {
        if (quiet)
            ERR_clear_error();
        else
            test_dump_errors(structure);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    } else if (!test_pkey_in(pkey, "default")) {
        printf("    decoded %s key is not in the default provider\n", structure);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    free(der);
    return pkey;
}

EVP_PKEY *decode_default(const char *hex, const char *structure, int selection)
{
    return decode_default_q(hex, structure, selection, 0);
}

/*
 * A copy of |src| made by offload's key management from |src|'s exported
 * data, in *out. 1 done; 0 export or import refused (errors dropped when
 * |quiet|, else printed); -1 harness error (the copy is not in offload
 * or differs from |src|: reason printed).
 */
int import_offload_q(EVP_PKEY *src, int selection, int quiet, EVP_PKEY **out)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    EVP_PKEY *dst = NULL;
    int rc = 0;

    *out = NULL;
    if (EVP_PKEY_todata(src, selection, &params) != 1) {
        if (!quiet)
            test_dump_errors("EVP_PKEY_todata");
        goto out;
    }
    kctx = EVP_PKEY_CTX_new_from_name(vec_env.libctx, EVP_PKEY_get0_type_name(src),
                                      OFFLOAD_PROPQ);
    if (kctx == NULL || EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, &dst, selection, params) != 1) {
        if (!quiet)
            test_dump_errors("EVP_PKEY_fromdata into offload");
        goto out;
    }
    rc = -1;
    if (!test_pkey_in(dst, OFFLOAD_PROVIDER_NAME)) {
        printf("    imported key is not in the offload provider\n");
        goto out;
    }
    if (EVP_PKEY_eq(dst, src) != 1) {
        printf("    offload's copy of the key differs from the decoded key\n");
        test_dump_errors("EVP_PKEY_eq");
        goto out;
    }
    *out = dst;
    dst = NULL;
    rc = 1;
out:
    if (quiet)
        ERR_clear_error();
    EVP_PKEY_free(dst);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(kctx);
    return rc;
}

/* A copy of |src| in offload; NULL (reason printed) on failure. */
EVP_PKEY *import_into_offload(EVP_PKEY *src, int selection)
{
    EVP_PKEY *dst;

    import_offload_q(src, selection, 0, &dst);
    return dst;
}

/* The key of hex DER |hex| as an offload key; NULL (reason printed) on failure. */
EVP_PKEY *offload_key(const char *hex, const char *structure, int selection)
{
    EVP_PKEY *dec = decode_default(hex, structure, selection), *key;

    if (dec == NULL) {
        printf("    cannot decode the %s key\n", structure);
        return NULL;
    }
    key = import_into_offload(dec, selection);
    EVP_PKEY_free(dec);
    return key;
}

/* ------------------------------------------------------------------ */
/* Signatures through offload                                          */
/* ------------------------------------------------------------------ */

/* The digest of |sp|; NULL (none: EdDSA) when empty. */
const char *md_name(const struct sig_spec *sp)
{
    return sp->md[0] != '\0' ? sp->md : NULL;
}

int op_in_offload(const EVP_PKEY_CTX *pctx)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), OFFLOAD_PROVIDER_NAME) == 0;
}

int set_sig_params(EVP_PKEY_CTX *pctx, const struct sig_spec *sp)
{
    if (sp->pad == 0)
        return 1;
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, sp->pad) <= 0)
        return 0;
    if (sp->pad != RSA_PKCS1_PSS_PADDING)
        return 1;
    return EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, sp->mgf1, NULL) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, sp->saltlen) > 0;
}

/*
 * One-shot verification with the signature implementation fetched from
 * offload. 1 verified, 0 rejected, -1 set-up failure (errors dumped).
 */
int offload_verify(EVP_PKEY *pkey, const struct sig_spec *sp, const unsigned char *msg,
                   size_t msglen, const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = -1;

    if (mctx == NULL)
        return -1;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, md_name(sp), vec_env.libctx, OFFLOAD_PROPQ,
                                pkey, NULL) != 1 ||
        !set_sig_params(pctx, sp)) {
        test_dump_errors("verify init");
        goto out;
    }
    if (!op_in_offload(pctx)) {
        printf("    verification is not run by the offload provider\n");
        goto out;
    }
    rc = EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
    ERR_clear_error();
out:
    EVP_MD_CTX_free(mctx);
    return rc;
}

/*
 * One-shot signature through offload into |out| (*outlen: its size in,
 * the signature's length out). 1 signed, 0 failed. Prints nothing: it
 * also runs on the small stack of an ASYNC job.
 */
int offload_sign(EVP_PKEY *pkey, const struct sig_spec *sp, const unsigned char *msg,
                 size_t msglen, unsigned char *out, size_t *outlen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (mctx == NULL)
        return 0;
    if (EVP_DigestSignInit_ex(mctx, &pctx, md_name(sp), vec_env.libctx, OFFLOAD_PROPQ,
                              pkey, NULL) == 1 &&
        set_sig_params(pctx, sp) && op_in_offload(pctx))
        ok = EVP_DigestSign(mctx, out, outlen, msg, msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* RSA groups                                                          */
/* ------------------------------------------------------------------ */

void sig_group_close(void *vgs)
{
    struct sig_group *gs = vgs;

    EVP_PKEY_free(gs->pub);
    EVP_PKEY_free(gs->priv);
    free(gs);
}

int copy_name(char *dst, size_t size, const char *src)
{
    if (src == NULL || strlen(src) >= size)
        return 0;
    strcpy(dst, src);
    return 1;
}

/* Keys and digest of an RSA group; |need_private| for generation files. */
int sig_group_load(json_object *group, int need_private, struct sig_group **out)
{
    struct sig_group *gs = calloc(1, sizeof(*gs));
    const char *pubhex = wp_str(group, "publicKeyDer");
    long keysize = 0;

    *out = NULL;
    if (gs == NULL)
        return 0;
    if (pubhex == NULL)
        pubhex = wp_str(group, "keyDer"); /* the generation files' name */
    if (!copy_name(gs->spec.md, sizeof(gs->spec.md), wp_str(group, "sha"))) {
        printf("    group without a usable \"sha\"\n");
        goto err;
    }
    gs->pub = offload_key(pubhex, "SubjectPublicKeyInfo", EVP_PKEY_PUBLIC_KEY);
    if (gs->pub == NULL)
        goto err;
    if (wp_int(group, "keySize", &keysize) && EVP_PKEY_get_bits(gs->pub) != keysize) {
        printf("    key of %d bits, group says %ld\n", EVP_PKEY_get_bits(gs->pub),
               keysize);
        goto err;
    }
    if (need_private) {
        gs->priv = offload_key(wp_str(group, "privateKeyPkcs8"), "PrivateKeyInfo",
                               EVP_PKEY_KEYPAIR);
        if (gs->priv == NULL)
            goto err;
        if (EVP_PKEY_eq(gs->priv, gs->pub) != 1) {
            printf("    the group's private and public keys do not match\n");
            goto err;
        }
    }
    *out = gs;
    return 1;
err:
    sig_group_close(gs);
    return 0;
}

/* msg and sig of a signature test; WP_ERROR when they do not parse. */
int sig_fields(const struct wp_case *c, unsigned char **msg, size_t *msglen,
               unsigned char **sig, size_t *siglen)
{
    if (!wp_hex(c->json, "msg", msg, msglen) || !wp_hex(c->json, "sig", sig, siglen)) {
        free(*msg);
        free(*sig);
        *msg = *sig = NULL;
        return 0;
    }
    return 1;
}

/* Verification files: the verdict is offload's verification. */
enum wp_outcome verify_check(const struct wp_suite *s, void *vgs, const struct wp_case *c)
{
    struct sig_group *gs = vgs;
    unsigned char *msg = NULL, *sig = NULL;
    size_t msglen, siglen;
    int rc;

    (void)s;
    if (!sig_fields(c, &msg, &msglen, &sig, &siglen)) {
        /* A hex field that does not decode (odd length) cannot verify. */
        return WP_ERROR;
    }
    rc = offload_verify(gs->pub, &gs->spec, msg, msglen, sig, siglen);
    free(msg);
    free(sig);
    return rc < 0 ? WP_ERROR : rc == 1 ? WP_ACCEPT : WP_REJECT;
}
void run_verify_suite(const struct wp_suite *s)
{
    struct wp_stats st;
    uint64_t inl0 = test_counter(vec_env.offload, CTR_SIG_INLINE), inl1;

    assert_true(inl0 != UINT64_MAX);
    wp_run(s, &st);
    /* Verification runs inline and is not counted: the counter must not move. */
    inl1 = test_counter(vec_env.offload, CTR_SIG_INLINE);
    assert_true(inl1 != UINT64_MAX);
    assert_int_equal(inl1, inl0);
}
/* ------------------------------------------------------------------ */
/* Elliptic curves: helpers                                            */
/* ------------------------------------------------------------------ */

/* Wycheproof's curve names and OpenSSL's. */
static const struct {
    const char *wp, *ossl;
} wp_curves[] = {
    {"secp224r1", "secp224r1"},
    {"secp256r1", "prime256v1"},
    {"secp384r1", "secp384r1"},
    {"secp521r1", "secp521r1"},
};

const char *ossl_curve(const char *wp)
{
    size_t i;

    for (i = 0; wp != NULL && i < sizeof(wp_curves) / sizeof(wp_curves[0]); i++)
        if (strcmp(wp_curves[i].wp, wp) == 0)
            return wp_curves[i].ossl;
    return NULL;
}

/* 1 when EC key |pkey| is on the curve OpenSSL names |curve|. */
int key_on_curve(const EVP_PKEY *pkey, const char *curve)
{
    char name[64];

    return EVP_PKEY_is_a(pkey, "EC") &&
           EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                          sizeof(name), NULL) == 1 &&
           strcmp(name, curve) == 0;
}

/*
 * One-shot verification by the provider |provname|, fetched with
 * |propq|. 1 verified, 0 rejected, -1 set-up failure. Prints nothing
 * (it also runs on the small stack of an ASYNC job).
 */
int verify_in(const char *propq, const char *provname, EVP_PKEY *pkey,
              const struct sig_spec *sp, const unsigned char *msg, size_t msglen,
              const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const OSSL_PROVIDER *p;
    int rc = -1;

    if (mctx == NULL)
        return -1;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, md_name(sp), vec_env.libctx, propq, pkey,
                                NULL) == 1 &&
        set_sig_params(pctx, sp) && (p = EVP_PKEY_CTX_get0_provider(pctx)) != NULL &&
        strcmp(OSSL_PROVIDER_get0_name(p), provname) == 0)
        rc = EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return rc;
}

OSSL_LIB_CTX *side_ctx(enum side w)
{
    return w == OFFLOAD_SIDE ? vec_env.libctx : vec_defctx;
}

const char *side_propq(enum side w)
{
    return w == OFFLOAD_SIDE ? OFFLOAD_PROPQ : NULL;
}

const char *side_prov(enum side w)
{
    return w == OFFLOAD_SIDE ? OFFLOAD_PROVIDER_NAME : "default";
}

/*
 * A key built with EVP_PKEY_fromdata from |params| by the key management
 * of |w| (offload's: EVP_PKEY_CTX_new_from_name with "provider=offload"),
 * in *out. 1 done; 0 refused (errors dropped); -1 harness error (reason
 * printed).
 */
int fromdata_in(enum side w, const char *type, int selection, OSSL_PARAM *params,
                EVP_PKEY **out)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(side_ctx(w), type, side_propq(w));
    EVP_PKEY *pkey = NULL;
    int rc = 0;

    *out = NULL;
    if (kctx == NULL) {
        test_dump_errors("EVP_PKEY_CTX_new_from_name");
        printf("    no %s key management in %s\n", type, side_prov(w));
        return -1;
    }
    if (EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, &pkey, selection, params) != 1) {
        ERR_clear_error();
        goto out;
    }
    if (!test_pkey_in(pkey, side_prov(w))) {
        printf("    %s key built by EVP_PKEY_fromdata is not in %s\n", type,
               side_prov(w));
        rc = -1;
        goto out;
    }
    *out = pkey;
    pkey = NULL;
    rc = 1;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(kctx);
    return rc;
}

/* An EC key pair on |curve| from its private scalar (hex, big-endian); see above. */
int ec_private_key(enum side w, const char *curve, const char *hex, EVP_PKEY **out)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *bn = NULL;
    int rc = -1;

    *out = NULL;
    if (bld == NULL || hex == NULL || BN_hex2bn(&bn, hex) == 0 ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    rc = fromdata_in(w, "EC", EVP_PKEY_KEYPAIR, params, out);
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(bn);
    return rc;
}

/* An X25519/X448 key from raw hex bytes of |param| ("priv" or "pub"); see above. */
int xdh_raw_key(enum side w, const char *type, const char *param, const char *hex,
                EVP_PKEY **out)
{
    unsigned char *raw = NULL;
    long n = hex != NULL ? test_unhex(hex, &raw) : -1;
    OSSL_PARAM params[2];
    int rc;

    *out = NULL;
    if (n < 0)
        return -1;
    params[0] = OSSL_PARAM_construct_octet_string(param, raw, (size_t)n);
    params[1] = OSSL_PARAM_construct_end();
    rc = fromdata_in(w, type,
                     strcmp(param, OSSL_PKEY_PARAM_PRIV_KEY) == 0 ? EVP_PKEY_KEYPAIR
                                                                  : EVP_PKEY_PUBLIC_KEY,
                     params, out);
    OPENSSL_clear_free(raw, n > 0 ? (size_t)n : 0);
    return rc;
}

/*
 * |priv| with |peer| through the key exchange of |w|: for offload the
 * context is made by EVP_PKEY_CTX_new_from_pkey with "provider=offload"
 * and asserted to be offload's. D_OK with the secret in |out| (*outlen:
 * size in, length out), or which step failed. Prints nothing (also runs
 * in ASYNC jobs).
 */
int derive_in(enum side w, EVP_PKEY *priv, EVP_PKEY *peer, unsigned char *out,
              size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(side_ctx(w), priv, side_propq(w));
    const OSSL_PROVIDER *p;
    int rc = D_SETUP;

    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        (p = EVP_PKEY_CTX_get0_provider(ctx)) == NULL ||
        strcmp(OSSL_PROVIDER_get0_name(p), side_prov(w)) != 0)
        goto out;
    if (EVP_PKEY_derive_set_peer(ctx, peer) != 1) {
        rc = D_PEER_REFUSED;
        goto out;
    }
    rc = EVP_PKEY_derive(ctx, out, outlen) == 1 ? D_OK : D_DERIVE_FAILED;
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Key exchange: X25519 and ECDH                                       */
/* ------------------------------------------------------------------ */

void kex_group_close(void *vgs)
{
    free(vgs);
}

/*
 * Invalid vectors that OpenSSL 3.0's default provider itself accepts:
 * SubjectPublicKeyInfo with explicit parameters equal to the named curve
 * except for the cofactor field (absent, or n). The decoder turns them
 * into the named curve (cofactor 1), the point is a valid point of it and
 * the secret is the right one. (Wycheproof also carries the "no cofactor"
 * key as an acceptable vector, byte for byte.) Accepted by offload only
 * when the reference accepts it identically and the secret is "shared".
 */
static int known_leniency(const struct wp_case *c)
{
    return wp_has_flag(c, "UnnamedCurve") &&
           (wp_has_flag(c, "NoCofactor") || wp_has_flag(c, "LargeCofactor"));
}

/* Derives |priv| with |peer| on side |w| into |r|; counts offload's refusals. */
int kex_derive(enum side w, struct kex_counts *k, EVP_PKEY *priv, EVP_PKEY *peer,
               struct kex_result *r)
{
    int rc;

    r->len = sizeof(r->secret);
    rc = derive_in(w, priv, peer, r->secret, &r->len);
    r->accepted = rc == D_OK;
    ERR_clear_error();
    if (rc == D_SETUP) {
        test_dump_errors("derive set-up");
        printf("    cannot set up the derivation in %s\n", side_prov(w));
        return 0;
    }
    if (w == OFFLOAD_SIDE) {
        k->peer_refused += rc == D_PEER_REFUSED;
        k->derive_failed += rc == D_DERIVE_FAILED;
    }
    return 1;
}

/*
 * The verdict on one key exchange vector from offload's result |o| and
 * the default provider's alone |ref|: they must agree (same refusal or
 * same secret), and a secret must be "shared".
 */
enum wp_outcome kex_judge(const struct wp_suite *s, const struct wp_case *c,
                          const struct kex_result *o, const struct kex_result *ref)
{
    struct kex_counts *k = s->data;
    unsigned char *shared = NULL;
    size_t sharedlen = 0;
    int agree, equal;
    enum wp_outcome v;

    if (!wp_hex(c->json, "shared", &shared, &sharedlen)) {
        wp_print_case("no usable \"shared\"", s, c);
        return WP_ERROR;
    }
    agree = o->accepted == ref->accepted &&
            (!o->accepted ||
             (o->len == ref->len && memcmp(o->secret, ref->secret, o->len) == 0));
    if (agree) {
        k->ref_agree++;
    } else {
        k->ref_differ++;
        wp_print_case(!o->accepted ? "FAIL: offload refuses, the default provider accepts"
                      : !ref->accepted
                          ? "FAIL: offload accepts, the default provider refuses"
                          : "FAIL: offload's secret differs from the default's",
                      s, c);
    }
    if (!o->accepted) {
        free(shared);
        return WP_REJECT;
    }
    k->derived++;
    equal = o->len == sharedlen && memcmp(o->secret, shared, sharedlen) == 0;
    free(shared);
    if (!equal) {
        /* Never right, whatever the vector's verdict: asserted zero. */
        k->wrong++;
        wp_print_case("FAIL: the derived secret differs from \"shared\"", s, c);
        return c->result == WP_VALID ? WP_REJECT : WP_ACCEPT;
    }
    k->equal++;
    v = WP_ACCEPT;
    if (c->result == WP_INVALID && agree && known_leniency(c))
        v = WP_LENIENT;
    return v;
}

void run_kex_suite(struct wp_suite *s)
{
    struct kex_counts k;
    struct wp_stats st;
    uint64_t inl0 = test_counter(vec_env.offload, CTR_KEX_INLINE);
    uint64_t off0 = test_counter(vec_env.offload, CTR_KEX_OFFLOADED), inl1, off1;

    memset(&k, 0, sizeof(k));
    s->data = &k;
    assert_true(inl0 != UINT64_MAX && off0 != UINT64_MAX);
    wp_run(s, &st);
    inl1 = test_counter(vec_env.offload, CTR_KEX_INLINE);
    off1 = test_counter(vec_env.offload, CTR_KEX_OFFLOADED);
    printf("[wycheproof] %s: offload derived %zu secrets (%zu equal to \"shared\", %zu "
           "differ); refused: %zu by the decoders, %zu by offload's fromdata, %zu by "
           "set_peer, %zu by derive; the default provider alone agrees on %zu, differs "
           "on %zu; keyexch counters: inline +%llu, offloaded +%llu\n",
           s->file, k.derived, k.equal, k.wrong, k.decode_refused, k.import_refused,
           k.peer_refused, k.derive_failed, k.ref_agree, k.ref_differ,
           (unsigned long long)(inl1 - inl0), (unsigned long long)(off1 - off0));
    fflush(stdout);
    assert_int_equal(k.wrong, 0);
    assert_int_equal(k.ref_differ, 0);
    assert_int_equal(k.ref_agree, st.total);
    assert_true(k.equal > 0);
    /* Every derive ran in offload's key exchange, on this thread. */
    assert_int_equal(inl1 - inl0, k.derived + k.derive_failed);
    assert_int_equal(off1 - off0, 0);
}
/* ------------------------------------------------------------------ */

int vec_group_setup(void **state)
{
    EVP_SIGNATURE *sig;
    int ok;

    (void)state;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule). */
    if (!test_env_open(&vec_env, "busy_inline = 0\n"))
        return -1;
    vec_defctx = test_ref_open(&vec_defprov);
    if (vec_defctx == NULL) {
        test_dump_errors("default-only library context");
        test_env_close(&vec_env);
        return -1;
    }
    /* offload must offer RSA signatures at all, or every test below is moot. */
    sig = EVP_SIGNATURE_fetch(vec_env.libctx, "RSA", OFFLOAD_PROPQ);
    ok = sig != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(sig)),
                               OFFLOAD_PROVIDER_NAME) == 0;
    EVP_SIGNATURE_free(sig);
    if (!ok) {
        test_dump_errors("fetch RSA signature from offload");
        test_ref_close(vec_defctx, vec_defprov);
        test_env_close(&vec_env);
        return -1;
    }
    return 0;
}

int vec_group_teardown(void **state)
{
    (void)state;
    test_ref_close(vec_defctx, vec_defprov);
    vec_defctx = NULL;
    test_env_close(&vec_env);
    return 0;
}

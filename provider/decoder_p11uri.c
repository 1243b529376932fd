/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoders of key-URI files: a PEM file that names a token key by its
 * pkcs11: URI, for programs that read only PEM key files (HAProxy's crt,
 * `openssl s_server -key`, PEM_read_bio_PrivateKey). The format is
 * pkcs11-provider's, so the files are interchangeable:
 *
 *   -----BEGIN PKCS#11 PROVIDER URI-----
 *   base64 of DER: SEQUENCE { desc VisibleString "PKCS#11 Provider URI v1.0",
 *                             uri  UTF8String    "pkcs11:token=...;object=..." }
 *   -----END PKCS#11 PROVIDER URI-----
 *
 * Two stages, as libcrypto chains decoders:
 *
 *   "DER" (input=pem): the PEM stage. The default provider's PEM-to-DER
 *       decoder passes on only the labels it knows (keys, parameters,
 *       certificates, CRLs) and drops every other block, this label
 *       included, so we read our label ourselves, check its body (a bad
 *       one fails here, with its reason) and pass it on as DER of
 *       structure "pk11-uri" (pkcs11-provider's name for it). Any other
 *       block is left to the other decoders (we return empty-handed).
 *   "RSA", "EC" (input=der, structure=pk11-uri): parse the DER and load
 *       the URI with the store's code (store_pkcs11.h): the key comes back
 *       by reference, exactly as the store gives it, to offload's key
 *       management LOAD. libcrypto offers these stages every DER input of
 *       no announced structure (an RSA PrivateKeyInfo too): DER that is not
 *       a key-URI body, or a key of the other type, is left to the other
 *       decoders without an error.
 *
 * Reading libcrypto's OSSL_CORE_BIO needs a library context that knows the
 * core's BIO functions: one made with OSSL_LIB_CTX_new_from_dispatch at
 * the first init (the functions are the same for every instance), freed
 * at the last teardown.
 *
 * Bad input fails cleanly with a reason ("bad PKCS#11 key-URI file: ...",
 * "bad PKCS#11 URI: ...", or the store's own: no such token, wrong PIN).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "decoder_p11uri.h"
#include "prov.h"
#include "store_pkcs11.h"

#define URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define URI_STRUCTURE "pk11-uri"
#define URI_DESC      "PKCS#11 Provider URI v1.0"
#define URI_DER_MAX   8192 /* a URI file's body; a URI is far shorter */

static OSSL_LIB_CTX *bio_ctx; /* knows the core's BIO functions */

int offload_decoder_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in)
{
    if (bio_ctx == NULL)
        bio_ctx = OSSL_LIB_CTX_new_from_dispatch(handle, in);
    return bio_ctx != NULL;
}

void offload_decoder_release(void)
{
    OSSL_LIB_CTX_free(bio_ctx);
    bio_ctx = NULL;
}

/* One context type for every stage: which key type a DER stage gives. */
struct dec_ctx {
    const char *type; /* "RSA", "EC"; NULL for the PEM stage */
};

static OSSL_FUNC_decoder_newctx_fn pem_newctx, rsa_newctx, ec_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn pem_decode, uri_decode;
static OSSL_FUNC_decoder_export_object_fn uri_export_object;

static char *uri_of(const unsigned char *der, long len);

static void *newctx(const char *type)
{
    struct dec_ctx *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a decoder context");
        return NULL;
    }
    c->type = type;
    return c;
}

static void *pem_newctx(void *provctx)
{
    (void)provctx;
    return newctx(NULL);
}

static void *rsa_newctx(void *provctx)
{
    (void)provctx;
    return newctx("RSA");
}

static void *ec_newctx(void *provctx)
{
    (void)provctx;
    return newctx("EC");
}

static void dec_freectx(void *ctx)
{
    free(ctx);
}

static BIO *core_bio(OSSL_CORE_BIO *cin)
{
    BIO *b = bio_ctx != NULL ? BIO_new_from_core_bio(bio_ctx, cin) : NULL;

    if (b == NULL)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a BIO on libcrypto's input");
    return b;
}

/*
 * The PEM stage: one PEM block; ours goes on as DER of structure
 * "pk11-uri", any other is someone else's (1, nothing passed on).
 */
static int pem_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *cb,
                      void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    BIO *in = core_bio(cin);
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    int ok = 1, read;

    (void)ctx;
    (void)selection;
    (void)pw_cb;
    (void)pw_cbarg;
    if (in == NULL)
        return 0;
    ERR_set_mark();
    read = PEM_read_bio(in, &name, &header, &der, &len) > 0;
    ERR_pop_to_mark(); /* not PEM, or no block left: not ours to report */
    BIO_free(in);
    if (read && strcmp(name, URI_PEM_LABEL) == 0) {
        int objtype = OSSL_OBJECT_PKEY;
        char *uri = uri_of(der, len);

        /*
         * The label says the block is ours: a bad body is reported here.
         * The DER stage, which libcrypto also offers every other DER
         * input, only takes what parses.
         */
        if (uri == NULL) {
            ok = 0;
            goto end;
        }
        OPENSSL_free(uri);
        OSSL_PARAM p[] = {
            OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &objtype),
            OSSL_PARAM_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                   (char *)URI_STRUCTURE, strlen(URI_STRUCTURE)),
            OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)len),
            OSSL_PARAM_END};

        ok = cb(p, cbarg);
    }
end:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    return ok;
}

/* All of |in| (at most URI_DER_MAX bytes) into |buf|; its length, or -1 after raising. */
static long read_all(BIO *in, unsigned char *buf, size_t max)
{
    size_t n = 0, got;

    while (n < max && BIO_read_ex(in, buf + n, max - n, &got) && got > 0)
        n += got;
    if (n == max && BIO_read_ex(in, buf, 1, &got) && got > 0) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_URI_FILE, "longer than %zu bytes", max);
        return -1;
    }
    return (long)n;
}

/* The element |i| of |seq| as a string of |tag|, else NULL. */
static const ASN1_STRING *string_at(STACK_OF(ASN1_TYPE) * seq, int i, int tag)
{
    ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

    return t != NULL && ASN1_TYPE_get(t) == tag ? t->value.asn1_string : NULL;
}

/*
 * The URI of the DER |der|; NULL after raising. The caller frees it
 * (OPENSSL_free).
 */
static char *uri_of(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) * seq;
    const ASN1_STRING *desc, *uri;
    char *out = NULL;

    ERR_set_mark();
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
    ERR_pop_to_mark();
    if (seq == NULL || p != der + len) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_URI_FILE,
                      "not DER of SEQUENCE { VisibleString, UTF8String }%s",
                      seq != NULL ? " (data after it)" : "");
        goto end;
    }
    if (sk_ASN1_TYPE_num(seq) != 2 ||
        (desc = string_at(seq, 0, V_ASN1_VISIBLESTRING)) == NULL ||
        (uri = string_at(seq, 1, V_ASN1_UTF8STRING)) == NULL) {
        OFFLOAD_RAISE(
            NULL, OFFLOAD_R_BAD_URI_FILE,
            "expected SEQUENCE { VisibleString, UTF8String }, found %d elements or "
            "other types",
            sk_ASN1_TYPE_num(seq));
        goto end;
    }
    if (ASN1_STRING_length(desc) != (int)strlen(URI_DESC) ||
        memcmp(ASN1_STRING_get0_data(desc), URI_DESC, strlen(URI_DESC)) != 0) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_URI_FILE,
                      "description \"%.*s\", expected \"%s\"",
                      ASN1_STRING_length(desc) > 64 ? 64 : ASN1_STRING_length(desc),
                      (const char *)ASN1_STRING_get0_data(desc), URI_DESC);
        goto end;
    }
    if (ASN1_STRING_length(uri) < 7 ||
        strncasecmp((const char *)ASN1_STRING_get0_data(uri), "pkcs11:", 7) != 0 ||
        memchr(ASN1_STRING_get0_data(uri), '\0', (size_t)ASN1_STRING_length(uri)) !=
            NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_BAD_URI, "not a pkcs11: URI: \"%.*s\"",
                      ASN1_STRING_length(uri) > 64 ? 64 : ASN1_STRING_length(uri),
                      (const char *)ASN1_STRING_get0_data(uri));
        goto end;
    }
    out = OPENSSL_strndup((const char *)ASN1_STRING_get0_data(uri),
                          (size_t)ASN1_STRING_length(uri));
    if (out == NULL)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a URI");
end:
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return out;
}

/*
 * The DER stage: the key of our type that the URI names, from the
 * store's code. A key of the other type, or DER that is not a key-URI
 * body: 1, nothing passed on (another decoder takes it). A URI that does
 * not load: 0 after raising, which ends the chain.
 */
static int uri_decode(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *cb,
                      void *cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    struct dec_ctx *c = ctx;
    unsigned char *der = malloc(URI_DER_MAX);
    BIO *in = NULL;
    char *uri = NULL;
    long len;
    int r = 0;

    (void)selection;
    if (der == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a key-URI file");
        return 0;
    }
    if ((in = core_bio(cin)) == NULL)
        goto end;
    /*
     * libcrypto offers this stage any DER input whose structure it was not
     * told (a PrivateKeyInfo too): what is not a key-URI body is someone
     * else's, left without an error. Our PEM stage has checked its blocks.
     */
    ERR_set_mark();
    if ((len = read_all(in, der, URI_DER_MAX)) < 0 || (uri = uri_of(der, len)) == NULL) {
        ERR_pop_to_mark();
        r = -1;
        goto end;
    }
    ERR_clear_last_mark();
    r = offload_store_p11_load_uri(uri, c->type, cb, cbarg, pw_cb, pw_cbarg);
    OFFLOAD_DEBUG("decoder: %s key of %.*s: %s", c->type, (int)strcspn(uri, "?"), uri,
                  r > 0    ? "loaded"
                  : r == 0 ? "failed"
                           : "none of this type");
end:
    BIO_free(in);
    OPENSSL_free(uri);
    free(der);
    return r != 0; /* -1: none of our type, not an error */
}

/* Another provider's key management cannot take a token key: it has no private half. */
static int uri_export_object(void *ctx, const void *objref, size_t objref_sz,
                             OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    struct dec_ctx *c = ctx;

    (void)objref;
    (void)objref_sz;
    (void)export_cb;
    (void)export_cbarg;
    OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_UNSUPPORTED,
                  "a token %s key goes to offload's key management only (prefer "
                  "provider=offload)",
                  c->type != NULL ? c->type : "");
    return 0;
}

static const OSSL_DISPATCH pem_fns[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))pem_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_decode},
    {0, NULL}};
static const OSSL_DISPATCH rsa_fns[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))rsa_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))uri_decode},
    {OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))uri_export_object},
    {0, NULL}};
static const OSSL_DISPATCH ec_fns[] = {
    {OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))ec_newctx},
    {OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx},
    {OSSL_FUNC_DECODER_DECODE, (void (*)(void))uri_decode},
    {OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))uri_export_object},
    {0, NULL}};

#define PROPS   "provider=" OFFLOAD_PROVIDER_NAME
#define DER_URI PROPS ",input=der,structure=" URI_STRUCTURE

static const OSSL_ALGORITHM decoder_algs[] = {
    {"DER", PROPS ",input=pem", pem_fns,
     "offload: the PEM block " URI_PEM_LABEL " as DER (structure " URI_STRUCTURE ")"},
    {"RSA", DER_URI, rsa_fns, "offload: an RSA token key by the pkcs11: URI in a file"},
    {"EC", DER_URI, ec_fns, "offload: an EC token key by the pkcs11: URI in a file"},
    {NULL, NULL, NULL, NULL}};

const OSSL_ALGORITHM *offload_decoder_algorithms(void)
{
    return decoder_algs;
}

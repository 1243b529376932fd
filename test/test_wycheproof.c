/*
 * Wycheproof vectors through the offload provider.
 *
 * Every key is decoded by the default provider's decoders, then moved
 * into offload's key management (EVP_PKEY_todata + EVP_PKEY_fromdata
 * with "provider=offload"), and every signature operation is fetched
 * with the property query "provider=offload"; each one asserts that the
 * operation's provider is offload before running it.
 *
 * One cmocka test per file. A generic driver walks testGroups[].tests[],
 * hands each group to the suite's group_open (keys, parameters) and each
 * test to its check function, and counts the outcome against the
 * vector's "result":
 *   valid      must be accepted,
 *   invalid    must be rejected,
 *   acceptable either; the split is printed, never a failure.
 * A file fails when it yields no test, when the count differs from its
 * numberOfTests, or on any harness error. More families (ECDSA, EdDSA,
 * X25519, ECDH, AEAD) are added as more struct wp_suite.
 *
 * The RSA signature generation file is run a second time inside ASYNC
 * jobs (up to MAX_JOBS in flight, driven by poll() on the wait fds) to
 * prove that the worker threads produce the exact signatures.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "offload.h"
#include "common.h"

#define OFFLOAD_PROPQ   "provider=" OFFLOAD_PROVIDER_NAME
#define DEFAULT_PROPQ   "provider=default"
#define MAX_JOBS        16
#define MAX_FDS_PER_JOB 4
#define POLL_TIMEOUT_MS 30000

#define CTR_SIG_INLINE     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_INLINE
#define CTR_SIG_OFFLOADED  "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_OFFLOADED
#define CTR_SIG_FAILED     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_FAILED
#define CTR_SIG_QUEUE_FULL "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_QUEUE_FULL
#define CTR_SIG_PAUSES     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_PAUSES

static test_env env;

/* ------------------------------------------------------------------ */
/* JSON and hex helpers                                                */
/* ------------------------------------------------------------------ */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int jint(json_object *o, const char *key, long *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return 0;
    *out = (long)json_object_get_int64(v);
    return 1;
}

/* Hex field |key| of |o| into a malloc()ed buffer; 0 when absent or malformed. */
static int jhex(json_object *o, const char *key, unsigned char **out, size_t *len)
{
    const char *hex = jstr(o, key);
    long n;

    *out = NULL;
    *len = 0;
    if (hex == NULL || (n = test_unhex(hex, out)) < 0)
        return 0;
    *len = (size_t)n;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The generic driver                                                  */
/* ------------------------------------------------------------------ */

enum wp_result { WP_VALID, WP_INVALID, WP_ACCEPTABLE };

/* What a suite's check made of one test. */
enum wp_outcome {
    WP_ACCEPT, /* the implementation accepted the vector */
    WP_REJECT, /* it rejected it */
    WP_SKIP,   /* this program cannot run this kind of vector (reason printed) */
    WP_ERROR,  /* the harness failed (reason printed): the file fails */
};

/* The fields every Wycheproof test shares; family-specific ones stay in |json|. */
struct wp_case {
    long tcid;
    enum wp_result result;
    const char *comment;
    json_object *json;
};

struct wp_stats {
    size_t total;
    size_t valid_ok, valid_bad;
    size_t invalid_rejected, invalid_accepted;
    size_t acc_accepted, acc_rejected;
    size_t skipped, errors;
};

struct wp_suite;

/* Prepares a group; 1 ok, 0 harness error, -1 group not supported (reason printed). */
typedef int wp_group_open_fn(const struct wp_suite *s, json_object *group, void **gs);
typedef void wp_group_close_fn(void *gs);
typedef enum wp_outcome wp_check_fn(const struct wp_suite *s, void *gs,
                                    const struct wp_case *c);

struct wp_suite {
    const char *file;
    const char *schema;     /* expected "schema" of the file */
    const char *group_type; /* expected "type" of every group */
    wp_group_open_fn *group_open;
    wp_group_close_fn *group_close;
    wp_check_fn *check;
    void *data; /* suite-specific counters */
};

static const char *result_name(enum wp_result r)
{
    return r == WP_VALID ? "valid" : r == WP_INVALID ? "invalid" : "acceptable";
}

static void print_case(const char *what, const struct wp_suite *s,
                       const struct wp_case *c)
{
    json_object *flags = NULL;

    json_object_object_get_ex(c->json, "flags", &flags);
    printf("    %s: tcId %ld (%s, \"%s\", flags %s): %s\n", s->file, c->tcid,
           result_name(c->result), c->comment != NULL ? c->comment : "",
           flags != NULL ? json_object_to_json_string(flags) : "[]", what);
}

static void wp_count(const struct wp_suite *s, struct wp_stats *st,
                     const struct wp_case *c, enum wp_outcome o)
{
    switch (o) {
    case WP_SKIP:
        st->skipped++;
        return;
    case WP_ERROR:
        st->errors++;
        print_case("HARNESS ERROR", s, c);
        return;
    case WP_ACCEPT:
    case WP_REJECT:
        break;
    }
    switch (c->result) {
    case WP_VALID:
        if (o == WP_ACCEPT) {
            st->valid_ok++;
        } else {
            st->valid_bad++;
            print_case("FAIL: valid vector rejected", s, c);
        }
        break;
    case WP_INVALID:
        if (o == WP_REJECT) {
            st->invalid_rejected++;
        } else {
            st->invalid_accepted++;
            print_case("FAIL: invalid vector accepted", s, c);
        }
        break;
    case WP_ACCEPTABLE:
        if (o == WP_ACCEPT)
            st->acc_accepted++;
        else
            st->acc_rejected++;
        print_case(o == WP_ACCEPT ? "acceptable: accepted" : "acceptable: rejected", s,
                   c);
        break;
    }
}

static int parse_case(json_object *t, struct wp_case *c)
{
    const char *r = jstr(t, "result");

    memset(c, 0, sizeof(*c));
    c->json = t;
    c->comment = jstr(t, "comment");
    if (!jint(t, "tcId", &c->tcid) || r == NULL)
        return 0;
    if (strcmp(r, "valid") == 0)
        c->result = WP_VALID;
    else if (strcmp(r, "invalid") == 0)
        c->result = WP_INVALID;
    else if (strcmp(r, "acceptable") == 0)
        c->result = WP_ACCEPTABLE;
    else
        return 0;
    return 1;
}

static json_object *wp_load(const char *file)
{
    char path[4096];
    json_object *root;

    test_vector_path(file, path, sizeof(path));
    root = json_object_from_file(path);
    if (root == NULL)
        fail_msg("cannot read or parse %s: %s", path, json_util_get_last_err());
    return root;
}

/* Runs every test of |s->file| and asserts the verdicts; returns nothing on failure. */
static void wp_run(const struct wp_suite *s, struct wp_stats *st)
{
    json_object *root = wp_load(s->file), *groups, *tests;
    const char *schema = jstr(root, "schema");
    long expected = -1;
    size_t g, t, ng;

    memset(st, 0, sizeof(*st));
    if (schema == NULL || strcmp(schema, s->schema) != 0) {
        json_object_put(root);
        fail_msg("%s: schema \"%s\", this suite handles \"%s\"", s->file,
                 schema != NULL ? schema : "(none)", s->schema);
    }
    jint(root, "numberOfTests", &expected);
    if (!json_object_object_get_ex(root, "testGroups", &groups) ||
        !json_object_is_type(groups, json_type_array)) {
        json_object_put(root);
        fail_msg("%s: no testGroups array", s->file);
    }
    ng = json_object_array_length(groups);
    for (g = 0; g < ng; g++) {
        json_object *group = json_object_array_get_idx(groups, g);
        const char *type = jstr(group, "type");
        void *gs = NULL;
        int gok;
        size_t nt;

        if (!json_object_object_get_ex(group, "tests", &tests) ||
            !json_object_is_type(tests, json_type_array)) {
            printf("    %s: group %zu has no tests array\n", s->file, g);
            st->errors++;
            continue;
        }
        nt = json_object_array_length(tests);
        if (type == NULL || strcmp(type, s->group_type) != 0) {
            printf("    %s: group %zu of type \"%s\", expected \"%s\"\n", s->file, g,
                   type != NULL ? type : "(none)", s->group_type);
            gok = 0;
        } else {
            gok = s->group_open(s, group, &gs);
        }
        for (t = 0; t < nt; t++) {
            struct wp_case c;
            enum wp_outcome o;

            st->total++;
            if (!parse_case(json_object_array_get_idx(tests, t), &c)) {
                printf("    %s: group %zu test %zu: no tcId or bad result\n", s->file, g,
                       t);
                st->errors++;
                continue;
            }
            if (gok > 0)
                o = s->check(s, gs, &c);
            else
                o = gok < 0 ? WP_SKIP : WP_ERROR;
            wp_count(s, st, &c, o);
            ERR_clear_error();
        }
        if (gok > 0)
            s->group_close(gs);
    }
    json_object_put(root);

    printf(
        "[wycheproof] %s: %zu tests: %zu valid ok, %zu invalid rejected, %zu acceptable "
        "(%zu accepted, %zu rejected)",
        s->file, st->total, st->valid_ok, st->invalid_rejected,
        st->acc_accepted + st->acc_rejected, st->acc_accepted, st->acc_rejected);
    if (st->valid_bad + st->invalid_accepted + st->skipped + st->errors > 0)
        printf("; %zu VALID REJECTED, %zu INVALID ACCEPTED, %zu not runnable, %zu errors",
               st->valid_bad, st->invalid_accepted, st->skipped, st->errors);
    printf("\n");
    fflush(stdout);

    assert_true(st->total > 0);
    assert_true(st->total > st->skipped); /* a file run entirely skipped is no pass */
    assert_int_equal(st->total, (size_t)expected);
    assert_int_equal(st->errors, 0);
    assert_int_equal(st->valid_bad, 0);
    assert_int_equal(st->invalid_accepted, 0);
}

/* ------------------------------------------------------------------ */
/* Keys: default decoders, then offload's key management               */
/* ------------------------------------------------------------------ */

/* DER (hex) decoded by the default provider's decoders. */
static EVP_PKEY *decode_default(const char *hex, const char *structure, int selection)
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
                                         env.libctx, DEFAULT_PROPQ);
    if (dctx == NULL || !OSSL_DECODER_from_data(dctx, &p, &len) || pkey == NULL) {
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

/* A copy of |src| made by offload's key management from |src|'s exported data. */
static EVP_PKEY *import_into_offload(EVP_PKEY *src, int selection)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    EVP_PKEY *dst = NULL;

    if (EVP_PKEY_todata(src, selection, &params) != 1) {
        test_dump_errors("EVP_PKEY_todata");
        goto out;
    }
    kctx = EVP_PKEY_CTX_new_from_name(env.libctx, EVP_PKEY_get0_type_name(src),
                                      OFFLOAD_PROPQ);
    if (kctx == NULL || EVP_PKEY_fromdata_init(kctx) != 1 ||
        EVP_PKEY_fromdata(kctx, &dst, selection, params) != 1) {
        test_dump_errors("EVP_PKEY_fromdata into offload");
        goto out;
    }
    if (!test_pkey_in(dst, OFFLOAD_PROVIDER_NAME)) {
        printf("    imported key is not in the offload provider\n");
        goto fail;
    }
    if (EVP_PKEY_eq(dst, src) != 1) {
        printf("    offload's copy of the key differs from the decoded key\n");
        test_dump_errors("EVP_PKEY_eq");
        goto fail;
    }
    goto out;
fail:
    EVP_PKEY_free(dst);
    dst = NULL;
out:
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(kctx);
    return dst;
}

/* The key of hex DER |hex| as an offload key; NULL (reason printed) on failure. */
static EVP_PKEY *offload_key(const char *hex, const char *structure, int selection)
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

struct sig_spec {
    char md[32];   /* digest name as Wycheproof writes it ("SHA-256") */
    int pad;       /* RSA padding mode; 0 leaves the algorithm's default */
    char mgf1[32]; /* RSA-PSS: MGF1 digest */
    int saltlen;   /* RSA-PSS: salt length */
};

static int op_in_offload(const EVP_PKEY_CTX *pctx)
{
    const OSSL_PROVIDER *p = EVP_PKEY_CTX_get0_provider(pctx);

    return p != NULL && strcmp(OSSL_PROVIDER_get0_name(p), OFFLOAD_PROVIDER_NAME) == 0;
}

static int set_sig_params(EVP_PKEY_CTX *pctx, const struct sig_spec *sp)
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
static int offload_verify(EVP_PKEY *pkey, const struct sig_spec *sp,
                          const unsigned char *msg, size_t msglen,
                          const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int rc = -1;

    if (mctx == NULL)
        return -1;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, sp->md, env.libctx, OFFLOAD_PROPQ, pkey,
                                NULL) != 1 ||
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
static int offload_sign(EVP_PKEY *pkey, const struct sig_spec *sp,
                        const unsigned char *msg, size_t msglen, unsigned char *out,
                        size_t *outlen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;

    if (mctx == NULL)
        return 0;
    if (EVP_DigestSignInit_ex(mctx, &pctx, sp->md, env.libctx, OFFLOAD_PROPQ, pkey,
                              NULL) == 1 &&
        set_sig_params(pctx, sp) && op_in_offload(pctx))
        ok = EVP_DigestSign(mctx, out, outlen, msg, msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return ok;
}

/* ------------------------------------------------------------------ */
/* RSA groups                                                          */
/* ------------------------------------------------------------------ */

struct rsa_group {
    EVP_PKEY *pub;  /* offload key from the group's public key */
    EVP_PKEY *priv; /* offload key pair (signature generation files only) */
    struct sig_spec spec;
};

static void rsa_group_close(void *vgs)
{
    struct rsa_group *gs = vgs;

    EVP_PKEY_free(gs->pub);
    EVP_PKEY_free(gs->priv);
    free(gs);
}

static int copy_name(char *dst, size_t size, const char *src)
{
    if (src == NULL || strlen(src) >= size)
        return 0;
    strcpy(dst, src);
    return 1;
}

/* Keys and digest of an RSA group; |need_private| for generation files. */
static int rsa_group_load(json_object *group, int need_private, struct rsa_group **out)
{
    struct rsa_group *gs = calloc(1, sizeof(*gs));
    const char *pubhex = jstr(group, "publicKeyDer");
    long keysize = 0;

    *out = NULL;
    if (gs == NULL)
        return 0;
    if (pubhex == NULL)
        pubhex = jstr(group, "keyDer"); /* the generation files' name */
    if (!copy_name(gs->spec.md, sizeof(gs->spec.md), jstr(group, "sha"))) {
        printf("    group without a usable \"sha\"\n");
        goto err;
    }
    gs->pub = offload_key(pubhex, "SubjectPublicKeyInfo", EVP_PKEY_PUBLIC_KEY);
    if (gs->pub == NULL)
        goto err;
    if (jint(group, "keySize", &keysize) && EVP_PKEY_get_bits(gs->pub) != keysize) {
        printf("    key of %d bits, group says %ld\n", EVP_PKEY_get_bits(gs->pub),
               keysize);
        goto err;
    }
    if (need_private) {
        gs->priv = offload_key(jstr(group, "privateKeyPkcs8"), "PrivateKeyInfo",
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
    rsa_group_close(gs);
    return 0;
}

static int pkcs1_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct rsa_group *gs;
    int need_private = strcmp(s->group_type, "RsassaPkcs1Generate") == 0;

    if (!rsa_group_load(group, need_private, &gs))
        return 0;
    gs->spec.pad = RSA_PKCS1_PADDING;
    *out = gs;
    return 1;
}

static int pss_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct rsa_group *gs;
    const char *mgf = jstr(group, "mgf");
    long slen;

    (void)s;
    if (mgf == NULL || strcmp(mgf, "MGF1") != 0) {
        printf("    RSA-PSS group with mask generation \"%s\": only MGF1 is supported; "
               "its tests are not run\n",
               mgf != NULL ? mgf : "(none)");
        return -1;
    }
    if (!jint(group, "sLen", &slen) || slen < 0) {
        printf("    RSA-PSS group without a usable sLen\n");
        return 0;
    }
    if (!rsa_group_load(group, 0, &gs))
        return 0;
    if (!copy_name(gs->spec.mgf1, sizeof(gs->spec.mgf1), jstr(group, "mgfSha"))) {
        printf("    RSA-PSS group without a usable mgfSha\n");
        rsa_group_close(gs);
        return 0;
    }
    gs->spec.pad = RSA_PKCS1_PSS_PADDING;
    gs->spec.saltlen = (int)slen;
    *out = gs;
    return 1;
}

/* msg and sig of a signature test; WP_ERROR when they do not parse. */
static int sig_fields(const struct wp_case *c, unsigned char **msg, size_t *msglen,
                      unsigned char **sig, size_t *siglen)
{
    if (!jhex(c->json, "msg", msg, msglen) || !jhex(c->json, "sig", sig, siglen)) {
        free(*msg);
        free(*sig);
        *msg = *sig = NULL;
        return 0;
    }
    return 1;
}

/* Verification files: the verdict is offload's verification. */
static enum wp_outcome verify_check(const struct wp_suite *s, void *vgs,
                                    const struct wp_case *c)
{
    struct rsa_group *gs = vgs;
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

/* ------------------------------------------------------------------ */
/* RSA signature generation                                            */
/* ------------------------------------------------------------------ */

struct siggen_counts {
    size_t signs, sign_failed;
    size_t match, mismatch; /* our signature vs. the vector's */
    size_t verified, verify_rejected;
    size_t flipped_rejected, flipped_accepted; /* derived negatives */
};

/*
 * Valid and acceptable vectors: offload signs msg (PKCS#1 v1.5 is
 * deterministic) and must reproduce sig byte for byte, and sig must
 * verify. The verdict is "accepted" only when both hold. Every vector's
 * sig with one bit flipped must also be rejected (derived negative).
 * Invalid vectors (none in the current file): the verification of sig
 * is the verdict; there is nothing to sign against.
 */
static enum wp_outcome siggen_check(const struct wp_suite *s, void *vgs,
                                    const struct wp_case *c)
{
    struct rsa_group *gs = vgs;
    struct siggen_counts *k = s->data;
    unsigned char *msg = NULL, *sig = NULL, *out = NULL;
    size_t msglen, siglen, outlen;
    int vrc, frc, match = 0;
    enum wp_outcome o = WP_ERROR;

    if (!sig_fields(c, &msg, &msglen, &sig, &siglen))
        return WP_ERROR;
    vrc = offload_verify(gs->pub, &gs->spec, msg, msglen, sig, siglen);
    if (vrc < 0)
        goto out;
    k->verified += vrc == 1;
    k->verify_rejected += vrc == 0;
    if (siglen > 0) {
        sig[siglen / 2] ^= 0x01;
        frc = offload_verify(gs->pub, &gs->spec, msg, msglen, sig, siglen);
        sig[siglen / 2] ^= 0x01;
        if (frc < 0)
            goto out;
        if (frc == 1) {
            k->flipped_accepted++;
            print_case("FAIL: signature with a flipped bit verifies", s, c);
        } else {
            k->flipped_rejected++;
        }
    }
    if (c->result == WP_INVALID) {
        o = vrc == 1 ? WP_ACCEPT : WP_REJECT;
        goto out;
    }
    outlen = (size_t)EVP_PKEY_get_size(gs->priv);
    out = malloc(outlen);
    if (out == NULL)
        goto out;
    k->signs++;
    if (!offload_sign(gs->priv, &gs->spec, msg, msglen, out, &outlen)) {
        k->sign_failed++;
        test_dump_errors("offload sign");
        print_case("signing through offload failed", s, c);
    } else {
        match = outlen == siglen && memcmp(out, sig, siglen) == 0;
        k->match += match;
        k->mismatch += !match;
        if (!match)
            print_case("our signature differs from the vector's", s, c);
    }
    o = match && vrc == 1 ? WP_ACCEPT : WP_REJECT;
out:
    free(out);
    free(msg);
    free(sig);
    return o;
}

/* ------------------------------------------------------------------ */
/* The suites                                                          */
/* ------------------------------------------------------------------ */

#define PKCS1_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        f, "rsassa_pkcs1_verify_schema_v1.json", "RsassaPkcs1Verify", pkcs1_group_open,  \
            rsa_group_close, verify_check, NULL                                          \
    }
#define PSS_VERIFY_SUITE(f)                                                              \
    {                                                                                    \
        f, "rsassa_pss_verify_schema_v1.json", "RsassaPssVerify", pss_group_open,        \
            rsa_group_close, verify_check, NULL                                          \
    }

static void run_verify_suite(const struct wp_suite *s)
{
    struct wp_stats st;
    uint64_t inl0 = test_counter(env.offload, CTR_SIG_INLINE), inl1;

    assert_true(inl0 != UINT64_MAX);
    wp_run(s, &st);
    /* Verification runs inline and is not counted: the counter must not move. */
    inl1 = test_counter(env.offload, CTR_SIG_INLINE);
    assert_true(inl1 != UINT64_MAX);
    assert_int_equal(inl1, inl0);
}

static void test_rsa_pkcs1_2048_sha256(void **state)
{
    static const struct wp_suite s =
        PKCS1_VERIFY_SUITE("rsa_signature_2048_sha256_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pkcs1_3072_sha384(void **state)
{
    static const struct wp_suite s =
        PKCS1_VERIFY_SUITE("rsa_signature_3072_sha384_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pss_2048_sha256_mgf1_32(void **state)
{
    static const struct wp_suite s =
        PSS_VERIFY_SUITE("rsa_pss_2048_sha256_mgf1_32_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_rsa_pss_2048_sha256_mgf1_0(void **state)
{
    static const struct wp_suite s =
        PSS_VERIFY_SUITE("rsa_pss_2048_sha256_mgf1_0_test.json");

    (void)state;
    run_verify_suite(&s);
}

#define SIGGEN_FILE "rsa_pkcs1_2048_sig_gen_test.json"

static void test_rsa_pkcs1_2048_sig_gen(void **state)
{
    struct siggen_counts k = {0};
    const struct wp_suite s = {SIGGEN_FILE,
                               "rsassa_pkcs1_generate_schema_v1.json",
                               "RsassaPkcs1Generate",
                               pkcs1_group_open,
                               rsa_group_close,
                               siggen_check,
                               &k};
    struct wp_stats st;
    uint64_t inl0 = test_counter(env.offload, CTR_SIG_INLINE);
    uint64_t off0 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    uint64_t inl1, off1;

    (void)state;
    assert_true(inl0 != UINT64_MAX && off0 != UINT64_MAX);
    wp_run(&s, &st);
    inl1 = test_counter(env.offload, CTR_SIG_INLINE);
    off1 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    printf(
        "[wycheproof] %s: %zu signed (%zu failed), %zu equal to the vector, %zu differ; "
        "%zu vector signatures verify, %zu rejected; %zu bit-flipped signatures "
        "rejected, %zu accepted; %zu invalid vectors in the file; signature counters: "
        "inline +%llu, offloaded +%llu\n",
        SIGGEN_FILE, k.signs, k.sign_failed, k.match, k.mismatch, k.verified,
        k.verify_rejected, k.flipped_rejected, k.flipped_accepted,
        st.invalid_rejected + st.invalid_accepted, (unsigned long long)(inl1 - inl0),
        (unsigned long long)(off1 - off0));
    fflush(stdout);
    assert_true(k.signs > 0);
    assert_int_equal(k.sign_failed, 0);
    assert_int_equal(k.flipped_accepted, 0);
    /* Every signature ran in offload, on this thread: counted inline, never offloaded. */
    assert_int_equal(inl1 - inl0, k.signs);
    assert_int_equal(off1 - off0, 0);
}

/* ------------------------------------------------------------------ */
/* Signature generation inside ASYNC jobs                              */
/* ------------------------------------------------------------------ */

struct sign_task {
    EVP_PKEY *pkey; /* offload key pair (a reference) */
    const struct sig_spec *spec;
    unsigned char *msg, *expect, *out;
    size_t msglen, expectlen, outlen, outsize;
    long tcid;
    enum wp_result result;
    int ret; /* the job's return value; -1: ASYNC_ERR */
};

/* The job: everything it touches is on the heap; its own frame is a few words. */
static int sign_job(void *arg)
{
    struct sign_task *t = *(struct sign_task **)arg;

    t->outlen = t->outsize;
    return offload_sign(t->pkey, t->spec, t->msg, t->msglen, t->out, &t->outlen);
}

struct job_slot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    struct sign_task *task;
};

enum { STEP_PAUSED, STEP_DONE, STEP_NO_JOBS };

/* Starts (s->job == NULL) or resumes the slot's job. */
static int slot_step(struct job_slot *s)
{
    int ret = 0;

    switch (
        ASYNC_start_job(&s->job, s->wctx, &ret, sign_job, &s->task, sizeof(s->task))) {
    case ASYNC_PAUSE:
        return STEP_PAUSED;
    case ASYNC_NO_JOBS:
        return STEP_NO_JOBS;
    case ASYNC_FINISH:
        s->task->ret = ret;
        break;
    case ASYNC_ERR:
    default:
        s->task->ret = -1;
        break;
    }
    if (s->task->ret != 1)
        test_dump_errors("signing job");
    ASYNC_WAIT_CTX_free(s->wctx);
    s->wctx = NULL;
    s->job = NULL;
    s->task = NULL;
    return STEP_DONE;
}

/*
 * Runs every task in its own job, each with its own ASYNC_WAIT_CTX, at
 * most MAX_JOBS at a time; paused jobs are resumed when poll() says a
 * fd of their wait ctx is readable. Returns 0 (reason printed) when the
 * jobs cannot be run to the end; *peak gets the most jobs in flight.
 */
static int run_sign_jobs(struct sign_task *tasks, size_t n, size_t *peak)
{
    struct job_slot slots[MAX_JOBS];
    struct pollfd pfd[MAX_JOBS * MAX_FDS_PER_JOB];
    size_t owner[MAX_JOBS * MAX_FDS_PER_JOB];
    size_t next = 0, done = 0, i;

    memset(slots, 0, sizeof(slots));
    *peak = 0;
    while (done < n) {
        size_t active = 0, npfd = 0;
        int ready[MAX_JOBS] = {0}, blind = 0, no_jobs = 0, rc;

        /* Fill the free slots. */
        for (i = 0; i < MAX_JOBS; i++) {
            struct job_slot *s = &slots[i];

            if (s->task == NULL && next < n) {
                s->wctx = ASYNC_WAIT_CTX_new();
                if (s->wctx == NULL) {
                    printf("    ASYNC_WAIT_CTX_new failed\n");
                    return 0;
                }
                s->task = &tasks[next++];
                rc = slot_step(s);
                if (rc == STEP_DONE)
                    done++;
                if (rc == STEP_NO_JOBS) {
                    ASYNC_WAIT_CTX_free(s->wctx);
                    s->wctx = NULL;
                    s->task = NULL;
                    next--;
                    no_jobs = 1;
                    break; /* retry when a job has finished */
                }
            }
            active += s->task != NULL;
        }
        for (; i < MAX_JOBS; i++)
            active += slots[i].task != NULL;
        if (active > *peak)
            *peak = active;
        if (active == 0) {
            if (no_jobs) {
                printf("    no ASYNC job could be started\n");
                return 0;
            }
            continue; /* every job finished without pausing: start more */
        }

        /* Wait for the wait fds of the paused jobs. */
        for (i = 0; i < MAX_JOBS; i++) {
            OSSL_ASYNC_FD fds[MAX_FDS_PER_JOB];
            size_t nfds = 0, f;

            if (slots[i].task == NULL)
                continue;
            if (!ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx, NULL, &nfds) ||
                nfds > MAX_FDS_PER_JOB ||
                (nfds > 0 && !ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx, fds, &nfds))) {
                printf("    tcId %ld: cannot read the wait fds (%zu)\n",
                       slots[i].task->tcid, nfds);
                return 0;
            }
            if (nfds == 0) {
                /* Paused without a fd to wait on: resume it anyway. */
                ready[i] = blind = 1;
                continue;
            }
            for (f = 0; f < nfds; f++) {
                pfd[npfd].fd = fds[f];
                pfd[npfd].events = POLLIN;
                pfd[npfd].revents = 0;
                owner[npfd++] = i;
            }
        }
        rc = poll(pfd, npfd, blind ? 0 : POLL_TIMEOUT_MS);
        if (rc < 0 && errno != EINTR) {
            printf("    poll: %s\n", strerror(errno));
            return 0;
        }
        if (rc == 0 && !blind) {
            printf("    no wait fd became readable within %d ms; paused:",
                   POLL_TIMEOUT_MS);
            for (i = 0; i < MAX_JOBS; i++)
                if (slots[i].task != NULL)
                    printf(" tcId %ld", slots[i].task->tcid);
            printf("\n");
            return 0;
        }
        for (i = 0; rc > 0 && i < npfd; i++)
            if (pfd[i].revents != 0)
                ready[owner[i]] = 1;

        /* Resume the jobs whose work is done. */
        for (i = 0; i < MAX_JOBS; i++) {
            if (!ready[i])
                continue;
            rc = slot_step(&slots[i]);
            if (rc == STEP_DONE)
                done++;
            if (rc == STEP_NO_JOBS) {
                printf("    resuming a paused job returned ASYNC_NO_JOBS\n");
                return 0;
            }
        }
    }
    return 1;
}

static void free_tasks(struct sign_task *tasks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        EVP_PKEY_free(tasks[i].pkey);
        free(tasks[i].msg);
        free(tasks[i].expect);
        free(tasks[i].out);
    }
    free(tasks);
}

/* Group states of the generation file, kept until the jobs are done (specs live there).
 */
struct siggen_load {
    struct sign_task *tasks;
    size_t n, cap;
    struct rsa_group *groups[64];
    size_t ngroups;
};

static int collect_tasks(json_object *root, struct siggen_load *L)
{
    static const struct wp_suite s = {SIGGEN_FILE,
                                      "rsassa_pkcs1_generate_schema_v1.json",
                                      "RsassaPkcs1Generate",
                                      pkcs1_group_open,
                                      rsa_group_close,
                                      siggen_check,
                                      NULL};
    json_object *groups, *tests;
    size_t g, t;

    if (!json_object_object_get_ex(root, "testGroups", &groups))
        return 0;
    for (g = 0; g < json_object_array_length(groups); g++) {
        json_object *group = json_object_array_get_idx(groups, g);
        void *gs = NULL;
        const char *type = jstr(group, "type");

        if (type == NULL || strcmp(type, s.group_type) != 0 ||
            !json_object_object_get_ex(group, "tests", &tests) ||
            L->ngroups == sizeof(L->groups) / sizeof(L->groups[0]) ||
            pkcs1_group_open(&s, group, &gs) != 1)
            return 0;
        L->groups[L->ngroups++] = gs;
        for (t = 0; t < json_object_array_length(tests); t++) {
            struct wp_case c;
            struct sign_task *k;

            if (!parse_case(json_object_array_get_idx(tests, t), &c))
                return 0;
            if (c.result == WP_INVALID)
                continue; /* nothing to sign against (none in the file) */
            if (L->n == L->cap) {
                size_t cap = L->cap != 0 ? 2 * L->cap : 64;
                struct sign_task *nt = realloc(L->tasks, cap * sizeof(*nt));

                if (nt == NULL)
                    return 0;
                L->tasks = nt;
                L->cap = cap;
            }
            k = &L->tasks[L->n];
            memset(k, 0, sizeof(*k));
            L->n++;
            k->tcid = c.tcid;
            k->result = c.result;
            k->spec = &((struct rsa_group *)gs)->spec;
            k->pkey = ((struct rsa_group *)gs)->priv;
            EVP_PKEY_up_ref(k->pkey);
            k->outsize = (size_t)EVP_PKEY_get_size(k->pkey);
            k->out = malloc(k->outsize);
            if (k->out == NULL ||
                !sig_fields(&c, &k->msg, &k->msglen, &k->expect, &k->expectlen))
                return 0;
        }
    }
    return 1;
}

static void test_rsa_pkcs1_2048_sig_gen_async(void **state)
{
    struct siggen_load L;
    json_object *root;
    uint64_t off0, inl0, qf0, fail0, pause0, off1, inl1, qf1, fail1, pause1;
    size_t i, peak = 0, valid_ok = 0, valid_bad = 0, acc_match = 0, acc_differ = 0;
    int collected, ran;

    (void)state;
    memset(&L, 0, sizeof(L));
    root = wp_load(SIGGEN_FILE);
    collected = collect_tasks(root, &L);
    json_object_put(root);
    if (!collected) {
        free_tasks(L.tasks, L.n);
        for (i = 0; i < L.ngroups; i++)
            rsa_group_close(L.groups[i]);
        fail_msg("%s: cannot load the vectors for the async run", SIGGEN_FILE);
    }

    off0 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    inl0 = test_counter(env.offload, CTR_SIG_INLINE);
    qf0 = test_counter(env.offload, CTR_SIG_QUEUE_FULL);
    fail0 = test_counter(env.offload, CTR_SIG_FAILED);
    pause0 = test_counter(env.offload, CTR_SIG_PAUSES);
    ran = run_sign_jobs(L.tasks, L.n, &peak);
    off1 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    inl1 = test_counter(env.offload, CTR_SIG_INLINE);
    qf1 = test_counter(env.offload, CTR_SIG_QUEUE_FULL);
    fail1 = test_counter(env.offload, CTR_SIG_FAILED);
    pause1 = test_counter(env.offload, CTR_SIG_PAUSES);

    for (i = 0; ran && i < L.n; i++) {
        const struct sign_task *k = &L.tasks[i];
        int match = k->ret == 1 && k->outlen == k->expectlen &&
                    memcmp(k->out, k->expect, k->expectlen) == 0;

        if (k->result == WP_VALID) {
            valid_ok += match;
            valid_bad += !match;
        } else {
            acc_match += match;
            acc_differ += !match;
        }
        if (!match)
            printf("    %s async: tcId %ld (%s): %s\n", SIGGEN_FILE, k->tcid,
                   result_name(k->result),
                   k->ret == 1 ? "signature differs from the vector" : "signing failed");
    }
    printf("[wycheproof] %s (async, %d jobs max, at most %zu paused at once): %zu "
           "signatures: "
           "%zu valid equal, %zu valid differ, %zu acceptable equal, %zu acceptable "
           "differ; signature counters: offloaded +%llu, inline +%llu, queue-full +%llu, "
           "failed +%llu, pauses +%llu\n",
           SIGGEN_FILE, MAX_JOBS, peak, L.n, valid_ok, valid_bad, acc_match, acc_differ,
           (unsigned long long)(off1 - off0), (unsigned long long)(inl1 - inl0),
           (unsigned long long)(qf1 - qf0), (unsigned long long)(fail1 - fail0),
           (unsigned long long)(pause1 - pause0));
    fflush(stdout);

    free_tasks(L.tasks, L.n);
    for (i = 0; i < L.ngroups; i++)
        rsa_group_close(L.groups[i]);
    ASYNC_cleanup_thread();

    assert_true(ran);
    assert_true(L.n > 0);
    assert_int_equal(valid_ok + valid_bad + acc_match + acc_differ, L.n);
    assert_true(valid_ok > 0);
    assert_int_equal(valid_bad, 0);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && inl1 != UINT64_MAX &&
                qf1 != UINT64_MAX && fail1 != UINT64_MAX);
    /* The workers signed: offloaded grew, and only a full queue sends one inline. */
    assert_true(off1 > off0);
    assert_int_equal((off1 - off0) + (inl1 - inl0), L.n);
    assert_int_equal(inl1 - inl0, qf1 - qf0);
    assert_int_equal(fail1 - fail0, 0);
}

/* ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    EVP_SIGNATURE *sig;
    int ok;

    (void)state;
    if (!test_env_open(&env, NULL))
        return -1;
    /* offload must offer RSA signatures at all, or every test below is moot. */
    sig = EVP_SIGNATURE_fetch(env.libctx, "RSA", OFFLOAD_PROPQ);
    ok = sig != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(sig)),
                               OFFLOAD_PROVIDER_NAME) == 0;
    EVP_SIGNATURE_free(sig);
    if (!ok) {
        test_dump_errors("fetch RSA signature from offload");
        test_env_close(&env);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_env_close(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_pkcs1_2048_sha256),
        cmocka_unit_test(test_rsa_pkcs1_3072_sha384),
        cmocka_unit_test(test_rsa_pss_2048_sha256_mgf1_32),
        cmocka_unit_test(test_rsa_pss_2048_sha256_mgf1_0),
        cmocka_unit_test(test_rsa_pkcs1_2048_sig_gen),
        cmocka_unit_test(test_rsa_pkcs1_2048_sig_gen_async),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

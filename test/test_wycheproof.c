/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wycheproof vectors through the offload provider.
 *
 * Every signature key is decoded by the default provider's decoders,
 * then moved into offload's key management (EVP_PKEY_todata +
 * EVP_PKEY_fromdata with "provider=offload"), and every operation is
 * fetched with the property query "provider=offload"; each one asserts
 * that the operation's provider is offload before running it.
 *
 * One cmocka test per file. A generic driver walks testGroups[].tests[],
 * hands each group to the suite's group_open (keys, parameters) and each
 * test to its check function, and counts the outcome against the
 * vector's "result":
 *   valid      must be accepted,
 *   invalid    must be rejected,
 *   acceptable either; the split is printed, never a failure.
 * A file fails when it yields no test, when the count differs from its
 * numberOfTests, or on any harness error. Acceptable vectors are printed
 * one by one up to a limit, then tallied per flag.
 *
 * Families: RSA PKCS#1 v1.5 and PSS verification, RSA signature
 * generation; ECDSA P-256/P-384 verification (DER signatures); Ed25519
 * and Ed448 one-shot verification (no digest); X25519 and ECDH P-256/
 * P-384 derivation. Key exchange keys are built by offload's key
 * management (EVP_PKEY_fromdata with "provider=offload": X25519 from the
 * raw bytes, ECDH private keys from the scalar, ECDH peers decoded by the
 * default decoders and moved over with todata/fromdata), derived through
 * offload's key exchange, and each vector is also run by the default
 * provider alone in its own library context: the two verdicts must agree.
 * Invalid ECDH peers (invalid-curve points, wrong curves, bad encodings)
 * must be refused at the decode, the import, set_peer or the derive; the
 * only exceptions are invalid vectors that OpenSSL 3.0 itself accepts
 * identically, in the narrow case named by known_leniency().
 *
 * The RSA signature generation file is run a second time inside ASYNC
 * jobs (up to MAX_JOBS in flight, driven by poll() on the wait fds) to
 * prove that the worker threads produce the exact signatures; the valid
 * ECDSA P-256 and X25519 vectors likewise (EC_ASYNC_JOBS in flight), with
 * the offloaded counters asserted. Verification itself always runs
 * inline (never counted), so each ECDSA job also signs the vector's
 * message with an offload P-256 key, checked by the default provider.
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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "offload.h"
#include "common.h"

#define MAX_JOBS        16
#define MAX_FDS_PER_JOB 4

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
    WP_ACCEPT,  /* the implementation accepted the vector */
    WP_REJECT,  /* it rejected it */
    WP_SKIP,    /* this program cannot run this kind of vector (reason printed) */
    WP_LENIENT, /* invalid, accepted exactly as OpenSSL's default provider alone
                   accepts it, in a case listed as a known OpenSSL leniency */
    WP_ERROR,   /* the harness failed (reason printed): the file fails */
};

/* The fields every Wycheproof test shares; family-specific ones stay in |json|. */
struct wp_case {
    long tcid;
    enum wp_result result;
    const char *comment;
    json_object *json;
};

#define WP_MAX_FLAGS        48
#define WP_PRINT_ACCEPTABLE 16 /* acceptable vectors printed one by one per file */

/* Verdicts on the acceptable vectors carrying one flag. */
struct wp_flag_tally {
    char name[48];
    size_t accepted, rejected;
};

struct wp_stats {
    size_t total;
    size_t valid_ok, valid_bad;
    size_t invalid_rejected, invalid_accepted;
    size_t acc_accepted, acc_rejected;
    size_t skipped, errors;
    size_t lenient; /* invalid vectors accepted as OpenSSL itself does (WP_LENIENT) */
    struct wp_flag_tally flags[WP_MAX_FLAGS];
    size_t nflags;
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

/* Counts an acceptable vector's verdict under each of its flags. */
static void tally_flags(struct wp_stats *st, const struct wp_case *c, int accepted)
{
    json_object *flags = NULL;
    size_t i, j, n;

    if (!json_object_object_get_ex(c->json, "flags", &flags) ||
        !json_object_is_type(flags, json_type_array))
        return;
    n = json_object_array_length(flags);
    for (i = 0; i < n; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(flags, i));

        if (f == NULL)
            continue;
        for (j = 0; j < st->nflags; j++)
            if (strcmp(st->flags[j].name, f) == 0)
                break;
        if (j == st->nflags) {
            if (st->nflags == WP_MAX_FLAGS || strlen(f) >= sizeof(st->flags[j].name))
                continue;
            strcpy(st->flags[st->nflags++].name, f);
        }
        if (accepted)
            st->flags[j].accepted++;
        else
            st->flags[j].rejected++;
    }
}

static void wp_count(const struct wp_suite *s, struct wp_stats *st,
                     const struct wp_case *c, enum wp_outcome o)
{
    switch (o) {
    case WP_SKIP:
        st->skipped++;
        return;
    case WP_LENIENT:
        if (c->result != WP_INVALID) {
            st->errors++;
            print_case("HARNESS ERROR: leniency claimed for a vector not invalid", s, c);
            return;
        }
        st->lenient++;
        print_case("invalid vector accepted, exactly as the default provider alone "
                   "accepts it (known OpenSSL leniency, counted, not failed)",
                   s, c);
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
        tally_flags(st, c, o == WP_ACCEPT);
        /* Printed one by one up to a limit, then only per flag (see wp_run). */
        if (st->acc_accepted + st->acc_rejected <= WP_PRINT_ACCEPTABLE)
            print_case(o == WP_ACCEPT ? "acceptable: accepted" : "acceptable: rejected",
                       s, c);
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
    if (st->lenient > 0)
        printf("; %zu invalid accepted as OpenSSL's default provider does (known "
               "leniency)",
               st->lenient);
    if (st->valid_bad + st->invalid_accepted + st->skipped + st->errors > 0)
        printf("; %zu VALID REJECTED, %zu INVALID ACCEPTED, %zu not runnable, %zu errors",
               st->valid_bad, st->invalid_accepted, st->skipped, st->errors);
    printf("\n");
    if (st->acc_accepted + st->acc_rejected > WP_PRINT_ACCEPTABLE) {
        size_t f;

        printf("    %s: acceptable vectors by flag (a vector may carry several):\n",
               s->file);
        for (f = 0; f < st->nflags; f++)
            printf("      %-28s %4zu accepted, %4zu rejected\n", st->flags[f].name,
                   st->flags[f].accepted, st->flags[f].rejected);
    }
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

/*
 * DER (hex) decoded by the default provider's decoders; |quiet|: a
 * failure is an expected verdict, its errors are dropped, not printed.
 */
static EVP_PKEY *decode_default_q(const char *hex, const char *structure, int selection,
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
                                         env.libctx, DEFAULT_PROPQ);
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

static EVP_PKEY *decode_default(const char *hex, const char *structure, int selection)
{
    return decode_default_q(hex, structure, selection, 0);
}

/*
 * A copy of |src| made by offload's key management from |src|'s exported
 * data, in *out. 1 done; 0 export or import refused (errors dropped when
 * |quiet|, else printed); -1 harness error (the copy is not in offload
 * or differs from |src|: reason printed).
 */
static int import_offload_q(EVP_PKEY *src, int selection, int quiet, EVP_PKEY **out)
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
    kctx = EVP_PKEY_CTX_new_from_name(env.libctx, EVP_PKEY_get0_type_name(src),
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
static EVP_PKEY *import_into_offload(EVP_PKEY *src, int selection)
{
    EVP_PKEY *dst;

    import_offload_q(src, selection, 0, &dst);
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

/* The digest of |sp|; NULL (none: EdDSA) when empty. */
static const char *md_name(const struct sig_spec *sp)
{
    return sp->md[0] != '\0' ? sp->md : NULL;
}

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
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, md_name(sp), env.libctx, OFFLOAD_PROPQ, pkey,
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
    if (EVP_DigestSignInit_ex(mctx, &pctx, md_name(sp), env.libctx, OFFLOAD_PROPQ, pkey,
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

/* ------------------------------------------------------------------ */
/* A batch of ASYNC jobs driven by poll() on their wait fds            */
/* ------------------------------------------------------------------ */

/* The work of one job on one task (an element of the batch's array). */
typedef int job_work_fn(void *task);

struct job_arg {
    job_work_fn *work;
    void *task;
};

/* The job: everything it touches is on the heap; its own frame is a few words. */
static int job_main(void *arg)
{
    const struct job_arg *a = arg;

    return a->work(a->task);
}

struct job_batch {
    const char *what;  /* for messages */
    job_work_fn *work; /* run in each job */
    char *tasks;       /* n elements of |stride| bytes */
    size_t stride, n;
    size_t max_jobs;              /* in flight at most */
    int *rets;                    /* per task: the job's return value; -1: ASYNC_ERR */
    long (*id)(const void *task); /* the task's tcId, for messages */
};

struct job_slot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    size_t idx;
    int busy;
};

enum { STEP_PAUSED, STEP_DONE, STEP_NO_JOBS };

static void *task_at(const struct job_batch *b, size_t i)
{
    return b->tasks + i * b->stride;
}

/* Starts (s->job == NULL) or resumes the slot's job. */
static int slot_step(const struct job_batch *b, struct job_slot *s)
{
    struct job_arg a = {b->work, task_at(b, s->idx)};
    int ret = 0;

    switch (ASYNC_start_job(&s->job, s->wctx, &ret, job_main, &a, sizeof(a))) {
    case ASYNC_PAUSE:
        return STEP_PAUSED;
    case ASYNC_NO_JOBS:
        return STEP_NO_JOBS;
    case ASYNC_FINISH:
        b->rets[s->idx] = ret;
        break;
    case ASYNC_ERR:
    default:
        b->rets[s->idx] = -1;
        break;
    }
    if (b->rets[s->idx] != 1)
        test_dump_errors(b->what);
    s->job = NULL;
    s->busy = 0; /* the slot keeps its wait ctx for its next job */
    return STEP_DONE;
}

/*
 * Runs every task of |b| in its own job, at most b->max_jobs at a time;
 * paused jobs are resumed when poll() says a fd of their wait ctx is
 * readable. Each slot keeps one ASYNC_WAIT_CTX for all its jobs, as an
 * event loop keeps one per connection: a wait ctx freed and allocated
 * again per job tends to come back at the same address, which the
 * provider takes for the same job asking again (async.c keeps a cheap
 * operation inline then). Returns 0 (reason printed) when the jobs
 * cannot be run to the end; *peak gets the most jobs in flight.
 */
static int run_jobs_poll(const struct job_batch *b, size_t *peak)
{
    size_t maxj = b->max_jobs, maxfd = b->max_jobs * MAX_FDS_PER_JOB;
    struct job_slot *slots = calloc(maxj, sizeof(*slots));
    struct pollfd *pfd = calloc(maxfd, sizeof(*pfd));
    size_t *owner = calloc(maxfd, sizeof(*owner));
    int *ready = calloc(maxj, sizeof(*ready));
    size_t next = 0, done = 0, i;
    int ok = 0;

    *peak = 0;
    if (slots == NULL || pfd == NULL || owner == NULL || ready == NULL) {
        printf("    out of memory\n");
        goto out;
    }
    while (done < b->n) {
        size_t active = 0, npfd = 0;
        int blind = 0, no_jobs = 0, rc;

        memset(ready, 0, maxj * sizeof(*ready));
        /* Fill the free slots. */
        for (i = 0; i < maxj; i++) {
            struct job_slot *s = &slots[i];

            if (!s->busy && next < b->n) {
                if (s->wctx == NULL && (s->wctx = ASYNC_WAIT_CTX_new()) == NULL) {
                    printf("    ASYNC_WAIT_CTX_new failed\n");
                    goto out;
                }
                s->idx = next++;
                s->busy = 1;
                rc = slot_step(b, s);
                if (rc == STEP_DONE)
                    done++;
                if (rc == STEP_NO_JOBS) {
                    s->busy = 0;
                    next--;
                    no_jobs = 1;
                    break; /* retry when a job has finished */
                }
            }
            active += s->busy;
        }
        for (; i < maxj; i++)
            active += slots[i].busy;
        if (active > *peak)
            *peak = active;
        if (active == 0) {
            if (no_jobs) {
                printf("    no ASYNC job could be started\n");
                goto out;
            }
            continue; /* every job finished without pausing: start more */
        }

        /* Wait for the wait fds of the paused jobs. */
        for (i = 0; i < maxj; i++) {
            OSSL_ASYNC_FD fds[MAX_FDS_PER_JOB];
            size_t nfds = 0, f;

            if (!slots[i].busy)
                continue;
            if (!ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx, NULL, &nfds) ||
                nfds > MAX_FDS_PER_JOB ||
                (nfds > 0 && !ASYNC_WAIT_CTX_get_all_fds(slots[i].wctx, fds, &nfds))) {
                printf("    tcId %ld: cannot read the wait fds (%zu)\n",
                       b->id(task_at(b, slots[i].idx)), nfds);
                goto out;
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
            goto out;
        }
        if (rc == 0 && !blind) {
            printf("    no wait fd became readable within %d ms; paused:",
                   POLL_TIMEOUT_MS);
            for (i = 0; i < maxj; i++)
                if (slots[i].busy)
                    printf(" tcId %ld", b->id(task_at(b, slots[i].idx)));
            printf("\n");
            goto out;
        }
        for (i = 0; rc > 0 && i < npfd; i++)
            if (pfd[i].revents != 0)
                ready[owner[i]] = 1;

        /* Resume the jobs whose work is done. */
        for (i = 0; i < maxj; i++) {
            if (!ready[i])
                continue;
            rc = slot_step(b, &slots[i]);
            if (rc == STEP_DONE)
                done++;
            if (rc == STEP_NO_JOBS) {
                printf("    resuming a paused job returned ASYNC_NO_JOBS\n");
                goto out;
            }
        }
    }
    ok = 1;
out:
    if (!ok && slots != NULL)
        printf("    %s: %zu of %zu jobs finished\n", b->what, done, b->n);
    for (i = 0; slots != NULL && i < maxj; i++) {
        /* A job left paused keeps its wait ctx (it may still use it). */
        if (!slots[i].busy)
            ASYNC_WAIT_CTX_free(slots[i].wctx);
    }
    free(slots);
    free(pfd);
    free(owner);
    free(ready);
    return ok;
}

static int sign_work(void *vt)
{
    struct sign_task *t = vt;

    t->outlen = t->outsize;
    return offload_sign(t->pkey, t->spec, t->msg, t->msglen, t->out, &t->outlen);
}

static long sign_task_id(const void *vt)
{
    return ((const struct sign_task *)vt)->tcid;
}

/* The RSA signing tasks, at most MAX_JOBS in flight. */
static int run_sign_jobs(struct sign_task *tasks, size_t n, size_t *peak)
{
    int *rets = calloc(n, sizeof(*rets));
    struct job_batch b = {"signing job", sign_work, (char *)tasks, sizeof(*tasks), n,
                          MAX_JOBS,      rets,      sign_task_id};
    size_t i;
    int ok;

    if (rets == NULL)
        return 0;
    ok = run_jobs_poll(&b, peak);
    for (i = 0; i < n; i++)
        tasks[i].ret = rets[i];
    free(rets);
    return ok;
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
/* Elliptic curves: helpers                                            */
/* ------------------------------------------------------------------ */

#define CTR_KEX_INLINE    "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_INLINE
#define CTR_KEX_OFFLOADED "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_OFFLOADED
#define CTR_KEX_FAILED    "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_FAILED
#define EC_ASYNC_JOBS     32
#define SECRET_MAX        160

/* Wycheproof's curve names and OpenSSL's. */
static const struct {
    const char *wp, *ossl;
} wp_curves[] = {
    {"secp224r1", "secp224r1"},
    {"secp256r1", "prime256v1"},
    {"secp384r1", "secp384r1"},
    {"secp521r1", "secp521r1"},
};

static const char *ossl_curve(const char *wp)
{
    size_t i;

    for (i = 0; wp != NULL && i < sizeof(wp_curves) / sizeof(wp_curves[0]); i++)
        if (strcmp(wp_curves[i].wp, wp) == 0)
            return wp_curves[i].ossl;
    return NULL;
}

/* 1 when EC key |pkey| is on the curve OpenSSL names |curve|. */
static int key_on_curve(const EVP_PKEY *pkey, const char *curve)
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
static int verify_in(const char *propq, const char *provname, EVP_PKEY *pkey,
                     const struct sig_spec *sp, const unsigned char *msg, size_t msglen,
                     const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const OSSL_PROVIDER *p;
    int rc = -1;

    if (mctx == NULL)
        return -1;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, md_name(sp), env.libctx, propq, pkey,
                                NULL) == 1 &&
        set_sig_params(pctx, sp) && (p = EVP_PKEY_CTX_get0_provider(pctx)) != NULL &&
        strcmp(OSSL_PROVIDER_get0_name(p), provname) == 0)
        rc = EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(mctx);
    return rc;
}

/*
 * Where a key exchange runs: offload (in env.libctx, fetched with
 * "provider=offload") or, for reference, the default provider alone in
 * its own library context.
 */
enum side { OFFLOAD_SIDE, REFERENCE_SIDE };

static OSSL_LIB_CTX *defctx;
static OSSL_PROVIDER *defprov; /* the reference: the default provider only */

static OSSL_LIB_CTX *side_ctx(enum side w)
{
    return w == OFFLOAD_SIDE ? env.libctx : defctx;
}

static const char *side_propq(enum side w)
{
    return w == OFFLOAD_SIDE ? OFFLOAD_PROPQ : NULL;
}

static const char *side_prov(enum side w)
{
    return w == OFFLOAD_SIDE ? OFFLOAD_PROVIDER_NAME : "default";
}

/*
 * A key built with EVP_PKEY_fromdata from |params| by the key management
 * of |w| (offload's: EVP_PKEY_CTX_new_from_name with "provider=offload"),
 * in *out. 1 done; 0 refused (errors dropped); -1 harness error (reason
 * printed).
 */
static int fromdata_in(enum side w, const char *type, int selection, OSSL_PARAM *params,
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
static int ec_private_key(enum side w, const char *curve, const char *hex, EVP_PKEY **out)
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
static int xdh_raw_key(enum side w, const char *type, const char *param, const char *hex,
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

enum { D_OK = 1, D_PEER_REFUSED = 0, D_SETUP = -1, D_DERIVE_FAILED = -2 };

/*
 * |priv| with |peer| through the key exchange of |w|: for offload the
 * context is made by EVP_PKEY_CTX_new_from_pkey with "provider=offload"
 * and asserted to be offload's. D_OK with the secret in |out| (*outlen:
 * size in, length out), or which step failed. Prints nothing (also runs
 * in ASYNC jobs).
 */
static int derive_in(enum side w, EVP_PKEY *priv, EVP_PKEY *peer, unsigned char *out,
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
/* ECDSA and EdDSA verification                                        */
/* ------------------------------------------------------------------ */

/* ECDSA groups: the rsa_group of the RSA files (public key and digest), on a curve. */
static int ecdsa_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct rsa_group *gs;
    json_object *pk = NULL;
    const char *wp = NULL, *curve;

    (void)s;
    if (json_object_object_get_ex(group, "publicKey", &pk))
        wp = jstr(pk, "curve");
    curve = ossl_curve(wp);
    if (curve == NULL) {
        printf("    ECDSA group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    if (!rsa_group_load(group, 0, &gs))
        return 0;
    if (!key_on_curve(gs->pub, curve)) {
        printf("    ECDSA group key is not an EC key on %s\n", curve);
        rsa_group_close(gs);
        return 0;
    }
    *out = gs;
    return 1;
}

/* EdDSA groups: the public key only; no digest (one-shot, NULL md). */
static int eddsa_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct rsa_group *gs;
    json_object *pk = NULL;
    const char *wp = NULL, *type;

    (void)s;
    if (json_object_object_get_ex(group, "publicKey", &pk))
        wp = jstr(pk, "curve");
    type = wp == NULL                        ? NULL
           : strcmp(wp, "edwards25519") == 0 ? "ED25519"
           : strcmp(wp, "edwards448") == 0   ? "ED448"
                                             : NULL;
    if (type == NULL) {
        printf("    EdDSA group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->pub = offload_key(jstr(group, "publicKeyDer"), "SubjectPublicKeyInfo",
                          EVP_PKEY_PUBLIC_KEY);
    if (gs->pub == NULL || !EVP_PKEY_is_a(gs->pub, type)) {
        printf("    EdDSA group without a usable %s public key\n", type);
        rsa_group_close(gs);
        return 0;
    }
    *out = gs;
    return 1;
}

#define ECDSA_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        .file = f, .schema = "ecdsa_verify_schema_v1.json", .group_type = "EcdsaVerify", \
        .group_open = ecdsa_group_open, .group_close = rsa_group_close,                  \
        .check = verify_check                                                            \
    }
#define EDDSA_VERIFY_SUITE(f)                                                            \
    {                                                                                    \
        .file = f, .schema = "eddsa_verify_schema_v1.json", .group_type = "EddsaVerify", \
        .group_open = eddsa_group_open, .group_close = rsa_group_close,                  \
        .check = verify_check                                                            \
    }

static void test_ecdsa_secp256r1_sha256(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp256r1_sha256_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_ecdsa_secp384r1_sha384(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp384r1_sha384_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_ed25519(void **state)
{
    static const struct wp_suite s = EDDSA_VERIFY_SUITE("ed25519_test.json");

    (void)state;
    run_verify_suite(&s);
}

static void test_ed448(void **state)
{
    static const struct wp_suite s = EDDSA_VERIFY_SUITE("ed448_test.json");

    (void)state;
    run_verify_suite(&s);
}

/* ------------------------------------------------------------------ */
/* Key exchange: X25519 and ECDH                                       */
/* ------------------------------------------------------------------ */

/* Where each vector of a key exchange file ended. */
struct kex_counts {
    size_t derived, equal,
        wrong;             /* offload's secrets; equal to / differing from "shared" */
    size_t decode_refused; /* peer key refused by the default decoders (ECDH) */
    size_t import_refused; /* peer key refused by offload's EVP_PKEY_fromdata */
    size_t peer_refused;   /* EVP_PKEY_derive_set_peer failed */
    size_t derive_failed;  /* EVP_PKEY_derive failed */
    size_t ref_agree, ref_differ; /* offload vs. the default provider alone */
};

struct kex_group {
    const char *type;  /* "EC", "X25519", "X448" */
    const char *curve; /* EC: OpenSSL's name of the curve */
};

static void kex_group_close(void *vgs)
{
    free(vgs);
}

static int xdh_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct kex_group *gs;
    const char *curve = jstr(group, "curve");
    const char *type = curve == NULL                      ? NULL
                       : strcmp(curve, "curve25519") == 0 ? "X25519"
                       : strcmp(curve, "curve448") == 0   ? "X448"
                                                          : NULL;

    (void)s;
    if (type == NULL) {
        printf("    XDH group on curve \"%s\": not known here\n",
               curve != NULL ? curve : "(none)");
        return 0;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->type = type;
    *out = gs;
    return 1;
}

static int ecdh_group_open(const struct wp_suite *s, json_object *group, void **out)
{
    struct kex_group *gs;
    const char *wp = jstr(group, "curve"), *enc = jstr(group, "encoding");
    const char *curve = ossl_curve(wp);

    (void)s;
    if (curve == NULL) {
        printf("    ECDH group on curve \"%s\": not known here\n",
               wp != NULL ? wp : "(none)");
        return 0;
    }
    if (enc == NULL || strcmp(enc, "asn") != 0) {
        printf("    ECDH group with public keys encoded as \"%s\": only \"asn\" "
               "(SubjectPublicKeyInfo) is handled; its tests are not run\n",
               enc != NULL ? enc : "(none)");
        return -1;
    }
    gs = calloc(1, sizeof(*gs));
    if (gs == NULL)
        return 0;
    gs->type = "EC";
    gs->curve = curve;
    *out = gs;
    return 1;
}

/* What one side made of a key exchange vector. */
struct kex_result {
    int accepted; /* a secret was derived */
    unsigned char secret[SECRET_MAX];
    size_t len;
};

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
    json_object *flags = NULL;
    size_t i, n;
    int unnamed = 0, cofactor = 0;

    if (!json_object_object_get_ex(c->json, "flags", &flags) ||
        !json_object_is_type(flags, json_type_array))
        return 0;
    n = json_object_array_length(flags);
    for (i = 0; i < n; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(flags, i));

        if (f == NULL)
            continue;
        unnamed |= strcmp(f, "UnnamedCurve") == 0;
        cofactor |= strcmp(f, "NoCofactor") == 0 || strcmp(f, "LargeCofactor") == 0;
    }
    return unnamed && cofactor;
}

/* Derives |priv| with |peer| on side |w| into |r|; counts offload's refusals. */
static int kex_derive(enum side w, struct kex_counts *k, EVP_PKEY *priv, EVP_PKEY *peer,
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
static enum wp_outcome kex_judge(const struct wp_suite *s, const struct wp_case *c,
                                 const struct kex_result *o, const struct kex_result *ref)
{
    struct kex_counts *k = s->data;
    unsigned char *shared = NULL;
    size_t sharedlen = 0;
    int agree, equal;
    enum wp_outcome v;

    if (!jhex(c->json, "shared", &shared, &sharedlen)) {
        print_case("no usable \"shared\"", s, c);
        return WP_ERROR;
    }
    agree = o->accepted == ref->accepted &&
            (!o->accepted ||
             (o->len == ref->len && memcmp(o->secret, ref->secret, o->len) == 0));
    if (agree) {
        k->ref_agree++;
    } else {
        k->ref_differ++;
        print_case(!o->accepted ? "FAIL: offload refuses, the default provider accepts"
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
        print_case("FAIL: the derived secret differs from \"shared\"", s, c);
        return c->result == WP_VALID ? WP_REJECT : WP_ACCEPT;
    }
    k->equal++;
    v = WP_ACCEPT;
    if (c->result == WP_INVALID && agree && known_leniency(c))
        v = WP_LENIENT;
    return v;
}

/* X25519/X448 on side |w|: keys from the raw bytes, then derive. */
static int xdh_side(enum side w, const struct kex_group *gs, const struct wp_case *c,
                    struct kex_counts *k, struct kex_result *r)
{
    EVP_PKEY *priv = NULL, *peer = NULL;
    int rc, ok = 0;

    memset(r, 0, sizeof(*r));
    if (xdh_raw_key(w, gs->type, OSSL_PKEY_PARAM_PRIV_KEY, jstr(c->json, "private"),
                    &priv) != 1) {
        test_dump_errors("private key");
        printf("    cannot build the private key in %s\n", side_prov(w));
        goto out;
    }
    rc =
        xdh_raw_key(w, gs->type, OSSL_PKEY_PARAM_PUB_KEY, jstr(c->json, "public"), &peer);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        k->import_refused += w == OFFLOAD_SIDE;
        ok = 1; /* refused */
        goto out;
    }
    ok = kex_derive(w, k, priv, peer, r);
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(peer);
    return ok;
}

static enum wp_outcome xdh_check(const struct wp_suite *s, void *vgs,
                                 const struct wp_case *c)
{
    struct kex_result o, ref;
    enum wp_outcome v = WP_ERROR;

    if (xdh_side(OFFLOAD_SIDE, vgs, c, s->data, &o) &&
        xdh_side(REFERENCE_SIDE, vgs, c, s->data, &ref))
        v = kex_judge(s, c, &o, &ref);
    OPENSSL_cleanse(&o, sizeof(o));
    OPENSSL_cleanse(&ref, sizeof(ref));
    return v;
}

/* The peer's SubjectPublicKeyInfo decoded in the reference context; NULL if refused. */
static EVP_PKEY *decode_reference(const char *hex)
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
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "SubjectPublicKeyInfo", NULL,
                                         EVP_PKEY_PUBLIC_KEY, defctx, NULL);
    if (dctx == NULL || !OSSL_DECODER_from_data(dctx, &p, &len)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    OSSL_DECODER_CTX_free(dctx);
    free(der);
    return pkey;
}

/*
 * ECDH on side |w|. Offload: the private key is built in offload from the
 * scalar; the peer's SubjectPublicKeyInfo is decoded by the default
 * decoders and moved into offload (todata/fromdata). Reference: all in
 * the default-only context. Invalid points, invalid curves and encodings
 * must be refused at one of the steps: decode, import, set_peer, derive.
 */
static int ecdh_side(enum side w, const struct kex_group *gs, const struct wp_case *c,
                     struct kex_counts *k, struct kex_result *r)
{
    EVP_PKEY *priv = NULL, *dec = NULL, *peer = NULL;
    int rc, ok = 0;

    memset(r, 0, sizeof(*r));
    if (ec_private_key(w, gs->curve, jstr(c->json, "private"), &priv) != 1) {
        test_dump_errors("private key");
        printf("    cannot build the private key in %s\n", side_prov(w));
        goto out;
    }
    if (w == REFERENCE_SIDE) {
        peer = decode_reference(jstr(c->json, "public"));
        ok = peer == NULL || kex_derive(w, k, priv, peer, r);
        goto out;
    }
    dec = decode_default_q(jstr(c->json, "public"), "SubjectPublicKeyInfo",
                           EVP_PKEY_PUBLIC_KEY, 1);
    if (dec == NULL) {
        k->decode_refused++;
        ok = 1;
        goto out;
    }
    rc = import_offload_q(dec, EVP_PKEY_PUBLIC_KEY, 1, &peer);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        k->import_refused++;
        ok = 1;
        goto out;
    }
    ok = kex_derive(w, k, priv, peer, r);
out:
    EVP_PKEY_free(priv);
    EVP_PKEY_free(dec);
    EVP_PKEY_free(peer);
    return ok;
}

static enum wp_outcome ecdh_check(const struct wp_suite *s, void *vgs,
                                  const struct wp_case *c)
{
    struct kex_result o, ref;
    enum wp_outcome v = WP_ERROR;

    if (ecdh_side(OFFLOAD_SIDE, vgs, c, s->data, &o) &&
        ecdh_side(REFERENCE_SIDE, vgs, c, s->data, &ref))
        v = kex_judge(s, c, &o, &ref);
    OPENSSL_cleanse(&o, sizeof(o));
    OPENSSL_cleanse(&ref, sizeof(ref));
    return v;
}

static void run_kex_suite(struct wp_suite *s)
{
    struct kex_counts k;
    struct wp_stats st;
    uint64_t inl0 = test_counter(env.offload, CTR_KEX_INLINE);
    uint64_t off0 = test_counter(env.offload, CTR_KEX_OFFLOADED), inl1, off1;

    memset(&k, 0, sizeof(k));
    s->data = &k;
    assert_true(inl0 != UINT64_MAX && off0 != UINT64_MAX);
    wp_run(s, &st);
    inl1 = test_counter(env.offload, CTR_KEX_INLINE);
    off1 = test_counter(env.offload, CTR_KEX_OFFLOADED);
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

#define XDH_SUITE(f)                                                                     \
    {                                                                                    \
        .file = f, .schema = "xdh_comp_schema_v1.json", .group_type = "XdhComp",         \
        .group_open = xdh_group_open, .group_close = kex_group_close, .check = xdh_check \
    }
#define ECDH_SUITE(f)                                                                    \
    {                                                                                    \
        .file = f, .schema = "ecdh_test_schema_v1.json", .group_type = "EcdhTest",       \
        .group_open = ecdh_group_open, .group_close = kex_group_close,                   \
        .check = ecdh_check                                                              \
    }

static void test_x25519(void **state)
{
    struct wp_suite s = XDH_SUITE("x25519_test.json");

    (void)state;
    run_kex_suite(&s);
}

static void test_ecdh_secp256r1(void **state)
{
    struct wp_suite s = ECDH_SUITE("ecdh_secp256r1_test.json");

    (void)state;
    run_kex_suite(&s);
}

static void test_ecdh_secp384r1(void **state)
{
    struct wp_suite s = ECDH_SUITE("ecdh_secp384r1_test.json");

    (void)state;
    run_kex_suite(&s);
}

/* ------------------------------------------------------------------ */
/* ECDSA P-256 and X25519 inside ASYNC jobs                            */
/* ------------------------------------------------------------------ */

struct ec_task {
    long tcid;
    EVP_PKEY *key;    /* ECDSA: the group's offload public key; X25519: offload private */
    EVP_PKEY *peer;   /* X25519: the offload peer key */
    EVP_PKEY *signer; /* ECDSA: offload P-256 key pair signing msg in the same job */
    const struct sig_spec *spec;
    unsigned char *msg, *sig, *expect, *out, *sync_out;
    size_t msglen, siglen, expectlen, outlen, outsize, sync_outlen;
    int sync_verdict; /* offload's verdict (ECDSA) or derive result (X25519), no job */
    int verdict;      /* ECDSA: offload's verdict inside the job */
};

struct ec_load {
    struct ec_task *tasks;
    size_t n, cap;
    void **groups;
    size_t ngroups, gcap;
    EVP_PKEY *signer;
};

typedef int ec_task_add_fn(struct ec_load *L, void *gs, const struct wp_case *c,
                           struct ec_task *t);

static long ec_task_id(const void *vt)
{
    return ((const struct ec_task *)vt)->tcid;
}

static void ec_load_free(struct ec_load *L, wp_group_close_fn *group_close)
{
    size_t i;

    for (i = 0; i < L->n; i++) {
        struct ec_task *t = &L->tasks[i];

        EVP_PKEY_free(t->key);
        EVP_PKEY_free(t->peer);
        EVP_PKEY_free(t->signer);
        free(t->msg);
        free(t->sig);
        free(t->expect);
        free(t->out);
        free(t->sync_out);
    }
    free(L->tasks);
    for (i = 0; i < L->ngroups; i++)
        group_close(L->groups[i]);
    free(L->groups);
    EVP_PKEY_free(L->signer);
    memset(L, 0, sizeof(*L));
}

/* A task for every valid vector of |s->file|; 0 (reason printed) on failure. */
static int ec_collect(const struct wp_suite *s, ec_task_add_fn *add, struct ec_load *L)
{
    json_object *root = wp_load(s->file), *groups, *tests;
    size_t g, t;
    int ok = 0;

    if (!json_object_object_get_ex(root, "testGroups", &groups))
        goto out;
    for (g = 0; g < json_object_array_length(groups); g++) {
        json_object *group = json_object_array_get_idx(groups, g);
        const char *type = jstr(group, "type");
        void *gs = NULL;

        if (type == NULL || strcmp(type, s->group_type) != 0 ||
            !json_object_object_get_ex(group, "tests", &tests))
            goto out;
        if (L->ngroups == L->gcap) {
            size_t cap = L->gcap != 0 ? 2 * L->gcap : 16;
            void **ng = realloc(L->groups, cap * sizeof(*ng));

            if (ng == NULL)
                goto out;
            L->groups = ng;
            L->gcap = cap;
        }
        if (s->group_open(s, group, &gs) != 1)
            goto out;
        L->groups[L->ngroups++] = gs;
        for (t = 0; t < json_object_array_length(tests); t++) {
            struct wp_case c;
            struct ec_task *k;

            if (!parse_case(json_object_array_get_idx(tests, t), &c))
                goto out;
            if (c.result != WP_VALID)
                continue;
            if (L->n == L->cap) {
                size_t cap = L->cap != 0 ? 2 * L->cap : 64;
                struct ec_task *nt = realloc(L->tasks, cap * sizeof(*nt));

                if (nt == NULL)
                    goto out;
                L->tasks = nt;
                L->cap = cap;
            }
            k = &L->tasks[L->n++];
            memset(k, 0, sizeof(*k));
            k->tcid = c.tcid;
            if (!add(L, gs, &c, k)) {
                print_case("cannot prepare the async task", s, &c);
                goto out;
            }
        }
    }
    ok = L->n > 0;
out:
    json_object_put(root);
    if (!ok)
        printf("    %s: cannot load the vectors for the async run\n", s->file);
    return ok;
}

static int ecdsa_task_add(struct ec_load *L, void *vgs, const struct wp_case *c,
                          struct ec_task *t)
{
    struct rsa_group *gs = vgs;

    t->key = gs->pub;
    EVP_PKEY_up_ref(t->key);
    t->signer = L->signer;
    EVP_PKEY_up_ref(t->signer);
    t->spec = &gs->spec;
    t->outsize = (size_t)EVP_PKEY_get_size(t->signer);
    t->out = malloc(t->outsize);
    return t->out != NULL && sig_fields(c, &t->msg, &t->msglen, &t->sig, &t->siglen);
}

static int xdh_task_add(struct ec_load *L, void *vgs, const struct wp_case *c,
                        struct ec_task *t)
{
    const struct kex_group *gs = vgs;

    (void)L;
    t->outsize = SECRET_MAX;
    t->out = malloc(t->outsize);
    t->sync_out = malloc(t->outsize);
    return t->out != NULL && t->sync_out != NULL &&
           xdh_raw_key(OFFLOAD_SIDE, gs->type, OSSL_PKEY_PARAM_PRIV_KEY,
                       jstr(c->json, "private"), &t->key) == 1 &&
           xdh_raw_key(OFFLOAD_SIDE, gs->type, OSSL_PKEY_PARAM_PUB_KEY,
                       jstr(c->json, "public"), &t->peer) == 1 &&
           jhex(c->json, "shared", &t->expect, &t->expectlen);
}

/* The job of an ECDSA task: offload verifies the vector and signs its message. */
static int ecdsa_work(void *vt)
{
    struct ec_task *t = vt;

    t->verdict = verify_in(OFFLOAD_PROPQ, OFFLOAD_PROVIDER_NAME, t->key, t->spec, t->msg,
                           t->msglen, t->sig, t->siglen);
    t->outlen = t->outsize;
    return offload_sign(t->signer, t->spec, t->msg, t->msglen, t->out, &t->outlen);
}

/* The job of an X25519 task: offload derives the shared secret. */
static int xdh_work(void *vt)
{
    struct ec_task *t = vt;

    t->outlen = t->outsize;
    return derive_in(OFFLOAD_SIDE, t->key, t->peer, t->out, &t->outlen) == D_OK;
}

/* An EC key pair generated by offload's key management. */
static EVP_PKEY *offload_ec_keygen(const char *curve)
{
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(env.libctx, "EC", OFFLOAD_PROPQ);
    EVP_PKEY *pkey = NULL;

    if (kctx == NULL || EVP_PKEY_keygen_init(kctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(kctx, curve) != 1 ||
        EVP_PKEY_keygen(kctx, &pkey) != 1 || !test_pkey_in(pkey, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("EC keygen in offload");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(kctx);
    return pkey;
}

static void test_ecdsa_p256_async(void **state)
{
    static const struct wp_suite s =
        ECDSA_VERIFY_SUITE("ecdsa_secp256r1_sha256_test.json");
    struct ec_load L;
    struct job_batch b;
    uint64_t off0, fail0, off1, fail1;
    size_t i, n = 0, peak = 0, same = 0, differ = 0, signed_ok = 0, sig_verified = 0;
    int ran = 0, collected, *rets = NULL;

    (void)state;
    memset(&L, 0, sizeof(L));
    L.signer = offload_ec_keygen("P-256");
    assert_non_null(L.signer);
    collected = ec_collect(&s, ecdsa_task_add, &L);
    if (collected) {
        n = L.n;
        for (i = 0; i < n; i++) {
            struct ec_task *t = &L.tasks[i];

            t->sync_verdict =
                offload_verify(t->key, t->spec, t->msg, t->msglen, t->sig, t->siglen);
        }
        rets = calloc(L.n, sizeof(*rets));
    }
    off0 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    fail0 = test_counter(env.offload, CTR_SIG_FAILED);
    if (rets != NULL) {
        b = (struct job_batch){
            "ECDSA job",   ecdsa_work, (char *)L.tasks, sizeof(*L.tasks), L.n,
            EC_ASYNC_JOBS, rets,       ec_task_id};
        ran = run_jobs_poll(&b, &peak);
    }
    off1 = test_counter(env.offload, CTR_SIG_OFFLOADED);
    fail1 = test_counter(env.offload, CTR_SIG_FAILED);

    for (i = 0; ran && i < L.n; i++) {
        struct ec_task *t = &L.tasks[i];
        int v = 0;

        if (t->verdict == 1 && t->sync_verdict == 1)
            same++;
        else
            differ++;
        if (rets[i] == 1) {
            signed_ok++;
            v = verify_in(DEFAULT_PROPQ, "default", t->signer, t->spec, t->msg, t->msglen,
                          t->out, t->outlen);
            sig_verified += v == 1;
        }
        if (t->verdict != 1 || t->sync_verdict != 1 || rets[i] != 1 || v != 1)
            printf("    %s async: tcId %ld: verdict in job %d, outside %d; signing %s, "
                   "the default provider %s the signature\n",
                   s.file, t->tcid, t->verdict, t->sync_verdict,
                   rets[i] == 1 ? "done" : "FAILED", v == 1 ? "verifies" : "REJECTS");
    }
    printf(
        "[wycheproof] %s (async, %d jobs max, at most %zu at once): %zu valid vectors: "
        "%zu verified in the job and outside, %zu differ; %zu signed in the job with "
        "a P-256 offload key, %zu verified by the default provider; signature "
        "counters: offloaded +%llu, failed +%llu\n",
        s.file, EC_ASYNC_JOBS, peak, L.n, same, differ, signed_ok, sig_verified,
        (unsigned long long)(off1 - off0), (unsigned long long)(fail1 - fail0));
    fflush(stdout);
    ec_load_free(&L, rsa_group_close);
    free(rets);
    ASYNC_cleanup_thread();

    assert_true(collected);
    assert_true(ran);
    assert_int_equal(differ, 0);
    assert_true(n > 0);
    assert_int_equal(same, n);
    assert_int_equal(signed_ok, same);
    assert_int_equal(sig_verified, same);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && fail1 != UINT64_MAX);
    /*
     * Verification runs inline by design (never counted); the signatures
     * made in the same jobs went to the workers: at least one per two jobs
     * (the first of a burst may stay inline by policy).
     */
    assert_true(off1 - off0 >= (same + 1) / 2);
    assert_int_equal(fail1 - fail0, 0);
}

static void test_x25519_async(void **state)
{
    static const struct wp_suite s = XDH_SUITE("x25519_test.json");
    struct ec_load L;
    struct job_batch b;
    uint64_t off0, fail0, off1, fail1;
    size_t i, n = 0, peak = 0, equal = 0, differ = 0;
    int ran = 0, collected, *rets = NULL;

    (void)state;
    memset(&L, 0, sizeof(L));
    collected = ec_collect(&s, xdh_task_add, &L);
    if (collected) {
        n = L.n;
        for (i = 0; i < n; i++) {
            struct ec_task *t = &L.tasks[i];

            t->sync_outlen = t->outsize;
            t->sync_verdict =
                derive_in(OFFLOAD_SIDE, t->key, t->peer, t->sync_out, &t->sync_outlen);
        }
        rets = calloc(n, sizeof(*rets));
    }
    off0 = test_counter(env.offload, CTR_KEX_OFFLOADED);
    fail0 = test_counter(env.offload, CTR_KEX_FAILED);
    if (rets != NULL) {
        b = (struct job_batch){
            "X25519 job",  xdh_work, (char *)L.tasks, sizeof(*L.tasks), n,
            EC_ASYNC_JOBS, rets,     ec_task_id};
        ran = run_jobs_poll(&b, &peak);
    }
    off1 = test_counter(env.offload, CTR_KEX_OFFLOADED);
    fail1 = test_counter(env.offload, CTR_KEX_FAILED);

    for (i = 0; ran && i < n; i++) {
        struct ec_task *t = &L.tasks[i];
        int ok = rets[i] == 1 && t->sync_verdict == D_OK && t->outlen == t->expectlen &&
                 memcmp(t->out, t->expect, t->expectlen) == 0 &&
                 t->sync_outlen == t->outlen &&
                 memcmp(t->out, t->sync_out, t->outlen) == 0;

        equal += ok;
        differ += !ok;
        if (!ok)
            printf(
                "    %s async: tcId %ld: derive in the job %s, outside %s; the secrets "
                "differ from \"shared\" or from each other\n",
                s.file, t->tcid, rets[i] == 1 ? "done" : "FAILED",
                t->sync_verdict == D_OK ? "done" : "FAILED");
    }
    printf(
        "[wycheproof] %s (async, %d jobs max, at most %zu at once): %zu valid vectors: "
        "%zu secrets equal to \"shared\" and to the derivation outside a job, %zu "
        "differ; keyexch counters: offloaded +%llu, failed +%llu\n",
        s.file, EC_ASYNC_JOBS, peak, n, equal, differ, (unsigned long long)(off1 - off0),
        (unsigned long long)(fail1 - fail0));
    fflush(stdout);
    ec_load_free(&L, kex_group_close);
    free(rets);
    ASYNC_cleanup_thread();

    assert_true(collected);
    assert_true(ran);
    assert_true(n > 0);
    assert_int_equal(differ, 0);
    assert_int_equal(equal, n);
    assert_true(off0 != UINT64_MAX && off1 != UINT64_MAX && fail1 != UINT64_MAX);
    /* At least one derivation per two jobs went to the workers. */
    assert_true(off1 - off0 >= (n + 1) / 2);
    assert_int_equal(fail1 - fail0, 0);
}

/* ------------------------------------------------------------------ */

static int group_setup(void **state)
{
    EVP_SIGNATURE *sig;
    int ok;

    (void)state;
    /* busy_inline = 0: every cheap job pauses, however deep the queue (test_saturation
     * checks the rule). */
    if (!test_env_open(&env, "busy_inline = 0\n"))
        return -1;
    defctx = test_ref_open(&defprov);
    if (defctx == NULL) {
        test_dump_errors("default-only library context");
        test_env_close(&env);
        return -1;
    }
    /* offload must offer RSA signatures at all, or every test below is moot. */
    sig = EVP_SIGNATURE_fetch(env.libctx, "RSA", OFFLOAD_PROPQ);
    ok = sig != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_SIGNATURE_get0_provider(sig)),
                               OFFLOAD_PROVIDER_NAME) == 0;
    EVP_SIGNATURE_free(sig);
    if (!ok) {
        test_dump_errors("fetch RSA signature from offload");
        test_ref_close(defctx, defprov);
        test_env_close(&env);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    test_ref_close(defctx, defprov);
    defctx = NULL;
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
        cmocka_unit_test(test_ecdsa_secp256r1_sha256),
        cmocka_unit_test(test_ecdsa_secp384r1_sha384),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_ed448),
        cmocka_unit_test(test_x25519),
        cmocka_unit_test(test_ecdh_secp256r1),
        cmocka_unit_test(test_ecdh_secp384r1),
        cmocka_unit_test(test_ecdsa_p256_async),
        cmocka_unit_test(test_x25519_async),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

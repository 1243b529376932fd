/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public-key helpers of the Wycheproof vector tests (test_vectors_*.c):
 * the library contexts (offload's, and the default provider alone as the
 * reference), keys decoded by the default provider's decoders and moved
 * into offload's key management (EVP_PKEY_todata + EVP_PKEY_fromdata with
 * "provider=offload"), signatures and key exchanges fetched from offload
 * (each asserted to run in offload), the signature verification suites
 * and the key exchange suites, where each vector is also run by the
 * default provider alone and the two verdicts must agree.
 */
#ifndef OFFLOAD_TEST_VECTORS_PKEY_H
#define OFFLOAD_TEST_VECTORS_PKEY_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common.h"
#include "wycheproof.h"

#define CTR_SIG_INLINE     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_INLINE
#define CTR_SIG_OFFLOADED  "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_OFFLOADED
#define CTR_SIG_FAILED     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_FAILED
#define CTR_SIG_QUEUE_FULL "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_QUEUE_FULL
#define CTR_SIG_PAUSES     "offload-" OFFLOAD_FAMILY_SIGNATURE "-" OFFLOAD_STAT_PAUSES
struct sig_spec {
    char md[32];   /* digest name as Wycheproof writes it ("SHA-256") */
    int pad;       /* RSA padding mode; 0 leaves the algorithm's default */
    char mgf1[32]; /* RSA-PSS: MGF1 digest */
    int saltlen;   /* RSA-PSS: salt length */
};

struct sig_group {
    EVP_PKEY *pub;  /* offload key from the group's public key */
    EVP_PKEY *priv; /* offload key pair (signature generation files only) */
    struct sig_spec spec;
};

#define CTR_KEX_INLINE    "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_INLINE
#define CTR_KEX_OFFLOADED "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_OFFLOADED
#define CTR_KEX_FAILED    "offload-" OFFLOAD_FAMILY_KEYEXCH "-" OFFLOAD_STAT_FAILED
#define SECRET_MAX        160

/*
 * Where a key exchange runs: offload (in vec_env.libctx, fetched with
 * "provider=offload") or, for reference, the default provider alone in
 * its own library context.
 */
enum side { OFFLOAD_SIDE, REFERENCE_SIDE };

enum { D_OK = 1, D_PEER_REFUSED = 0, D_SETUP = -1, D_DERIVE_FAILED = -2 };

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

/* What one side made of a key exchange vector. */
struct kex_result {
    int accepted; /* a secret was derived */
    unsigned char secret[SECRET_MAX];
    size_t len;
};

/* offload's library context, and the default provider alone (the reference). */
extern test_env vec_env;
extern OSSL_LIB_CTX *vec_defctx;
extern OSSL_PROVIDER *vec_defprov;

/*
 * cmocka group setup and teardown: both contexts, busy_inline = 0 (every
 * cheap job pauses, however deep the queue: test_saturation checks the
 * rule); fails when offload offers no RSA signature.
 */
int vec_group_setup(void **state);
int vec_group_teardown(void **state);

/* ---- keys ---- */

/*
 * DER (hex) decoded by the default provider's decoders; |quiet|: a
 * failure is an expected verdict, its errors are dropped, not printed.
 */
EVP_PKEY *decode_default_q(const char *hex, const char *structure, int selection,
                           int quiet);
EVP_PKEY *decode_default(const char *hex, const char *structure, int selection);
/*
 * A copy of |src| made by offload's key management from |src|'s exported
 * data, in *out. 1 done; 0 export or import refused (errors dropped when
 * |quiet|, else printed); -1 harness error (reason printed).
 */
int import_offload_q(EVP_PKEY *src, int selection, int quiet, EVP_PKEY **out);
/* A copy of |src| in offload; NULL (reason printed) on failure. */
EVP_PKEY *import_into_offload(EVP_PKEY *src, int selection);
/* The key of hex DER |hex| as an offload key; NULL (reason printed) on failure. */
EVP_PKEY *offload_key(const char *hex, const char *structure, int selection);

/* ---- signatures ---- */

/* The digest of |sp|; NULL (none: EdDSA) when empty. */
const char *md_name(const struct sig_spec *sp);
int op_in_offload(const EVP_PKEY_CTX *pctx);
int set_sig_params(EVP_PKEY_CTX *pctx, const struct sig_spec *sp);
/* One-shot verification through offload: 1 verified, 0 rejected, -1 set-up failure. */
int offload_verify(EVP_PKEY *pkey, const struct sig_spec *sp, const unsigned char *msg,
                   size_t msglen, const unsigned char *sig, size_t siglen);
/* One-shot signature through offload (*outlen: size in, length out); prints nothing. */
int offload_sign(EVP_PKEY *pkey, const struct sig_spec *sp, const unsigned char *msg,
                 size_t msglen, unsigned char *out, size_t *outlen);
/* Verification by provider |provname| fetched with |propq|; prints nothing. */
int verify_in(const char *propq, const char *provname, EVP_PKEY *pkey,
              const struct sig_spec *sp, const unsigned char *msg, size_t msglen,
              const unsigned char *sig, size_t siglen);

/* Copies |src| into |dst| of |size| bytes; 0 when NULL or too long. */
int copy_name(char *dst, size_t size, const char *src);
/* Keys and digest ("sha") of a signature group; |need_private| for generation files. */
int sig_group_load(json_object *group, int need_private, struct sig_group **out);
void sig_group_close(void *gs);
/* msg and sig of a signature test; 0 when they do not parse. */
int sig_fields(const struct wp_case *c, unsigned char **msg, size_t *msglen,
               unsigned char **sig, size_t *siglen);
/* Verification files: the verdict is offload's verification (groups: sig_group). */
enum wp_outcome verify_check(const struct wp_suite *s, void *gs, const struct wp_case *c);
/* wp_run, and the signature inline counter must not move (verify is never counted). */
void run_verify_suite(const struct wp_suite *s);

/* ---- elliptic curves and key exchange ---- */

/* OpenSSL's name of Wycheproof's curve |wp|; NULL when not known. */
const char *ossl_curve(const char *wp);
/* 1 when EC key |pkey| is on the curve OpenSSL names |curve|. */
int key_on_curve(const EVP_PKEY *pkey, const char *curve);

OSSL_LIB_CTX *side_ctx(enum side w);
const char *side_propq(enum side w);
const char *side_prov(enum side w);
/* A key built by EVP_PKEY_fromdata in |w|: 1 done, 0 refused, -1 harness error. */
int fromdata_in(enum side w, const char *type, int selection, OSSL_PARAM *params,
                EVP_PKEY **out);
/* An EC key pair on |curve| from its private scalar (hex, big-endian). */
int ec_private_key(enum side w, const char *curve, const char *hex, EVP_PKEY **out);
/* An X25519/X448 key from raw hex bytes of |param| ("priv" or "pub"). */
int xdh_raw_key(enum side w, const char *type, const char *param, const char *hex,
                EVP_PKEY **out);
/* |priv| with |peer| through the key exchange of |w|: D_OK or the failed step. */
int derive_in(enum side w, EVP_PKEY *priv, EVP_PKEY *peer, unsigned char *out,
              size_t *outlen);

void kex_group_close(void *gs);
/* Derives |priv| with |peer| on side |w| into |r|; counts offload's refusals. */
int kex_derive(enum side w, struct kex_counts *k, EVP_PKEY *priv, EVP_PKEY *peer,
               struct kex_result *r);
/* The verdict from offload's result |o| and the reference's |ref| (must agree). */
enum wp_outcome kex_judge(const struct wp_suite *s, const struct wp_case *c,
                          const struct kex_result *o, const struct kex_result *ref);
/* wp_run with struct kex_counts in s->data; asserts agreement and the counters. */
void run_kex_suite(struct wp_suite *s);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key management: every key type the default provider offers (RSA,
 * RSA-PSS, EC, ED25519, ED448, X25519, X448, DH, DSA, SM2, the KDF and
 * MAC pseudo-keys, and on 3.5 ML-DSA, ML-KEM, SLH-DSA and the hybrids).
 *
 * Each table is the default keymgmt's, copied entry by entry (mirror.h):
 * keys are its key data and new, load, import, export, params, matching
 * and validation are its own functions, called by libcrypto directly.
 * Only generation is intercepted: GEN for every type (counted as keygen,
 * and offloaded in a job for the types whose generation never calls back
 * into the application: EC, X25519, X448, ED25519, ED448, SM2, ML-KEM,
 * the hybrids, ML-DSA, SLH-DSA, and DH, DHX and DSA key pairs), and for
 * those GEN_INIT, GEN_SET_PARAMS and GEN_SET_TEMPLATE (to learn the cost
 * of the key to make, e.g. its EC group, and whether it is a key pair or
 * parameters) and GEN_CLEANUP (deferred while a request holds the
 * generation context). RSA's generation reports each prime through the
 * application's callback: it stays inline.
 *
 * For RSA and EC also FREE, DUP, LOAD and HAS: their key data may be a
 * token key's public half, linked to its token object (p11_key.h). FREE
 * drops the link, DUP carries it over, LOAD takes the pkcs11: store's
 * references, HAS reports a linked key's private half (on the token).
 */
#include <string.h>
#include <strings.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "ctxstate.h"
#include "keymgmt.h"
#include "mirror.h"
#include "p11_key.h"

struct km_alg {
    char name[32];        /* its first name, for the log */
    int gen_offload;      /* its generation never calls back: may run on a worker */
    int gen_keypair_only; /* ... when it makes a key pair, not parameters */
    enum offload_cost_rule rule;
    OSSL_FUNC_keymgmt_free_fn *free_;
    OSSL_FUNC_keymgmt_dup_fn *dup;
    OSSL_FUNC_keymgmt_gen_init_fn *gen_init;
    OSSL_FUNC_keymgmt_gen_set_template_fn *gen_set_template;
    OSSL_FUNC_keymgmt_gen_set_params_fn *gen_set_params;
    OSSL_FUNC_keymgmt_gen_fn *gen;
    OSSL_FUNC_keymgmt_gen_cleanup_fn *gen_cleanup;
    OSSL_FUNC_keymgmt_get_params_fn *get_params;
    int token;   /* RSA, EC: its key data may be a token key's (p11_key.h) */
    int unowned; /* its contexts keep a bare pointer: FREE waits for the pins */
    OSSL_FUNC_keymgmt_load_fn *load;
    OSSL_FUNC_keymgmt_has_fn *has;
};

static struct km_alg km_algs[OFFLOAD_SLOTS];
static struct offload_mirror km_mirror = {.description = "offload key management"};

/* The default EC keymgmt's get_params: reads the group of an EC key. */
static OSSL_FUNC_keymgmt_get_params_fn *ec_get_params;

/*
 * Key types whose generation may run on a worker: those whose default
 * generation never calls the application back. By first name, or by its
 * start (|prefix|), or anywhere in it (|inside|: the hybrids); the finite
 * field types only for a key pair: their parameter generation reports
 * progress through the callback (EVP_PKEY_paramgen stays inline).
 */
static const struct {
    const char *name;
    enum { WHOLE, PREFIX, INSIDE } match;
    int keypair_only;
} gen_offload_types[] = {
    {"EC", WHOLE, 0},       {"X25519", WHOLE, 0},   {"X448", WHOLE, 0},
    {"ED25519", WHOLE, 0},  {"ED448", WHOLE, 0},    {"SM2", WHOLE, 0},
    {"ML-KEM-", PREFIX, 0}, {"ML-DSA-", PREFIX, 0}, {"SLH-DSA-", PREFIX, 0},
    {"MLKEM", INSIDE, 0},   {"DH", WHOLE, 1},       {"DHX", WHOLE, 1},
    {"DSA", WHOLE, 1},
};

/* How |names| (its first name) may be generated: 0 inline, 1 anywhere, 2 a key pair. */
static int gen_offload_kind(const char *names)
{
    char first[64];
    size_t k;

    offload_first_name(names, first, sizeof(first));
    for (k = 0; k < sizeof(gen_offload_types) / sizeof(gen_offload_types[0]); k++) {
        const char *t = gen_offload_types[k].name;
        int hit = gen_offload_types[k].match == WHOLE ? strcasecmp(first, t) == 0
                  : gen_offload_types[k].match == PREFIX
                      ? strncasecmp(first, t, strlen(t)) == 0
                      : strstr(first, t) != NULL;

        if (hit)
            return gen_offload_types[k].keypair_only ? 2 : 1;
    }
    return 0;
}

/*
 * Of the curves, only P-256 has the constant-time assembly that makes it
 * cheap here (ECDSA sign 14 us; P-384 550 us, P-521 170 us, secp256k1 and
 * brainpool generic code).
 */
static int ec_group_cheap(const char *group)
{
    return group != NULL && (OPENSSL_strcasecmp(group, "prime256v1") == 0 ||
                             OPENSSL_strcasecmp(group, "P-256") == 0 ||
                             OPENSSL_strcasecmp(group, "secp256r1") == 0);
}

enum offload_cost_rule offload_cost_rule(const char *names)
{
    /* ML-KEM and the X25519 and P-256 hybrids: 20-90 us per operation here. */
    static const char *const cheap[] = {
        "ED25519",           "ED25519ph",  "ED25519ctx",  "X25519",
        "ML-KEM-512",        "ML-KEM-768", "ML-KEM-1024", "X25519MLKEM768",
        "SecP256r1MLKEM768", NULL};
    static const char *const ec[] = {"EC", "ECDSA", "ECDH", NULL};
    static const char *const trivial[] = {"HMAC",     "SIPHASH", "POLY1305", "CMAC",
                                          "TLS1-PRF", "HKDF",    NULL};
    size_t i;

    for (i = 0; cheap[i] != NULL; i++)
        if (offload_first_name_is(names, cheap[i]))
            return OFFLOAD_COST_CHEAP;
    for (i = 0; ec[i] != NULL; i++)
        if (offload_first_name_is(names, ec[i]))
            return OFFLOAD_COST_EC_GROUP;
    for (i = 0; trivial[i] != NULL; i++)
        if (offload_first_name_is(names, trivial[i]))
            return OFFLOAD_COST_TRIVIAL;
    /* The composites of 3.4+: ECDSA-SHA2-256, ECDSA-SHA3-512, ... */
    if (names != NULL && strncasecmp(names, "ECDSA-", 6) == 0)
        return OFFLOAD_COST_EC_GROUP;
    return OFFLOAD_COST_DEAR;
}

int offload_key_unowned(const char *names)
{
    char first[64];

    offload_first_name(names, first, sizeof(first));
    return strncasecmp(first, "ML-KEM-", 7) == 0 ||
           strncasecmp(first, "ML-DSA-", 7) == 0 ||
           strncasecmp(first, "SLH-DSA-", 8) == 0 || strstr(first, "MLKEM") != NULL;
}

/*
 * FREE of a key type whose contexts keep a bare pointer (deferred while
 * pinned), or of RSA and EC key data (a token key's link goes with it).
 */
static void km_free(size_t slot, void *kd)
{
    if (km_algs[slot].token)
        offload_p11_key_unlink(kd);
    if (!km_algs[slot].unowned || !offload_keyref_defer_free(kd, km_algs[slot].free_))
        km_algs[slot].free_(kd);
}

/* ---- token keys (p11_key.h): RSA and EC ---- */

/* DUP: a token key's duplicate is linked to the same token object. */
static void *km_dup(size_t slot, const void *kd, int selection)
{
    struct offload_p11_key *k;
    void *d = km_algs[slot].dup(kd, selection);

    if (d != NULL && (k = offload_p11_key_get(kd)) != NULL) {
        if (!offload_p11_key_link(d, k)) {
            km_algs[slot].free_(d);
            d = NULL;
            OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a token key's link");
        }
        offload_p11_key_put(k);
    }
    return d;
}

/* LOAD: the store loader's reference (store_pkcs11.c), else the default's. */
static void *km_load(size_t slot, const void *ref, size_t refsz)
{
    void *kd;

    if (offload_p11_ref_load(km_algs[slot].name, ref, refsz, &kd))
        return kd;
    return km_algs[slot].load != NULL ? km_algs[slot].load(ref, refsz) : NULL;
}

/* HAS: a token key has its private half, on the token. */
static int km_has(size_t slot, const void *kd, int selection)
{
    struct offload_p11_key *k;

    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 &&
        (k = offload_p11_key_get(kd)) != NULL) {
        offload_p11_key_put(k);
        selection = (selection & ~OSSL_KEYMGMT_SELECT_PRIVATE_KEY) |
                    OSSL_KEYMGMT_SELECT_PUBLIC_KEY;
    }
    return km_algs[slot].has(kd, selection);
}

int offload_key_cheap(enum offload_cost_rule rule, void *kd)
{
    char group[64] = "";
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group)),
        OSSL_PARAM_END};
    int ok;

    if (rule == OFFLOAD_COST_CHEAP)
        return 1;
    if (rule != OFFLOAD_COST_EC_GROUP || kd == NULL || ec_get_params == NULL)
        return 0;
    /* A key without a group yet (or an explicit curve) is not cheap; no error stays. */
    ERR_set_mark();
    ok = ec_get_params(kd, p) && OSSL_PARAM_modified(p);
    ERR_pop_to_mark();
    return ok && ec_group_cheap(group);
}

/* ---- generation ---- */

/* An EC generation is cheap once its group is P-256 (params). */
static void note_group(const struct km_alg *alg, struct offload_ctxstate *s,
                       const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *group = NULL;

    if (alg->rule != OFFLOAD_COST_EC_GROUP || params == NULL || s == NULL)
        return;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p != NULL && OSSL_PARAM_get_utf8_string_ptr(p, &group))
        s->cheap = ec_group_cheap(group);
}

static void *km_gen_init(size_t slot, void *provctx, int selection,
                         const OSSL_PARAM params[])
{
    const struct km_alg *alg = &km_algs[slot];
    struct offload_ctxstate *s;
    void *g;

    if (!offload_is_running())
        return NULL;
    g = alg->gen_init(provctx, selection, params);
    if (g == NULL)
        return NULL;
    s = offload_ctxstate_get(g, alg->gen_cleanup);
    if (s == NULL) {
        alg->gen_cleanup(g);
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "key generation context");
        return NULL;
    }
    s->cheap = alg->rule == OFFLOAD_COST_CHEAP;
    /*
     * Parameters alone cost next to nothing where they are a group's name
     * (libssl makes such a key for every TLS 1.3 handshake, to hold the
     * peer's key share: a pause for it was a wake-up for nothing), and
     * DH and DSA parameter generation reports through the callback.
     */
    if (alg->gen_keypair_only && (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0)
        s->gen_inline = OFFLOAD_PATH_CALLBACK;
    else if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        s->gen_inline = OFFLOAD_PATH_PARAMS;
    else
        s->gen_inline = OFFLOAD_PATH_OFFLOADED;
    note_group(alg, s, params);
    return g;
}

static int km_gen_set_template(size_t slot, void *genctx, void *templ)
{
    const struct km_alg *alg = &km_algs[slot];
    struct offload_ctxstate *s;

    if (!alg->gen_set_template(genctx, templ))
        return 0;
    if ((s = offload_ctxstate_find(genctx)) != NULL)
        s->cheap = offload_key_cheap(alg->rule, templ);
    return 1;
}

static int km_gen_set_params(size_t slot, void *genctx, const OSSL_PARAM params[])
{
    const struct km_alg *alg = &km_algs[slot];

    if (!alg->gen_set_params(genctx, params))
        return 0;
    note_group(alg, offload_ctxstate_find(genctx), params);
    return 1;
}

/*
 * Key generation inside a job (the ephemeral key of every TLS handshake):
 * X25519 costs as much as a derive, so it goes to a worker like one.
 */
struct gen_job {
    struct offload_ctxstate *s; /* the generation context, held */
    size_t slot;
    void *kd;
};

static int gen_job_run(struct offload_req *req)
{
    struct gen_job *j = (struct gen_job *)req->payload;

    /* Only for types whose generation ignores the callback (gen_offload). */
    j->kd = km_algs[j->slot].gen(j->s->ctx, NULL, NULL);
    return j->kd != NULL;
}

static void gen_job_release(struct offload_req *req)
{
    struct gen_job *j = (struct gen_job *)req->payload;

    if (j->kd != NULL) /* not collected: its job went away */
        km_algs[j->slot].free_(j->kd);
    offload_ctxstate_release(j->s);
}

/* A generation failed: say so when the default said nothing (|last|: queue before). */
static void gen_failed(const struct km_alg *alg, unsigned long last)
{
    if (ERR_peek_last_error() == last)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ENGINE_FAILED,
                      "%s key generation failed (no group or bad parameters?)",
                      alg->name);
}

static void *km_gen(size_t slot, void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    const struct km_alg *alg = &km_algs[slot];
    struct offload_ctxstate *s = NULL;
    struct offload_req *req = NULL;
    struct gen_job *j;
    enum offload_path p;
    unsigned long last;
    void *kd;

    if (!offload_is_running())
        return NULL;
    p = OFFLOAD_PATH_CALLBACK;
    if (alg->gen_offload && (s = offload_ctxstate_find(genctx)) != NULL)
        p = s->gen_inline != OFFLOAD_PATH_OFFLOADED
                ? (enum offload_path)s->gen_inline
                : offload_async_path(OFFLOAD_FAM_KEYGEN, s->cheap);
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (req = offload_req_new(gen_job_run, gen_job_release, OFFLOAD_FAM_KEYGEN,
                               sizeof(*j))) == NULL)
        p = OFFLOAD_PATH_NO_MEMORY;
    last = ERR_peek_last_error();
    if (p != OFFLOAD_PATH_OFFLOADED) {
        offload_op_path(OFFLOAD_FAM_KEYGEN, p, alg->name, "gen");
        kd = alg->gen(genctx, cb, cbarg);
        if (kd == NULL)
            gen_failed(alg, last);
        offload_op_done(OFFLOAD_FAM_KEYGEN, kd != NULL, alg->name, "gen");
        return kd;
    }
    req->cheap = s->cheap;
    req->alg = alg->name;
    req->op = "gen";
    j = (struct gen_job *)req->payload;
    offload_ctxstate_hold(s);
    j->s = s;
    j->slot = slot;
    kd = offload_async_run(req) > 0 ? j->kd : NULL;
    j->kd = NULL; /* ours now */
    offload_req_put(req);
    if (kd == NULL)
        gen_failed(alg, last);
    return kd;
}

static void km_gen_cleanup(size_t slot, void *genctx)
{
    offload_ctxstate_free(genctx, km_algs[slot].gen_cleanup);
}

OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_gen_init_fn, void *, km_gen_init,
                    (void *provctx, int selection, const OSSL_PARAM params[]),
                    (provctx, selection, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_gen_set_template_fn, int, km_gen_set_template,
                    (void *genctx, void *templ), (genctx, templ))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_gen_set_params_fn, int, km_gen_set_params,
                    (void *genctx, const OSSL_PARAM params[]), (genctx, params))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_gen_fn, void *, km_gen,
                    (void *genctx, OSSL_CALLBACK *cb, void *cbarg), (genctx, cb, cbarg))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_keymgmt_gen_cleanup_fn, km_gen_cleanup, (void *genctx),
                         (genctx))
OFFLOAD_TRAMPOLINES_VOID(OSSL_FUNC_keymgmt_free_fn, km_free, (void *kd), (kd))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_dup_fn, void *, km_dup,
                    (const void *kd, int selection), (kd, selection))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_load_fn, void *, km_load,
                    (const void *ref, size_t refsz), (ref, refsz))
OFFLOAD_TRAMPOLINES(OSSL_FUNC_keymgmt_has_fn, int, km_has,
                    (const void *kd, int selection), (kd, selection))

/* ---- binding ---- */

static size_t km_intercepts(size_t i, const OSSL_ALGORITHM *a,
                            struct offload_intercept *ic)
{
    struct km_alg *alg = &km_algs[i];
    size_t k, n = 0;

    memset(alg, 0, sizeof(*alg));
    offload_first_name(a->algorithm_names, alg->name, sizeof(alg->name));
    alg->rule = offload_cost_rule(a->algorithm_names);
    alg->free_ = OFFLOAD_FN(OSSL_FUNC_keymgmt_free_fn, OSSL_FUNC_KEYMGMT_FREE);
    alg->dup = OFFLOAD_FN(OSSL_FUNC_keymgmt_dup_fn, OSSL_FUNC_KEYMGMT_DUP);
    alg->gen_init = OFFLOAD_FN(OSSL_FUNC_keymgmt_gen_init_fn, OSSL_FUNC_KEYMGMT_GEN_INIT);
    alg->gen_set_template = OFFLOAD_FN(OSSL_FUNC_keymgmt_gen_set_template_fn,
                                       OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE);
    alg->gen_set_params =
        OFFLOAD_FN(OSSL_FUNC_keymgmt_gen_set_params_fn, OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS);
    alg->gen = OFFLOAD_FN(OSSL_FUNC_keymgmt_gen_fn, OSSL_FUNC_KEYMGMT_GEN);
    alg->gen_cleanup =
        OFFLOAD_FN(OSSL_FUNC_keymgmt_gen_cleanup_fn, OSSL_FUNC_KEYMGMT_GEN_CLEANUP);
    alg->get_params =
        OFFLOAD_FN(OSSL_FUNC_keymgmt_get_params_fn, OSSL_FUNC_KEYMGMT_GET_PARAMS);
    if (offload_first_name_is(a->algorithm_names, "EC"))
        ec_get_params = alg->get_params;
    k = (size_t)gen_offload_kind(a->algorithm_names);
    alg->gen_offload = k != 0;
    alg->gen_keypair_only = k == 2;
    /* Offloaded only with the whole generation context in our hands. */
    if (alg->gen_init == NULL || alg->gen_cleanup == NULL || alg->free_ == NULL)
        alg->gen_offload = 0;
    alg->load = OFFLOAD_FN(OSSL_FUNC_keymgmt_load_fn, OSSL_FUNC_KEYMGMT_LOAD);
    alg->has = OFFLOAD_FN(OSSL_FUNC_keymgmt_has_fn, OSSL_FUNC_KEYMGMT_HAS);
    alg->unowned = offload_key_unowned(a->algorithm_names);
    alg->token = alg->free_ != NULL && alg->has != NULL &&
                 (offload_first_name_is(a->algorithm_names, "RSA") ||
                  offload_first_name_is(a->algorithm_names, "EC"));
    ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_GEN, km_gen_slot[i]);
    if (alg->free_ != NULL && (alg->unowned || alg->token))
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_FREE, km_free_slot[i]);
    if (alg->token) {
        /* The store loader's references come back through LOAD (store_pkcs11.c). */
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_LOAD, km_load_slot[i]);
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_HAS, km_has_slot[i]);
        if (alg->dup != NULL)
            ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_DUP, km_dup_slot[i]);
    }
    if (alg->gen_offload) {
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_GEN_INIT, km_gen_init_slot[i]);
        ic[n++] =
            OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, km_gen_set_template_slot[i]);
        ic[n++] =
            OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, km_gen_set_params_slot[i]);
        ic[n++] = OFFLOAD_ICP(OSSL_FUNC_KEYMGMT_GEN_CLEANUP, km_gen_cleanup_slot[i]);
    }
    return n;
}

size_t offload_keymgmt_bind(void)
{
    ec_get_params = NULL;
    return offload_mirror_bind(&km_mirror, OSSL_OP_KEYMGMT, km_intercepts);
}

void offload_keymgmt_unbind(void)
{
    offload_mirror_unbind(&km_mirror);
    ec_get_params = NULL;
}

const OSSL_ALGORITHM *offload_keymgmt_algorithms(void)
{
    return km_mirror.algs;
}

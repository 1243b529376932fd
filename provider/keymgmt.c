/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key management: RSA, RSA-PSS, EC, ED25519, ED448, X25519, X448.
 *
 * A key object of ours (OFFLOAD_KEY) wraps the key data of the soft
 * engine's keymgmt; every function forwards to it, so import, export,
 * generation, params and matching behave exactly as the default
 * provider's, through public OSSL_PARAM only. The dispatch table of each
 * key type mirrors the functions the soft implementation offers.
 */
#include <stdlib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "async.h"
#include "keymgmt.h"
#include "soft.h"

struct offload_keymgmt_alg {
    const char *name; /* first name in the default provider's table */
    int gen_offload;  /* its generation never calls back: may run on a worker */
    int cheap;        /* every key of the type is cheap; EC: decided per curve */
    const char *names;
    const OSSL_DISPATCH *soft;
    OSSL_FUNC_keymgmt_new_fn *new_;
    OSSL_FUNC_keymgmt_free_fn *free_;
    OSSL_FUNC_keymgmt_gen_init_fn *gen_init;
    OSSL_FUNC_keymgmt_gen_set_template_fn *gen_set_template;
    OSSL_FUNC_keymgmt_gen_set_params_fn *gen_set_params;
    OSSL_FUNC_keymgmt_gen_settable_params_fn *gen_settable_params;
    OSSL_FUNC_keymgmt_gen_fn *gen;
    OSSL_FUNC_keymgmt_gen_cleanup_fn *gen_cleanup;
    OSSL_FUNC_keymgmt_get_params_fn *get_params;
    OSSL_FUNC_keymgmt_gettable_params_fn *gettable_params;
    OSSL_FUNC_keymgmt_set_params_fn *set_params;
    OSSL_FUNC_keymgmt_settable_params_fn *settable_params;
    OSSL_FUNC_keymgmt_query_operation_name_fn *query_operation_name;
    OSSL_FUNC_keymgmt_has_fn *has;
    OSSL_FUNC_keymgmt_validate_fn *validate;
    OSSL_FUNC_keymgmt_match_fn *match;
    OSSL_FUNC_keymgmt_import_fn *import;
    OSSL_FUNC_keymgmt_import_types_fn *import_types;
    OSSL_FUNC_keymgmt_export_fn *export_;
    OSSL_FUNC_keymgmt_export_types_fn *export_types;
    OSSL_FUNC_keymgmt_dup_fn *dup;
};

struct km_genctx {
    _Atomic unsigned refs; /* the EVP side's, plus one per request in flight */
    int cheap;             /* the key to make is (offload_key_cheap) */
    const struct offload_keymgmt_alg *alg;
    OFFLOAD_PROVCTX *pctx;
    void *sgen;
};

enum { KM_RSA, KM_RSA_PSS, KM_EC, KM_ED25519, KM_ED448, KM_X25519, KM_X448, KM_COUNT };

static struct offload_keymgmt_alg km_algs[KM_COUNT] = {
    /* RSA generation reports progress through the application's callback: inline. */
    [KM_RSA] = {.name = "RSA"},
    [KM_RSA_PSS] = {.name = "RSA-PSS"},
    [KM_EC] = {.name = "EC", .gen_offload = 1},
    [KM_ED25519] = {.name = "ED25519", .gen_offload = 1, .cheap = 1},
    [KM_ED448] = {.name = "ED448", .gen_offload = 1},
    [KM_X25519] = {.name = "X25519", .gen_offload = 1, .cheap = 1},
    [KM_X448] = {.name = "X448", .gen_offload = 1},
};

const char *offload_key_type(const OFFLOAD_KEY *key)
{
    return key->alg->name;
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

enum key_cost { COST_UNKNOWN, COST_CHEAP, COST_DEAR };

int offload_key_cheap(OFFLOAD_KEY *key)
{
    int c = atomic_load_explicit(&key->cost, memory_order_relaxed);

    if (c == COST_UNKNOWN) {
        char group[64] = "";
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group)),
            OSSL_PARAM_END};

        if (key->alg != &km_algs[KM_EC])
            c = key->alg->cheap ? COST_CHEAP : COST_DEAR;
        else if (key->alg->get_params(key->kd, p) && OSSL_PARAM_modified(p))
            c = ec_group_cheap(group) ? COST_CHEAP : COST_DEAR;
        else
            return 0; /* no group yet: asked again once it has one */
        atomic_store_explicit(&key->cost, c, memory_order_relaxed);
    }
    return c == COST_CHEAP;
}

static OFFLOAD_KEY *key_wrap(const struct offload_keymgmt_alg *alg, OFFLOAD_PROVCTX *pctx,
                             void *kd)
{
    OFFLOAD_KEY *key;

    if (kd == NULL)
        return NULL;
    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        alg->free_(kd);
        OFFLOAD_RAISE(pctx, OFFLOAD_R_ALLOC, "key object");
        return NULL;
    }
    key->alg = alg;
    key->pctx = pctx;
    key->kd = kd;
    return key;
}

/* ---- functions that receive a key or a genctx: one for every key type ---- */

static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_gen_set_template_fn km_gen_set_template;
static OSSL_FUNC_keymgmt_gen_set_params_fn km_gen_set_params;
static OSSL_FUNC_keymgmt_gen_fn km_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn km_gen_cleanup;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_set_params_fn km_set_params;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_validate_fn km_validate;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_dup_fn km_dup;

static void km_free(void *vkey)
{
    OFFLOAD_KEY *key = vkey;

    if (key == NULL)
        return;
    key->alg->free_(key->kd);
    free(key);
}

static void *km_new(void *provctx, const struct offload_keymgmt_alg *alg)
{
    if (!offload_is_running())
        return NULL;
    return key_wrap(alg, provctx, alg->new_(offload_soft_provctx()));
}

/* An EC generation is cheap once its group is P-256 (params or template). */
static void note_group(struct km_genctx *g, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *group = NULL;

    if (g->alg != &km_algs[KM_EC] || params == NULL)
        return;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p != NULL && OSSL_PARAM_get_utf8_string_ptr(p, &group))
        g->cheap = ec_group_cheap(group);
}

static void *km_gen_init(void *provctx, int selection, const OSSL_PARAM params[],
                         const struct offload_keymgmt_alg *alg)
{
    struct km_genctx *g;

    if (!offload_is_running())
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        OFFLOAD_RAISE(provctx, OFFLOAD_R_ALLOC, "key generation context");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->alg = alg;
    g->pctx = provctx;
    g->cheap = alg->cheap;
    g->sgen = alg->gen_init(offload_soft_provctx(), selection, params);
    if (g->sgen == NULL) {
        free(g);
        return NULL;
    }
    note_group(g, params);
    return g;
}

static int km_gen_set_template(void *genctx, void *templ)
{
    struct km_genctx *g = genctx;
    OFFLOAD_KEY *t = templ;

    if (t == NULL || t->alg != g->alg) {
        OFFLOAD_RAISE(g->pctx, OFFLOAD_R_WRONG_KEY_TYPE, "template is not a %s key",
                      g->alg->name);
        return 0;
    }
    if (!g->alg->gen_set_template(g->sgen, t->kd))
        return 0;
    g->cheap = offload_key_cheap(t);
    return 1;
}

static int km_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    struct km_genctx *g = genctx;

    if (!g->alg->gen_set_params(g->sgen, params))
        return 0;
    note_group(g, params);
    return 1;
}

static void genctx_put(struct km_genctx *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    g->alg->gen_cleanup(g->sgen);
    free(g);
}

/*
 * Key generation inside a job (the ephemeral key of every TLS handshake):
 * X25519 costs as much as a derive, so it goes to a worker like one.
 */
struct gen_job {
    struct km_genctx *g;
    void *kd;
};

static int gen_job_run(struct offload_req *req)
{
    struct gen_job *j = (struct gen_job *)req->payload;

    /* Only for types whose generation ignores the callback (gen_offload). */
    j->kd = j->g->alg->gen(j->g->sgen, NULL, NULL);
    return j->kd != NULL;
}

static void gen_job_release(struct offload_req *req)
{
    struct gen_job *j = (struct gen_job *)req->payload;

    if (j->kd != NULL) /* not collected: its job went away */
        j->g->alg->free_(j->kd);
    genctx_put(j->g);
}

/* A generation failed: say so when the soft engine said nothing (|last|: queue before).
 */
static void gen_failed(const struct km_genctx *g, unsigned long last)
{
    if (ERR_peek_last_error() == last)
        OFFLOAD_RAISE(g->pctx, OFFLOAD_R_ENGINE_FAILED,
                      "%s key generation failed (no group or bad parameters?)",
                      g->alg->name);
}

static void *km_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    struct km_genctx *g = genctx;
    struct offload_req *req = NULL;
    struct gen_job *j;
    enum offload_path p;
    unsigned long last;
    OFFLOAD_KEY *key;
    void *kd;

    if (!offload_is_running())
        return NULL;
    p = g->alg->gen_offload ? offload_async_path(OFFLOAD_FAM_KEYGEN, g->cheap)
                            : OFFLOAD_PATH_CALLBACK;
    if (p == OFFLOAD_PATH_OFFLOADED &&
        (req = offload_req_new(gen_job_run, gen_job_release, OFFLOAD_FAM_KEYGEN,
                               sizeof(*j))) == NULL)
        p = OFFLOAD_PATH_NO_MEMORY;
    last = ERR_peek_last_error();
    if (p != OFFLOAD_PATH_OFFLOADED) {
        offload_op_path(OFFLOAD_FAM_KEYGEN, p, g->alg->name, "gen");
        key = key_wrap(g->alg, g->pctx, g->alg->gen(g->sgen, cb, cbarg));
        if (key == NULL)
            gen_failed(g, last);
        offload_op_done(OFFLOAD_FAM_KEYGEN, key != NULL, g->alg->name, "gen");
        return key;
    }
    req->cheap = g->cheap;
    req->alg = g->alg->name;
    req->op = "gen";
    j = (struct gen_job *)req->payload;
    atomic_fetch_add(&g->refs, 1);
    j->g = g;
    kd = offload_async_run(req) > 0 ? j->kd : NULL;
    j->kd = NULL; /* ours now */
    offload_req_put(req);
    key = key_wrap(g->alg, g->pctx, kd);
    if (key == NULL)
        gen_failed(g, last);
    /* The worker made it (and counted no failure), we could not wrap it. */
    if (kd != NULL && key == NULL)
        offload_op_failed(OFFLOAD_FAM_KEYGEN, g->alg->name, "gen");
    return key;
}

static void km_gen_cleanup(void *genctx)
{
    genctx_put(genctx);
}

static int km_get_params(void *vkey, OSSL_PARAM params[])
{
    OFFLOAD_KEY *key = vkey;

    return key->alg->get_params(key->kd, params);
}

static int km_set_params(void *vkey, const OSSL_PARAM params[])
{
    OFFLOAD_KEY *key = vkey;

    return key->alg->set_params(key->kd, params);
}

static int km_has(const void *vkey, int selection)
{
    const OFFLOAD_KEY *key = vkey;

    return key != NULL && key->alg->has(key->kd, selection);
}

static int km_validate(const void *vkey, int selection, int checktype)
{
    const OFFLOAD_KEY *key = vkey;

    return key->alg->validate(key->kd, selection, checktype);
}

static int km_match(const void *vkey1, const void *vkey2, int selection)
{
    const OFFLOAD_KEY *k1 = vkey1, *k2 = vkey2;

    if (k1->alg != k2->alg)
        return 0;
    return k1->alg->match(k1->kd, k2->kd, selection);
}

static int km_import(void *vkey, int selection, const OSSL_PARAM params[])
{
    OFFLOAD_KEY *key = vkey;

    return key->alg->import(key->kd, selection, params);
}

static int km_export(void *vkey, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    OFFLOAD_KEY *key = vkey;

    return key->alg->export_(key->kd, selection, cb, cbarg);
}

static void *km_dup(const void *vkey, int selection)
{
    const OFFLOAD_KEY *key = vkey;

    return key_wrap(key->alg, key->pctx, key->alg->dup(key->kd, selection));
}

/* ---- functions that name no key: one trampoline per key type ---- */

struct km_tramp {
    OSSL_FUNC_keymgmt_new_fn *new_;
    OSSL_FUNC_keymgmt_gen_init_fn *gen_init;
    OSSL_FUNC_keymgmt_gen_settable_params_fn *gen_settable_params;
    OSSL_FUNC_keymgmt_gettable_params_fn *gettable_params;
    OSSL_FUNC_keymgmt_settable_params_fn *settable_params;
    OSSL_FUNC_keymgmt_query_operation_name_fn *query_operation_name;
    OSSL_FUNC_keymgmt_import_types_fn *import_types;
    OSSL_FUNC_keymgmt_export_types_fn *export_types;
};

#define KM_TRAMPOLINES(i)                                                                \
    static void *km_new_##i(void *provctx)                                               \
    {                                                                                    \
        return km_new(provctx, &km_algs[i]);                                             \
    }                                                                                    \
    static void *km_gen_init_##i(void *provctx, int sel, const OSSL_PARAM params[])      \
    {                                                                                    \
        return km_gen_init(provctx, sel, params, &km_algs[i]);                           \
    }                                                                                    \
    static const OSSL_PARAM *km_gen_settable_##i(void *genctx, void *provctx)            \
    {                                                                                    \
        struct km_genctx *g = genctx;                                                    \
        (void)provctx;                                                                   \
        return km_algs[i].gen_settable_params(g != NULL ? g->sgen : NULL,                \
                                              offload_soft_provctx());                   \
    }                                                                                    \
    static const OSSL_PARAM *km_gettable_##i(void *provctx)                              \
    {                                                                                    \
        (void)provctx;                                                                   \
        return km_algs[i].gettable_params(offload_soft_provctx());                       \
    }                                                                                    \
    static const OSSL_PARAM *km_settable_##i(void *provctx)                              \
    {                                                                                    \
        (void)provctx;                                                                   \
        return km_algs[i].settable_params(offload_soft_provctx());                       \
    }                                                                                    \
    static const char *km_opname_##i(int op)                                             \
    {                                                                                    \
        return km_algs[i].query_operation_name(op);                                      \
    }                                                                                    \
    static const OSSL_PARAM *km_import_types_##i(int sel)                                \
    {                                                                                    \
        return km_algs[i].import_types(sel);                                             \
    }                                                                                    \
    static const OSSL_PARAM *km_export_types_##i(int sel)                                \
    {                                                                                    \
        return km_algs[i].export_types(sel);                                             \
    }

#define KM_TRAMP(i)                                                                      \
    {                                                                                    \
        km_new_##i, km_gen_init_##i, km_gen_settable_##i, km_gettable_##i,               \
            km_settable_##i, km_opname_##i, km_import_types_##i, km_export_types_##i     \
    }

KM_TRAMPOLINES(0)
KM_TRAMPOLINES(1)
KM_TRAMPOLINES(2)
KM_TRAMPOLINES(3)
KM_TRAMPOLINES(4)
KM_TRAMPOLINES(5)
KM_TRAMPOLINES(6)

static const struct km_tramp km_tramps[KM_COUNT] = {
    KM_TRAMP(0), KM_TRAMP(1), KM_TRAMP(2), KM_TRAMP(3),
    KM_TRAMP(4), KM_TRAMP(5), KM_TRAMP(6),
};

/* ---- binding to the soft engine and the algorithm table ---- */

#define KM_MAX_FNS 24
static OSSL_DISPATCH km_dispatch[KM_COUNT][KM_MAX_FNS];
static OSSL_ALGORITHM km_table[KM_COUNT + 1];

#define BIND(field, id, ours) OFFLOAD_SOFT_BIND(alg, d, field, id, ours)

size_t offload_keymgmt_bind(void)
{
    size_t i, n = 0;

    for (i = 0; i < KM_COUNT; i++) {
        struct offload_keymgmt_alg *alg = &km_algs[i];
        const struct km_tramp *t = &km_tramps[i];
        OSSL_DISPATCH *d = km_dispatch[i];

        alg->soft = offload_soft_find(OSSL_OP_KEYMGMT, alg->name, &alg->names);
        if (alg->soft == NULL)
            continue;
        BIND(new_, OSSL_FUNC_KEYMGMT_NEW, t->new_);
        BIND(free_, OSSL_FUNC_KEYMGMT_FREE, km_free);
        BIND(gen_init, OSSL_FUNC_KEYMGMT_GEN_INIT, t->gen_init);
        BIND(gen_set_template, OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, km_gen_set_template);
        BIND(gen_set_params, OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, km_gen_set_params);
        BIND(gen_settable_params, OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,
             t->gen_settable_params);
        BIND(gen, OSSL_FUNC_KEYMGMT_GEN, km_gen);
        BIND(gen_cleanup, OSSL_FUNC_KEYMGMT_GEN_CLEANUP, km_gen_cleanup);
        BIND(get_params, OSSL_FUNC_KEYMGMT_GET_PARAMS, km_get_params);
        BIND(gettable_params, OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, t->gettable_params);
        BIND(set_params, OSSL_FUNC_KEYMGMT_SET_PARAMS, km_set_params);
        BIND(settable_params, OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, t->settable_params);
        BIND(query_operation_name, OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
             t->query_operation_name);
        BIND(has, OSSL_FUNC_KEYMGMT_HAS, km_has);
        BIND(validate, OSSL_FUNC_KEYMGMT_VALIDATE, km_validate);
        BIND(match, OSSL_FUNC_KEYMGMT_MATCH, km_match);
        BIND(import, OSSL_FUNC_KEYMGMT_IMPORT, km_import);
        BIND(import_types, OSSL_FUNC_KEYMGMT_IMPORT_TYPES, t->import_types);
        BIND(export_, OSSL_FUNC_KEYMGMT_EXPORT, km_export);
        BIND(export_types, OSSL_FUNC_KEYMGMT_EXPORT_TYPES, t->export_types);
        BIND(dup, OSSL_FUNC_KEYMGMT_DUP, km_dup);
        *d = (OSSL_DISPATCH){0, NULL};
        /* A key type we cannot create or free is not offered at all. */
        if (alg->new_ == NULL || alg->free_ == NULL || alg->import == NULL ||
            alg->export_ == NULL || alg->has == NULL) {
            alg->soft = NULL;
            continue;
        }
        km_table[n++] = (OSSL_ALGORITHM){alg->names, "provider=offload", km_dispatch[i],
                                         "offload key management"};
    }
    km_table[n] = (OSSL_ALGORITHM){NULL, NULL, NULL, NULL};
    return n;
}

const OSSL_ALGORITHM *offload_keymgmt_algorithms(void)
{
    return km_table;
}

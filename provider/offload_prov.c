/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider itself: OSSL_provider_init, configuration, the algorithm
 * tables, reason strings, counters and teardown. The work is elsewhere:
 * accel/ (workers, queue, wake), async.c (the ASYNC_* glue), soft.c
 * (the default provider underneath) and one file per operation family.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/proverr.h>
#include <openssl/provider.h>

#include "accel/accel.h"
#include "async.h"
#include "cipher_gate.h"
#include "config.h"
#include "ctxstate.h"
#include "decoder_p11uri.h"
#include "errors.h"
#include "families.h"
#include "mirror.h"
#include "offload_version.h"
#include "pkcs11.h"
#include "prov.h"
#include "soft.h"
#include "store_pkcs11.h"

/* Instances alive (one per library context that loaded us). */
static pthread_mutex_t prov_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned prov_instances;
_Atomic int offload_running;

static OSSL_FUNC_core_get_params_fn *c_get_params;

/* ---- configuration (parsed by config.c) ---- */

/* The configuration the process runs with: the first instance's. */
static struct offload_config active;

/*
 * A bad value makes init fail with a message naming the key and the value.
 * Our reason strings are registered only after a successful init, so the
 * error carries the default provider's "invalid config data" reason; and
 * since OpenSSL drops the errors of a provider that fails to activate from
 * openssl.cnf, it also goes to stderr.
 */
static int read_config(const OSSL_CORE_HANDLE *handle, struct offload_config *cfg)
{
    struct offload_config_text t = {0};
    const char *provname = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_WORKERS, (char **)&t.workers, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_QUEUE_DEPTH, (char **)&t.queue_depth, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_INLINE_BELOW, (char **)&t.inline_below, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_CIPHER_GATE, (char **)&t.cipher_gate, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_BUSY_INLINE, (char **)&t.busy_inline, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_OFFLOAD, (char **)&t.offload, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_SPIN_US, (char **)&t.spin_us, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_WORKER_NICE, (char **)&t.worker_nice, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_WORKER_POLICY, (char **)&t.worker_policy, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_DEBUG, (char **)&t.debug, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_STATS_FILE, (char **)&t.stats_file, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_STATS_FORMAT, (char **)&t.stats_format, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_PKCS11_MODULE, (char **)&t.pkcs11_module, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_PKCS11_THREADS, (char **)&t.pkcs11_threads, 0),
        OSSL_PARAM_utf8_ptr(OFFLOAD_CONF_PKCS11_PIN_FILE, (char **)&t.pkcs11_pin_file, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_CORE_PROV_NAME, (char **)&provname, 0),
        OSSL_PARAM_END};
    char err[256];

    if (c_get_params != NULL && !c_get_params(handle, params))
        return 0;
    if (provname != NULL)
        offload_config_report_unknown(provname);
    if (offload_config_parse(&t, cfg, err, sizeof(err)))
        return 1;
    fprintf(stderr, "offload: bad configuration: %s\n", err);
    OFFLOAD_RAISE(NULL, (int)ERR_PACK(ERR_LIB_PROV, 0, PROV_R_INVALID_CONFIG_DATA), "%s",
                  err);
    return 0;
}

/*
 * The accelerator is one per process, whatever the number of library
 * contexts that load us: a later instance shares it as the first one
 * configured it. When its own section asks for something else, say so
 * (stderr, and the log) instead of ignoring it silently.
 */
static void report_not_applied(const struct offload_config *cfg)
{
    char keys[160], now[256];

    if (offload_config_diff(cfg, &active, keys, sizeof(keys)) == 0)
        return;
    offload_config_format(&active, now, sizeof(now));
    fprintf(stderr,
            "offload: this instance's %s not applied: one accelerator serves the whole "
            "process, configured by the first instance (%s)\n",
            keys, now);
    OFFLOAD_DEBUG("instance %u: %s not applied (the first instance's configuration "
                  "stays)",
                  prov_instances + 1, keys);
}

/* ---- provider params: identity, then the counters (stats.c) ---- */

static OSSL_FUNC_provider_gettable_params_fn offload_gettable_params;
static OSSL_FUNC_provider_get_params_fn offload_get_params;
static OSSL_FUNC_provider_query_operation_fn offload_query_operation;
static OSSL_FUNC_provider_teardown_fn offload_teardown;

static const OSSL_PARAM *offload_gettable_params(void *provctx)
{
    (void)provctx;
    return offload_stats_gettable();
}

static int offload_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    (void)provctx;
    for (p = params; p != NULL && p->key != NULL; p++) {
        int ok = 1;

        if (strcmp(p->key, OSSL_PROV_PARAM_NAME) == 0)
            ok = OSSL_PARAM_set_utf8_ptr(p,
                                         "offload: crypto on worker threads, async jobs");
        else if (strcmp(p->key, OSSL_PROV_PARAM_VERSION) == 0)
            ok = OSSL_PARAM_set_utf8_ptr(p, OFFLOAD_VERSION);
        else if (strcmp(p->key, OSSL_PROV_PARAM_BUILDINFO) == 0)
            ok = OSSL_PARAM_set_utf8_ptr(p, OFFLOAD_VERSION
                                         " (soft engine: default provider)");
        else if (strcmp(p->key, OSSL_PROV_PARAM_STATUS) == 0)
            ok = OSSL_PARAM_set_int(p, offload_is_running());
        else
            ok = offload_stats_get_param(p);
        if (!ok)
            return 0;
    }
    return 1;
}

static const OSSL_ALGORITHM *offload_query_operation(void *provctx, int operation_id,
                                                     int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return offload_keymgmt_algorithms();
    case OSSL_OP_SIGNATURE:
        return offload_signature_algorithms();
    case OSSL_OP_KEYEXCH:
        return offload_keyexch_algorithms();
    case OSSL_OP_KEM:
        return offload_kem_algorithms();
    case OSSL_OP_ASYM_CIPHER:
        return offload_asym_cipher_algorithms();
    case OSSL_OP_CIPHER:
        return offload_cipher_algorithms();
    case OSSL_OP_SKEYMGMT:
        return offload_skeymgmt_algorithms();
    case OSSL_OP_STORE:
        return offload_store_algorithms();
    case OSSL_OP_DECODER:
        return offload_decoder_algorithms();
    }
    return NULL;
}

/* |provctx| is the default's (soft.h): every instance shares it, and it is not ours. */
static void offload_teardown(void *provctx)
{
    (void)provctx;
    pthread_mutex_lock(&prov_lock);
    if (offload_log_enabled())
        offload_stats_log();
    if (--prov_instances == 0) {
        /* Drain and join the workers before the soft engine goes away. */
        offload_stats_file_stop();
        offload_accel_release();
        offload_p11_release(); /* the token threads joined, then C_Finalize */
        atomic_store(&offload_running, 0);
        if (offload_ctxstate_count() > 0)
            OFFLOAD_DEBUG("%zu contexts still known at unload", offload_ctxstate_count());
        offload_keymgmt_unbind();
        offload_signature_unbind();
        offload_keyexch_unbind();
        offload_cipher_unbind();
        offload_kem_unbind();
        offload_asym_cipher_unbind();
        offload_soft_release();
        offload_decoder_release();
        offload_errors_unload();
        OFFLOAD_DEBUG("unloaded");
    } else {
        offload_accel_release();
        offload_p11_release();
        offload_soft_release();
    }
    pthread_mutex_unlock(&prov_lock);
}

/*
 * libssl keeps a TLS group only when the key manager it fetches for the
 * group's algorithm comes from the provider that advertised the group:
 * our EC/X25519/X448 key managers are preferred, so we must advertise the
 * groups too (the default provider's, as they are).
 */
static int offload_get_capabilities(void *provctx, const char *capability,
                                    OSSL_CALLBACK *cb, void *arg)
{
    (void)provctx;
    return OSSL_PROVIDER_get_capabilities(offload_soft_prov(), capability, cb, arg);
}

static const OSSL_DISPATCH offload_dispatch[] = {
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))offload_get_capabilities},
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))offload_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))offload_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))offload_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))offload_query_operation},
    {0, NULL}};

/* The log's lines at load: every key's effective value, and what was bound. */
static void log_config(size_t nkm, size_t nsig, size_t nkex, size_t nkem, size_t nacip,
                       size_t nciph)
{
    char line[256];

    offload_config_format(&active, line, sizeof(line));
    offload_log("loaded %s: %s", OFFLOAD_VERSION, line);
    offload_log("stats_file=%s stats_format=%s",
                active.stats_file[0] != '\0' ? active.stats_file : "(none)",
                active.stats_format == OFFLOAD_STATS_PROMETHEUS ? "prometheus" : "plain");
    offload_log("pkcs11_module=%s pkcs11_threads=%u pkcs11_pin_file=%s",
                active.pkcs11_module[0] != '\0' ? active.pkcs11_module : "(none)",
                active.pkcs11_threads,
                active.pkcs11_pin_file[0] != '\0' ? active.pkcs11_pin_file : "(none)");
    offload_log("bound %zu key types, %zu signatures, %zu key exchanges, %zu KEMs, %zu "
                "asym ciphers, %zu ciphers",
                nkm, nsig, nkex, nkem, nacip, nciph);
}

/*
 * The accelerator registers atexit() and pthread_atfork() handlers, and
 * ctxstate.c a pthread_atfork() one. glibc drops a module's handlers when
 * it is dlclose()d; ThreadSanitizer's interceptors do not, and would call
 * into the unmapped module at exit (a test that never runs a job, so never
 * pins the module in async.c, crashes there). Under TSan only, keep the
 * module mapped once loaded.
 */
#if defined(__SANITIZE_THREAD__)
#define OFFLOAD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OFFLOAD_TSAN 1
#endif
#endif
#ifdef OFFLOAD_TSAN
#include <dlfcn.h>
static void pin_module(void)
{
    Dl_info info;

    if (dladdr((void *)&pin_module, &info) && info.dli_fname != NULL)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

static void pin_for_tsan(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, pin_module);
}
#else
static void pin_for_tsan(void)
{
}
#endif

/*
 * The PKCS#11 module (pkcs11.h), process-wide like the accelerator: the
 * first instance's keys load it. One that cannot be loaded fails the init
 * like a bad value, on stderr too.
 */
static int acquire_pkcs11(void)
{
    char err[512];

    if (offload_p11_acquire(&(struct offload_p11_config){active.pkcs11_module,
                                                         active.pkcs11_threads,
                                                         active.pkcs11_pin_file},
                            err, sizeof(err)))
        return 1;
    fprintf(stderr, "offload: bad configuration: %s\n", err);
    OFFLOAD_RAISE(NULL, (int)ERR_PACK(ERR_LIB_PROV, 0, PROV_R_INVALID_CONFIG_DATA), "%s",
                  err);
    return 0;
}

OSSL_provider_init_fn OSSL_provider_init;

/*
 * Our provider context is the default provider's, from our private
 * library context (soft.h): every function of the default's that our
 * tables forward receives the context it expects. Nothing of ours reads
 * it: the accelerator and the configuration are process-wide, and errors
 * go through our own error library.
 */
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    struct offload_config cfg;
    const OSSL_DISPATCH *core = in;

    for (; in->function_id != 0; in++)
        if (in->function_id == OSSL_FUNC_CORE_GET_PARAMS)
            c_get_params = OSSL_FUNC_core_get_params(in);
    if (!read_config(handle, &cfg))
        return 0;
    pin_for_tsan();

    pthread_mutex_lock(&prov_lock);
    if (prov_instances == 0) {
        /* The first instance's configuration rules the process-wide accelerator. */
        active = cfg;
        offload_log_init(cfg.debug);
        offload_async_configure(cfg.families, cfg.busy_inline, cfg.workers,
                                cfg.inline_below);
        offload_gate_configure(cfg.cipher_gate);
        offload_errors_load();
    } else {
        report_not_applied(&cfg);
    }
    if (!offload_soft_acquire()) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_SOFT_ENGINE, NULL);
        goto err;
    }
    if (!offload_accel_acquire(&(struct offload_accel_config){
            active.workers, active.queue_depth, active.spin_us, active.worker_nice,
            active.worker_policy == OFFLOAD_POLICY_IDLE})) {
        offload_soft_release();
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "queue of %u requests", active.queue_depth);
        goto err;
    }
    if (!acquire_pkcs11()) {
        offload_accel_release();
        offload_soft_release();
        goto err;
    }
    /* The decoders of key-URI files read libcrypto's BIOs through the core's functions.
     */
    if (prov_instances == 0 && !offload_decoder_init(handle, core)) {
        offload_p11_release();
        offload_accel_release();
        offload_soft_release();
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a library context for the decoders' BIOs");
        goto err;
    }
    if (prov_instances++ == 0) {
        size_t nkm = offload_keymgmt_bind();
        size_t nsig = offload_signature_bind();
        size_t nkex = offload_keyexch_bind();
        size_t nkem = offload_kem_bind();
        size_t nacip = offload_asym_cipher_bind();
        size_t nciph = offload_cipher_bind();

        atomic_store(&offload_running, 1);
        if (active.stats_file[0] != '\0')
            offload_stats_file_start(active.stats_file, active.stats_format);
        if (offload_log_enabled())
            log_config(nkm, nsig, nkex, nkem, nacip, nciph);
    } else {
        OFFLOAD_DEBUG("loaded again (instance %u): it shares the accelerator",
                      prov_instances);
    }
    pthread_mutex_unlock(&prov_lock);
    *out = offload_dispatch;
    *provctx = offload_soft_provctx();
    return 1;
err:
    /* The module may be unmapped after a failed init: no strings of ours stay behind. */
    if (prov_instances == 0)
        offload_errors_unload();
    pthread_mutex_unlock(&prov_lock);
    return 0;
}

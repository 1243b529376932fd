/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration (config.h): defaults, ranges, parsing, comparing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/err.h>

#include "config.h"
#include "offload.h"

static const char *const family_names[OFFLOAD_CONFIG_FAMILIES] = {
    OFFLOAD_FAMILY_SIGNATURE, OFFLOAD_FAMILY_KEYEXCH, OFFLOAD_FAMILY_CIPHER,
    OFFLOAD_FAMILY_KEYGEN,    OFFLOAD_FAMILY_KEM,     OFFLOAD_FAMILY_ASYMCIPHER};

#define ALL_FAMILIES ((1u << OFFLOAD_CONFIG_FAMILIES) - 1)

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 0;
}

/* |val| as an integer in [lo, hi] into *out, else 0 with the reason in |err|. */
static int parse_uint(const char *key, const char *val, unsigned long lo,
                      unsigned long hi, unsigned long *out, char *err, size_t errlen)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = val[0] == '-' ? 0 : strtoul(val, &end, 10);
    if (val[0] == '-' || val[0] == '\0' || errno != 0 || *end != '\0' || v < lo || v > hi)
        return bad(err, errlen, "%s = \"%s\": expected an integer from %lu to %lu", key,
                   val, lo, hi);
    *out = v;
    return 1;
}

/* "all", "none", or a comma list of family names. */
static int parse_families(const char *val, unsigned *out, char *err, size_t errlen)
{
    char buf[128], *tok, *save = NULL;
    unsigned mask = 0;
    int f;

    if (strcasecmp(val, "all") == 0) {
        *out = ALL_FAMILIES;
        return 1;
    }
    if (strcasecmp(val, "none") == 0) {
        *out = 0;
        return 1;
    }
    if (strlen(val) >= sizeof(buf))
        goto bad_list;
    strcpy(buf, val);
    for (tok = strtok_r(buf, ", ", &save); tok != NULL;
         tok = strtok_r(NULL, ", ", &save)) {
        for (f = 0; f < OFFLOAD_CONFIG_FAMILIES; f++)
            if (strcasecmp(tok, family_names[f]) == 0)
                break;
        if (f == OFFLOAD_CONFIG_FAMILIES)
            goto bad_list;
        mask |= 1u << f;
    }
    *out = mask;
    return 1;
bad_list:
    return bad(err, errlen,
               "%s = \"%s\": expected all, none or a comma list of signature, keyexch, "
               "cipher, keygen, kem, asymcipher",
               OFFLOAD_CONF_OFFLOAD, val);
}

/* The stats file's format: "plain" or "prometheus"; |from|, when set, names the variable.
 */
static int parse_stats_format(const char *val, const char *from,
                              enum offload_stats_format *out, char *err, size_t errlen)
{
    if (strcasecmp(val, "plain") == 0)
        *out = OFFLOAD_STATS_PLAIN;
    else if (strcasecmp(val, "prometheus") == 0)
        *out = OFFLOAD_STATS_PROMETHEUS;
    else
        return bad(err, errlen, "%s = \"%s\"%s%s%s: expected plain or prometheus",
                   OFFLOAD_CONF_STATS_FORMAT, val, from != NULL ? " (from " : "",
                   from != NULL ? from : "", from != NULL ? ")" : "");
    return 1;
}

static int parse_worker_policy(const char *val, enum offload_worker_policy *out,
                               char *err, size_t errlen)
{
    if (strcasecmp(val, "normal") == 0)
        *out = OFFLOAD_POLICY_NORMAL;
    else if (strcasecmp(val, "idle") == 0)
        *out = OFFLOAD_POLICY_IDLE;
    else
        return bad(err, errlen, "%s = \"%s\": expected normal or idle",
                   OFFLOAD_CONF_WORKER_POLICY, val);
    return 1;
}

/* One unsigned key: |val| (when set) into *dst, within [lo, hi]. */
#define UINT_KEY(key, val, lo, hi, dst)                                                  \
    do {                                                                                 \
        unsigned long v_;                                                                \
        if ((val) != NULL) {                                                             \
            if (!parse_uint((key), (val), (lo), (hi), &v_, err, errlen))                 \
                return 0;                                                                \
            *(dst) = v_;                                                                 \
        }                                                                                \
    } while (0)

int offload_config_parse(const struct offload_config_text *text,
                         struct offload_config *cfg, char *err, size_t errlen)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *stats = text->stats_file, *env;
    unsigned long debug = 0, gate;

    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = ncpu > 0 ? (unsigned)(ncpu > 256 ? 256 : ncpu) : 1;
    cfg->queue_depth = 1024;
    cfg->inline_below = 8192;
    cfg->busy_inline = 1;
    cfg->spin_us = 200;
    gate = 1;
    cfg->worker_nice = OFFLOAD_WORKER_NICE_DEFAULT;
    cfg->families = ALL_FAMILIES;
    UINT_KEY(OFFLOAD_CONF_WORKERS, text->workers, 1, 256, &cfg->workers);
    UINT_KEY(OFFLOAD_CONF_QUEUE_DEPTH, text->queue_depth, 1, 1u << 20, &cfg->queue_depth);
    UINT_KEY(OFFLOAD_CONF_INLINE_BELOW, text->inline_below, 0, 1u << 20,
             &cfg->inline_below);
    UINT_KEY(OFFLOAD_CONF_CIPHER_GATE, text->cipher_gate, 0, 1, &gate);
    cfg->cipher_gate = (int)gate;
    UINT_KEY(OFFLOAD_CONF_BUSY_INLINE, text->busy_inline, 0, 1u << 20, &cfg->busy_inline);
    UINT_KEY(OFFLOAD_CONF_SPIN_US, text->spin_us, 0, 10000, &cfg->spin_us);
    UINT_KEY(OFFLOAD_CONF_WORKER_NICE, text->worker_nice, 0, 19, &cfg->worker_nice);
    cfg->worker_policy = OFFLOAD_POLICY_NORMAL;
    if (text->worker_policy != NULL &&
        !parse_worker_policy(text->worker_policy, &cfg->worker_policy, err, errlen))
        return 0;
    UINT_KEY(OFFLOAD_CONF_DEBUG, text->debug, 0, 1, &debug);
    cfg->debug = (int)debug;
    if (text->offload != NULL &&
        !parse_families(text->offload, &cfg->families, err, errlen))
        return 0;
    env = getenv(OFFLOAD_ENV_STATS_FILE);
    if (env != NULL && env[0] != '\0')
        stats = env;
    if (stats != NULL) {
        if (stats[0] != '/' || strlen(stats) >= sizeof(cfg->stats_file))
            return bad(err, errlen, "%s = \"%s\": expected an absolute path",
                       OFFLOAD_CONF_STATS_FILE, stats);
        strcpy(cfg->stats_file, stats);
    }
    cfg->stats_format = OFFLOAD_STATS_PLAIN;
    if (text->stats_format != NULL &&
        !parse_stats_format(text->stats_format, NULL, &cfg->stats_format, err, errlen))
        return 0;
    env = getenv(OFFLOAD_ENV_STATS_FORMAT);
    if (env != NULL && env[0] != '\0' &&
        !parse_stats_format(env, OFFLOAD_ENV_STATS_FORMAT, &cfg->stats_format, err,
                            errlen))
        return 0;
    cfg->pkcs11_threads = 32;
    UINT_KEY(OFFLOAD_CONF_PKCS11_THREADS, text->pkcs11_threads, 1, 1024,
             &cfg->pkcs11_threads);
    if (text->pkcs11_module != NULL) {
        if (text->pkcs11_module[0] == '\0' ||
            strlen(text->pkcs11_module) >= sizeof(cfg->pkcs11_module))
            return bad(err, errlen, "%s = \"%s\": expected the path of a PKCS#11 module",
                       OFFLOAD_CONF_PKCS11_MODULE, text->pkcs11_module);
        strcpy(cfg->pkcs11_module, text->pkcs11_module);
    }
    if (text->pkcs11_pin_file != NULL) {
        if (text->pkcs11_pin_file[0] != '/' ||
            strlen(text->pkcs11_pin_file) >= sizeof(cfg->pkcs11_pin_file))
            return bad(err, errlen, "%s = \"%s\": expected an absolute path",
                       OFFLOAD_CONF_PKCS11_PIN_FILE, text->pkcs11_pin_file);
        strcpy(cfg->pkcs11_pin_file, text->pkcs11_pin_file);
    }
    env = getenv(OFFLOAD_ENV_DEBUG);
    if (env != NULL && strcmp(env, "1") == 0)
        cfg->debug = 1;
    return 1;
}

int offload_config_diff(const struct offload_config *a, const struct offload_config *b,
                        char *buf, size_t len)
{
    const char *keys[15];
    int n = 0, i;
    size_t used = 0;

    if (a->workers != b->workers)
        keys[n++] = OFFLOAD_CONF_WORKERS;
    if (a->queue_depth != b->queue_depth)
        keys[n++] = OFFLOAD_CONF_QUEUE_DEPTH;
    if (a->inline_below != b->inline_below)
        keys[n++] = OFFLOAD_CONF_INLINE_BELOW;
    if (a->cipher_gate != b->cipher_gate)
        keys[n++] = OFFLOAD_CONF_CIPHER_GATE;
    if (a->busy_inline != b->busy_inline)
        keys[n++] = OFFLOAD_CONF_BUSY_INLINE;
    if (a->spin_us != b->spin_us)
        keys[n++] = OFFLOAD_CONF_SPIN_US;
    if (a->worker_nice != b->worker_nice)
        keys[n++] = OFFLOAD_CONF_WORKER_NICE;
    if (a->worker_policy != b->worker_policy)
        keys[n++] = OFFLOAD_CONF_WORKER_POLICY;
    if (a->families != b->families)
        keys[n++] = OFFLOAD_CONF_OFFLOAD;
    if (a->debug != b->debug)
        keys[n++] = OFFLOAD_CONF_DEBUG;
    if (strcmp(a->stats_file, b->stats_file) != 0)
        keys[n++] = OFFLOAD_CONF_STATS_FILE;
    if (a->stats_format != b->stats_format)
        keys[n++] = OFFLOAD_CONF_STATS_FORMAT;
    if (strcmp(a->pkcs11_module, b->pkcs11_module) != 0)
        keys[n++] = OFFLOAD_CONF_PKCS11_MODULE;
    if (a->pkcs11_threads != b->pkcs11_threads)
        keys[n++] = OFFLOAD_CONF_PKCS11_THREADS;
    if (strcmp(a->pkcs11_pin_file, b->pkcs11_pin_file) != 0)
        keys[n++] = OFFLOAD_CONF_PKCS11_PIN_FILE;
    if (len > 0)
        buf[0] = '\0';
    for (i = 0; i < n && used < len; i++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", keys[i]);
    return n;
}

void offload_config_format(const struct offload_config *cfg, char *buf, size_t len)
{
    char fams[64] = "";
    size_t n = 0;
    int f;

    for (f = 0; f < OFFLOAD_CONFIG_FAMILIES; f++)
        if ((cfg->families >> f) & 1u && n < sizeof(fams))
            n += (size_t)snprintf(fams + n, sizeof(fams) - n, "%s%s", n > 0 ? "," : "",
                                  family_names[f]);
    snprintf(buf, len,
             "workers=%u queue_depth=%u inline_below=%zu cipher_gate=%d busy_inline=%u "
             "spin_us=%u worker_nice=%u worker_policy=%s offload=%s debug=%d",
             cfg->workers, cfg->queue_depth, cfg->inline_below, cfg->cipher_gate,
             cfg->busy_inline, cfg->spin_us, cfg->worker_nice,
             cfg->worker_policy == OFFLOAD_POLICY_IDLE ? "idle" : "normal",
             n > 0 ? fams : "none", cfg->debug);
}

void offload_config_report_unknown(const char *provname)
{
    static const char *const known[] = {"module",
                                        "activate",
                                        "identity",
                                        "soft_load",
                                        OFFLOAD_CONF_WORKERS,
                                        OFFLOAD_CONF_QUEUE_DEPTH,
                                        OFFLOAD_CONF_INLINE_BELOW,
                                        OFFLOAD_CONF_CIPHER_GATE,
                                        OFFLOAD_CONF_BUSY_INLINE,
                                        OFFLOAD_CONF_OFFLOAD,
                                        OFFLOAD_CONF_SPIN_US,
                                        OFFLOAD_CONF_WORKER_NICE,
                                        OFFLOAD_CONF_WORKER_POLICY,
                                        OFFLOAD_CONF_DEBUG,
                                        OFFLOAD_CONF_STATS_FILE,
                                        OFFLOAD_CONF_STATS_FORMAT,
                                        OFFLOAD_CONF_PKCS11_MODULE,
                                        OFFLOAD_CONF_PKCS11_THREADS,
                                        OFFLOAD_CONF_PKCS11_PIN_FILE,
                                        NULL};
    char *file = CONF_get1_default_config_file();
    CONF *conf = NCONF_new(NULL);
    const char *init, *provs, *ours;
    STACK_OF(CONF_VALUE) * sect;
    int i, k;

    if (file == NULL || conf == NULL || NCONF_load(conf, file, NULL) <= 0)
        goto out;
    if ((init = NCONF_get_string(conf, NULL, "openssl_conf")) == NULL ||
        (provs = NCONF_get_string(conf, init, "providers")) == NULL ||
        (ours = NCONF_get_string(conf, provs, provname)) == NULL ||
        (sect = NCONF_get_section(conf, ours)) == NULL)
        goto out;
    for (i = 0; i < sk_CONF_VALUE_num(sect); i++) {
        const char *name = sk_CONF_VALUE_value(sect, i)->name;

        for (k = 0; known[k] != NULL && strcmp(name, known[k]) != 0; k++)
            ;
        if (known[k] == NULL)
            fprintf(stderr, "offload: unknown configuration key \"%s\" in [%s] of %s\n",
                    name, ours, file);
    }
out:
    ERR_clear_error(); /* a missing or odd file is not our error */
    NCONF_free(conf);
    OPENSSL_free(file);
}

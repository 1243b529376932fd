/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration: the keys of the provider's openssl.cnf section
 * (include/offload.h), their defaults and ranges, and the environment
 * variables that override three of them. A leaf: it knows nothing of the
 * rest of the provider, raises nothing and keeps no state; the provider
 * core (offload_prov.c) reads the section, calls it, and hands each part
 * of the result to the module it configures (the accelerator, the
 * offload policy, the cipher family, the log, the stats file).
 */
#ifndef OFFLOAD_CONFIG_H
#define OFFLOAD_CONFIG_H

#include <stddef.h>

/* Families of the "offload" key, in the order of enum offload_family. */
#define OFFLOAD_CONFIG_FAMILIES 6

/* What the stats file holds (the stats_format key). */
enum offload_stats_format {
    OFFLOAD_STATS_PLAIN,     /* "name value" lines, as the provider params */
    OFFLOAD_STATS_PROMETHEUS /* Prometheus text exposition format */
};

/* How the workers are scheduled (the worker_policy key). */
enum offload_worker_policy {
    OFFLOAD_POLICY_NORMAL, /* SCHED_OTHER at worker_nice */
    OFFLOAD_POLICY_IDLE    /* SCHED_IDLE: preempted by any other thread */
};

struct offload_config {
    unsigned workers;
    unsigned queue_depth;
    size_t inline_below;
    int cipher_gate;      /* measured choice for updates of inline_below or more */
    unsigned busy_inline; /* per worker; 0: off */
    unsigned spin_us;
    unsigned worker_nice; /* the workers' nice value: under the caller's */
    enum offload_worker_policy worker_policy;
    unsigned families; /* bit per family: offload allowed */
    int debug;
    char stats_file[256]; /* "" or where the counters are rewritten */
    enum offload_stats_format stats_format;
    char pkcs11_module[256];   /* "" : no token support */
    unsigned pkcs11_threads;   /* token threads */
    char pkcs11_pin_file[256]; /* "" or the PIN's file */
};

/* The section's values as the core hands them over; NULL: not set. */
struct offload_config_text {
    const char *workers, *queue_depth, *inline_below, *cipher_gate, *busy_inline,
        *offload, *spin_us, *worker_nice, *worker_policy, *debug, *stats_file,
        *stats_format, *pkcs11_module, *pkcs11_threads, *pkcs11_pin_file;
};

/*
 * Defaults, then |text|, then the environment (OFFLOAD_STATS_FILE,
 * OFFLOAD_STATS_FORMAT, OFFLOAD_DEBUG=1) into |cfg|. 1 on success; 0
 * with a message naming the key, the value and what was expected in |err|.
 */
int offload_config_parse(const struct offload_config_text *text,
                         struct offload_config *cfg, char *err, size_t errlen);

/*
 * The keys whose values differ between |a| and |b|, comma-separated into
 * |buf|; returns how many.
 */
int offload_config_diff(const struct offload_config *a, const struct offload_config *b,
                        char *buf, size_t len);

/* "workers=2 queue_depth=1024 ... offload=signature,cipher debug=0" into |buf|. */
void offload_config_format(const struct offload_config *cfg, char *buf, size_t len);

/*
 * Keys nobody reads are most likely typos. The core gives a provider only
 * the keys it asks for, so look at the section ourselves when the default
 * config file (OPENSSL_CONF) is the one that names |provname|, and report
 * the others on stderr. Best effort: nothing fails because of it.
 */
void offload_config_report_unknown(const char *provname);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offload — public names of the OpenSSL provider that runs crypto on
 * worker threads and pauses the calling ASYNC_JOB meanwhile.
 *
 * Applications need only these strings: the provider name to load,
 * the keys of its openssl.cnf section, and the counters readable with
 * OSSL_PROVIDER_get_params().
 */
#ifndef OFFLOAD_H
#define OFFLOAD_H

#define OFFLOAD_PROVIDER_NAME "offload"

/*
 * Keys of the provider's section in openssl.cnf (range; default):
 *
 * workers       worker threads (1..256; online CPUs)
 * queue_depth   bounded queue length (1..1048576; 1024)
 * inline_below  cipher updates shorter than this stay inline (0..1048576; 8192)
 * busy_inline   queued requests per worker from which cheap operations
 *               (P-256, Ed25519, X25519, cipher records) run on the
 *               calling thread instead; 0: never (0..1048576; 1)
 * offload       families offloaded: "all", "none" or a comma list (all)
 * spin_us       an idle worker's busy-wait for jobs about to submit
 *               again (0..10000; 200)
 * debug         log to stderr, also env OFFLOAD_DEBUG=1 (0..1; 0)
 * stats_file    absolute path rewritten with the counters, also env
 *               OFFLOAD_STATS_FILE (unset)
 */
#define OFFLOAD_CONF_WORKERS      "workers"
#define OFFLOAD_CONF_QUEUE_DEPTH  "queue_depth"
#define OFFLOAD_CONF_INLINE_BELOW "inline_below"
#define OFFLOAD_CONF_BUSY_INLINE  "busy_inline"
#define OFFLOAD_CONF_OFFLOAD      "offload"
#define OFFLOAD_CONF_SPIN_US      "spin_us"
#define OFFLOAD_CONF_DEBUG        "debug"
#define OFFLOAD_CONF_STATS_FILE   "stats_file"

/* Family names used in the "offload" key and in counter names. */
#define OFFLOAD_FAMILY_SIGNATURE "signature"
#define OFFLOAD_FAMILY_KEYEXCH   "keyexch"
#define OFFLOAD_FAMILY_CIPHER    "cipher"
#define OFFLOAD_FAMILY_KEYGEN    "keygen"

/*
 * Counters (OSSL_PARAM_UNSIGNED_INTEGER, uint64_t) readable with
 * OSSL_PROVIDER_get_params(). Each exists as a total, "offload-<counter>",
 * and per family, "offload-<family>-<counter>", e.g.
 * "offload-signature-offloaded".
 */
#define OFFLOAD_STAT_OFFLOADED  "offloaded"  /* handed to a worker */
#define OFFLOAD_STAT_INLINE     "inline"     /* ran on the calling thread */
#define OFFLOAD_STAT_COMPLETED  "completed"  /* finished by a worker */
#define OFFLOAD_STAT_FAILED     "failed"     /* finished (anywhere) with an error */
#define OFFLOAD_STAT_QUEUE_FULL "queue-full" /* submit refused: queue at queue_depth */
#define OFFLOAD_STAT_PAUSES     "pauses"     /* ASYNC_pause_job calls made */

/* Totals only. */
#define OFFLOAD_PARAM_QUEUE_HIGH_WATER "offload-queue-high-water"
#define OFFLOAD_PARAM_WORKERS          "offload-workers"
#define OFFLOAD_PARAM_IN_FLIGHT        "offload-in-flight"

/*
 * Environment variables: a file the provider rewrites twice a second with
 * "name value" lines of every counter (overrides stats_file), and the
 * debug switch.
 */
#define OFFLOAD_ENV_STATS_FILE "OFFLOAD_STATS_FILE"
#define OFFLOAD_ENV_DEBUG      "OFFLOAD_DEBUG"

#endif

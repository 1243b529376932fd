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
 * cipher_gate   1: an update of inline_below bytes or more goes to a worker
 *               only while that costs the calling thread less than running
 *               it, as measured per cipher, direction and size class; 0:
 *               every such update goes (0..1; 1)
 * busy_inline   queued requests per worker from which cheap operations
 *               (P-256, Ed25519, X25519, cipher records) run on the
 *               calling thread instead; 0: never (0..1048576; 1)
 * offload       families offloaded: "all", "none" or a comma list (all)
 * spin_us       an idle worker's busy-wait for jobs about to submit
 *               again (0..10000; 200)
 * worker_nice   the worker threads' nice value: a smaller share of a
 *               contended core for them than for the application's
 *               threads (0..19; OFFLOAD_WORKER_NICE_DEFAULT); it does not
 *               make a woken event loop preempt a running worker on EEVDF
 *               kernels (see worker_policy)
 * worker_policy how the kernel schedules the workers (normal):
 *               "normal"  SCHED_OTHER at worker_nice, a fair share
 *               "idle"    SCHED_IDLE: a worker runs only on CPU time no
 *                         other thread wants, and any other thread that
 *                         wakes preempts it at once. On EEVDF kernels
 *                         (Linux 6.6+) a woken thread otherwise waits for
 *                         the running worker's slice to end, at the next
 *                         tick (up to 4 ms at HZ=250), whatever the nice
 *                         values. For servers whose event loop must never
 *                         wait behind a worker; on a machine whose cores
 *                         are all busy with other threads, offloaded work
 *                         then waits for them
 * debug         log to stderr, also env OFFLOAD_DEBUG=1 (0..1; 0): the
 *               configuration at load, each counted operation's path and
 *               why ("offload[<pid>]: signature RSA sign: offloaded",
 *               "... inline (not in a job)"), each failure, and every
 *               error the provider raises
 * stats_file    absolute path rewritten with the counters twice a second
 *               and at unload (temporary file + rename), also env
 *               OFFLOAD_STATS_FILE (unset)
 * stats_format  what that file holds, also env OFFLOAD_STATS_FORMAT
 *               (plain; any other value fails the load):
 *               "plain"       "name value" lines, the names of the
 *                             counters below, totals and per family
 *               "prometheus"  the Prometheus text exposition format, for
 *                             node_exporter's textfile collector (name
 *                             the file *.prom in its directory):
 *                               offload_requests_offloaded_total
 *                               offload_requests_inline_total
 *                               offload_requests_completed_total
 *                               offload_requests_failed_total
 *                               offload_queue_full_total
 *                               offload_pauses_total
 *                             counters, one sample per family, labelled
 *                             {family="signature"} etc. and no total
 *                             (sum() them: a total next to its parts
 *                             would be counted twice by sum); and the
 *                             gauges offload_queue_high_water,
 *                             offload_workers, offload_in_flight
 */
#define OFFLOAD_CONF_WORKERS        "workers"
#define OFFLOAD_CONF_QUEUE_DEPTH    "queue_depth"
#define OFFLOAD_CONF_INLINE_BELOW   "inline_below"
#define OFFLOAD_CONF_CIPHER_GATE    "cipher_gate"
#define OFFLOAD_CONF_BUSY_INLINE    "busy_inline"
#define OFFLOAD_CONF_OFFLOAD        "offload"
#define OFFLOAD_CONF_SPIN_US        "spin_us"
#define OFFLOAD_CONF_WORKER_NICE    "worker_nice"
#define OFFLOAD_WORKER_NICE_DEFAULT 0
#define OFFLOAD_CONF_WORKER_POLICY  "worker_policy"
#define OFFLOAD_CONF_DEBUG          "debug"
#define OFFLOAD_CONF_STATS_FILE     "stats_file"
#define OFFLOAD_CONF_STATS_FORMAT   "stats_format"
/*
 * Token keys (PKCS#11, keys named by pkcs11: URIs through OSSL_STORE):
 *
 * pkcs11_module    the PKCS#11 module (a path for dlopen); unset: no token
 *                  support, a pkcs11: URI fails with "no PKCS#11 module
 *                  configured". A module that cannot be loaded or refuses
 *                  C_Initialize fails the provider's load
 * pkcs11_threads   threads that may each wait in a token call for a job
 *                  (1..1024; 32)
 * pkcs11_pin_file  absolute path of a file whose first line is the user
 *                  PIN, for URIs without pin-value or pin-source (unset)
 */
#define OFFLOAD_CONF_PKCS11_MODULE   "pkcs11_module"
#define OFFLOAD_CONF_PKCS11_THREADS  "pkcs11_threads"
#define OFFLOAD_CONF_PKCS11_PIN_FILE "pkcs11_pin_file"

/* Family names used in the "offload" key and in counter names. */
#define OFFLOAD_FAMILY_SIGNATURE  "signature"
#define OFFLOAD_FAMILY_KEYEXCH    "keyexch"
#define OFFLOAD_FAMILY_CIPHER     "cipher"
#define OFFLOAD_FAMILY_KEYGEN     "keygen"
#define OFFLOAD_FAMILY_KEM        "kem"
#define OFFLOAD_FAMILY_ASYMCIPHER "asymcipher"

/*
 * Counters (OSSL_PARAM_UNSIGNED_INTEGER, uint64_t) readable with
 * OSSL_PROVIDER_get_params(). Each exists as a total, "offload-<counter>",
 * and per family, "offload-<family>-<counter>", e.g.
 * "offload-signature-offloaded".
 *
 * What they count. An operation is one call of a family's counted step:
 *
 *   signature  sign, digest-sign final, one-shot digest-sign (with an
 *              output buffer); verification is not counted
 *   keyexch    derive (with an output buffer)
 *   keygen     key generation, every key type
 *   kem        encapsulate and decapsulate (with an output buffer):
 *              ML-KEM and its hybrids (OpenSSL 3.5+), RSASVE
 *   asymcipher decrypt (with an output buffer): RSA, SM2; encryption,
 *              like verification, is not counted
 *   cipher     a data update: EVP_*Update or EVP_Cipher with input bytes
 *              and an output buffer (AAD, with none, is not one)
 *
 * Each operation runs once, and adds one to "completed" if a worker ran
 * it or to "inline" if the calling thread did; one that went to the
 * workers' queue also adds one to "offloaded" (so a request its job took
 * back and ran itself counts in "offloaded" and "inline"). It adds one to
 * "failed" if it ends with an error, wherever it ran (an offloaded one is
 * counted by its worker, before its job is woken): the soft engine's
 * refusal (a low-order peer, a PSS salt too long for the key, a key
 * generation without a group, a short derive buffer) is a failure.
 * Not counted anywhere: size queries (output NULL), and calls the
 * provider refuses by its own checks before they start (not running, a
 * NULL length pointer, a signature buffer shorter than the signature, a
 * key of the wrong type at init), which fail with our reason on the error
 * queue. A cipher final (EVP_*Final_ex, or EVP_Cipher with no input) is
 * part of the record whose updates were counted: it always runs inline and
 * adds to neither path counter, but one that fails (a refused AEAD tag,
 * bad CBC padding) adds one to "failed".
 *
 * "completed" is counted before the job is woken. A request is taken back
 * by its job when it resumes before a worker started it (an early resume,
 * ASYNC_block_pause, a fork()ed child). A request the full queue refuses
 * counts in "queue-full" (each refusal: callback mode's retry after
 * EAGAIN may be a second) and, run on the calling thread, in "inline", not
 * in "offloaded". So, once nothing is in flight: offloaded = completed +
 * taken back, and inline + completed = operations. "inline" is a plain
 * load and store (it is on every small cipher record's path): exact for
 * one thread, threads racing on it may lose an increment; every other
 * counter is an atomic add.
 */
#define OFFLOAD_STAT_OFFLOADED  "offloaded"  /* accepted by the workers' queue */
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
 * every counter (overrides stats_file), its format (overrides
 * stats_format), and the debug switch. Set but empty: not set.
 */
#define OFFLOAD_ENV_STATS_FILE   "OFFLOAD_STATS_FILE"
#define OFFLOAD_ENV_STATS_FORMAT "OFFLOAD_STATS_FORMAT"
#define OFFLOAD_ENV_DEBUG        "OFFLOAD_DEBUG"

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every vector of a Wycheproof file through offload three ways (the
 * vector tests of ML-KEM, ML-DSA and RSA decryption, and the P-521, X448
 * additions): out of a job (wp_run: the driver's verdicts and counts), and
 * inside ASYNC jobs in fd mode and in callback mode, at most VJ_MAX_JOBS in
 * flight, one wait ctx per slot kept to the end of the program (a freed
 * one tends to come back at the same address). Each verdict is held to
 * the vector's result in every run, and the counters of the suite's
 * family to where the work ran: out of a job every counted operation ran
 * inline; in a job it went to the workers (busy_inline = 0), and only a
 * full queue keeps one inline.
 */
#ifndef OFFLOAD_TEST_VECTORS_JOBS_H
#define OFFLOAD_TEST_VECTORS_JOBS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/provider.h>

#include "wycheproof.h"

#define VJ_MAX_JOBS 16

enum vj_where { VJ_OUT, VJ_FD, VJ_CB };

const char *vj_where_name(enum vj_where w);

/*
 * The head of each suite's task (the suite's own struct starts with it).
 * The work sets |ops| to the counted operations it called (an output
 * buffer given), |ops_ok| to those that succeeded.
 */
struct vj_task {
    long tcid;
    enum wp_result result;
    unsigned ops, ops_ok;
    int ret; /* the work's return value */
    const struct vj_suite *vs;
};

struct vj_suite {
    struct wp_suite
        wp; /* file, schema, group type, group_open/close (check, data: ours) */
    const char *family; /* counter family: OFFLOAD_FAMILY_* */
    int counted;        /* 1: the work's operations are counted (0: verification) */
    size_t task_size;   /* sizeof the suite's task */
    /* Fills task |t| (zeroed, head set) from test |c| of group |gs|: 1, or 0 (printed).
     */
    int (*prepare)(const struct wp_suite *s, void *gs, const struct wp_case *c,
                   struct vj_task *t);
    /* Runs |t| through offload (in a job or not): 1 ran, 0 harness error. Prints nothing.
     */
    int (*work)(struct vj_task *t);
    /* The verdict on |t| after its work; may print (not in a job). */
    enum wp_outcome (*judge)(struct vj_task *t);
    void (*release)(struct vj_task *t);
};

/* Counters of one family. */
struct vj_ctrs {
    uint64_t inl, off, done, failed, qfull;
};
void vj_ctrs_read(OSSL_PROVIDER *prov, const char *family, struct vj_ctrs *c);

/*
 * Runs work(task) for each of the |n| tasks (|stride| bytes apart) |w|:
 * on this thread, or in jobs (fd or callback mode), at most |max_jobs|
 * at once; rets[i] gets task i's return value. 1, or 0 (printed).
 */
int vj_run_tasks(enum vj_where w, int (*work)(void *), void *tasks, size_t stride,
                 size_t n, size_t max_jobs, int *rets);

/* Frees the jobs and wait ctxs kept by vj_run_tasks (a group teardown). */
void vj_free_kept(void);

/*
 * The file of |vs| out of a job (wp_run, asserted as there), then every
 * vector in jobs in fd and in callback mode; asserts the verdicts and
 * the family's counters of each run. *st (may be NULL) gets wp_run's counts.
 */
void vj_run_suite(const struct vj_suite *vs, struct wp_stats *st);

#endif

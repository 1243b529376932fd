/* SPDX-License-Identifier: Apache-2.0 */
/* Every vector out of a job and in jobs, fd and callback mode (see vectors_jobs.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/err.h>

#include "common.h"
#include "harness.h"
#include "vectors_jobs.h"
#include "vectors_pkey.h"

const char *vj_where_name(enum vj_where w)
{
    return w == VJ_OUT  ? "out of a job"
           : w == VJ_FD ? "in jobs (fd)"
                        : "in jobs (callback)";
}

static uint64_t ctr(OSSL_PROVIDER *prov, const char *family, const char *stat)
{
    char name[96];

    snprintf(name, sizeof(name), "offload-%s-%s", family, stat);
    return test_counter(prov, name);
}

void vj_ctrs_read(OSSL_PROVIDER *prov, const char *family, struct vj_ctrs *c)
{
    c->inl = ctr(prov, family, OFFLOAD_STAT_INLINE);
    c->off = ctr(prov, family, OFFLOAD_STAT_OFFLOADED);
    c->done = ctr(prov, family, OFFLOAD_STAT_COMPLETED);
    c->failed = ctr(prov, family, OFFLOAD_STAT_FAILED);
    c->qfull = ctr(prov, family, OFFLOAD_STAT_QUEUE_FULL);
    assert_true(c->inl != UINT64_MAX && c->off != UINT64_MAX && c->done != UINT64_MAX &&
                c->failed != UINT64_MAX && c->qfull != UINT64_MAX);
}

/* ---- jobs ---- */

static struct {
    struct hjob **jobs;
    size_t *n;
    size_t count;
} kept;

void vj_free_kept(void)
{
    size_t i;

    for (i = 0; i < kept.count; i++)
        hjobs_free(kept.jobs[i], kept.n[i]);
    free(kept.jobs);
    free(kept.n);
    memset(&kept, 0, sizeof(kept));
}

static int keep(struct hjob *jobs, size_t n)
{
    struct hjob **j = realloc(kept.jobs, (kept.count + 1) * sizeof(*j));
    size_t *k;

    if (j == NULL)
        return 0;
    kept.jobs = j;
    k = realloc(kept.n, (kept.count + 1) * sizeof(*k));
    if (k == NULL)
        return 0;
    kept.n = k;
    kept.jobs[kept.count] = jobs;
    kept.n[kept.count++] = n;
    return 1;
}

struct batch {
    char *tasks;
    size_t stride, n, next;
    size_t *task_of; /* per slot: the task it runs */
    int *rets;
};

/* A slot's task finished: the next one in the same wait ctx, if any. */
static int batch_done(struct hjob *j, void *vb)
{
    struct batch *b = vb;

    b->rets[b->task_of[j->index]] = j->ret;
    if (b->next == b->n)
        return 0;
    b->task_of[j->index] = b->next;
    j->arg = b->tasks + b->next++ * b->stride;
    return 1;
}

int vj_run_tasks(enum vj_where w, int (*work)(void *), void *tasks, size_t stride,
                 size_t n, size_t max_jobs, int *rets)
{
    size_t slots = n < max_jobs ? n : max_jobs, i;
    struct batch b = {tasks, stride, n, 0, NULL, rets};
    struct hjob *jobs;
    int ok;

    if (w == VJ_OUT) {
        for (i = 0; i < n; i++)
            rets[i] = work(b.tasks + i * stride);
        return 1;
    }
    if (n == 0)
        return 1;
    jobs = hjobs_new(slots);
    b.task_of = calloc(slots, sizeof(*b.task_of));
    if (jobs == NULL || b.task_of == NULL || !keep(jobs, slots)) {
        printf("    out of memory for %zu jobs\n", slots);
        hjobs_free(jobs, slots);
        free(b.task_of);
        return 0;
    }
    for (i = 0; i < slots; i++) {
        jobs[i].fn = work;
        jobs[i].arg = b.tasks + i * stride;
        b.task_of[i] = i;
    }
    b.next = slots;
    if (w == VJ_FD)
        ok = h_run_fd_loop(jobs, slots, POLL_TIMEOUT_MS, batch_done, &b);
    else
        ok = h_run_cb_loop(jobs, slots, POLL_TIMEOUT_MS, batch_done, &b, NULL);
    if (!ok)
        printf("    %s: %zu of %zu tasks started when the loop failed\n",
               vj_where_name(w), b.next, n);
    free(b.task_of);
    return ok;
}

/* ---- suites ---- */

struct vj_tally {
    size_t ops, ops_ok; /* counted operations called, succeeded */
    size_t ran;         /* tasks run */
};

static int trampoline(void *vt)
{
    struct vj_task *t = vt;

    return t->vs->work(t);
}

static struct vj_task *task_new(const struct vj_suite *vs, const struct wp_case *c)
{
    struct vj_task *t = calloc(1, vs->task_size);

    if (t == NULL)
        return NULL;
    t->tcid = c->tcid;
    t->result = c->result;
    t->vs = vs;
    return t;
}

/* wp_run's check: one vector, out of a job. */
static enum wp_outcome vj_check(const struct wp_suite *s, void *gs,
                                const struct wp_case *c)
{
    const struct vj_suite *vs = (const struct vj_suite *)s;
    struct vj_tally *k = s->data;
    struct vj_task *t = task_new(vs, c);
    enum wp_outcome o = WP_ERROR;

    if (t == NULL)
        return WP_ERROR;
    if (vs->prepare(s, gs, c, t)) {
        t->ret = vs->work(t);
        k->ran++;
        k->ops += t->ops;
        k->ops_ok += t->ops_ok;
        o = t->ret == 1 ? vs->judge(t) : WP_ERROR;
    }
    vs->release(t);
    free(t);
    return o;
}

struct collect {
    const struct vj_suite *vs;
    char *tasks;
    size_t n, cap;
};

static int vj_collect(const struct wp_suite *s, void *gs, const struct wp_case *c,
                      void *ctx)
{
    struct collect *L = ctx;
    const struct vj_suite *vs = L->vs;
    struct vj_task *t;

    if (L->n == L->cap) {
        size_t cap = L->cap != 0 ? 2 * L->cap : 64;
        char *nt = realloc(L->tasks, cap * vs->task_size);

        if (nt == NULL)
            return 0;
        L->tasks = nt;
        L->cap = cap;
    }
    t = (struct vj_task *)(L->tasks + L->n * vs->task_size);
    memset(t, 0, vs->task_size);
    t->tcid = c->tcid;
    t->result = c->result;
    t->vs = vs;
    L->n++;
    return vs->prepare(s, gs, c, t);
}

/* What one run did: its operations, and the family's counters around it. */
struct vj_run {
    struct vj_tally k;
    struct vj_ctrs a, b;
};

/* Prints the counters of run |w|. */
static void print_ctrs(const struct vj_suite *vs, enum vj_where w, const struct vj_run *r)
{
    const struct vj_ctrs *a = &r->a, *b = &r->b;
    const struct vj_tally *k = &r->k;

    printf("[wycheproof] %s %s: %zu vectors, %zu counted operations (%zu succeeded); "
           "%s counters: inline +%llu, offloaded +%llu, completed +%llu, failed "
           "+%llu, queue-full +%llu\n",
           vs->wp.file, vj_where_name(w), k->ran, k->ops, k->ops_ok, vs->family,
           (unsigned long long)(b->inl - a->inl), (unsigned long long)(b->off - a->off),
           (unsigned long long)(b->done - a->done),
           (unsigned long long)(b->failed - a->failed),
           (unsigned long long)(b->qfull - a->qfull));
    fflush(stdout);
}

/* The counters of run |w| held to where its operations ran. */
static void assert_ctrs(const struct vj_suite *vs, enum vj_where w,
                        const struct vj_run *r)
{
    const struct vj_ctrs *a = &r->a, *b = &r->b;
    const struct vj_tally *k = &r->k;
    uint64_t inl = b->inl - a->inl, off = b->off - a->off, done = b->done - a->done;
    uint64_t failed = b->failed - a->failed, qf = b->qfull - a->qfull;

    (void)w;
    if (!vs->counted) {
        /* Verification is never counted, wherever it runs. */
        assert_int_equal(inl, 0);
        assert_int_equal(off, 0);
        return;
    }
    assert_true(k->ops_ok > 0);
    /* A refusal by offload's own checks is not counted; one by the engine is. */
    assert_true(failed <= k->ops - k->ops_ok);
    /* Each counted operation that did not succeed was counted as failed. */
    assert_int_equal(inl + off, k->ops_ok + failed);
    if (w == VJ_OUT) {
        assert_true(inl >= k->ops_ok && inl <= k->ops);
        assert_int_equal(off, 0);
        assert_int_equal(done, 0);
    } else {
        /* In a job every counted operation goes to a worker unless the queue is full. */
        assert_int_equal(inl, qf);
        assert_true(off > 0);
        assert_true(off + inl >= k->ops_ok && off + inl <= k->ops);
        assert_int_equal(done, off);
    }
}

/*
 * Every vector of |vs| collected, run |w| (fd or callback jobs), judged
 * and the verdicts asserted; *r gets the operations and counters.
 */
static void run_in_jobs(const struct vj_suite *vs, enum vj_where w, struct vj_run *r)
{
    struct collect L = {vs, NULL, 0, 0};
    struct vj_tally k = {0, 0, 0};
    struct vj_ctrs a, b;
    size_t i, good = 0, bad = 0, acc = 0;
    int *rets = NULL, collected, ran = 0;

    collected = wp_walk(&vs->wp, vj_collect, &L) && L.n > 0;
    if (collected)
        rets = calloc(L.n, sizeof(*rets));
    vj_ctrs_read(vec_env.offload, vs->family, &a);
    if (rets != NULL)
        ran = vj_run_tasks(w, trampoline, L.tasks, vs->task_size, L.n, VJ_MAX_JOBS, rets);
    test_wait_idle(vec_env.offload);
    vj_ctrs_read(vec_env.offload, vs->family, &b);
    for (i = 0; i < L.n; i++) {
        struct vj_task *t = (struct vj_task *)(L.tasks + i * vs->task_size);
        enum wp_outcome o = WP_ERROR;

        if (ran) {
            t->ret = rets[i];
            k.ran++;
            k.ops += t->ops;
            k.ops_ok += t->ops_ok;
            o = t->ret == 1 ? vs->judge(t) : WP_ERROR;
        }
        if (o == WP_ERROR)
            bad++;
        else if (t->result == WP_ACCEPTABLE)
            acc++;
        else if ((t->result == WP_VALID && o == WP_ACCEPT) ||
                 (t->result == WP_INVALID && (o == WP_REJECT || o == WP_LENIENT)))
            good++;
        else
            bad++;
        if (ran && o != WP_ERROR && t->result != WP_ACCEPTABLE &&
            (t->result == WP_VALID) != (o == WP_ACCEPT) && o != WP_LENIENT)
            printf("    %s %s: tcId %ld (%s): FAIL: %s\n", vs->wp.file, vj_where_name(w),
                   t->tcid, wp_result_name(t->result),
                   o == WP_ACCEPT ? "accepted" : "rejected");
        else if (ran && o == WP_ERROR)
            printf("    %s %s: tcId %ld: harness error (work returned %d)\n", vs->wp.file,
                   vj_where_name(w), t->tcid, rets[i]);
        vs->release(t);
    }
    printf("[wycheproof] %s %s: %zu vectors: %zu as the vector says, %zu acceptable, %zu "
           "wrong or not run\n",
           vs->wp.file, vj_where_name(w), L.n, good, acc, bad);
    fflush(stdout);
    free(L.tasks);
    free(rets);
    ASYNC_cleanup_thread();
    assert_true(collected);
    assert_true(ran);
    assert_int_equal(bad, 0);
    assert_int_equal(good + acc, L.n);
    r->k = k;
    r->a = a;
    r->b = b;
    print_ctrs(vs, w, r);
}

void vj_run_suite(const struct vj_suite *vs, struct wp_stats *st)
{
    struct vj_suite copy = *vs;
    struct vj_run r[3];
    struct wp_stats local;

    memset(r, 0, sizeof(r));
    copy.wp.check = vj_check;
    copy.wp.data = &r[VJ_OUT].k;
    vj_ctrs_read(vec_env.offload, vs->family, &r[VJ_OUT].a);
    wp_run(&copy.wp, st != NULL ? st : &local);
    vj_ctrs_read(vec_env.offload, vs->family, &r[VJ_OUT].b);
    print_ctrs(vs, VJ_OUT, &r[VJ_OUT]);
    run_in_jobs(&copy, VJ_FD, &r[VJ_FD]);
    run_in_jobs(&copy, VJ_CB, &r[VJ_CB]);
    /* The counters last: every verdict of the three runs is asserted first. */
    assert_ctrs(vs, VJ_OUT, &r[VJ_OUT]);
    assert_ctrs(vs, VJ_FD, &r[VJ_FD]);
    assert_ctrs(vs, VJ_CB, &r[VJ_CB]);
}

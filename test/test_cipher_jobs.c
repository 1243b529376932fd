/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ciphers inside ASYNC jobs through the offload provider: 64 jobs in
 * flight encrypting and decrypting 16 KiB records with AAD (fd mode:
 * h_run_fd_loop; callback mode: h_run_cb_loop), whole, in place, in
 * pieces, or after a short first update (CBC then holds bytes back when
 * the large update goes to a worker), where records really go to the
 * workers ("offload-cipher-offloaded"), every result equal to the default
 * provider's; jobs decrypting records with a bad tag (which must fail
 * and, one-shot, release no plaintext) and TLS-mode CBC records (which
 * stay inline). Job functions keep their stack small (32 KiB job
 * stacks): their buffers are on the heap. No cmocka assertion runs inside
 * a job or on a worker thread: they record, the main thread asserts.
 */
#include <inttypes.h>
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
#include <openssl/evp.h>

#include "cipher_util.h"
#include "harness.h"

#define NJOBS   64
#define REC_LEN 16384
#define NREC    4
#define AAD_LEN 13
#define REC_MAX (REC_LEN + 256) /* room for a TLS CBC record's IV, MAC, padding */

/*
 * How job |i| feeds its records: 0 one update, 1 in place, 2 random pieces
 * (AAD too), 3 in place in pieces (CBC: in place, one update). Modes 0 and
 * 1 hand each record to the provider whole, so each such job's first one
 * is offloaded.
 */
static int job_mode(size_t i)
{
    return (int)((i / NALGS) % 4);
}

enum jkind {
    J_ROUNDTRIP,     /* encrypt and decrypt NREC records (streaming, with AAD) */
    J_BADTAG_TLS,    /* one-shot TLS records with a flipped tag: all refused */
    J_BADTAG_STREAM, /* streaming decrypts with a flipped tag: finals fail */
    J_TLS_CBC,       /* CBC records in TLS mode: stay inline */
};

struct cjob {
    size_t index;
    enum jkind kind;
    size_t alg;
    struct hjob *h; /* its job: done, ret, pauses, callbacks, fd */
    unsigned char key[32], iv[12], aad[AAD_LEN];
    unsigned char *pt;   /* NREC * REC_MAX: the plaintext records */
    unsigned char *buf;  /* NREC * REC_MAX: ciphertext (or records to open) */
    unsigned char *back; /* NREC * REC_MAX: decrypted */
    size_t outl[NREC], backl[NREC];
    long cbc_len[NREC];
    unsigned char tag[NREC][16];
    unsigned char mac[NREC][MAC_SIZE];
    size_t reclen[NREC];
    int mode;                    /* J_ROUNDTRIP: see job_mode() */
    size_t first_enc, first_dec; /* J_ROUNDTRIP, mode 0: a short first update */
    int wrong;                   /* records whose outcome was wrong (seen in the job) */
    int bad_stage;               /* the stage of the first wrong one */
};

static void job_iv(const struct cjob *j, size_t r, unsigned char *iv)
{
    memcpy(iv, j->iv, 12);
    iv[11] ^= (unsigned char)r;
}

static const char *job_desc(const struct cjob *j)
{
    static const char *const modes[] = {"whole records", "in place", "in pieces",
                                        "in place, in pieces"};

    return j->first_enc > 0 ? "a short update, then the rest" : modes[j->mode];
}

static int job_roundtrip(struct cjob *j)
{
    const struct alg *al = &algs[j->alg];
    int mode = j->mode;
    unsigned char iv[12];
    struct op o;
    size_t r;

    for (r = 0; r < NREC; r++) {
        memset(&o, 0, sizeof(o));
        o.pieces = mode >= 2 && !(mode == 3 && al->kind == K_CBC);
        o.inplace = mode & 1;
        o.rng = j->index * 1000 + r;
        o.first = j->first_enc;
        job_iv(j, r, iv);
        o.cipher = CS.off[j->alg];
        o.kind = al->kind;
        o.enc = 1;
        o.key = j->key;
        o.iv = al->kind == K_CBC ? j->key : iv; /* any 16 bytes */
        o.taglen = 16;
        o.aad = j->aad;
        o.aadlen = AAD_LEN;
        o.in = j->pt + r * REC_MAX;
        o.inl = REC_LEN;
        o.out = j->buf + r * REC_MAX;
        if (!run_op(&o)) {
            j->wrong++;
            j->bad_stage = o.stage;
            continue;
        }
        j->outl[r] = o.outl;
        memcpy(j->tag[r], o.tag, 16);
        o.enc = 0;
        o.first = j->first_dec;
        o.in = j->buf + r * REC_MAX;
        o.inl = j->outl[r];
        o.out = j->back + r * REC_MAX;
        if (!run_op(&o)) {
            j->wrong++;
            j->bad_stage = 10 + o.stage;
            continue;
        }
        j->backl[r] = o.outl;
    }
    return j->wrong == 0;
}

static int job_badtag_tls(struct cjob *j)
{
    const struct alg *al = &algs[j->alg];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t r;

    if (ctx == NULL || !tls_aead_init(ctx, CS.off[j->alg], al->kind, 0, j->key, j->iv)) {
        EVP_CIPHER_CTX_free(ctx);
        j->bad_stage = ST_INIT;
        return 0;
    }
    for (r = 0; r < NREC; r++) {
        int ret = tls_aead_record(ctx, al->kind, 0, r, j->buf + r * REC_MAX, REC_LEN, 0);

        if (ret != -1) {
            j->wrong++;
            j->bad_stage = ret;
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    return j->wrong == 0;
}

static int job_badtag_stream(struct cjob *j)
{
    const struct alg *al = &algs[j->alg];
    unsigned char iv[12];
    struct op o;
    size_t r;

    for (r = 0; r < NREC; r++) {
        memset(&o, 0, sizeof(o));
        job_iv(j, r, iv);
        o.cipher = CS.off[j->alg];
        o.kind = al->kind;
        o.enc = 0;
        o.key = j->key;
        o.iv = iv;
        o.taglen = 16;
        memcpy(o.tag, j->tag[r], 16);
        o.aad = j->aad;
        o.aadlen = AAD_LEN;
        o.in = j->buf + r * REC_MAX;
        o.inl = REC_LEN;
        o.out = j->back + r * REC_MAX;
        if (run_op(&o) || o.stage != ST_FINAL) {
            j->wrong++;
            j->bad_stage = o.stage;
        }
    }
    return j->wrong == 0;
}

static int job_tls_cbc(struct cjob *j)
{
    EVP_CIPHER_CTX *ctx = cbc_tls_receiver(CS.off[j->alg], j->key);
    size_t r;

    if (ctx == NULL) {
        j->bad_stage = ST_INIT;
        return 0;
    }
    for (r = 0; r < NREC; r++)
        j->cbc_len[r] = cbc_tls_open(ctx, j->buf + r * REC_MAX, j->reclen[r], j->mac[r]);
    EVP_CIPHER_CTX_free(ctx);
    return 1;
}

static int cjob_main(void *arg)
{
    struct cjob *j = arg;

    switch (j->kind) {
    case J_ROUNDTRIP:
        return job_roundtrip(j);
    case J_BADTAG_TLS:
        return job_badtag_tls(j);
    case J_BADTAG_STREAM:
        return job_badtag_stream(j);
    default:
        return job_tls_cbc(j);
    }
}

/* What a job test holds, freed by jobs_teardown should the test fail. */
static struct cjob *live_jobs;
static struct hjob *live_h;
static unsigned char *live_ref;

static struct cjob *jobs_new(enum jkind kind)
{
    struct cjob *jobs = live_jobs = xmalloc(NJOBS * sizeof(*jobs));
    size_t i, r;

    live_h = hjobs_new(NJOBS);
    assert_non_null(live_h);
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];

        j->index = i;
        j->kind = kind;
        j->mode = job_mode(i);
        j->h = &live_h[i];
        j->h->fn = cjob_main;
        j->h->arg = j;
        j->pt = xmalloc(NREC * REC_MAX);
        j->buf = xmalloc(NREC * REC_MAX);
        j->back = xmalloc(NREC * REC_MAX);
        rnd_fill(&CS.rng, j->key, sizeof(j->key));
        rnd_fill(&CS.rng, j->iv, sizeof(j->iv));
        rnd_fill(&CS.rng, j->aad, sizeof(j->aad));
        for (r = 0; r < NREC; r++)
            rnd_fill(&CS.rng, j->pt + r * REC_MAX, REC_LEN);
    }
    return jobs;
}

static void jobs_free(struct cjob *jobs)
{
    size_t i;

    for (i = 0; i < NJOBS; i++) {
        free(jobs[i].pt);
        free(jobs[i].buf);
        free(jobs[i].back);
    }
    free(jobs);
    if (jobs == live_jobs) {
        live_jobs = NULL;
        hjobs_free(live_h, NJOBS);
        live_h = NULL;
    }
}

static int jobs_teardown(void **state)
{
    (void)state;
    if (live_jobs != NULL)
        jobs_free(live_jobs);
    free(live_ref);
    live_ref = NULL;
    return 0;
}

/* fd mode (h_run_fd_loop): each job always saw the same one wait fd. */
static void run_fd_loop(struct cjob *jobs)
{
    size_t i;

    assert_true(h_run_fd_loop(live_h, NJOBS, POLL_TIMEOUT_MS, NULL, NULL));
    for (i = 0; i < NJOBS; i++) {
        assert_true(jobs[i].h->done);
        assert_false(jobs[i].h->fd_changed);
    }
}

/*
 * Callback mode (h_run_cb_loop): one callback per pause, none on this
 * thread, none late, no queue-full pause.
 */
static void run_cb_loop(struct cjob *jobs)
{
    struct h_cb_stats st;
    uint64_t pauses = 0;
    size_t i;

    assert_true(h_run_cb_loop(live_h, NJOBS, POLL_TIMEOUT_MS, NULL, NULL, &st));
    for (i = 0; i < NJOBS; i++) {
        assert_true(jobs[i].h->done);
        assert_int_equal(jobs[i].h->callbacks, jobs[i].h->pauses);
        pauses += jobs[i].h->pauses;
    }
    wait_idle();
    assert_int_equal(st.overflow, 0);
    assert_int_equal(st.left, 0);
    assert_int_equal(st.on_loop, 0);
    assert_int_equal(st.eagain_pauses, 0);
    assert_int_equal(st.calls, pauses);
    assert_int_equal(h_cb_late(), 0);
}

/* The default provider's encryption of job |j|'s record |r|. */
static void reference_record(const struct cjob *j, size_t r, unsigned char *out,
                             size_t *outl, unsigned char *tag)
{
    const struct alg *al = &algs[j->alg];
    unsigned char iv[12];
    struct op o;

    memset(&o, 0, sizeof(o));
    job_iv(j, r, iv);
    o.cipher = CS.ref[j->alg];
    o.kind = al->kind;
    o.enc = 1;
    o.key = j->key;
    o.iv = al->kind == K_CBC ? j->key : iv;
    o.taglen = 16;
    o.aad = j->aad;
    o.aadlen = AAD_LEN;
    o.in = j->pt + r * REC_MAX;
    o.inl = REC_LEN;
    o.out = out;
    CHECK(run_op(&o), "default encryption of job %zu record %zu failed", j->index, r);
    *outl = o.outl;
    memcpy(tag, o.tag, 16);
}

/*
 * |split|: every job starts each record with a short update (1-15 bytes to
 * encrypt, 17-32 to decrypt), so CBC holds bytes back when the large
 * update that follows goes to a worker; the caller is never in place.
 */
static void roundtrip_jobs(int cbmode, int split)
{
    struct cjob *jobs = jobs_new(J_ROUNDTRIP);
    unsigned char *ref = live_ref = xmalloc(REC_MAX), tag[16];
    uint64_t off0 = counter(C_OFFLOADED), inl0 = counter(C_INLINE),
             fail0 = counter(C_FAILED);
    uint64_t off, inl;
    size_t i, r, whole = 0;
    unsigned pauses = 0;

    for (i = 0; i < NJOBS; i++) {
        jobs[i].alg = i % NALGS;
        if (split) {
            jobs[i].mode = 0;
            jobs[i].first_enc = 1 + i % 15;
            jobs[i].first_dec = 17 + i % 16;
        }
        whole += jobs[i].mode < 2;
    }
    if (cbmode)
        run_cb_loop(jobs);
    else
        run_fd_loop(jobs);
    wait_idle();
    off = counter(C_OFFLOADED) - off0;
    inl = counter(C_INLINE) - inl0;
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];

        assert_true(j->h->done);
        CHECK(
            j->h->ret == 1,
            "job %zu (%s, %s): %d records failed, first at the %s's %s (a data update on "
            "a worker following one that left bytes buffered?)",
            i, algs[j->alg].name, job_desc(j), j->wrong,
            j->bad_stage >= 10 ? "decryption" : "encryption",
            stage_name(j->bad_stage % 10));
        pauses += j->h->pauses;
        for (r = 0; r < NREC; r++) {
            size_t refl;

            reference_record(j, r, ref, &refl, tag);
            CHECK(j->outl[r] == refl && memcmp(j->buf + r * REC_MAX, ref, refl) == 0,
                  "job %zu (%s) record %zu: ciphertext differs from the default", i,
                  algs[j->alg].name, r);
            CHECK(algs[j->alg].kind == K_CBC || memcmp(j->tag[r], tag, 16) == 0,
                  "job %zu (%s) record %zu: tag differs from the default", i,
                  algs[j->alg].name, r);
            CHECK(j->backl[r] == REC_LEN &&
                      memcmp(j->back + r * REC_MAX, j->pt + r * REC_MAX, REC_LEN) == 0,
                  "job %zu record %zu: decrypted wrongly", i, r);
        }
    }
    print_message(
        "%s mode: %d jobs x %d records of %d bytes (encrypt + decrypt; %s): %" PRIu64
        " data updates offloaded, %" PRIu64 " inline, %u pauses\n",
        cbmode ? "callback" : "fd", NJOBS, NREC, REC_LEN,
        split ? "a short update, then the rest" : "whole, in place, in pieces", off, inl,
        pauses);
    /* Every data update counted; the first whole record of each job went to a worker. */
    assert_true(off + inl >= 2u * NJOBS * NREC);
    assert_true(off >= whole);
    assert_true(pauses > 0);
    assert_int_equal(counter(C_FAILED), fail0);
    free(ref);
    live_ref = NULL;
    jobs_free(jobs);
}

static void test_jobs_fd(void **state)
{
    (void)state;
    roundtrip_jobs(0, 0);
}

static void test_jobs_split_fd(void **state)
{
    (void)state;
    roundtrip_jobs(0, 1);
}

static void test_jobs_callback(void **state)
{
    (void)state;
    roundtrip_jobs(1, 0);
}

/* Indices of the AEADs in algs[]. */
static size_t aead_alg(size_t i)
{
    static const size_t aeads[] = {0, 1, 2, 5};

    return aeads[i % 4];
}

/* No 16-byte block of |pt| appears at its place in |buf|. */
static int no_plaintext(const unsigned char *buf, const unsigned char *pt, size_t len)
{
    size_t off;

    for (off = 0; off + 16 <= len; off += 16)
        if (memcmp(buf + off, pt + off, 16) == 0)
            return 0;
    return 1;
}

static void badtag_jobs(int cbmode)
{
    struct cjob *jobs = jobs_new(J_BADTAG_TLS);
    uint64_t off0 = counter(C_OFFLOADED), fail0 = counter(C_FAILED), off;
    size_t i, r;

    /* Records sealed by the default provider, then a tag bit flipped. */
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        enum kind kind;

        j->alg = aead_alg(i);
        kind = algs[j->alg].kind;
        assert_non_null(ctx);
        assert_true(tls_aead_init(ctx, CS.ref[j->alg], kind, 1, j->key, j->iv));
        for (r = 0; r < NREC; r++) {
            unsigned char *rec = j->buf + r * REC_MAX;
            size_t ex = TLS_EXPLICIT(kind), bit = (size_t)(rnd(&CS.rng) % 128);

            memcpy(rec + ex, j->pt + r * REC_MAX, REC_LEN);
            assert_int_equal(tls_aead_record(ctx, kind, 1, r, rec, REC_LEN, 0),
                             (int)(ex + REC_LEN + 16));
            rec[ex + REC_LEN + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
        EVP_CIPHER_CTX_free(ctx);
    }
    if (cbmode)
        run_cb_loop(jobs);
    else
        run_fd_loop(jobs);
    wait_idle();
    off = counter(C_OFFLOADED) - off0;
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];
        size_t ex = TLS_EXPLICIT(algs[j->alg].kind);

        assert_true(j->h->done);
        CHECK(j->h->ret == 1, "bad-tag job %zu (%s): %d records accepted (ret %d)", i,
              algs[j->alg].name, j->wrong, j->bad_stage);
        for (r = 0; r < NREC; r++)
            CHECK(no_plaintext(j->buf + r * REC_MAX + ex, j->pt + r * REC_MAX, REC_LEN),
                  "bad-tag job %zu (%s) record %zu: plaintext released", i,
                  algs[j->alg].name, r);
    }
    print_message(
        "%s mode: %d jobs x %d TLS records with a bad tag refused, no plaintext "
        "released (%" PRIu64 " offloaded, failed counter +%" PRIu64 ")\n",
        cbmode ? "callback" : "fd", NJOBS, NREC, off, counter(C_FAILED) - fail0);
    assert_true(off >= NJOBS);
    /* Every refused record counts once as failed, on a worker or inline. */
    assert_int_equal(counter(C_FAILED) - fail0, NJOBS * NREC);
    jobs_free(jobs);

    /* Streaming decryption: the updates go to workers, every final fails. */
    jobs = jobs_new(J_BADTAG_STREAM);
    off0 = counter(C_OFFLOADED);
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];

        j->alg = aead_alg(i);
        for (r = 0; r < NREC; r++) {
            size_t refl, bit = (size_t)(rnd(&CS.rng) % 128);

            reference_record(j, r, j->buf + r * REC_MAX, &refl, j->tag[r]);
            assert_int_equal(refl, REC_LEN);
            j->tag[r][bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
    }
    if (cbmode)
        run_cb_loop(jobs);
    else
        run_fd_loop(jobs);
    wait_idle();
    for (i = 0; i < NJOBS; i++) {
        assert_true(jobs[i].h->done);
        CHECK(jobs[i].h->ret == 1, "bad-tag streaming job %zu: %d finals did not fail", i,
              jobs[i].wrong);
    }
    off = counter(C_OFFLOADED) - off0;
    print_message("%s mode: %d jobs x %d streamed records with a bad tag: every final "
                  "failed (%" PRIu64 " updates offloaded)\n",
                  cbmode ? "callback" : "fd", NJOBS, NREC, off);
    assert_true(off >= NJOBS);
    jobs_free(jobs);
}

static void test_jobs_badtag_fd(void **state)
{
    (void)state;
    badtag_jobs(0);
}

static void test_jobs_badtag_callback(void **state)
{
    (void)state;
    badtag_jobs(1);
}

/* CBC in TLS mode inside jobs: always inline, same MACs as sent. */
static void test_jobs_tls_cbc(void **state)
{
    struct cjob *jobs = jobs_new(J_TLS_CBC);
    uint64_t off0 = counter(C_OFFLOADED), inl0 = counter(C_INLINE);
    size_t i, r;

    (void)state;
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];

        j->alg = i & 1 ? 4 : 3;
        for (r = 0; r < NREC; r++) {
            rnd_fill(&CS.rng, j->mac[r], MAC_SIZE);
            j->reclen[r] =
                make_cbc_record(CS.ref[j->alg], j->key, j->pt + r * REC_MAX, REC_LEN,
                                j->mac[r], j->buf + r * REC_MAX, &CS.rng);
            assert_true(j->reclen[r] > REC_LEN);
            memcpy(j->back + r * REC_MAX, j->mac[r], MAC_SIZE); /* the expected MAC */
        }
    }
    run_fd_loop(jobs);
    wait_idle();
    for (i = 0; i < NJOBS; i++) {
        struct cjob *j = &jobs[i];

        assert_true(j->h->done);
        assert_int_equal(j->h->ret, 1);
        assert_int_equal(j->h->pauses, 0);
        for (r = 0; r < NREC; r++) {
            CHECK(j->cbc_len[r] == REC_LEN, "TLS CBC job %zu record %zu: payload %ld", i,
                  r, j->cbc_len[r]);
            assert_memory_equal(j->buf + r * REC_MAX + 16, j->pt + r * REC_MAX, REC_LEN);
            assert_memory_equal(j->mac[r], j->back + r * REC_MAX, MAC_SIZE);
        }
    }
    print_message("%d jobs x %d TLS-mode CBC records: %" PRIu64 " inline, %" PRIu64
                  " offloaded\n",
                  NJOBS, NREC, counter(C_INLINE) - inl0, counter(C_OFFLOADED) - off0);
    assert_int_equal(counter(C_OFFLOADED), off0);
    assert_true(counter(C_INLINE) >= inl0 + NJOBS * NREC);
    jobs_free(jobs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_jobs_fd, jobs_teardown),
        cmocka_unit_test_teardown(test_jobs_callback, jobs_teardown),
        cmocka_unit_test_teardown(test_jobs_split_fd, jobs_teardown),
        cmocka_unit_test_teardown(test_jobs_badtag_fd, jobs_teardown),
        cmocka_unit_test_teardown(test_jobs_badtag_callback, jobs_teardown),
        cmocka_unit_test_teardown(test_jobs_tls_cbc, jobs_teardown),
    };

    return cmocka_run_group_tests_name("cipher", tests, cipher_group_setup,
                                       cipher_group_teardown);
}

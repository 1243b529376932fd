/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS through the offload provider: two SSL objects of this process, both
 * from SSL_CTX_new_ex(env.libctx, NULL, TLS_method()), talk over a BIO
 * pair. The server's certificate is made here (RSA-2048 key generated in
 * the offload provider, X509_new_ex + X509_sign), so the handshake signs
 * through offload, and the record layer fetches its ciphers from the
 * library context that prefers offload:
 *   - TLS 1.2: ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384,
 *     ECDHE-RSA-AES128-SHA256 (CBC) with and without encrypt-then-MAC;
 *   - TLS 1.3: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
 *     TLS_CHACHA20_POLY1305_SHA256;
 * each exchanging 1 MiB each way in 16 KiB writes, checked byte for byte,
 * with the cipher counters rising by at least two data updates per
 * record (sealed by one side, opened by the other), the signature
 * counters rising (the server's handshake signature) and the key exchange
 * counters too (an EC group negotiated, served by offload's key managers
 * and key exchange). Then a server in SSL_MODE_ASYNC: its handshake runs in
 * an ASYNC_JOB whose RSA signature goes to a worker; the test waits with
 * poll() on SSL_get_all_async_fds() whenever SSL_ERROR_WANT_ASYNC comes
 * back.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/async.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "offload.h"

#define TOTAL      (1024 * 1024) /* bytes each way */
#define CHUNK      16384         /* bytes per SSL_write: one record */
#define MAX_ROUNDS 1000000

static struct {
    test_env env;
    EVP_PKEY *key; /* RSA-2048 in offload */
    X509 *cert;    /* self-signed, CN and SAN "localhost" */
    unsigned char *data[2];
} S;

static uint64_t counter(const char *name)
{
    uint64_t v = test_counter(S.env.offload, name);

    assert_true(v != UINT64_MAX);
    return v;
}

#define CIPH(stat) ("offload-" OFFLOAD_FAMILY_CIPHER "-" stat)
#define SIG(stat)  ("offload-" OFFLOAD_FAMILY_SIGNATURE "-" stat)
#define KEX(stat)  ("offload-" OFFLOAD_FAMILY_KEYEXCH "-" stat)

static uint64_t cipher_updates(void)
{
    return counter(CIPH(OFFLOAD_STAT_INLINE)) + counter(CIPH(OFFLOAD_STAT_OFFLOADED));
}

static uint64_t signatures(void)
{
    return counter(SIG(OFFLOAD_STAT_INLINE)) + counter(SIG(OFFLOAD_STAT_OFFLOADED));
}

static uint64_t key_exchanges(void)
{
    return counter(KEX(OFFLOAD_STAT_INLINE)) + counter(KEX(OFFLOAD_STAT_OFFLOADED));
}

/* Key generations through offload (a TLS key share's key is one). */
static uint64_t key_generations(void)
{
    return counter("offload-keygen-" OFFLOAD_STAT_INLINE) +
           counter("offload-keygen-" OFFLOAD_STAT_OFFLOADED);
}

/*
 * 1 when |group| is a KEM that offload offers (3.5's X25519MLKEM768 and the
 * other hybrids, decided at run time): its key share is an encapsulation,
 * not a key exchange.
 */
static int kem_group(const char *group)
{
    EVP_KEM *kem =
        group != NULL ? EVP_KEM_fetch(S.env.libctx, group, OFFLOAD_PROPQ) : NULL;

    ERR_clear_error();
    EVP_KEM_free(kem);
    return kem != NULL;
}

/*
 * Why a TLS 1.2 CBC suite's records may bypass offload: without
 * encrypt-then-MAC, libssl prefers a stitched AES-CBC-HMAC-SHA cipher
 * when the library context has one. Returns the provider that serves it,
 * or NULL.
 */
static const char *stitched_provider(const char *name)
{
    static char prov[64];
    EVP_CIPHER *c;

    ERR_set_mark();
    c = EVP_CIPHER_fetch(S.env.libctx, name, NULL);
    ERR_pop_to_mark();
    if (c == NULL)
        return NULL;
    snprintf(prov, sizeof(prov), "%s",
             OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(c)));
    EVP_CIPHER_free(c);
    return prov;
}

/* ---- the certificate ---- */

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new_ex(S.env.libctx, NULL);
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    ok = X509_set_version(x, X509_VERSION_3) &&
         ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
         X509_set_pubkey(x, key) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"localhost", -1, -1, 0) &&
         X509_set_issuer_name(x, name);
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
        ok = ext != NULL && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    /* Signed through the library context of |x| (offload preferred). */
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- the two ends ---- */

struct peer {
    const char *name;
    SSL *ssl;
    const unsigned char *tx;
    size_t sent;
    unsigned char *rx;
    size_t got;
    unsigned writes; /* SSL_write calls completed: one record each */
    enum { PAUSED_NONE, PAUSED_WRITE, PAUSED_READ } paused; /* whose job waits */
    unsigned async_waits; /* SSL_ERROR_WANT_ASYNC answered with poll() */
};

/* Waits with poll() on the async fds of |p|'s paused job. */
static void wait_async(struct peer *p)
{
    OSSL_ASYNC_FD fds[8];
    struct pollfd pfd[8];
    size_t n = 0, i;
    int r;

    assert_int_equal(SSL_get_all_async_fds(p->ssl, NULL, &n), 1);
    assert_true(n >= 1 && n <= 8); /* a paused job has its wait fd */
    assert_int_equal(SSL_get_all_async_fds(p->ssl, fds, &n), 1);
    for (i = 0; i < n; i++)
        pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    while ((r = poll(pfd, n, POLL_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    assert_true(r > 0); /* 0: the job was never woken */
    p->async_waits++;
}

/*
 * After a call of |p| answered |r| <= 0: anything but "try again" fails the
 * test. Returns 1 when the call's job is paused (SSL_ERROR_WANT_ASYNC,
 * waited for), 0 for want read/write.
 */
static int retry_or_fail(struct peer *p, int r, const char *op)
{
    int e = SSL_get_error(p->ssl, r);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_WANT_ASYNC:
        wait_async(p);
        return 1;
    default:
        test_dump_errors(op);
        /* "no shared cipher" for ECDHE suites: did the client offer EC groups? */
        if (SSL_is_server(p->ssl))
            print_message("server: the client offered %ld supported groups\n",
                          SSL_get1_groups(p->ssl, NULL));
        fail_msg("%s: %s failed, SSL_get_error %d", p->name, op, e);
    }
    return 0;
}

static void handshake(struct peer *c, struct peer *s)
{
    unsigned rounds = 0;

    while (!SSL_is_init_finished(c->ssl) || !SSL_is_init_finished(s->ssl)) {
        int r;

        assert_true(++rounds < MAX_ROUNDS);
        if (!SSL_is_init_finished(c->ssl) && (r = SSL_do_handshake(c->ssl)) <= 0)
            retry_or_fail(c, r, "handshake");
        if (!SSL_is_init_finished(s->ssl) && (r = SSL_do_handshake(s->ssl)) <= 0)
            retry_or_fail(s, r, "handshake");
    }
}

/*
 * One write (CHUNK bytes, or what is left) and one read, as far as they go.
 * A call answered SSL_ERROR_WANT_ASYNC left its job paused: libssl resumes
 * that job at the next call on the SSL, whatever the call, so the same
 * call (same arguments) must come next. Until it has, the other one waits.
 */
static void io_step(struct peer *p)
{
    size_t n, done = 0;
    int r;

    if (p->sent < TOTAL && p->paused != PAUSED_READ) {
        n = TOTAL - p->sent < CHUNK ? TOTAL - p->sent : CHUNK;
        r = SSL_write_ex(p->ssl, p->tx + p->sent, n, &done);
        p->paused = PAUSED_NONE;
        if (r > 0) {
            assert_int_equal(done, n);
            p->sent += done;
            p->writes++;
        } else if (retry_or_fail(p, r, "SSL_write_ex")) {
            p->paused = PAUSED_WRITE;
            return;
        }
    }
    if (p->got < TOTAL && p->paused != PAUSED_WRITE) {
        r = SSL_read_ex(p->ssl, p->rx + p->got, TOTAL - p->got, &done);
        p->paused = PAUSED_NONE;
        if (r > 0)
            p->got += done;
        else if (retry_or_fail(p, r, "SSL_read_ex"))
            p->paused = PAUSED_READ;
    }
}

static void exchange(struct peer *c, struct peer *s)
{
    unsigned rounds = 0;

    while (c->sent < TOTAL || s->sent < TOTAL || c->got < TOTAL || s->got < TOTAL) {
        assert_true(++rounds < MAX_ROUNDS);
        io_step(c);
        io_step(s);
    }
    assert_memory_equal(s->rx, c->tx, TOTAL);
    assert_memory_equal(c->rx, s->tx, TOTAL);
}

/* The connection under test: freed by conn_teardown, even after a failure. */
static struct {
    SSL_CTX *sctx, *cctx;
    struct peer c, s;
} K;

static int conn_teardown(void **state)
{
    (void)state;
    SSL_free(K.c.ssl);
    SSL_free(K.s.ssl);
    SSL_CTX_free(K.cctx);
    SSL_CTX_free(K.sctx);
    free(K.c.rx);
    free(K.s.rx);
    memset(&K, 0, sizeof(K));
    ERR_clear_error();
    return 0;
}

static SSL_CTX *make_ctx(SSL_CTX **slot, int server, int version, const char *suite,
                         uint64_t opts)
{
    SSL_CTX *ctx = *slot = SSL_CTX_new_ex(S.env.libctx, NULL, TLS_method());

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    if (version == TLS1_3_VERSION)
        assert_int_equal(SSL_CTX_set_ciphersuites(ctx, suite), 1);
    else
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, suite), 1);
    SSL_CTX_set_options(ctx, opts);
    if (server) {
        assert_int_equal(SSL_CTX_use_certificate(ctx, S.cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, S.key), 1);
        assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
    } else {
        /* The client trusts exactly this certificate and checks the name. */
        assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), S.cert), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

struct run {
    int version;
    const char *suite;
    uint64_t opts;
    int async_server;
};

static void connect_and_exchange(const struct run *run)
{
    SSL_CTX *sctx = make_ctx(&K.sctx, 1, run->version, run->suite, run->opts);
    SSL_CTX *cctx = make_ctx(&K.cctx, 0, run->version, run->suite, run->opts);
    struct peer *cp = &K.c, *sp = &K.s;
    BIO *bc = NULL, *bs = NULL;
    uint64_t upd0 = cipher_updates(), sig0 = signatures(), kex0 = key_exchanges(),
             gen0 = key_generations(), sigoff0 = counter(SIG(OFFLOAD_STAT_OFFLOADED)),
             upd, sig, sigoff, kex, gen;
    unsigned records;
    const char *cn, *sn, *group;

    *cp = (struct peer){.name = "client", .tx = S.data[0]};
    *sp = (struct peer){.name = "server", .tx = S.data[1]};
    cp->rx = calloc(1, TOTAL);
    sp->rx = calloc(1, TOTAL);
    assert_non_null(cp->rx);
    assert_non_null(sp->rx);
    cp->ssl = SSL_new(cctx);
    sp->ssl = SSL_new(sctx);
    assert_non_null(cp->ssl);
    assert_non_null(sp->ssl);
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(cp->ssl, bc, bc);
    SSL_set_bio(sp->ssl, bs, bs);
    assert_int_equal(SSL_set1_host(cp->ssl, "localhost"), 1);
    SSL_set_connect_state(cp->ssl);
    SSL_set_accept_state(sp->ssl);
    if (run->async_server)
        SSL_set_mode(sp->ssl, SSL_MODE_ASYNC);

    handshake(cp, sp);
    sigoff = counter(SIG(OFFLOAD_STAT_OFFLOADED)) - sigoff0;
    sig = signatures() - sig0;
    kex = key_exchanges() - kex0;
    gen = key_generations() - gen0;
    group = SSL_group_to_name(cp->ssl, SSL_get_negotiated_group(cp->ssl));
    assert_int_equal(SSL_get_verify_result(cp->ssl), X509_V_OK);
    assert_int_equal(SSL_version(cp->ssl), run->version);
    assert_int_equal(SSL_version(sp->ssl), run->version);
    cn = SSL_CIPHER_get_name(SSL_get_current_cipher(cp->ssl));
    sn = SSL_CIPHER_get_name(SSL_get_current_cipher(sp->ssl));
    assert_string_equal(cn, run->suite);
    assert_string_equal(sn, run->suite);

    exchange(cp, sp);
    upd = cipher_updates() - upd0;
    records = cp->writes + sp->writes;
    print_message("%s %s%s%s: group %s, %u records of up to %d bytes, %" PRIu64
                  " cipher data updates through offload, %" PRIu64 " signatures (%" PRIu64
                  " offloaded), %" PRIu64 " key exchanges, %u async waits\n",
                  run->version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2", cn,
                  run->version == TLS1_3_VERSION             ? ""
                  : (run->opts & SSL_OP_NO_ENCRYPT_THEN_MAC) ? ", MAC-then-encrypt"
                                                             : ", encrypt-then-MAC",
                  run->async_server ? ", server in SSL_MODE_ASYNC" : "",
                  group != NULL ? group : "?", records, CHUNK, upd, sig, sigoff, kex,
                  sp->async_waits);
    assert_int_equal(records, 2 * (TOTAL / CHUNK));
    /* Each record sealed by one end and opened by the other, through offload. */
    if (upd < 2u * records) {
        const char *st = stitched_provider("AES-128-CBC-HMAC-SHA256");
        int noetm = (run->opts & SSL_OP_NO_ENCRYPT_THEN_MAC) != 0 && st != NULL;

        fail_msg("%s: %" PRIu64
                 " cipher data updates through offload for %u records%s%s%s",
                 run->suite, upd, records,
                 noetm ? ": without encrypt-then-MAC libssl took the stitched "
                         "AES-128-CBC-HMAC-SHA256 of provider \""
                       : "",
                 noetm ? st : "", noetm ? "\", which offload does not wrap" : "");
    }
    /* The handshake signed through offload... */
    assert_true(sig >= 1);
    /*
     * ...and its (EC)DHE ran there too: libssl keeps an EC group only when
     * the key manager it fetches for it belongs to the provider that
     * advertised the group ("TLS-GROUP" capability). A KEM group (3.5's
     * default, the hybrid X25519MLKEM768) makes no key exchange: its key
     * share's key must come from offload's key manager all the same.
     */
    if (kem_group(group)) {
        if (gen == 0)
            fail_msg("%s: group %s: no key generated through offload", run->suite, group);
    } else if (kex == 0) {
        fail_msg(
            "%s: no key exchange through offload (group %s): offload's EC/X25519 key "
            "managers are preferred but offload advertises no TLS-GROUP capability, "
            "so libssl drops every EC group",
            run->suite, group != NULL ? group : "none");
    }
    if (run->async_server) {
        /* The server's RSA signature went to a worker while its job waited. */
        assert_true(sigoff >= 1);
        assert_true(sp->async_waits >= 1);
    }

    assert_true(SSL_shutdown(cp->ssl) >= 0);
}

static void test_run(void **state)
{
    connect_and_exchange(*state);
}

static const struct run runs[] = {
    {TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256", 0, 0},
    {TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384", 0, 0},
    {TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA256", 0, 0},
    {TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA256", SSL_OP_NO_ENCRYPT_THEN_MAC, 0},
    {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0, 0},
    {TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", 0, 0},
    {TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", 0, 0},
    {TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0, 1},
    {TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384", 0, 1},
};

/* ---- setup ---- */

static int group_setup(void **state)
{
    size_t i;

    (void)state;
    if (!test_env_open(&S.env, NULL))
        return -1;
    S.key = EVP_PKEY_Q_keygen(S.env.libctx, OFFLOAD_PROPQ, "RSA", (size_t)2048);
    if (S.key == NULL || !test_pkey_in(S.key, OFFLOAD_PROVIDER_NAME)) {
        test_dump_errors("RSA key in offload");
        return -1;
    }
    S.cert = make_cert(S.key);
    if (S.cert == NULL) {
        test_dump_errors("certificate");
        return -1;
    }
    for (i = 0; i < 2; i++) {
        S.data[i] = malloc(TOTAL);
        if (S.data[i] == NULL || RAND_bytes_ex(S.env.libctx, S.data[i], TOTAL, 0) != 1)
            return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(S.data[0]);
    free(S.data[1]);
    X509_free(S.cert);
    EVP_PKEY_free(S.key);
    test_env_close(&S.env);
    ASYNC_cleanup_thread();
    return 0;
}

#define RUN(i, label)                                                                    \
    {                                                                                    \
        label, test_run, NULL, conn_teardown, (void *)&runs[i]                           \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        RUN(0, "tls1.2/ECDHE-RSA-AES128-GCM-SHA256"),
        RUN(1, "tls1.2/ECDHE-RSA-AES256-GCM-SHA384"),
        RUN(2, "tls1.2/ECDHE-RSA-AES128-SHA256/etm"),
        RUN(3, "tls1.2/ECDHE-RSA-AES128-SHA256/no-etm"),
        RUN(4, "tls1.3/TLS_AES_128_GCM_SHA256"),
        RUN(5, "tls1.3/TLS_AES_256_GCM_SHA384"),
        RUN(6, "tls1.3/TLS_CHACHA20_POLY1305_SHA256"),
        RUN(7, "tls1.3/TLS_AES_128_GCM_SHA256/async-server"),
        RUN(8, "tls1.2/ECDHE-RSA-AES256-GCM-SHA384/async-server"),
    };

    return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}

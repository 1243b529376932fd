/* SPDX-License-Identifier: Apache-2.0 */
/*
 * latency_probe — the keep-alive side of the tail-latency benchmark
 * (scripts/bench_tls_latency.sh) and of test/haproxy_storm_test.sh.
 *
 * Opens N TLS 1.3 connections (blocking connect and handshake, before
 * anything is measured), prints "ready", then sends one small request per
 * connection every --interval-ms, the connections staggered evenly over the
 * interval, and checks every response:
 *
 *   --proto http  "GET / HTTP/1.1" with keep-alive; the answer must be
 *                 "HTTP/1.1 200", carry a Content-Length, not close the
 *                 connection, and have exactly the --expect body (HAProxy's
 *                 "http-request return ... string ok");
 *   --proto ref   tls_ref_server's protocol (test/tls_ref.h): "<n>\n",
 *                 answered with exactly n pattern bytes (--bytes n).
 *
 * One request in flight per connection. A request's latency runs from the
 * time it was due (not the time it could be sent): when a response comes
 * late, the requests due meanwhile are sent at once and their wait counts,
 * so a stalled server is not hidden by the probe waiting for it
 * ("coordinated omission"). Requests due in the first --warmup seconds are
 * checked but not recorded; the probe stops sending after --warmup +
 * --duration seconds (or on SIGTERM/SIGINT), waits for what is in flight,
 * and prints one line of "name value" pairs:
 *
 *   latency_probe: conns 4 interval_ms 10 requests 1200 errors 0 reconnects 0
 *                  p50_ms 0.110 p90_ms ... p99_ms ... p99.9_ms ... max_ms ... mean_ms ...
 *
 * --raw FILE writes every recorded latency, in ms, one a line. Any error (a
 * wrong status or body, a closed connection, a timeout, a failed handshake)
 * is counted, the first few are printed, and the connection is opened
 * again. Exits 0 when every request was answered correctly and at least one
 * was recorded, 1 otherwise, 2 on bad usage or setup.
 *
 * The client loads whatever provider OPENSSL_CONF says (the scripts run it
 * with /dev/null: the default provider).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_ref.h"

#define MAX_CONNS    1024
#define RBUF_SIZE    8192
#define MAX_REPORTED 10 /* errors printed in full */
#define MAX_WAIT_NS  100000000ull

enum proto { PROTO_HTTP, PROTO_REF };

static struct {
    int port;
    unsigned conns;
    double interval_ms, duration, warmup, timeout;
    enum proto proto;
    const char *expect;
    uint64_t bytes;
    const char *cafile, *raw;
    int quiet;
} O = {.conns = 4,
       .interval_ms = 10,
       .duration = 5,
       .warmup = 0.5,
       .timeout = 10,
       .proto = PROTO_HTTP,
       .expect = "ok",
       .bytes = 64};

struct conn {
    int fd;
    SSL *ssl;
    int busy;          /* a request is in flight */
    int wpending;      /* its SSL_write must be retried */
    uint64_t next_due; /* when the next request is due */
    uint64_t cur_due;  /* when the one in flight was due */
    uint64_t sent_ns;  /* when it went out */
    size_t len;
    char buf[RBUF_SIZE];
};

static struct {
    SSL_CTX *ctx;
    struct conn *c;
    char req[128];
    size_t reqlen;
    uint64_t interval_ns, rec_from, rec_until, timeout_ns;
    uint64_t requests, errors, reconnects, checked;
    uint64_t *lat;
    size_t nlat, latcap;
} P;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    (void)sig;
    stop_signal = 1;
}

static void error_at(const struct conn *c, const char *what, const char *detail)
{
    P.errors++;
    if (P.errors <= MAX_REPORTED)
        fprintf(stderr, "latency_probe: connection %u: %s%s%s\n", (unsigned)(c - P.c),
                what, detail ? ": " : "", detail ? detail : "");
    if (P.errors == MAX_REPORTED)
        fprintf(stderr, "latency_probe: (further errors only counted)\n");
}

static void ssl_error_at(const struct conn *c, const char *what)
{
    char msg[256];
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", errno ? strerror(errno) : "no detail");
    ERR_clear_error();
    error_at(c, what, msg);
}

static void drop(struct conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
    c->busy = c->wpending = 0;
    c->len = 0;
}

/* A blocking connect and handshake (bounded by --timeout), then non-blocking. */
static int open_conn(struct conn *c)
{
    struct sockaddr_in sa;
    struct timeval tv;
    int one = 1, fl;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        error_at(c, "socket", strerror(errno));
        return 0;
    }
    tv.tv_sec = (time_t)O.timeout;
    tv.tv_usec = (suseconds_t)((O.timeout - (double)tv.tv_sec) * 1e6);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)O.port);
    inet_pton(AF_INET, TLS_REF_HOST, &sa.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        error_at(c, "connect", strerror(errno));
        drop(c);
        return 0;
    }
    c->ssl = SSL_new(P.ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd) ||
        !SSL_set_tlsext_host_name(c->ssl, "localhost") ||
        (O.cafile != NULL && !SSL_set1_host(c->ssl, "localhost"))) {
        ssl_error_at(c, "SSL_new");
        drop(c);
        return 0;
    }
    errno = 0;
    if (SSL_connect(c->ssl) != 1) {
        ssl_error_at(c, "handshake");
        drop(c);
        return 0;
    }
    if (SSL_version(c->ssl) != TLS1_3_VERSION) {
        error_at(c, "handshake", "not TLS 1.3");
        drop(c);
        return 0;
    }
    fl = fcntl(c->fd, F_GETFL);
    if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        error_at(c, "fcntl", strerror(errno));
        drop(c);
        return 0;
    }
    c->len = 0;
    return 1;
}

static void reopen(struct conn *c)
{
    drop(c);
    P.reconnects++;
    open_conn(c); /* on failure: tried again when the next request is due */
}

static void record(uint64_t ns)
{
    if (P.nlat == P.latcap) {
        size_t cap = P.latcap ? 2 * P.latcap : 65536;
        uint64_t *n = realloc(P.lat, cap * sizeof(*n));

        if (n == NULL) {
            fprintf(stderr, "latency_probe: out of memory\n");
            exit(2);
        }
        P.lat = n;
        P.latcap = cap;
    }
    P.lat[P.nlat++] = ns;
}

/* 1: a complete, correct response in c->buf; 0: not complete yet; -1: wrong. */
static int check_http(struct conn *c, const char **why)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *p, *eol;
    size_t hlen, blen = strlen(O.expect);
    long long cl = -1;

    if (end == NULL) {
        *why = "headers too long";
        return c->len >= sizeof(c->buf) ? -1 : 0;
    }
    hlen = (size_t)(end + 4 - c->buf);
    if (c->len < 13 || memcmp(c->buf, "HTTP/1.1 200 ", 13) != 0) {
        *why = "status is not HTTP/1.1 200";
        return -1;
    }
    for (p = (const char *)memchr(c->buf, '\n', hlen) + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end + 2 - p));
        if (eol == NULL)
            break;
        if (strncasecmp(p, "content-length:", 15) == 0)
            cl = strtoll(p + 15, NULL, 10);
        else if (strncasecmp(p, "connection:", 11) == 0 &&
                 memmem(p, (size_t)(eol - p), "close", 5) != NULL) {
            *why = "the server closes the connection";
            return -1;
        }
    }
    if (cl < 0) {
        *why = "no Content-Length";
        return -1;
    }
    if (c->len < hlen + (size_t)cl)
        return 0;
    if (c->len > hlen + (size_t)cl) {
        *why = "bytes after the body";
        return -1;
    }
    if ((size_t)cl != blen || memcmp(c->buf + hlen, O.expect, blen) != 0) {
        *why = "wrong body";
        return -1;
    }
    return 1;
}

static int check_ref(struct conn *c, const char **why)
{
    size_t i;

    for (i = 0; i < c->len && i < O.bytes; i++)
        if ((unsigned char)c->buf[i] != tls_ref_byte(i)) {
            *why = "wrong byte in the reply";
            return -1;
        }
    if (c->len > O.bytes) {
        *why = "reply too long";
        return -1;
    }
    return c->len == O.bytes;
}

static void try_write(struct conn *c)
{
    int r, err;

    errno = 0;
    r = SSL_write(c->ssl, P.req, (int)P.reqlen);
    if (r > 0) {
        c->wpending = 0;
        return;
    }
    err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        c->wpending = 1;
        return;
    }
    ssl_error_at(c, "write");
    reopen(c);
}

static void send_request(struct conn *c, uint64_t due, uint64_t now)
{
    if (c->ssl == NULL) {
        P.reconnects++;
        if (!open_conn(c))
            return; /* counted; that request is lost */
        now = tls_ref_now_ns();
    }
    c->busy = 1;
    c->cur_due = due;
    c->sent_ns = now;
    c->len = 0;
    try_write(c);
}

static void on_readable(struct conn *c)
{
    const char *why = "";
    int r, err, ok;

    if (c->wpending) {
        try_write(c);
        if (c->wpending || c->ssl == NULL)
            return;
    }
    for (;;) {
        if (c->len == sizeof(c->buf)) {
            error_at(c, "response", "too long");
            reopen(c);
            return;
        }
        errno = 0;
        r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
        if (r <= 0) {
            err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            if (err == SSL_ERROR_ZERO_RETURN)
                error_at(c, "read", "the server closed the connection");
            else
                ssl_error_at(c, "read");
            reopen(c);
            return;
        }
        if (!c->busy) {
            error_at(c, "read", "bytes nobody asked for");
            reopen(c);
            return;
        }
        c->len += (size_t)r;
        ok = O.proto == PROTO_HTTP ? check_http(c, &why) : check_ref(c, &why);
        if (ok < 0) {
            error_at(c, "response", why);
            reopen(c);
            return;
        }
        if (ok > 0) {
            uint64_t now = tls_ref_now_ns();

            P.checked++;
            if (c->cur_due >= P.rec_from && c->cur_due < P.rec_until) {
                record(now - c->cur_due);
                P.requests++;
            }
            c->busy = 0;
            c->len = 0;
            return;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of the sorted latencies, in ms. */
static double pct(double p)
{
    size_t k;

    if (P.nlat == 0)
        return 0;
    k = (size_t)(p / 100 * (double)P.nlat + 0.999999);
    if (k < 1)
        k = 1;
    if (k > P.nlat)
        k = P.nlat;
    return (double)P.lat[k - 1] / 1e6;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: latency_probe --port P [options]\n"
            "  --conns N           keep-alive TLS 1.3 connections (default 4)\n"
            "  --interval-ms X     one request per connection every X ms (default 10)\n"
            "  --duration S        seconds recorded after the warm-up (default 5)\n"
            "  --warmup S          seconds checked, not recorded (default 0.5)\n"
            "  --proto http|ref    HTTP/1.1 GET, or tls_ref_server's \"<n>\\n\" "
            "(default http)\n"
            "  --expect BODY       the HTTP body every answer must have (default ok)\n"
            "  --bytes N           --proto ref: reply bytes asked for (default 64)\n"
            "  --cafile F          verify the server's certificate (name localhost)\n"
            "  --timeout S         a request or handshake taking longer is an error "
            "(default 10)\n"
            "  --raw FILE          every recorded latency (ms), one a line\n"
            "  --quiet             no \"ready\" line\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    enum {
        OPT_PORT = 256,
        OPT_CONNS,
        OPT_INT,
        OPT_DUR,
        OPT_WARM,
        OPT_PROTO,
        OPT_EXPECT,
        OPT_BYTES,
        OPT_CA,
        OPT_TMO,
        OPT_RAW,
        OPT_QUIET
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"conns", required_argument, NULL, OPT_CONNS},
        {"interval-ms", required_argument, NULL, OPT_INT},
        {"duration", required_argument, NULL, OPT_DUR},
        {"warmup", required_argument, NULL, OPT_WARM},
        {"proto", required_argument, NULL, OPT_PROTO},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"bytes", required_argument, NULL, OPT_BYTES},
        {"cafile", required_argument, NULL, OPT_CA},
        {"timeout", required_argument, NULL, OPT_TMO},
        {"raw", required_argument, NULL, OPT_RAW},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {NULL, 0, NULL, 0}};
    uint64_t v;
    int o;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case OPT_PORT:
            if (!tls_ref_parse_u64(optarg, 1, 65535, &v))
                usage();
            O.port = (int)v;
            break;
        case OPT_CONNS:
            if (!tls_ref_parse_u64(optarg, 1, MAX_CONNS, &v))
                usage();
            O.conns = (unsigned)v;
            break;
        case OPT_INT:
            if (!tls_ref_parse_double(optarg, 1e6, &O.interval_ms) ||
                O.interval_ms < 0.01)
                usage();
            break;
        case OPT_DUR:
            if (!tls_ref_parse_double(optarg, 1e6, &O.duration))
                usage();
            break;
        case OPT_WARM:
            if (!tls_ref_parse_double(optarg, 1e6, &O.warmup))
                usage();
            break;
        case OPT_PROTO:
            if (strcmp(optarg, "http") == 0)
                O.proto = PROTO_HTTP;
            else if (strcmp(optarg, "ref") == 0)
                O.proto = PROTO_REF;
            else
                usage();
            break;
        case OPT_EXPECT:
            if (strlen(optarg) > RBUF_SIZE / 2)
                usage();
            O.expect = optarg;
            break;
        case OPT_BYTES:
            if (!tls_ref_parse_u64(optarg, 1, RBUF_SIZE, &O.bytes))
                usage();
            break;
        case OPT_CA:
            O.cafile = optarg;
            break;
        case OPT_TMO:
            if (!tls_ref_parse_double(optarg, 1e5, &O.timeout) || O.timeout < 0.001)
                usage();
            break;
        case OPT_RAW:
            O.raw = optarg;
            break;
        case OPT_QUIET:
            O.quiet = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || O.port == 0)
        usage();
}

int main(int argc, char **argv)
{
    struct pollfd pfd[MAX_CONNS];
    struct sigaction sa;
    uint64_t start, send_until, stop_at = 0, now, wait, sum = 0;
    unsigned i, n;
    int stopping = 0;
    size_t k;

    parse_args(argc, argv);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    P.ctx = SSL_CTX_new(TLS_client_method());
    if (P.ctx == NULL || !SSL_CTX_set_min_proto_version(P.ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(P.ctx, TLS1_3_VERSION)) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL_CTX_set_options(P.ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(P.ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(P.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (O.cafile != NULL) {
        if (!SSL_CTX_load_verify_locations(P.ctx, O.cafile, NULL)) {
            ERR_print_errors_fp(stderr);
            return 2;
        }
        SSL_CTX_set_verify(P.ctx, SSL_VERIFY_PEER, NULL);
    }
    if (O.proto == PROTO_HTTP)
        P.reqlen = (size_t)snprintf(P.req, sizeof(P.req),
                                    "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    else
        P.reqlen =
            (size_t)snprintf(P.req, sizeof(P.req), "%llu\n", (unsigned long long)O.bytes);

    P.c = calloc(O.conns, sizeof(*P.c));
    if (P.c == NULL)
        return 2;
    for (i = 0; i < O.conns; i++) {
        P.c[i].fd = -1;
        if (!open_conn(&P.c[i])) {
            fprintf(stderr, "latency_probe: cannot open connection %u\n", i);
            return 2;
        }
    }
    if (!O.quiet) {
        printf("ready\n");
        fflush(stdout);
    }

    P.interval_ns = (uint64_t)(O.interval_ms * 1e6);
    P.timeout_ns = (uint64_t)(O.timeout * 1e9);
    start = tls_ref_now_ns();
    P.rec_from = start + (uint64_t)(O.warmup * 1e9);
    P.rec_until = send_until = P.rec_from + (uint64_t)(O.duration * 1e9);
    for (i = 0; i < O.conns; i++)
        P.c[i].next_due = start + P.interval_ns * i / O.conns;

    for (;;) {
        int busy = 0;

        now = tls_ref_now_ns();
        if (!stopping && (now >= send_until || stop_signal)) {
            stopping = 1;
            stop_at = now;
        }
        wait = MAX_WAIT_NS;
        for (i = 0; i < O.conns; i++) {
            struct conn *c = &P.c[i];

            if (c->busy && now - c->sent_ns > P.timeout_ns) {
                error_at(c, "timeout", "no complete response");
                reopen(c);
            }
            while (!stopping && !c->busy && now >= c->next_due) {
                uint64_t due = c->next_due;

                c->next_due += P.interval_ns;
                send_request(c, due, now);
            }
            if (c->busy)
                busy = 1;
            else if (!stopping && c->next_due - now < wait)
                wait = c->next_due - now;
        }
        if (stopping && (!busy || now - stop_at > P.timeout_ns))
            break;
        for (i = n = 0; i < O.conns; i++) {
            if (!P.c[i].busy)
                continue;
            pfd[n].fd = P.c[i].fd;
            pfd[n].events = P.c[i].wpending ? POLLIN | POLLOUT : POLLIN;
            pfd[n].revents = 0;
            n++;
        }
        {
            struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u),
                                  .tv_nsec = (long)(wait % 1000000000u)};

            if (ppoll(pfd, n, &ts, NULL) < 0 && errno != EINTR) {
                perror("latency_probe: ppoll");
                return 2;
            }
        }
        for (i = k = 0; i < O.conns; i++) {
            if (!P.c[i].busy)
                continue;
            if (pfd[k++].revents != 0)
                on_readable(&P.c[i]);
        }
    }
    for (i = 0; i < O.conns; i++) {
        if (P.c[i].busy)
            error_at(&P.c[i], "timeout", "no response at the end");
        if (P.c[i].ssl != NULL) {
            int fl = fcntl(P.c[i].fd, F_GETFL);

            if (fl >= 0)
                fcntl(P.c[i].fd, F_SETFL, fl & ~O_NONBLOCK);
            SSL_shutdown(P.c[i].ssl);
        }
        drop(&P.c[i]);
    }

    qsort(P.lat, P.nlat, sizeof(*P.lat), cmp_u64);
    for (k = 0; k < P.nlat; k++)
        sum += P.lat[k];
    if (O.raw != NULL) {
        FILE *f = fopen(O.raw, "w");

        if (f == NULL) {
            perror("latency_probe: --raw");
            return 2;
        }
        for (k = 0; k < P.nlat; k++)
            fprintf(f, "%.4f\n", (double)P.lat[k] / 1e6);
        if (fclose(f) != 0) {
            perror("latency_probe: --raw");
            return 2;
        }
    }
    printf(
        "latency_probe: conns %u interval_ms %g requests %llu checked %llu errors %llu "
        "reconnects %llu p50_ms %.3f p90_ms %.3f p99_ms %.3f p99.9_ms %.3f max_ms %.3f "
        "mean_ms %.3f\n",
        O.conns, O.interval_ms, (unsigned long long)P.requests,
        (unsigned long long)P.checked, (unsigned long long)P.errors,
        (unsigned long long)P.reconnects, pct(50), pct(90), pct(99), pct(99.9),
        P.nlat ? (double)P.lat[P.nlat - 1] / 1e6 : 0.0,
        P.nlat ? (double)sum / (double)P.nlat / 1e6 : 0.0);
    free(P.lat);
    free(P.c);
    SSL_CTX_free(P.ctx);
    return P.errors == 0 && P.requests > 0 ? 0 : 1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_ref_client — load generator for tls_ref_server.
 *
 * C connections at once over non-blocking sockets and one epoll loop,
 * each a full handshake (no tickets, no session cache, a new SSL every
 * time), then R requests of B bytes each checked byte by byte, then
 * close_notify. A fraction of the connections "vanish": they send their
 * ClientHello and close the socket, at once (FIN) or a millisecond later
 * (FIN, or RST with SO_LINGER 0) — by then the server is usually inside
 * the handshake with its job paused on a worker.
 *
 * The client's own crypto is kept cheap (X25519 key exchange) but real: with
 * --cafile it verifies the server's certificate and signature.
 *
 * Prints one line: handshakes, vanished, errors, requests, bytes, elapsed,
 * handshakes per second (completed before --duration ran out, or all of
 * them over the elapsed time with --handshakes), handshake latency
 * percentiles, and the client's own CPU use (cores, over the elapsed time). Exits 1 on
 * any unexpected failure: a connect, handshake, verification, protocol or timeout error,
 * or a short count.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_ref.h"

#define MAX_EVENTS      256
#define VANISH_DELAY_NS 1000000ull
#define MAX_REPORTED    10    /* errors printed in full */
#define MAX_ERRORS      10000 /* give up: something is badly wrong */

static struct {
    int port;
    unsigned conns;
    uint64_t handshakes; /* total connections to make, 0 with --duration */
    double duration;
    unsigned requests;
    uint64_t bytes;
    double vanish;
    int min_version, max_version;
    const char *cafile, *groups, *ciphers;
    double timeout;
    int quiet;
} O = {.conns = 50,
       .handshakes = 1000,
       .requests = 1,
       .bytes = 1024,
       .groups = "X25519:P-256",
       .timeout = 30};

enum cstate { ST_CONNECT, ST_HANDSHAKE, ST_REQUEST, ST_REPLY, ST_SHUTDOWN, ST_VANISH };
static const char *const state_names[] = {"connect", "handshake", "request",
                                          "reply",   "shutdown",  "vanish"};

struct slot {
    int used;
    uint32_t gen;
    int fd;
    int registered;
    uint32_t events;
    SSL *ssl;
    enum cstate state;
    uint64_t num;       /* connection number, from 0 */
    int vanish;         /* this one leaves after its ClientHello */
    int rst;            /* ... with a reset */
    uint64_t start_ns;  /* connect() */
    uint64_t vanish_ns; /* when to close, ST_VANISH */
    unsigned reqs_left;
    uint64_t got;
    char line[32];
    int linelen;
};

static struct {
    int epfd;
    SSL_CTX *ctx;
    struct slot *slots;
    unsigned active;
    uint64_t started, handshakes, vanished, errors, requests, bytes;
    uint64_t handshakes_in_time; /* completed before the deadline (--duration) */
    uint64_t start_ns, deadline_ns;
    int stop_starting;
    uint32_t *lat_us;
    size_t nlat, latcap;
    unsigned vanish_pending;
} C;

static unsigned char pattern[TLS_REF_CHUNK + TLS_REF_PERIOD];
static unsigned char rbuf[TLS_REF_CHUNK];

static void set_events(struct slot *s, uint32_t events)
{
    struct epoll_event ev;

    if (s->registered && s->events == events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)s->gen << 32 | (uint32_t)(s - C.slots);
    if (epoll_ctl(C.epfd, s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &ev) <
        0) {
        fprintf(stderr, "tls_ref_client: epoll_ctl: %s\n", strerror(errno));
        exit(2);
    }
    s->registered = 1;
    s->events = events;
}

static void unregister(struct slot *s)
{
    if (s->registered)
        epoll_ctl(C.epfd, EPOLL_CTL_DEL, s->fd, NULL);
    s->registered = 0;
}

/* Ends the connection in this slot; the loop starts the next one there. */
static void finish(struct slot *s)
{
    uint32_t gen = s->gen;

    unregister(s);
    SSL_free(s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    if (s->state == ST_VANISH)
        C.vanish_pending--;
    memset(s, 0, sizeof(*s));
    s->gen = gen + 1;
    s->fd = -1;
    C.active--;
}

static void fail(struct slot *s, const char *fmt, ...)
{
    va_list ap;

    C.errors++;
    if (C.errors <= MAX_REPORTED) {
        fprintf(stderr,
                "tls_ref_client: connection %llu (%s): ", (unsigned long long)s->num,
                state_names[s->state]);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        ERR_print_errors_fp(stderr);
    }
    ERR_clear_error();
    if (C.errors >= MAX_ERRORS)
        C.stop_starting = 1;
    finish(s);
}

static void vanish_now(struct slot *s)
{
    if (s->rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    C.vanished++;
    finish(s);
}

/* Its ClientHello is out: leave now, or soon without reading a byte. */
static void vanish(struct slot *s)
{
    switch (s->num % 3) {
    case 0:
        vanish_now(s);
        return;
    case 1:
        s->rst = 1;
        break;
    default:
        break;
    }
    unregister(s);
    s->state = ST_VANISH;
    s->vanish_ns = tls_ref_now_ns() + VANISH_DELAY_NS;
    C.vanish_pending++;
}

static void next_request(struct slot *s)
{
    if (s->reqs_left == 0) {
        s->state = ST_SHUTDOWN;
        return;
    }
    s->linelen =
        snprintf(s->line, sizeof(s->line), "%llu\n", (unsigned long long)O.bytes);
    s->got = 0;
    s->state = ST_REQUEST;
}

static void handshake_done(struct slot *s)
{
    uint64_t now = tls_ref_now_ns(), us = (now - s->start_ns) / 1000;

    C.handshakes++;
    if (C.deadline_ns == 0 || now <= C.deadline_ns)
        C.handshakes_in_time++;
    if (C.nlat == C.latcap) {
        size_t cap = C.latcap ? C.latcap * 2 : 4096;
        uint32_t *l = realloc(C.lat_us, cap * sizeof(*l));

        if (l != NULL) {
            C.lat_us = l;
            C.latcap = cap;
        }
    }
    if (C.nlat < C.latcap)
        C.lat_us[C.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    s->reqs_left = O.requests;
    next_request(s);
}

/* Runs the connection until it must wait; may end it. */
static void step(struct slot *s)
{
    for (;;) {
        int r = 0, err;

        ERR_clear_error();
        errno = 0;
        switch (s->state) {
        case ST_CONNECT:
        case ST_VANISH:
            return;
        case ST_HANDSHAKE:
            r = SSL_do_handshake(s->ssl);
            if (r == 1) {
                handshake_done(s);
                continue;
            }
            break;
        case ST_REQUEST:
            r = SSL_write(s->ssl, s->line, s->linelen);
            if (r > 0) {
                s->state = ST_REPLY;
                continue;
            }
            break;
        case ST_REPLY: {
            uint64_t left = O.bytes - s->got;

            if (left == 0) {
                C.requests++;
                s->reqs_left--;
                next_request(s);
                continue;
            }
            r = SSL_read(s->ssl, rbuf,
                         left < sizeof(rbuf) ? (int)left : (int)sizeof(rbuf));
            if (r > 0) {
                if (memcmp(rbuf, pattern + s->got % TLS_REF_PERIOD, (size_t)r) != 0) {
                    fail(s, "reply bytes %llu..%llu differ from the pattern",
                         (unsigned long long)s->got, (unsigned long long)(s->got + r));
                    return;
                }
                s->got += (uint64_t)r;
                C.bytes += (uint64_t)r;
                continue;
            }
            break;
        }
        case ST_SHUTDOWN:
            r = SSL_shutdown(s->ssl);
            if (r >= 0) {
                finish(s); /* close_notify sent: done, no need to wait for the server's */
                return;
            }
            break;
        }
        err = SSL_get_error(s->ssl, r);
        switch (err) {
        case SSL_ERROR_WANT_READ:
            if (s->state == ST_HANDSHAKE && s->vanish) {
                vanish(s);
                return;
            }
            set_events(s, EPOLLIN);
            return;
        case SSL_ERROR_WANT_WRITE:
            set_events(s, EPOLLOUT);
            return;
        default: {
            long v = SSL_get_verify_result(s->ssl);

            if (s->state == ST_HANDSHAKE && v != X509_V_OK)
                fail(s, "certificate verification: %s", X509_verify_cert_error_string(v));
            else
                fail(s, "SSL error %d, errno %d (%s)", err, errno,
                     errno ? strerror(errno) : "-");
            return;
        }
        }
    }
}

static void start_next(struct slot *s)
{
    struct sockaddr_in a;
    int fd, one = 1;
    uint64_t pm = (uint64_t)(O.vanish * 1000000 + 0.5);

    if (C.stop_starting || (O.handshakes > 0 && C.started >= O.handshakes))
        return;
    if (C.deadline_ns != 0 && tls_ref_now_ns() >= C.deadline_ns) {
        C.stop_starting = 1;
        return;
    }
    s->used = 1;
    s->fd = -1;
    s->num = C.started++;
    /* Evenly spread: connection n vanishes when floor((n+1)f) > floor(nf). */
    s->vanish = (s->num + 1) * pm / 1000000 > s->num * pm / 1000000;
    s->start_ns = tls_ref_now_ns();
    s->state = ST_CONNECT;
    C.active++;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(s, "socket: %s", strerror(errno));
        return;
    }
    s->fd = fd;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)O.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
        fail(s, "connect: %s", strerror(errno));
        return;
    }
    s->ssl = SSL_new(C.ctx);
    if (s->ssl == NULL || !SSL_set_fd(s->ssl, fd)) {
        fail(s, "SSL_new");
        return;
    }
    SSL_set_connect_state(s->ssl);
    set_events(s, EPOLLOUT);
}

/* A new connection in every free slot, while there are more to make. */
static void refill(void)
{
    unsigned i;

    for (i = 0; i < O.conns && C.active < O.conns; i++)
        if (!C.slots[i].used)
            start_next(&C.slots[i]);
}

static void on_event(struct slot *s, uint32_t events)
{
    if (s->state == ST_CONNECT) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            fail(s, "connect: %s", strerror(err));
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        s->state = ST_HANDSHAKE;
    }
    step(s);
}

static void sweep(uint64_t now)
{
    unsigned i;

    for (i = 0; i < O.conns; i++) {
        struct slot *s = &C.slots[i];

        if (!s->used)
            continue;
        if (s->state == ST_VANISH) {
            if (now >= s->vanish_ns)
                vanish_now(s);
        } else if (now - s->start_ns > (uint64_t)(O.timeout * 1e9)) {
            fail(s, "timed out after %.1f s", O.timeout);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double percentile_ms(double p)
{
    size_t i;

    if (C.nlat == 0)
        return 0;
    i = (size_t)(p * (double)(C.nlat - 1) + 0.5);
    return C.lat_us[i] / 1000.0;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: tls_ref_client --port N [options]\n"
           "  --conns C          connections at once (default 50)\n"
           "  --handshakes N     connections in all (default 1000)\n"
           "  --duration S       instead: keep starting connections for S seconds\n"
           "  --requests R       requests per connection (default 1)\n"
           "  --bytes B          reply size per request (default 1024)\n"
           "  --vanish F         fraction 0..1 that leave after their ClientHello\n"
           "  --tls1.2 | --tls1.3\n"
           "  --cafile FILE      verify the server's certificate against FILE\n"
           "  --groups LIST      supported groups, the first gets the TLS 1.3 key share\n"
           "  --ciphers LIST     TLS 1.2 cipher suites (e.g. AES128-GCM-SHA256: RSA key\n"
           "                     exchange; DHE-RSA-AES128-GCM-SHA256: finite-field DH)\n"
           "                     (default X25519:P-256: TLS 1.2 needs the ECDSA cert's "
           "curve)\n"
           "  --timeout S        per connection (default 30)\n"
           "  --quiet            only the result line\n");
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_TLS12 = 256, OPT_TLS13, OPT_GROUPS, OPT_CIPHERS };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"handshakes", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'r'},
        {"bytes", required_argument, NULL, 'b'},
        {"vanish", required_argument, NULL, 'v'},
        {"tls1.2", no_argument, NULL, OPT_TLS12},
        {"tls1.3", no_argument, NULL, OPT_TLS13},
        {"cafile", required_argument, NULL, 'a'},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"ciphers", required_argument, NULL, OPT_CIPHERS},
        {"timeout", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int o, ok = 1;
    uint64_t v;

    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'p':
            ok = tls_ref_parse_u64(optarg, 1, 65535, &v);
            O.port = (int)v;
            break;
        case 'c':
            ok = tls_ref_parse_u64(optarg, 1, 100000, &v);
            O.conns = (unsigned)v;
            break;
        case 'n':
            ok = tls_ref_parse_u64(optarg, 1, UINT64_MAX, &O.handshakes);
            break;
        case 'd':
            ok = tls_ref_parse_double(optarg, 1e7, &O.duration) && O.duration > 0;
            break;
        case 'r':
            ok = tls_ref_parse_u64(optarg, 0, 1000000, &v);
            O.requests = (unsigned)v;
            break;
        case 'b':
            ok = tls_ref_parse_u64(optarg, 0, TLS_REF_MAX_REPLY, &O.bytes);
            break;
        case 'v':
            ok = tls_ref_parse_double(optarg, 1, &O.vanish);
            break;
        case OPT_TLS12:
            O.min_version = O.max_version = TLS1_2_VERSION;
            break;
        case OPT_TLS13:
            O.min_version = O.max_version = TLS1_3_VERSION;
            break;
        case 'a':
            O.cafile = optarg;
            break;
        case OPT_GROUPS:
            O.groups = optarg;
            break;
        case OPT_CIPHERS:
            O.ciphers = optarg;
            break;
        case 't':
            ok = tls_ref_parse_double(optarg, 1e6, &O.timeout) && O.timeout > 0;
            break;
        case 'q':
            O.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
        if (!ok) {
            fprintf(stderr, "tls_ref_client: bad option value \"%s\"\n", optarg);
            exit(2);
        }
    }
    if (optind != argc || O.port == 0) {
        usage(stderr);
        exit(2);
    }
    if (O.duration > 0)
        O.handshakes = 0;
}

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, TLS_client_method());

    if (ctx == NULL)
        return NULL;
    /* Every handshake a full one. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if ((O.min_version && !SSL_CTX_set_min_proto_version(ctx, O.min_version)) ||
        (O.max_version && !SSL_CTX_set_max_proto_version(ctx, O.max_version)) ||
        !SSL_CTX_set1_groups_list(ctx, O.groups) ||
        (O.ciphers != NULL && !SSL_CTX_set_cipher_list(ctx, O.ciphers))) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (O.cafile != NULL) {
        if (!SSL_CTX_load_verify_locations(ctx, O.cafile, NULL)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    struct epoll_event evs[MAX_EVENTS];
    uint64_t now, next_sweep, end;
    struct rusage ru;
    double elapsed, rate, cpu;
    unsigned i;
    int ok;

    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    tls_ref_fill(pattern, sizeof(pattern));
    C.ctx = make_ctx();
    if (C.ctx == NULL) {
        fprintf(stderr, "tls_ref_client: cannot set up TLS\n");
        ERR_print_errors_fp(stderr);
        return 2;
    }
    C.epfd = epoll_create1(EPOLL_CLOEXEC);
    C.slots = calloc(O.conns, sizeof(*C.slots));
    if (C.epfd < 0 || C.slots == NULL) {
        perror("tls_ref_client: setup");
        return 2;
    }
    C.start_ns = tls_ref_now_ns();
    if (O.duration > 0)
        C.deadline_ns = C.start_ns + (uint64_t)(O.duration * 1e9);
    for (i = 0; i < O.conns; i++)
        C.slots[i].fd = -1;
    refill();
    next_sweep = C.start_ns + 100000000ull;
    while (C.active > 0) {
        int n = epoll_wait(C.epfd, evs, MAX_EVENTS, C.vanish_pending ? 1 : 50), k;

        if (n < 0 && errno != EINTR) {
            perror("tls_ref_client: epoll_wait");
            return 2;
        }
        for (k = 0; k < n; k++) {
            uint32_t idx = (uint32_t)evs[k].data.u64,
                     gen = (uint32_t)(evs[k].data.u64 >> 32);
            struct slot *s = &C.slots[idx];

            if (idx < O.conns && s->used && s->gen == gen && s->registered)
                on_event(s, evs[k].events);
        }
        now = tls_ref_now_ns();
        if (C.deadline_ns != 0 && now >= C.deadline_ns)
            C.stop_starting = 1;
        if (C.vanish_pending > 0 || now >= next_sweep) {
            sweep(now);
            next_sweep = now + 100000000ull;
        }
        refill();
    }
    end = tls_ref_now_ns();
    elapsed = (double)(end - C.start_ns) / 1e9;
    if (O.duration > 0)
        rate = (double)C.handshakes_in_time / O.duration;
    else
        rate = elapsed > 0 ? (double)C.handshakes / elapsed : 0;
    qsort(C.lat_us, C.nlat, sizeof(*C.lat_us), cmp_u32);
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("tls_ref_client: handshakes %llu vanished %llu errors %llu requests %llu "
           "bytes %llu elapsed %.3f s rate %.1f hs/s p50 %.2f ms p99 %.2f ms "
           "cpu %.2f cores\n",
           (unsigned long long)C.handshakes, (unsigned long long)C.vanished,
           (unsigned long long)C.errors, (unsigned long long)C.requests,
           (unsigned long long)C.bytes, elapsed, rate, percentile_ms(0.5),
           percentile_ms(0.99), elapsed > 0 ? cpu / elapsed : 0);
    ok = C.errors == 0 && C.requests == C.handshakes * O.requests &&
         (O.handshakes == 0 || C.handshakes + C.vanished == O.handshakes);
    if (!ok && !O.quiet)
        fprintf(
            stderr, "tls_ref_client: FAILED (%llu errors, %llu of %llu connections)\n",
            (unsigned long long)C.errors, (unsigned long long)(C.handshakes + C.vanished),
            (unsigned long long)O.handshakes);
    free(C.lat_us);
    free(C.slots);
    close(C.epfd);
    SSL_CTX_free(C.ctx);
    return ok ? 0 : 1;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_ref_server — the reference TLS server in SSL_MODE_ASYNC.
 *
 * One thread, one epoll loop, non-blocking sockets. Crypto that a provider
 * (offload) runs elsewhere pauses the connection's ASYNC_JOB: SSL_* then
 * fails with SSL_ERROR_WANT_ASYNC and the loop learns when to resume it
 *
 *   --mode fd        from the wait fds of the connection's ASYNC_WAIT_CTX:
 *                    SSL_get_changed_async_fds() says which fds to add to
 *                    and remove from epoll; a table remembers which
 *                    connection owns which fd; readable means "resume";
 *   --mode callback  from SSL_CTX_set_async_callback(): the callback runs
 *                    on a worker thread of the provider, so it only queues
 *                    the connection's id and writes to one eventfd the loop
 *                    watches — it never touches an SSL. After each pause
 *                    SSL_get_async_status() says whether a callback will
 *                    come (OK), the job must be retried (EAGAIN: the
 *                    provider's queue was full; ERR), or the provider has
 *                    no callbacks (UNSUPPORTED: fall back to the fds);
 *   --mode sync      no SSL_MODE_ASYNC at all: the baseline.
 *
 * Clients that vanish (EPOLLHUP/EPOLLERR, or EPOLLRDHUP during the
 * handshake) are dropped at once, even while their job is paused: SSL_free
 * of a paused connection frees its ASYNC_WAIT_CTX under the provider's
 * feet, which the provider must survive (no wake-up may reach the freed
 * ctx or a reused fd number). OpenSSL has no call to free a paused job: its
 * ASYNC_JOB and 32 KiB stack stay allocated for the life of the process.
 * The info callback (which runs inside the job) notes the current job so
 * the server can count such jobs and keep them reachable (LeakSanitizer
 * then reports nothing: this leak is OpenSSL's, on purpose). With
 * --vanish finish the server instead shuts the socket down, waits for the
 * job's wake-up, lets it fail on the dead socket, and frees nothing
 * paused: no leak, at the price of finishing the crypto. It does that
 * anyway for a paused job it never saw (a pause inside SSL_write).
 *
 * The protocol (test/tls_ref.h): request lines "<n>\n", each answered with
 * n pattern bytes. Uses the default library context, so
 * OPENSSL_CONF=conf/offload.cnf OPENSSL_MODULES=build/provider loads the
 * provider. Prints "listening on 127.0.0.1:<port>" once ready; SIGINT or
 * SIGTERM, --duration or --connections end it; --stats prints its
 * counters (and the provider's, when loaded) at exit.
 *
 * The server in three files, plus tls_ref_server.h that they share:
 *   tls_ref_server.c  this one: options, setup, the fd table, the epoll
 *                     loop and its dispatch, --stats
 *   tls_ref_conn.c    a connection: accept, the TLS state machine
 *                     (drive), reads and writes, vanishing clients, the end
 *   tls_ref_async.c   a paused connection: the async fds (--mode fd), the
 *                     async callback and its eventfd (--mode callback),
 *                     the retry list, the jobs SSL_free leaves behind
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "offload.h"
#include "tls_ref_server.h"

#define MAX_EVENTS     256
#define IDLE_SWEEP_NS  1000000000ull
#define FINISH_WAIT_NS 2000000000ull /* at exit: how long paused jobs may take to end */

/* The state the three files share (tls_ref_server.h). */
struct options O = {
    .mode = MODE_FD, .max_conns = 1024, .vanish = VANISH_FREE, .idle_timeout = 30};
struct server_stats st;
struct server S = {.epfd = -1, .lfd = -1, .sigfd = -1, .wakefd = -1};

void logmsg(const char *fmt, ...)
{
    va_list ap;

    if (O.quiet)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "tls_ref_server: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *what)
{
    fprintf(stderr, "tls_ref_server: %s: %s\n", what, strerror(errno));
    ERR_print_errors_fp(stderr);
    exit(2);
}

/* ---- epoll registrations ---- */

int fd_register(int fd, enum fdkind kind, uint32_t slot, uint32_t events)
{
    struct epoll_event ev;

    if ((size_t)fd >= S.fdcap) {
        size_t cap = S.fdcap ? S.fdcap : 1024;
        struct fdent *t;

        while (cap <= (size_t)fd)
            cap *= 2;
        t = realloc(S.fdtab, cap * sizeof(*t));
        if (t == NULL)
            return 0;
        memset(t + S.fdcap, 0, (cap - S.fdcap) * sizeof(*t));
        S.fdtab = t;
        S.fdcap = cap;
    }
    if (S.fdtab[fd].kind != FD_NONE) {
        logmsg("fd %d registered twice (kind %d, then %d)", fd, S.fdtab[fd].kind, kind);
        return 0;
    }
    if (++S.tagseq == 0)
        S.tagseq = 1;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)S.tagseq << 32 | (uint32_t)fd;
    if (epoll_ctl(S.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return 0;
    S.fdtab[fd] = (struct fdent){.kind = (uint8_t)kind, .slot = slot, .tag = S.tagseq};
    S.fd_live++;
    return 1;
}

void fd_modify(int fd, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)S.fdtab[fd].tag << 32 | (uint32_t)fd;
    if (epoll_ctl(S.epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        logmsg("epoll_ctl MOD fd %d: %s", fd, strerror(errno));
}

void fd_unregister(int fd)
{
    if (fd < 0 || (size_t)fd >= S.fdcap || S.fdtab[fd].kind == FD_NONE)
        return;
    if (epoll_ctl(S.epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
        logmsg("epoll_ctl DEL fd %d: %s", fd, strerror(errno));
    memset(&S.fdtab[fd], 0, sizeof(S.fdtab[fd]));
    S.fd_live--;
}

/* ---- the loop's events ---- */

static void sweep(uint64_t now)
{
    unsigned i;

    if (S.accept_resume_ns != 0 && now >= S.accept_resume_ns) {
        S.accept_resume_ns = 0;
        if (!S.stop)
            set_accepting(1);
    }
    if (O.idle_timeout <= 0)
        return;
    for (i = 0; i < O.max_conns; i++) {
        struct conn *c = &S.conns[i];

        if (!c->used || now - c->last_ns <= (uint64_t)(O.idle_timeout * 1e9))
            continue;
        st.idle_timeouts++;
        if (c->dying)
            conn_end(c); /* its job never woke: give up on it */
        else
            conn_drop(c);
    }
}

static void dispatch(const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)ev->data.u64;
    uint32_t tag = (uint32_t)(ev->data.u64 >> 32);
    struct fdent *e;

    if ((size_t)fd >= S.fdcap || S.fdtab[fd].tag != tag || S.fdtab[fd].kind == FD_NONE) {
        st.stale_events++;
        return;
    }
    e = &S.fdtab[fd];
    switch (e->kind) {
    case FD_LISTEN:
        on_accept();
        break;
    case FD_SIGNAL: {
        struct signalfd_siginfo si;

        if (read(S.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            logmsg("signal %u: stopping", si.ssi_signo);
        S.stop = 1;
        break;
    }
    case FD_WAKE:
        on_wake();
        break;
    case FD_SOCK:
        on_sock(&S.conns[e->slot], ev->events);
        break;
    case FD_ASYNC:
        on_async_fd(&S.conns[e->slot]);
        break;
    }
}

/* ---- setup ---- */

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method());
    long mode = SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;

    if (ctx == NULL)
        return NULL;
    if (O.mode != MODE_SYNC)
        mode |= SSL_MODE_ASYNC;
    SSL_CTX_set_mode(ctx, mode);
    /* Every handshake a full one: no tickets, no session cache. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* TLS 1.2 DHE suites: the RFC 7919 group that matches the certificate. */
    SSL_CTX_set_dh_auto(ctx, 1);
    if ((O.min_version && !SSL_CTX_set_min_proto_version(ctx, O.min_version)) ||
        (O.max_version && !SSL_CTX_set_max_proto_version(ctx, O.max_version)) ||
        SSL_CTX_use_certificate_chain_file(ctx, O.cert) <= 0 ||
        SSL_CTX_use_PrivateKey_file(ctx, O.key, SSL_FILETYPE_PEM) <= 0 ||
        !SSL_CTX_check_private_key(ctx)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (O.mode == MODE_CALLBACK && !SSL_CTX_set_async_callback(ctx, async_callback)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_info_callback(ctx, info_callback);
    return ctx;
}

static int make_listener(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (O.reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        die("SO_REUSEPORT");
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)O.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("bind 127.0.0.1");
    if (listen(fd, 4096) < 0)
        die("listen");
    if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
        die("getsockname");
    O.port = ntohs(a.sin_port);
    return fd;
}

/* ---- stats ---- */

static int find_offload(OSSL_PROVIDER *p, void *arg)
{
    if (strcmp(OSSL_PROVIDER_get0_name(p), OFFLOAD_PROVIDER_NAME) == 0) {
        *(OSSL_PROVIDER **)arg = p;
        return 0;
    }
    return 1;
}

static void print_provider_stats(void)
{
    static const char *const fams[] = {"",
                                       OFFLOAD_FAMILY_SIGNATURE "-",
                                       OFFLOAD_FAMILY_KEYEXCH "-",
                                       OFFLOAD_FAMILY_CIPHER "-",
                                       OFFLOAD_FAMILY_KEYGEN "-",
                                       OFFLOAD_FAMILY_KEM "-",
                                       OFFLOAD_FAMILY_ASYMCIPHER "-"};
    static const char *const stats[] = {OFFLOAD_STAT_OFFLOADED,  OFFLOAD_STAT_INLINE,
                                        OFFLOAD_STAT_COMPLETED,  OFFLOAD_STAT_FAILED,
                                        OFFLOAD_STAT_QUEUE_FULL, OFFLOAD_STAT_PAUSES};
    static const char *const totals[] = {OFFLOAD_PARAM_QUEUE_HIGH_WATER,
                                         OFFLOAD_PARAM_WORKERS, OFFLOAD_PARAM_IN_FLIGHT};
    OSSL_PROVIDER *p = NULL;
    size_t f, s;
    char name[64];

    OSSL_PROVIDER_do_all(NULL, find_offload, &p);
    if (p == NULL) {
        printf("provider-offload 0\n");
        return;
    }
    printf("provider-offload 1\n");
    for (f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        for (s = 0; s < sizeof(stats) / sizeof(stats[0]); s++) {
            uint64_t v = 0;
            OSSL_PARAM params[2];

            snprintf(name, sizeof(name), "offload-%s%s", fams[f], stats[s]);
            params[0] = OSSL_PARAM_construct_uint64(name, &v);
            params[1] = OSSL_PARAM_construct_end();
            if (OSSL_PROVIDER_get_params(p, params) && OSSL_PARAM_modified(&params[0]))
                printf("%s %llu\n", name, (unsigned long long)v);
        }
    }
    for (s = 0; s < sizeof(totals) / sizeof(totals[0]); s++) {
        uint64_t v = 0;
        OSSL_PARAM params[2];

        params[0] = OSSL_PARAM_construct_uint64(totals[s], &v);
        params[1] = OSSL_PARAM_construct_end();
        if (OSSL_PROVIDER_get_params(p, params) && OSSL_PARAM_modified(&params[0]))
            printf("%s %llu\n", totals[s], (unsigned long long)v);
    }
}

#define STAT_PRINT(n) printf("server-%s %llu\n", #n, (unsigned long long)st.n);

static void print_stats(void)
{
    st.callbacks = atomic_load(&st_callbacks);
    printf("== tls_ref_server stats (mode %s)\n", O.mode == MODE_FD         ? "fd"
                                                  : O.mode == MODE_CALLBACK ? "callback"
                                                                            : "sync");
    SERVER_STATS(STAT_PRINT)
    printf("server-live %u\n", S.live);
    /* What the fd table still holds: the listener, signalfd, wake eventfd. */
    printf("server-fdtab-live %u\n", S.fd_live);
    print_provider_stats();
    fflush(stdout);
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tls_ref_server --cert FILE --key FILE [options]\n"
        "  --port N            127.0.0.1 port, 0 (default): any free one\n"
        "  --mode M            fd (default) | callback | sync (no SSL_MODE_ASYNC)\n"
        "  --tls1.2 | --tls1.3 only this version (default: both)\n"
        "  --max-conns N       connections at once (default 1024)\n"
        "  --duration S        exit after S seconds\n"
        "  --connections N     exit after N connections ended\n"
        "  --vanish free|finish  a vanished client's paused job: dropped with its\n"
        "                      SSL (default) or resumed to its end first\n"
        "  --idle-timeout S    drop connections idle this long (default 30, 0: never)\n"
        "  --reuseport         SO_REUSEPORT: several processes share the port\n"
        "  --stats             print counters at exit\n"
        "  --quiet             no log lines on stderr\n");
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_TLS12 = 256, OPT_TLS13, OPT_MAXCONNS, OPT_REUSEPORT, OPT_IDLE };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"mode", required_argument, NULL, 'm'},
        {"tls1.2", no_argument, NULL, OPT_TLS12},
        {"tls1.3", no_argument, NULL, OPT_TLS13},
        {"max-conns", required_argument, NULL, OPT_MAXCONNS},
        {"duration", required_argument, NULL, 'd'},
        {"connections", required_argument, NULL, 'n'},
        {"vanish", required_argument, NULL, 'v'},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"reuseport", no_argument, NULL, OPT_REUSEPORT},
        {"stats", no_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int o;
    uint64_t v;

    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'p':
            if (!tls_ref_parse_u64(optarg, 0, 65535, &v))
                goto bad;
            O.port = (int)v;
            break;
        case 'c':
            O.cert = optarg;
            break;
        case 'k':
            O.key = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "fd") == 0)
                O.mode = MODE_FD;
            else if (strcmp(optarg, "callback") == 0)
                O.mode = MODE_CALLBACK;
            else if (strcmp(optarg, "sync") == 0)
                O.mode = MODE_SYNC;
            else
                goto bad;
            break;
        case OPT_TLS12:
            O.min_version = O.max_version = TLS1_2_VERSION;
            break;
        case OPT_TLS13:
            O.min_version = O.max_version = TLS1_3_VERSION;
            break;
        case OPT_MAXCONNS:
            if (!tls_ref_parse_u64(optarg, 1, 1u << 20, &v))
                goto bad;
            O.max_conns = (unsigned)v;
            break;
        case 'd':
            if (!tls_ref_parse_double(optarg, 1e7, &O.duration))
                goto bad;
            break;
        case 'n':
            if (!tls_ref_parse_u64(optarg, 1, UINT64_MAX, &O.connections))
                goto bad;
            break;
        case 'v':
            if (strcmp(optarg, "free") == 0)
                O.vanish = VANISH_FREE;
            else if (strcmp(optarg, "finish") == 0)
                O.vanish = VANISH_FINISH;
            else
                goto bad;
            break;
        case OPT_IDLE:
            if (!tls_ref_parse_double(optarg, 1e7, &O.idle_timeout))
                goto bad;
            break;
        case OPT_REUSEPORT:
            O.reuseport = 1;
            break;
        case 's':
            O.stats = 1;
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
        continue;
    bad:
        fprintf(stderr, "tls_ref_server: bad option value \"%s\"\n", optarg);
        exit(2);
    }
    if (optind != argc || O.cert == NULL || O.key == NULL) {
        usage(stderr);
        exit(2);
    }
}

/* Ends every connection at exit; paused jobs of --vanish finish get a moment. */
static void close_all(void)
{
    uint64_t deadline = tls_ref_now_ns() + FINISH_WAIT_NS;
    struct epoll_event evs[MAX_EVENTS];
    unsigned i;

    for (i = 0; i < O.max_conns; i++)
        if (S.conns[i].used)
            conn_drop(&S.conns[i]);
    while (S.live > 0 && tls_ref_now_ns() < deadline) {
        int n = epoll_wait(S.epfd, evs, MAX_EVENTS, 10), k;

        for (k = 0; k < n; k++)
            dispatch(&evs[k]);
        if (S.nretry > 0)
            run_retries();
    }
    for (i = 0; i < O.max_conns; i++)
        if (S.conns[i].used)
            conn_end(&S.conns[i]); /* frees paused ones: their jobs stay */
}

int main(int argc, char **argv)
{
    struct epoll_event evs[MAX_EVENTS];
    sigset_t sigs;
    uint64_t start, next_sweep, now;
    unsigned i;

    parse_args(argc, argv);
    /* Before any thread exists, so the provider's workers inherit the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    tls_ref_fill(pattern, sizeof(pattern));

    S.ctx = make_ctx();
    if (S.ctx == NULL) {
        fprintf(stderr, "tls_ref_server: cannot set up TLS with %s / %s\n", O.cert,
                O.key);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    S.conns = calloc(O.max_conns, sizeof(*S.conns));
    S.free_slots = calloc(O.max_conns, sizeof(*S.free_slots));
    S.retry = calloc(O.max_conns, sizeof(*S.retry));
    S.retry_run = calloc(O.max_conns, sizeof(*S.retry_run));
    if (!S.conns || !S.free_slots || !S.retry || !S.retry_run ||
        !callback_queue_init(O.max_conns))
        die("calloc");
    for (i = 0; i < O.max_conns; i++) {
        S.conns[i].fd = -1;
        S.free_slots[S.nfree++] = O.max_conns - 1 - i;
    }
    S.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (S.epfd < 0)
        die("epoll_create1");
    S.lfd = make_listener();
    S.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (S.sigfd < 0)
        die("signalfd");
    if (!fd_register(S.lfd, FD_LISTEN, 0, EPOLLIN) ||
        !fd_register(S.sigfd, FD_SIGNAL, 0, EPOLLIN))
        die("epoll_ctl");
    S.accepting = 1;
    if (O.mode == MODE_CALLBACK) {
        S.wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (S.wakefd < 0 || !fd_register(S.wakefd, FD_WAKE, 0, EPOLLIN))
            die("eventfd");
    }
    printf("listening on %s:%d mode %s pid %d offload %s\n", TLS_REF_HOST, O.port,
           O.mode == MODE_FD         ? "fd"
           : O.mode == MODE_CALLBACK ? "callback"
                                     : "sync",
           (int)getpid(),
           OSSL_PROVIDER_available(NULL, OFFLOAD_PROVIDER_NAME) ? "yes" : "no");
    fflush(stdout);

    start = tls_ref_now_ns();
    next_sweep = start + IDLE_SWEEP_NS;
    while (!S.stop) {
        int n, k, timeout = S.nretry > 0 ? 1 : 100;

        n = epoll_wait(S.epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (k = 0; k < n; k++)
            dispatch(&evs[k]);
        if (S.nretry > 0)
            run_retries();
        now = tls_ref_now_ns();
        if (O.duration > 0 && now - start >= (uint64_t)(O.duration * 1e9))
            S.stop = 1;
        if (now >= next_sweep || (S.accept_resume_ns && now >= S.accept_resume_ns)) {
            sweep(now);
            next_sweep = now + IDLE_SWEEP_NS;
        }
    }

    S.accepting = 0;
    fd_unregister(S.lfd);
    close(S.lfd);
    close_all();
    if (O.stats)
        print_stats();
    fd_unregister(S.sigfd);
    close(S.sigfd);
    if (S.wakefd >= 0) {
        fd_unregister(S.wakefd);
        close(S.wakefd);
    }
    close(S.epfd);
    SSL_CTX_free(S.ctx);
    free(S.conns);
    free(S.free_slots);
    free(S.retry);
    free(S.retry_run);
    callback_queue_free();
    free(S.fdtab);
    /* S.graveyard stays: it keeps the abandoned jobs reachable until exit. */
    return 0;
}

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
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
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
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "offload.h"
#include "tls_ref.h"

#define MAX_EVENTS     256
#define MAX_ASYNC_FDS  4
#define IDLE_SWEEP_NS  1000000000ull
#define FINISH_WAIT_NS 2000000000ull /* at exit: how long paused jobs may take to end */

enum mode { MODE_SYNC, MODE_FD, MODE_CALLBACK };
enum vanish { VANISH_FREE, VANISH_FINISH };

static struct {
    int port;
    const char *cert, *key;
    enum mode mode;
    int min_version, max_version;
    unsigned max_conns;
    double duration;      /* seconds, 0: none */
    uint64_t connections; /* exit after this many connections ended, 0: none */
    int stats, reuseport, quiet;
    enum vanish vanish;
    double idle_timeout;
} O = {.mode = MODE_FD, .max_conns = 1024, .vanish = VANISH_FREE, .idle_timeout = 30};

/* ---- counters ---- */

#define SERVER_STATS(X)                                                                  \
    X(accepted)           /* connections accepted */                                     \
    X(handshakes)         /* handshakes completed */                                     \
    X(requests)           /* replies sent in full */                                     \
    X(bytes_out)          /* reply bytes written */                                      \
    X(closed)             /* connections ended, for any reason */                        \
    X(closed_clean)       /* the client's close_notify, or EOF between requests */       \
    X(peer_gone)          /* EPOLLHUP/EPOLLERR/EPOLLRDHUP from a client */               \
    X(vanished_handshake) /* ... of which during the handshake */                        \
    X(freed_paused)       /* SSL_free of a connection whose job was paused */            \
    X(abandoned_jobs)     /* paused jobs left behind by SSL_free (OpenSSL keeps them) */ \
    X(finished_paused)    /* paused jobs of vanished clients resumed to their end */     \
    X(ssl_errors)         /* SSL_ERROR_SSL/SYSCALL outside a vanish */                   \
    X(handshake_errors)   /* ... of which during the handshake */                        \
    X(bad_requests)       /* request lines that did not parse */                         \
    X(idle_timeouts)      /* connections dropped by --idle-timeout */                    \
    X(async_pauses)       /* SSL_ERROR_WANT_ASYNC returns */                             \
    X(async_resumes)      /* paused calls made again */                                  \
    X(async_fd_adds)      /* fds added to epoll from SSL_get_changed_async_fds */        \
    X(async_fd_dels)      /* fds removed from epoll (changed fds, or connection end) */  \
    X(async_fd_wakes)     /* async fds seen readable */                                  \
    X(async_fd_spurious)  /* ... while their connection was not paused */                \
    X(callbacks)          /* async callbacks received (worker threads) */                \
    X(callback_wakes)     /* loop wake-ups by the callbacks' eventfd */                  \
    X(callback_stale)     /* queued ids of connections that moved on or ended */         \
    X(status_eagain)      /* SSL_get_async_status: ASYNC_STATUS_EAGAIN */                \
    X(status_other)       /* ERR or UNSUPPORTED: retried or fell back to the fds */      \
    X(no_jobs)            /* SSL_ERROR_WANT_ASYNC_JOB */                                 \
    X(retries)            /* calls made again from the retry list */                     \
    X(stale_events)       /* epoll events of fds that changed owner in the batch */      \
    X(accept_errors)      /* accept() failures other than EAGAIN */                      \
    X(accept_pauses)      /* times accepting stopped: --max-conns or no fds */           \
    X(max_live)           /* most connections at once */

#define STAT_FIELD(n) uint64_t n;
static struct {
    SERVER_STATS(STAT_FIELD)
} st;
static _Atomic uint64_t st_callbacks; /* the only counter a worker thread touches */

/* ---- connections and the fd table ---- */

enum fdkind { FD_NONE, FD_LISTEN, FD_SIGNAL, FD_WAKE, FD_SOCK, FD_ASYNC };

/*
 * Every fd the loop watches. An epoll event carries the fd and the tag of
 * its registration: an event that was already in the batch when its fd
 * was closed (and perhaps reused) no longer matches and is dropped.
 */
struct fdent {
    uint8_t kind;
    uint32_t slot; /* FD_SOCK, FD_ASYNC: the owning connection */
    uint32_t tag;
};

enum cstate { CS_HANDSHAKE, CS_READ, CS_WRITE, CS_SHUTDOWN };
static const char *const cstate_names[] = {"handshake", "read", "write", "shutdown"};

struct conn {
    int used;
    uint32_t gen; /* bumped when the slot is freed: stale ids and callbacks miss */
    int fd;
    int registered; /* fd is in epoll */
    uint32_t events;
    SSL *ssl;
    enum cstate state;
    int paused;     /* the last call returned SSL_ERROR_WANT_ASYNC: its job is parked */
    int retry;      /* in the retry list */
    int dying;      /* the client is gone; waiting for the paused job to end */
    int peer_eof;   /* EPOLLRDHUP seen after the handshake */
    ASYNC_JOB *job; /* the job of the current call, noted by the info callback */
    int nasync;
    int async_fd[MAX_ASYNC_FDS];
    uint64_t last_ns;
    size_t reqlen;
    char req[64];
    uint64_t want, sent; /* the reply being written */
    int wlen;            /* length of the SSL_write being retried, 0 none */
};

static struct {
    int epfd, lfd, sigfd, wakefd;
    SSL_CTX *ctx;
    struct conn *conns;
    uint32_t *free_slots;
    unsigned nfree, live;
    struct fdent *fdtab;
    size_t fdcap;
    unsigned fd_live; /* registered fds */
    uint32_t tagseq;
    int accepting;
    uint64_t accept_resume_ns; /* accepting was stopped for lack of fds */
    uint64_t *retry, *retry_run;
    size_t nretry;
    int stop;
    /* Jobs left paused by SSL_free: kept reachable, counted, never resumed. */
    ASYNC_JOB **graveyard;
    size_t ngrave, gravecap;
} S = {.epfd = -1, .lfd = -1, .sigfd = -1, .wakefd = -1};

/* The callbacks' queue: the one structure shared with worker threads. */
static struct {
    pthread_mutex_t lock;
    uint64_t *ids; /* filled by the callbacks */
    size_t n, cap;
    uint64_t *spare; /* the loop's, between swaps */
    size_t spare_cap;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER};

static unsigned char pattern[TLS_REF_CHUNK + TLS_REF_PERIOD];

static void logmsg(const char *fmt, ...)
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

/* Ids travel through the callback's void * argument. */
_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t),
               "connection ids need 64-bit pointers");

static uint64_t conn_id(const struct conn *c)
{
    return (uint64_t)c->gen << 32 | (uint32_t)(c - S.conns);
}

/* The live connection an id names, else NULL. */
static struct conn *conn_of(uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    struct conn *c;

    if (slot >= O.max_conns)
        return NULL;
    c = &S.conns[slot];
    return c->used && c->gen == (uint32_t)(id >> 32) ? c : NULL;
}

/* ---- epoll registrations ---- */

static int fd_register(int fd, enum fdkind kind, uint32_t slot, uint32_t events)
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

static void fd_modify(int fd, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)S.fdtab[fd].tag << 32 | (uint32_t)fd;
    if (epoll_ctl(S.epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        logmsg("epoll_ctl MOD fd %d: %s", fd, strerror(errno));
}

static void fd_unregister(int fd)
{
    if (fd < 0 || (size_t)fd >= S.fdcap || S.fdtab[fd].kind == FD_NONE)
        return;
    if (epoll_ctl(S.epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
        logmsg("epoll_ctl DEL fd %d: %s", fd, strerror(errno));
    memset(&S.fdtab[fd], 0, sizeof(S.fdtab[fd]));
    S.fd_live--;
}

static void sock_interest(struct conn *c, uint32_t events)
{
    if (c->registered && c->events != events) {
        fd_modify(c->fd, events);
        c->events = events;
    }
}

static void set_accepting(int on)
{
    if (S.accepting == on)
        return;
    S.accepting = on;
    fd_modify(S.lfd, on ? EPOLLIN : 0);
    if (!on)
        st.accept_pauses++;
}

/* ---- async fds of a connection ---- */

static void async_fd_add(struct conn *c, int fd)
{
    int i;

    for (i = 0; i < c->nasync; i++)
        if (c->async_fd[i] == fd)
            return;
    if (c->nasync == MAX_ASYNC_FDS ||
        !fd_register(fd, FD_ASYNC, (uint32_t)(c - S.conns), EPOLLIN)) {
        logmsg("cannot watch async fd %d of connection %u", fd, (unsigned)(c - S.conns));
        return;
    }
    c->async_fd[c->nasync++] = fd;
    st.async_fd_adds++;
}

static void async_fd_del(struct conn *c, int fd)
{
    int i;

    for (i = 0; i < c->nasync; i++) {
        if (c->async_fd[i] != fd)
            continue;
        fd_unregister(fd);
        c->async_fd[i] = c->async_fd[--c->nasync];
        st.async_fd_dels++;
        return;
    }
}

/* Applies SSL_get_changed_async_fds() to epoll and to the fd table. */
static void async_fds_changed(struct conn *c)
{
    OSSL_ASYNC_FD add[MAX_ASYNC_FDS], del[MAX_ASYNC_FDS];
    size_t nadd = 0, ndel = 0, i;

    if (!SSL_get_changed_async_fds(c->ssl, NULL, &nadd, NULL, &ndel) ||
        nadd > MAX_ASYNC_FDS || ndel > MAX_ASYNC_FDS ||
        !SSL_get_changed_async_fds(c->ssl, add, &nadd, del, &ndel)) {
        logmsg("SSL_get_changed_async_fds failed (%zu added, %zu deleted)", nadd, ndel);
        return;
    }
    for (i = 0; i < ndel; i++)
        async_fd_del(c, del[i]);
    for (i = 0; i < nadd; i++)
        async_fd_add(c, add[i]);
}

/* Callback mode without callbacks: watch every fd the wait ctx has. */
static void async_fds_all(struct conn *c)
{
    OSSL_ASYNC_FD fds[MAX_ASYNC_FDS];
    size_t n = 0, i;

    if (!SSL_get_all_async_fds(c->ssl, NULL, &n) || n > MAX_ASYNC_FDS ||
        !SSL_get_all_async_fds(c->ssl, fds, &n))
        return;
    for (i = 0; i < n; i++)
        async_fd_add(c, fds[i]);
}

static void retry_add(struct conn *c)
{
    if (c->retry)
        return;
    c->retry = 1;
    S.retry[S.nretry++] = conn_id(c); /* at most one entry per slot: never overflows */
}

/* ---- the async callback: a worker thread ---- */

static int async_callback(SSL *s, void *arg)
{
    uint64_t one = 1;
    int wake = 0, ok = 1;

    (void)s; /* never touched here: the loop may be using or freeing it */
    pthread_mutex_lock(&Q.lock);
    if (Q.n == Q.cap) {
        size_t cap = Q.cap * 2;
        uint64_t *ids = realloc(Q.ids, cap * sizeof(*ids));

        if (ids != NULL) {
            Q.ids = ids;
            Q.cap = cap;
        }
    }
    if (Q.n < Q.cap) {
        Q.ids[Q.n++] = (uint64_t)(uintptr_t)arg;
        wake = Q.n == 1; /* the loop swaps the whole queue: one write per batch */
    } else {
        ok = 0;
    }
    pthread_mutex_unlock(&Q.lock);
    if (wake)
        while (write(S.wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    atomic_fetch_add_explicit(&st_callbacks, 1, memory_order_relaxed);
    return ok;
}

/* Runs inside the job: notes which job a pause will leave behind. */
static void info_callback(const SSL *s, int where, int ret)
{
    struct conn *c = SSL_get_app_data(s);

    (void)where;
    (void)ret;
    if (c != NULL)
        c->job = ASYNC_get_current_job();
}

/* ---- ending a connection ---- */

static void graveyard_add(ASYNC_JOB *job)
{
    if (S.ngrave == S.gravecap) {
        size_t cap = S.gravecap ? S.gravecap * 2 : 64;
        ASYNC_JOB **g = realloc(S.graveyard, cap * sizeof(*g));

        if (g == NULL)
            return; /* then LeakSanitizer will see OpenSSL's leak */
        S.graveyard = g;
        S.gravecap = cap;
    }
    S.graveyard[S.ngrave++] = job;
}

static void retry_forget(struct conn *c)
{
    uint64_t id = conn_id(c);
    size_t i;

    for (i = 0; i < S.nretry; i++) {
        if (S.retry[i] == id) {
            S.retry[i] = S.retry[--S.nretry];
            break;
        }
    }
    c->retry = 0;
}

/* Ends a connection, paused or not, and frees its slot. */
static void conn_end(struct conn *c)
{
    uint32_t slot = (uint32_t)(c - S.conns), gen = c->gen;

    if (c->registered)
        fd_unregister(c->fd);
    /* Before SSL_free: it frees the wait ctx, whose cleanup closes these fds. */
    while (c->nasync > 0)
        async_fd_del(c, c->async_fd[0]);
    if (c->retry)
        retry_forget(c);
    if (c->paused) {
        st.freed_paused++;
        if (c->job != NULL) {
            st.abandoned_jobs++;
            graveyard_add(c->job);
        }
    }
    SSL_free(c->ssl); /* SSL_set_fd's BIO does not own the socket */
    if (c->fd >= 0)
        close(c->fd);
    memset(c, 0, sizeof(*c));
    c->gen = gen + 1; /* queued ids and callbacks of this connection now miss */
    c->fd = -1;
    S.free_slots[S.nfree++] = slot;
    S.live--;
    st.closed++;
    if (O.connections > 0 && st.closed >= O.connections)
        S.stop = 1;
    if (!S.accepting && S.accept_resume_ns == 0 && !S.stop)
        set_accepting(1);
}

/*
 * Drops a connection whose client is gone: at once, unless its job is
 * paused and either --vanish finish asks for it or the job is unknown.
 */
static void conn_drop(struct conn *c)
{
    if (!c->paused || (O.vanish == VANISH_FREE && c->job != NULL)) {
        conn_end(c);
        return;
    }
    /*
     * Let the paused job end: it resumes on its wake-up as usual and then
     * fails on the dead socket. The socket is no longer watched.
     */
    if (!c->dying) {
        c->dying = 1;
        st.finished_paused++;
        if (c->registered)
            fd_unregister(c->fd);
        c->registered = 0;
        shutdown(c->fd, SHUT_RDWR);
    }
}

/* The client is gone. */
static void peer_gone(struct conn *c)
{
    st.peer_gone++;
    if (c->state == CS_HANDSHAKE)
        st.vanished_handshake++;
    conn_drop(c);
}

/* ---- driving a connection ---- */

/*
 * Takes one request line out of c->req: 1 (c->want set), 0 when the line
 * is not complete yet, -1 when it is too long or not a number.
 */
static int take_request(struct conn *c)
{
    char *nl = memchr(c->req, '\n', c->reqlen);
    uint64_t n;
    size_t used;

    if (nl == NULL)
        return c->reqlen < sizeof(c->req) - 1 ? 0 : -1;
    *nl = '\0';
    if (nl > c->req && nl[-1] == '\r')
        nl[-1] = '\0';
    if (!tls_ref_parse_u64(c->req, 0, TLS_REF_MAX_REPLY, &n))
        return -1;
    used = (size_t)(nl - c->req) + 1;
    memmove(c->req, c->req + used, c->reqlen - used);
    c->reqlen -= used;
    c->want = n;
    c->sent = 0;
    return 1;
}

static void on_async_wait(struct conn *c)
{
    int status = ASYNC_STATUS_UNSUPPORTED;

    c->paused = 1;
    st.async_pauses++;
    /*
     * The socket's interest stays as it was (usually EPOLLIN|EPOLLRDHUP,
     * quiet while the client waits for us): on_sock narrows it only if it
     * fires meanwhile. Two epoll_ctl calls per pause saved.
     */
    if (O.mode == MODE_FD) {
        async_fds_changed(c);
    } else {
        if (!SSL_get_async_status(c->ssl, &status))
            status = ASYNC_STATUS_UNSUPPORTED;
        switch (status) {
        case ASYNC_STATUS_OK:
            break; /* the callback will name this connection */
        case ASYNC_STATUS_EAGAIN:
            st.status_eagain++;
            retry_add(c); /* the provider's queue was full: try again */
            break;
        case ASYNC_STATUS_ERR:
            st.status_other++;
            retry_add(c); /* resume it to collect the error */
            break;
        default:
            st.status_other++;
            async_fds_all(c);
            break;
        }
    }
    if (c->nasync == 0 && !c->retry && (O.mode == MODE_FD || status != ASYNC_STATUS_OK))
        retry_add(c); /* nothing will wake it: poll */
}

/* A socket the client closed or reset: EOF without close_notify, ECONNRESET, EPIPE. */
static int peer_closed(int err, int sys_errno)
{
    unsigned long e = ERR_peek_error();

    if (err == SSL_ERROR_SYSCALL)
        return e == 0 &&
               (sys_errno == 0 || sys_errno == ECONNRESET || sys_errno == EPIPE);
    return err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
           ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* Runs the connection until it must wait; may end it. */
static void drive(struct conn *c)
{
    for (;;) {
        int r = 0, err, sys_errno;
        enum cstate was = c->state;

        if (c->paused)
            st.async_resumes++;
        else
            c->job = NULL; /* a new call: a new job, if any */
        c->paused = 0;
        c->last_ns = tls_ref_now_ns();
        ERR_clear_error();
        errno = 0;
        switch (c->state) {
        case CS_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                st.handshakes++;
                c->state = CS_READ;
                continue;
            }
            break;
        case CS_READ: {
            int t = take_request(c);

            if (t < 0) {
                st.bad_requests++;
                conn_end(c);
                return;
            }
            if (t > 0) {
                if (c->want == 0)
                    st.requests++; /* an empty reply: done already */
                else
                    c->state = CS_WRITE;
                continue;
            }
            r = SSL_read(c->ssl, c->req + c->reqlen,
                         (int)(sizeof(c->req) - 1 - c->reqlen));
            if (r > 0) {
                c->reqlen += (size_t)r;
                continue;
            }
            break;
        }
        case CS_WRITE:
            if (c->wlen == 0) {
                uint64_t left = c->want - c->sent;

                c->wlen = left > TLS_REF_CHUNK ? TLS_REF_CHUNK : (int)left;
            }
            r = SSL_write(c->ssl, pattern + c->sent % TLS_REF_PERIOD, c->wlen);
            if (r > 0) {
                c->sent += (uint64_t)r;
                st.bytes_out += (uint64_t)r;
                c->wlen = 0;
                if (c->sent == c->want) {
                    st.requests++;
                    c->want = c->sent = 0;
                    c->state = CS_READ;
                }
                continue;
            }
            break;
        case CS_SHUTDOWN:
            r = SSL_shutdown(c->ssl);
            if (r >= 0) {
                st.closed_clean++;
                conn_end(c);
                return;
            }
            break;
        }
        sys_errno = errno;
        err = SSL_get_error(c->ssl, r);
        if (c->dying && err != SSL_ERROR_WANT_ASYNC) {
            conn_end(c); /* the job of a vanished client ended */
            return;
        }
        switch (err) {
        case SSL_ERROR_WANT_READ:
            sock_interest(c, EPOLLIN | EPOLLRDHUP);
            return;
        case SSL_ERROR_WANT_WRITE:
            sock_interest(c, EPOLLOUT | EPOLLRDHUP);
            return;
        case SSL_ERROR_WANT_ASYNC:
            on_async_wait(c);
            return;
        case SSL_ERROR_WANT_ASYNC_JOB:
            st.no_jobs++;
            retry_add(c);
            return;
        case SSL_ERROR_ZERO_RETURN:
            if (was == CS_READ && c->reqlen == 0) {
                c->state = CS_SHUTDOWN; /* answer the client's close_notify */
                continue;
            }
            st.closed_clean++;
            conn_end(c);
            return;
        default:
            if (peer_closed(err, sys_errno)) {
                if ((was == CS_READ && c->reqlen == 0) || was == CS_SHUTDOWN) {
                    st.closed_clean++; /* between requests, without close_notify */
                } else {
                    st.peer_gone++;
                    if (was == CS_HANDSHAKE)
                        st.vanished_handshake++;
                }
            } else {
                st.ssl_errors++;
                if (was == CS_HANDSHAKE)
                    st.handshake_errors++;
                if (st.ssl_errors <= 5) {
                    unsigned long e = ERR_peek_error();
                    char buf[256];

                    ERR_error_string_n(e, buf, sizeof(buf));
                    logmsg("connection %u: %s: SSL error %d, errno %d, %s",
                           (unsigned)(c - S.conns), cstate_names[was], err, sys_errno,
                           e ? buf : "no OpenSSL error");
                }
            }
            conn_end(c);
            return;
        }
    }
}

/* ---- events ---- */

static void on_accept(void)
{
    while (S.accepting) {
        struct conn *c;
        uint32_t slot;
        int fd, one = 1;

        if (S.live >= O.max_conns) {
            set_accepting(0);
            return;
        }
        fd = accept4(S.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            st.accept_errors++;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Out of fds: stop accepting for a moment (the listener stays readable).
                 */
                set_accepting(0);
                S.accept_resume_ns = tls_ref_now_ns() + 100000000ull;
            }
            logmsg("accept: %s", strerror(errno));
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        slot = S.free_slots[--S.nfree];
        c = &S.conns[slot];
        c->used = 1;
        c->fd = fd;
        c->state = CS_HANDSHAKE;
        c->last_ns = tls_ref_now_ns();
        c->ssl = SSL_new(S.ctx);
        if (c->ssl == NULL || !SSL_set_fd(c->ssl, fd) ||
            !fd_register(fd, FD_SOCK, slot, EPOLLIN | EPOLLRDHUP)) {
            logmsg("cannot set up connection: %s", strerror(errno));
            ERR_print_errors_fp(stderr);
            S.live++;
            st.accept_errors++;
            conn_end(c);
            continue;
        }
        c->registered = 1;
        c->events = EPOLLIN | EPOLLRDHUP;
        SSL_set_accept_state(c->ssl);
        SSL_set_app_data(c->ssl, c);
        if (O.mode == MODE_CALLBACK &&
            !SSL_set_async_callback_arg(c->ssl, (void *)(uintptr_t)conn_id(c)))
            logmsg("SSL_set_async_callback_arg failed");
        S.live++;
        st.accepted++;
        if (S.live > st.max_live)
            st.max_live = S.live;
    }
}

static void on_sock(struct conn *c, uint32_t events)
{
    uint64_t id = conn_id(c);

    if (events & (EPOLLERR | EPOLLHUP)) {
        peer_gone(c);
        return;
    }
    if (c->paused || c->retry) {
        /* Its call resumes on the async wake-up (or from the retry list), not here. */
        if ((events & EPOLLRDHUP) && !c->peer_eof) {
            if (c->state == CS_HANDSHAKE) {
                peer_gone(c); /* a half-closed client cannot finish a handshake */
                return;
            }
            c->peer_eof = 1; /* the call in flight ends first; the next read sees EOF */
        }
        /* Level-triggered: until it resumes, only a vanishing client may wake us. */
        sock_interest(c, c->peer_eof ? 0 : EPOLLRDHUP);
        return;
    }
    drive(c);
    /* A client that sent its ClientHello and left: drop it now, mid-pause. */
    if ((events & EPOLLRDHUP) && conn_of(id) == c && c->paused &&
        c->state == CS_HANDSHAKE)
        peer_gone(c);
}

static void on_async_fd(struct conn *c)
{
    st.async_fd_wakes++;
    if (!c->paused || c->retry) {
        st.async_fd_spurious++;
        return;
    }
    drive(c);
}

static void on_wake(void)
{
    uint64_t v, *ids;
    size_t n, cap, i;

    st.callback_wakes++;
    while (read(S.wakefd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&Q.lock);
    ids = Q.ids;
    n = Q.n;
    cap = Q.cap;
    Q.ids = Q.spare;
    Q.cap = Q.spare_cap;
    Q.spare = ids;
    Q.spare_cap = cap;
    Q.n = 0;
    pthread_mutex_unlock(&Q.lock);
    for (i = 0; i < n; i++) {
        struct conn *c = conn_of(ids[i]);

        if (c == NULL || !c->paused || c->retry) {
            st.callback_stale++;
            continue;
        }
        drive(c);
    }
}

static void run_retries(void)
{
    size_t n = S.nretry, i;
    uint64_t *ids = S.retry;

    S.retry = S.retry_run;
    S.retry_run = ids;
    S.nretry = 0;
    for (i = 0; i < n; i++) {
        struct conn *c = conn_of(ids[i]);

        if (c == NULL)
            continue;
        c->retry = 0;
        st.retries++;
        drive(c);
    }
}

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
    static const char *const fams[] = {
        "", OFFLOAD_FAMILY_SIGNATURE "-", OFFLOAD_FAMILY_KEYEXCH "-",
        OFFLOAD_FAMILY_CIPHER "-", OFFLOAD_FAMILY_KEYGEN "-"};
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
    Q.cap = Q.spare_cap = O.max_conns;
    Q.ids = calloc(Q.cap, sizeof(*Q.ids));
    Q.spare = calloc(Q.spare_cap, sizeof(*Q.spare));
    if (!S.conns || !S.free_slots || !S.retry || !S.retry_run || !Q.ids || !Q.spare)
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
    free(Q.ids);
    free(Q.spare);
    free(S.fdtab);
    /* S.graveyard stays: it keeps the abandoned jobs reachable until exit. */
    return 0;
}

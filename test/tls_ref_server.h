/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the pieces of tls_ref_server share (internal; test/tls_ref.h is
 * what the server shares with the client): the options, the counters,
 * a connection, the server's state, and the functions each file offers.
 *
 *   tls_ref_server.c  options, setup, the fd table and the epoll loop, stats
 *   tls_ref_conn.c    one connection: accept, the TLS state machine, its end
 *   tls_ref_async.c   a paused connection (SSL_ERROR_WANT_ASYNC): the async
 *                     fds (--mode fd), the async callback and its eventfd
 *                     (--mode callback), the retry list, abandoned jobs
 *
 * One thread runs all of it; the only exception is async_callback(),
 * which runs on a provider's worker thread (see tls_ref_async.c).
 */
#ifndef TLS_REF_SERVER_H
#define TLS_REF_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <openssl/async.h>
#include <openssl/ssl.h>

#include "tls_ref.h"

#define MAX_ASYNC_FDS 4

enum mode { MODE_SYNC, MODE_FD, MODE_CALLBACK };
enum vanish { VANISH_FREE, VANISH_FINISH };

/* ---- options (set by parse_args in tls_ref_server.c) ---- */

struct options {
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
};
extern struct options O;

/* ---- counters (printed by --stats as "server-<name> <value>") ---- */

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
struct server_stats {
    SERVER_STATS(STAT_FIELD)
};
extern struct server_stats st;
extern _Atomic uint64_t st_callbacks; /* the only counter a worker thread touches */

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

struct server {
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
};
extern struct server S;

/* TLS_REF_CHUNK + TLS_REF_PERIOD bytes of the reply pattern (tls_ref_conn.c). */
extern unsigned char pattern[TLS_REF_CHUNK + TLS_REF_PERIOD];

/* ---- tls_ref_server.c: logging and the fd table ---- */

void logmsg(const char *fmt, ...);
int fd_register(int fd, enum fdkind kind, uint32_t slot, uint32_t events);
void fd_modify(int fd, uint32_t events);
void fd_unregister(int fd);

/* ---- tls_ref_conn.c: connections ---- */

uint64_t conn_id(const struct conn *c);
struct conn *conn_of(uint64_t id);
void set_accepting(int on);
void conn_end(struct conn *c);
void conn_drop(struct conn *c);
void drive(struct conn *c);
void on_accept(void);
void on_sock(struct conn *c, uint32_t events);

/* ---- tls_ref_async.c: paused connections ---- */

void on_async_wait(struct conn *c);
void on_async_fd(struct conn *c);
void async_fd_del(struct conn *c, int fd);
void retry_add(struct conn *c);
void retry_forget(struct conn *c);
void run_retries(void);
int callback_queue_init(size_t cap);
void callback_queue_free(void);
int async_callback(SSL *s, void *arg);
void on_wake(void);
void info_callback(const SSL *s, int where, int ret);
void graveyard_add(ASYNC_JOB *job);

#endif

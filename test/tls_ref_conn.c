/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_ref_server: one connection, from accept() to its end.
 *
 * on_accept() makes the SSL (non-blocking socket, SSL_set_fd) in a free
 * slot of S.conns. drive() is its state machine: handshake, then request
 * lines read and replies written (the protocol of test/tls_ref.h), then
 * SSL_shutdown; it runs each SSL_* call until the call must wait, and
 * then waits for the socket (WANT_READ/WANT_WRITE: the socket's epoll
 * interest) or for the async job (WANT_ASYNC: on_async_wait() in
 * tls_ref_async.c, which later calls drive() again to resume it).
 * on_sock() handles socket events, including clients that vanish;
 * conn_end() frees everything a connection holds.
 *
 * A connection is named by an id (slot and generation, conn_id()): the
 * retry list and the callbacks' queue hold ids, so that a slot freed and
 * reused meanwhile is not mistaken for the connection they meant.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_ref_server.h"

unsigned char pattern[TLS_REF_CHUNK + TLS_REF_PERIOD];

static const char *const cstate_names[] = {"handshake", "read", "write", "shutdown"};

/* Ids travel through the callback's void * argument. */
_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t),
               "connection ids need 64-bit pointers");

/* slot | generation << 32: SSL_set_async_callback_arg, the retry list, the queue. */
uint64_t conn_id(const struct conn *c)
{
    return (uint64_t)c->gen << 32 | (uint32_t)(c - S.conns);
}

/* The live connection an id names, else NULL. */
struct conn *conn_of(uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    struct conn *c;

    if (slot >= O.max_conns)
        return NULL;
    c = &S.conns[slot];
    return c->used && c->gen == (uint32_t)(id >> 32) ? c : NULL;
}

/* ---- epoll interest ---- */

/* Which socket events wake the connection. */
static void sock_interest(struct conn *c, uint32_t events)
{
    if (c->registered && c->events != events) {
        fd_modify(c->fd, events);
        c->events = events;
    }
}

/* Whether the listener is watched: off at --max-conns or out of fds. */
void set_accepting(int on)
{
    if (S.accepting == on)
        return;
    S.accepting = on;
    fd_modify(S.lfd, on ? EPOLLIN : 0);
    if (!on)
        st.accept_pauses++;
}

/* ---- ending a connection ---- */

/* Ends a connection, paused or not, and frees its slot. */
void conn_end(struct conn *c)
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
void conn_drop(struct conn *c)
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

/*
 * A socket the client closed or reset: EOF without close_notify, ECONNRESET,
 * EPIPE (3.5 also queues the last two as system-library errors, e.g. on a
 * write of a large server flight to a client that has gone).
 */
static int peer_closed(int err, int sys_errno)
{
    unsigned long e = ERR_peek_error();
    int gone_sys = ERR_GET_LIB(e) == ERR_LIB_SYS &&
                   (ERR_GET_REASON(e) == ECONNRESET || ERR_GET_REASON(e) == EPIPE);

    if (err == SSL_ERROR_SYSCALL)
        return (e == 0 &&
                (sys_errno == 0 || sys_errno == ECONNRESET || sys_errno == EPIPE)) ||
               gone_sys;
    return err == SSL_ERROR_SSL &&
           ((ERR_GET_LIB(e) == ERR_LIB_SSL &&
             ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
            gone_sys);
}

/* Runs the connection until it must wait; may end it. */
void drive(struct conn *c)
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

/* The listener is readable: accepts until EAGAIN or --max-conns. */
void on_accept(void)
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

/* The connection's socket has events. */
void on_sock(struct conn *c, uint32_t events)
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

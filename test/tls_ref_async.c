/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_ref_server: a paused connection, from SSL_ERROR_WANT_ASYNC until
 * its call is made again (drive() in tls_ref_conn.c).
 *
 * on_async_wait() runs right after the pause and arranges the wake-up:
 *
 *   --mode fd        SSL_get_changed_async_fds() says which wait fds of the
 *                    connection's ASYNC_WAIT_CTX to add to and remove from
 *                    epoll; the loop resumes the connection when one turns
 *                    readable (on_async_fd);
 *   --mode callback  SSL_CTX_set_async_callback(): async_callback() runs on
 *                    a provider's worker thread, queues the connection's id
 *                    and writes to the eventfd S.wakefd; the loop reads the
 *                    queue (on_wake). SSL_get_async_status() after the pause
 *                    says whether a callback will come at all.
 *
 * Connections that nothing will wake go on the retry list, which the loop
 * runs after each batch of events (run_retries). The info callback notes
 * the job of the current call, so that a job SSL_free leaves paused stays
 * reachable in the graveyard.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/async.h>
#include <openssl/ssl.h>

#include "tls_ref_server.h"

_Atomic uint64_t st_callbacks;

/* The callbacks' queue: the one structure shared with worker threads. */
static struct {
    pthread_mutex_t lock;
    uint64_t *ids; /* filled by the callbacks */
    size_t n, cap;
    uint64_t *spare; /* the loop's, between swaps */
    size_t spare_cap;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

void async_fd_del(struct conn *c, int fd)
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

/* ---- the retry list: connections nothing else will wake ---- */

void retry_add(struct conn *c)
{
    if (c->retry)
        return;
    c->retry = 1;
    S.retry[S.nretry++] = conn_id(c); /* at most one entry per slot: never overflows */
}

void retry_forget(struct conn *c)
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

/* Makes each listed call again; the loop runs this after each batch of events. */
void run_retries(void)
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

/* ---- after a pause ---- */

/* The call just returned SSL_ERROR_WANT_ASYNC: arrange its wake-up. */
void on_async_wait(struct conn *c)
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

/* --mode fd (and callback mode without callbacks): an async fd turned readable. */
void on_async_fd(struct conn *c)
{
    st.async_fd_wakes++;
    if (!c->paused || c->retry) {
        st.async_fd_spurious++;
        return;
    }
    drive(c);
}

/* ---- callback mode ---- */

/* Both halves of the queue, each of cap ids (cap: --max-conns). */
int callback_queue_init(size_t cap)
{
    Q.cap = Q.spare_cap = cap;
    Q.ids = calloc(Q.cap, sizeof(*Q.ids));
    Q.spare = calloc(Q.spare_cap, sizeof(*Q.spare));
    return Q.ids != NULL && Q.spare != NULL;
}

void callback_queue_free(void)
{
    free(Q.ids);
    free(Q.spare);
}

/*
 * The async callback: runs on a worker thread of the provider when a
 * paused job may go on. It names the connection by the id set with
 * SSL_set_async_callback_arg (on_accept) and wakes the loop.
 */
int async_callback(SSL *s, void *arg)
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

/* The loop: S.wakefd is readable; resumes every connection the callbacks named. */
void on_wake(void)
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

/* ---- paused jobs ---- */

/* Runs inside the job: notes which job a pause will leave behind. */
void info_callback(const SSL *s, int where, int ret)
{
    struct conn *c = SSL_get_app_data(s);

    (void)where;
    (void)ret;
    if (c != NULL)
        c->job = ASYNC_get_current_job();
}

/* conn_end: SSL_free of a paused connection leaves its job behind. */
void graveyard_add(ASYNC_JOB *job)
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

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A unix-socket relay that adds a round trip: scripts/bench_p11_remote.sh
 * puts it between p11-kit-client.so and `p11-kit server` (tc netem needs
 * privileges the benchmark does not have).
 *
 *   p11_relay LISTEN_PATH UPSTREAM_PATH [DELAY_MS]
 *
 * Listens on LISTEN_PATH; for every client connection it connects to
 * UPSTREAM_PATH and forwards bytes both ways, holding every chunk read
 * for DELAY_MS (default 1; fractions allowed) in its direction before
 * writing it on: a request and its reply each wait DELAY_MS, so a call
 * takes 2 * DELAY_MS more. Chunks are timestamped when read and queued
 * per direction, so order is kept and chunks read one after another
 * (pipelined requests) wait side by side, not one after the other; other
 * connections are not held up either. One thread, ppoll() with a
 * nanosecond timeout, non-blocking sockets.
 *
 * SIGTERM or SIGINT: prints what went through (connections, chunks and
 * bytes per direction, the most chunks held at once in one direction of
 * one connection: pipelining shows there) on stderr and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define CHUNK_MAX 65536

struct chunk {
    struct chunk *next;
    uint64_t due_ns;
    size_t len, off;
    unsigned char data[];
};

/* One direction of a connection: read from |in|, written to |out| later. */
struct dir {
    int in, out;
    struct chunk *head, *tail;
    size_t queued;
    int eof;  /* |in| gave EOF or failed: nothing more to read */
    int shut; /* |out| was shut down for writing after the queue drained */
    uint64_t chunks, bytes;
};

struct conn {
    int used;
    int cfd, sfd;
    struct dir d[2]; /* 0: client to server, 1: server to client */
};

static volatile sig_atomic_t stop;
static struct conn conns[MAX_CONNS];
static uint64_t delay_ns;
static struct {
    uint64_t conns, max_open, chunks[2], bytes[2], max_held[2];
} st;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int unix_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        fprintf(stderr, "p11_relay: path too long: %s\n", path);
        return -1;
    }
    strcpy(sa->sun_path, path);
    return 0;
}

static void conn_close(struct conn *c)
{
    int k;

    for (k = 0; k < 2; k++) {
        struct chunk *ch = c->d[k].head;

        while (ch != NULL) {
            struct chunk *next = ch->next;

            free(ch);
            ch = next;
        }
    }
    close(c->cfd);
    close(c->sfd);
    memset(c, 0, sizeof(*c));
}

static void accept_one(int lfd, const struct sockaddr_un *up)
{
    int cfd = accept(lfd, NULL, NULL), sfd;
    size_t i, open = 0;

    if (cfd < 0)
        return;
    sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (sfd < 0 || connect(sfd, (const struct sockaddr *)up, sizeof(*up)) < 0) {
        perror("p11_relay: connect upstream");
        close(cfd);
        if (sfd >= 0)
            close(sfd);
        return;
    }
    for (i = 0; i < MAX_CONNS && conns[i].used; i++)
        ;
    if (i == MAX_CONNS || set_nonblock(cfd) < 0 || set_nonblock(sfd) < 0) {
        fprintf(stderr, "p11_relay: connection refused (%s)\n",
                i == MAX_CONNS ? "too many" : strerror(errno));
        close(cfd);
        close(sfd);
        return;
    }
    conns[i] = (struct conn){.used = 1, .cfd = cfd, .sfd = sfd};
    conns[i].d[0].in = cfd;
    conns[i].d[0].out = sfd;
    conns[i].d[1].in = sfd;
    conns[i].d[1].out = cfd;
    st.conns++;
    for (i = 0; i < MAX_CONNS; i++)
        open += conns[i].used != 0;
    if (open > st.max_open)
        st.max_open = open;
}

/* Reads what |d->in| has into a new chunk due delay_ns from now; -1 on EOF/error. */
static int read_in(struct dir *d, int k)
{
    struct chunk *ch = malloc(sizeof(*ch) + CHUNK_MAX);
    ssize_t r;

    if (ch == NULL)
        return -1;
    r = read(d->in, ch->data, CHUNK_MAX);
    if (r <= 0) {
        free(ch);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        return -1;
    }
    ch->next = NULL;
    ch->len = (size_t)r;
    ch->off = 0;
    ch->due_ns = now_ns() + delay_ns;
    if (d->tail != NULL)
        d->tail->next = ch;
    else
        d->head = ch;
    d->tail = ch;
    d->queued++;
    d->chunks++;
    d->bytes += (size_t)r;
    st.chunks[k]++;
    st.bytes[k] += (size_t)r;
    if (d->queued > st.max_held[k])
        st.max_held[k] = d->queued;
    return 0;
}

/* Writes the chunks that are due; -1 when the peer is gone. */
static int write_due(struct dir *d, uint64_t now)
{
    while (d->head != NULL && d->head->due_ns <= now) {
        struct chunk *ch = d->head;
        ssize_t w = write(d->out, ch->data + ch->off, ch->len - ch->off);

        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -1;
        }
        ch->off += (size_t)w;
        if (ch->off < ch->len)
            return 0;
        d->head = ch->next;
        if (d->head == NULL)
            d->tail = NULL;
        d->queued--;
        free(ch);
    }
    if (d->eof && d->head == NULL && !d->shut) {
        shutdown(d->out, SHUT_WR);
        d->shut = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_un la, ua;
    struct pollfd pfd[1 + 2 * MAX_CONNS];
    struct conn *who[1 + 2 * MAX_CONNS];
    struct sigaction sa;
    sigset_t block, orig;
    int lfd, i;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: p11_relay LISTEN_PATH UPSTREAM_PATH [DELAY_MS]\n");
        return 2;
    }
    delay_ns = (uint64_t)((argc == 4 ? strtod(argv[3], NULL) : 1.0) * 1e6);
    if (unix_addr(&la, argv[1]) < 0 || unix_addr(&ua, argv[2]) < 0)
        return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Signals are taken only inside ppoll(): no wake-up is lost. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);

    unlink(argv[1]);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 ||
        listen(lfd, 64) < 0) {
        perror("p11_relay: listen");
        return 1;
    }
    while (!stop) {
        uint64_t now = now_ns(), next = UINT64_MAX;
        struct timespec ts, *tsp = NULL;
        nfds_t n = 1;

        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            int k;

            if (!c->used)
                continue;
            for (k = 0; k < 2; k++) {
                struct dir *d = &c->d[k];
                short ev = 0;

                if (d->head != NULL) {
                    if (d->head->due_ns <= now)
                        ev |= POLLOUT; /* due, but the last write was short */
                    else if (d->head->due_ns < next)
                        next = d->head->due_ns;
                }
                if (!d->eof)
                    ev |= POLLIN;
                /* POLLIN is asked of |in|, POLLOUT of |out|: two entries. */
                if (ev & POLLIN) {
                    pfd[n] = (struct pollfd){.fd = d->in, .events = POLLIN};
                    who[n++] = c;
                }
                if (ev & POLLOUT) {
                    pfd[n] = (struct pollfd){.fd = d->out, .events = POLLOUT};
                    who[n++] = c;
                }
            }
        }
        if (next != UINT64_MAX) {
            uint64_t left = next > now ? next - now : 0;

            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tsp = &ts;
        }
        if (ppoll(pfd, n, tsp, &orig) < 0 && errno != EINTR) {
            perror("p11_relay: ppoll");
            return 1;
        }
        if (stop)
            break;
        if (pfd[0].revents & POLLIN)
            accept_one(lfd, &ua);
        for (nfds_t j = 1; j < n; j++) {
            struct conn *c = who[j];
            int k;

            if (!(pfd[j].revents & (POLLIN | POLLHUP | POLLERR)) || !c->used)
                continue;
            for (k = 0; k < 2; k++)
                if (c->d[k].in == pfd[j].fd && (pfd[j].events & POLLIN) && !c->d[k].eof &&
                    read_in(&c->d[k], k) < 0)
                    c->d[k].eof = 1;
        }
        now = now_ns();
        for (i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];
            int k, gone = 0;

            if (!c->used)
                continue;
            for (k = 0; k < 2; k++)
                if (write_due(&c->d[k], now) < 0)
                    gone = 1;
            if (gone || (c->d[0].shut && c->d[1].shut))
                conn_close(c);
        }
    }
    fprintf(stderr,
            "p11_relay: %.3f ms each way; %llu connections (at most %llu open); "
            "to server %llu chunks %llu bytes, to client %llu chunks %llu bytes; "
            "most chunks held at once on one connection: %llu to server, %llu to "
            "client\n",
            (double)delay_ns / 1e6, (unsigned long long)st.conns,
            (unsigned long long)st.max_open, (unsigned long long)st.chunks[0],
            (unsigned long long)st.bytes[0], (unsigned long long)st.chunks[1],
            (unsigned long long)st.bytes[1], (unsigned long long)st.max_held[0],
            (unsigned long long)st.max_held[1]);
    for (i = 0; i < MAX_CONNS; i++)
        if (conns[i].used)
            conn_close(&conns[i]);
    close(lfd);
    unlink(argv[1]);
    return 0;
}

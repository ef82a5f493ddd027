/* SPDX-License-Identifier: MIT */
/* linger.c -- the lingering close of a stream socket (see linger.h). */
#include "linger.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netops.h"
#include "pool.h"

struct linger_job {
    struct pool_job base;
    int fd;
    int shut;                   /* FIN (and close_notify) sent */
    long long deadline;         /* net_now_ms() clock */
    gnutls_session_t tls;
    struct tls_io *io;
    struct tls_creds *creds;
};

/* close_notify, then FIN; 0 when both are out, else the bye is pending
   (the kernel had no room). */
static int send_ends(struct linger_job *g, int timeout_ms)
{
    if (g->shut)
        return 0;
    if (g->tls && tls_bye(g->tls, g->io, timeout_ms) == GNUTLS_E_AGAIN)
        return -EAGAIN;
    shutdown(g->fd, SHUT_WR);
    g->shut = 1;
    return 0;
}

/* Read and discard what has arrived.  Returns -EAGAIN when the peer may
   send more, 0 at its end of stream or on an error (nothing more will
   come that could turn into a reset). */
static int drain(int fd)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        return 0;
    }
}

static int time_left(const struct linger_job *g)
{
    long long left = g->deadline - net_now_ms();
    return left > 0 ? (int)left : 0;
}

static void linger_work(struct pool_job *job)
{
    struct linger_job *g = (struct linger_job *)job;
    if (send_ends(g, time_left(g)) < 0)
        return;                 /* the peer reads nothing: give up */
    while (drain(g->fd) == -EAGAIN) {
        int left = time_left(g);
        if (left == 0 || net_wait(g->fd, POLLIN, left) < 0)
            return;
    }
}

static void linger_destroy(struct pool_job *job)
{
    struct linger_job *g = (struct linger_job *)job;
    if (g->tls)
        gnutls_deinit(g->tls);
    if (g->io) {
        free(g->io->pre);
        free(g->io);
    }
    if (g->creds)
        tls_creds_put(g->creds);
    close(g->fd);
    free(g);
}

static const struct pool_job_ops linger_ops = {
    linger_work, NULL, linger_destroy
};

void linger_close(int fd, gnutls_session_t tls, struct tls_io *io,
                  struct tls_creds *creds, int shut)
{
    struct linger_job *g = calloc(1, sizeof *g);
    if (!g) {
        /* No memory for a job: do what needs no waiting. */
        struct linger_job now = { .fd = fd, .shut = shut, .tls = tls,
                                  .io = io };
        if (send_ends(&now, 0) == 0)
            drain(fd);
        if (tls)
            gnutls_deinit(tls);
        if (io) {
            free(io->pre);
            free(io);
        }
        if (creds)
            tls_creds_put(creds);
        close(fd);
        return;
    }
    pool_job_init(&g->base, &linger_ops, POOL_WAIT, NULL);
    g->fd = fd;
    g->shut = shut;
    g->tls = tls;
    g->io = io;
    g->creds = creds;
    g->deadline = net_now_ms() + LINGER_MS;
    /* Most closes finish here: the peer had closed already, or what it
       sent is in our buffer and its FIN follows ours. */
    if (send_ends(g, 0) == 0 && drain(fd) == 0) {
        linger_destroy(&g->base);
        return;
    }
    pool_submit(&g->base);
    pool_job_unref(&g->base);   /* the pool's reference keeps it */
}

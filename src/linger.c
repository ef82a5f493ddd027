/* SPDX-License-Identifier: MIT */
/* linger.c -- the lingering close of a stream socket (see linger.h). */
#include "linger.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "park.h"

struct linger_job {
    struct pool_job base;
    int fd;
    struct park_reg reg;        /* taken over from the descriptor's owner */
    int shut;                   /* FIN (and close_notify) sent */
    gnutls_session_t tls;
    struct tls_io *io;
    struct tls_creds *creds;
};

/* close_notify, then FIN; 0 when both are out, -EAGAIN while the kernel
   has no room for close_notify (GnuTLS holds it for the next call). */
static int send_ends(struct linger_job *g)
{
    if (g->shut)
        return 0;
    if (g->tls && tls_bye(g->tls, g->io, 0) == GNUTLS_E_AGAIN)
        return -EAGAIN;
    shutdown(g->fd, SHUT_WR);
    g->shut = 1;
    return 0;
}

/* Read and discard what has arrived.  -EAGAIN when the peer may send
   more (or after a bounded number of reads, so that a peer that never
   stops cannot hold a poller), 0 at its end of stream or on an error:
   nothing more will come that could turn into a reset. */
static int drain(int fd)
{
    char buf[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        return 0;
    }
    return -EAGAIN;
}

/* On a poller, whenever the descriptor is ready; also once at the start,
   on the thread that closed. */
static int linger_step(struct pool_job *job)
{
    struct linger_job *g = (struct linger_job *)job;
    if (send_ends(g) < 0) {
        job->events = POLLOUT;
        return POOL_AGAIN;
    }
    if (drain(g->fd) < 0) {
        job->events = POLLIN;
        return POOL_AGAIN;
    }
    return POOL_DONE;
}

static void release(int fd, struct park_reg *reg, gnutls_session_t tls,
                    struct tls_io *io, struct tls_creds *creds)
{
    if (tls)
        gnutls_deinit(tls);
    if (io) {
        free(io->pre);
        free(io);
    }
    if (creds)
        tls_creds_put(creds);
    park_reg_release(reg);
    close(fd);
}

static void linger_destroy(struct pool_job *job)
{
    struct linger_job *g = (struct linger_job *)job;
    release(g->fd, &g->reg, g->tls, g->io, g->creds);
    free(g);
}

/* The deadline passed (or the pool is shutting down): close as it is. */
static const struct pool_job_ops linger_ops = {
    .step = linger_step,
    .destroy = linger_destroy,
};

void linger_close(int fd, struct park_reg *reg, gnutls_session_t tls,
                  struct tls_io *io, struct tls_creds *creds, int shut)
{
    struct linger_job *g = calloc(1, sizeof *g);
    if (!g) {
        /* No memory for a job: do what needs no waiting. */
        struct linger_job now = { .fd = fd, .shut = shut, .tls = tls,
                                  .io = io };
        if (send_ends(&now) == 0)
            drain(fd);
        release(fd, reg, tls, io, creds);
        return;
    }
    pool_job_init(&g->base, &linger_ops, POOL_WAIT, NULL);
    g->fd = fd;
    g->reg = *reg;
    g->shut = shut;
    g->tls = tls;
    g->io = io;
    g->creds = creds;
    /* Most closes end here: the peer had closed already, or what it
       sent is in our buffer and its FIN follows ours. */
    if (linger_step(&g->base) == POOL_DONE) {
        linger_destroy(&g->base);
        return;
    }
    pool_job_wait_fd(&g->base, &g->reg, fd, g->base.events);
    pool_job_set_deadline(&g->base, pool_now_ms() + LINGER_MS);
    pool_submit(&g->base);
    pool_job_unref(&g->base);   /* the pool's reference keeps it */
}

/* SPDX-License-Identifier: MIT */
/*
 * lsend.c -- sending on a socket: send.
 *
 * Ordering invariants (see also lsocket.c): at most one send job (wjob)
 * per socket, and no fast-path send while one is in flight; a send first
 * writes what the kernel takes at once, the rest goes to a job, parked
 * until there is room, which writes it all before the next send starts.
 */
#include "lplu.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------- */

struct send_job {
    struct pool_job base;
    struct plu_fd *fd;
    int rc;
    int tlserr;                /* a GnuTLS error (rc is then -EPROTO) */
    int held;                  /* TLS: what GnuTLS holds (enum tls_held) */
    int udp;                   /* one datagram, to 'to' if has_to */
    int has_to;
    struct netaddr to;
    unsigned seq;              /* tells one caller's job from the next */
    long long call_deadline;   /* the call's limit ("t"), 0: none */
    long long block_ms;        /* each wait's ("b"), -1: none */
    size_t before;             /* bytes the call's fast path sent */
    size_t len, sent;
    char data[];               /* the job's own copy of what is left */
};

/* Send what the kernel takes now, on either transport: 0 when all of it
   went, -EAGAIN when *sent bytes went and the rest must wait for room,
   or a failure (errno style; a GnuTLS error as -EPROTO and *tlserr). */
static int transmit(struct plu_fd *f, const char *data, size_t len,
                    int *held, size_t *sent, int *tlserr)
{
    if (!f->tls) {
        long n = net_send_now(f->fd, data, len);
        if (n < 0)
            return (int)n;
        *sent = (size_t)n;
        return *sent == len ? 0 : -EAGAIN;
    }
    int rc = tls_send_all(f->tls, f->io, data, len, 0, held, sent);
    if (rc == GNUTLS_E_AGAIN)
        return -EAGAIN;
    if (rc < 0 && f->io->send_errno)
        return -f->io->send_errno;     /* EPIPE, ECONNRESET: as plain TCP */
    if (rc < 0) {
        *tlserr = rc;
        return -EPROTO;
    }
    return 0;
}

/* The deadline of a wait: the call's, or the wait's own if sooner. */
static long long next_deadline(long long call, long long block_ms)
{
    if (block_ms < 0)
        return call;
    long long b = pool_now_ms() + block_ms;
    return call && call < b ? call : b;
}

/* On a poller once there is room (or on the caller's thread, outside
   coroutines).  Under a per-wait limit, progress starts a new wait. */
static int send_step_job(struct pool_job *job)
{
    struct send_job *w = (struct send_job *)job;
    if (w->udp) {
        w->rc = net_sendto(w->fd->fd, w->data, w->len,
                           w->has_to ? (struct sockaddr *)&w->to.ss : NULL,
                           w->to.len, 0);
        return w->rc == -EAGAIN ? POOL_AGAIN : POOL_DONE;
    }
    size_t n = 0;
    w->rc = transmit(w->fd, w->data + w->sent, w->len - w->sent, &w->held, &n,
                     &w->tlserr);
    w->sent += n;
    if (w->rc == -EAGAIN && n > 0 && w->block_ms >= 0)
        job->deadline = next_deadline(w->call_deadline, w->block_ms);
    return w->rc == -EAGAIN ? POOL_AGAIN : POOL_DONE;
}

static void send_abort(struct pool_job *job, int err)
{
    struct send_job *w = (struct send_job *)job;
    w->rc = err;
    plu_fd_unref(w->fd);        /* at once: see recv_abort */
    w->fd = NULL;
}

static void send_destroy(struct pool_job *job)
{
    struct send_job *w = (struct send_job *)job;
    if (w->fd)
        plu_fd_unref(w->fd);
    free(w);
}

static const struct pool_job_ops send_ops = {
    .step = send_step_job,
    .abort = send_abort,
    .destroy = send_destroy,
};

static int send_step(lua_State *L, int status, lua_KContext ctx);

/* A send's failure: nil, message, errno name, and **(ext)** how many
   bytes of the data went before it.  A TLS session that a failed receive
   invalidated (GNUTLS_E_INVALID_SESSION) reports what killed it: a
   reset, say. */
static int fail_send(lua_State *L, struct plu_socket *s, int rc, int tlserr,
                     size_t sent)
{
    if (tlserr == GNUTLS_E_INVALID_SESSION && s->stream_err)
        plu_fail(L, s->stream_err);
    else if (tlserr)
        plu_fail_tls(L, tlserr);
    else
        plu_fail_rc(L, rc);
    lua_pushinteger(L, (lua_Integer)sent);
    return 4;
}

/* Hand what the kernel did not take to a worker; returns its number. */
static unsigned start_send(lua_State *L, struct plu_socket *s, const char *data,
                           size_t len, int held, size_t before)
{
    struct send_job *w = malloc(sizeof *w + len);
    if (!w)
        luaL_error(L, "not enough memory");
    pool_job_init(&w->base, &send_ops, POOL_WAIT, plu_state(L)->loop);
    plu_fd_ref(s->fd);
    w->fd = s->fd;
    pool_job_wait_fd(&w->base, &s->fd->reg, s->fd->fd, POLLOUT);
    w->call_deadline = s->wdeadline;
    w->block_ms = s->block_ms;
    w->before = before;
    pool_job_set_deadline(&w->base, next_deadline(s->wdeadline, s->block_ms));
    w->rc = 0;
    w->tlserr = 0;
    w->held = held;
    w->udp = s->udp;
    w->has_to = s->udp && s->has_peer;
    if (w->has_to)
        w->to = *s->peer;
    w->len = len;
    w->sent = 0;
    w->seq = ++s->wseq ? s->wseq : ++s->wseq;   /* never 0 */
    memcpy(w->data, data, len);
    s->werr = 0;
    s->werr_tls = 0;
    s->wjob = &w->base;
    plu_start(L, &w->base);
    return w->seq;
}

/* Let go of a finished send job, remembering its outcome for its owner
   in case another coroutine got to it first. */
static void release_send(lua_State *L, struct plu_socket *s)
{
    struct send_job *w = (struct send_job *)s->wjob;
    s->werr = w->rc;
    s->werr_tls = w->tlserr;
    s->wsent = w->before + w->sent;
    /* A TLS send that timed out leaves a record inside GnuTLS whose bytes
       were reported as not sent: the next send flushes and discards it. */
    if (w->held != TLS_HELD_NONE)
        s->tls_held = TLS_HELD_OTHER;
    plu_release_job(L, &s->wjob);
}

/* ctx: 0 until this call hands bytes to a worker, then that job's
   sequence number, so that the call can tell its own job from a later
   caller's. */
static int send_step(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    (void)status;
    for (;;) {
        if (s->hjob) {
            if (!pool_job_isdone(s->hjob))
                return plu_await(L, s->hjob, ctx, send_step);
            plu_tls_settle(L, s);
        }
        struct send_job *w = (struct send_job *)s->wjob;
        if (w && !pool_job_isdone(&w->base))
            return plu_await(L, &w->base, ctx, send_step);
        if (ctx != 0) {
            /* Our job is done; someone else may have released it, in
               which case its outcome was kept in werr. */
            if (w && w->seq == (unsigned)ctx)
                release_send(L, s);
            if (!s->fd)
                return plu_fail_word(L, "closed", "EBADF");
            if (s->werr < 0)
                return fail_send(L, s, s->werr, s->werr_tls, s->wsent);
            lua_pushboolean(L, 1);
            return 1;
        }
        if (w)
            release_send(L, s);      /* an earlier caller's, now drained */
        if (!s->fd)
            return plu_fail_word(L, "closed", "EBADF");
        size_t len;
        const char *data = lua_tolstring(L, 2, &len);
        if (s->udp) {
            /* One datagram: it goes whole or not at all. */
            int rc = net_sendto(s->fd->fd, data, len, s->has_peer
                                ? (struct sockaddr *)&s->peer->ss : NULL,
                                s->has_peer ? s->peer->len : 0, 0);
            if (rc == 0) {
                lua_pushboolean(L, 1);
                return 1;
            }
            if (rc != -EAGAIN)
                return fail_send(L, s, rc, 0, 0);
            ctx = start_send(L, s, data, len, TLS_HELD_NONE, 0);
            continue;
        }
        /* Fast path: what the kernel takes without waiting. */
        size_t sent = 0;
        int tlserr = 0, held = s->tls_held;
        int rc = transmit(s->fd, data, len, &held, &sent, &tlserr);
        s->tls_held = TLS_HELD_NONE;    /* a job takes it over */
        if (rc == 0) {
            lua_pushboolean(L, 1);
            return 1;
        }
        if (rc != -EAGAIN)
            return fail_send(L, s, rc, tlserr, sent);
        ctx = start_send(L, s, data + sent, len - sent, held, sent);
    }
}

int plu_sock_send(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    s->wdeadline = plu_deadline(s, pool_now_ms());
    return send_step(L, LUA_OK, 0);
}


/* SPDX-License-Identifier: MIT */
/*
 * lconnect.c -- socket.connect(host, port [, "tcp" | "udp"]).
 *
 * A name is resolved on a worker of the connect lane, then its addresses
 * are tried the way RFC 8305 (Happy Eyeballs) describes: families
 * interleaved in the resolver's order of preference, a new attempt started
 * every HEAD_START_MS while earlier ones are still pending (at once when
 * one fails), the first to connect wins and the others are closed.  So an
 * address family that silently drops packets costs its head start, not a
 * TCP timeout.  The worker waits for the attempts in one poll(): a plain
 * blocking call over the descriptors it owns.
 *
 * While it waits, the job lives in a box on the caller's stack; if the
 * caller is abandoned and collected, the box's __gc cancels the attempts
 * (shuts their descriptors) and the job frees itself when its worker
 * returns.
 */
#include "lplu.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAD_START_MS 250       /* RFC 8305's Connection Attempt Delay */
#define MAX_ATTEMPTS  16

struct connect_job {
    struct pool_job base;
    pthread_mutex_t mu;         /* guards fds[] and cancelled */
    int fds[MAX_ATTEMPTS];      /* attempts in flight; -1 when free */
    int cancelled;
    int type;                   /* SOCK_STREAM or SOCK_DGRAM */
    char *host;                 /* NULL when started on the Lua thread */
    unsigned port;
    int rc;                     /* the connected fd, or -errno */
    int gai;                    /* a getaddrinfo error, when rc fails so */
};

/* ------------------------------------------------------------------------
 * Attempts, published so that a cancel can shut them
 * ---------------------------------------------------------------------- */

/* Keep fd in a free slot; -ECANCELED (fd closed) if cancelled. */
static int add_attempt(struct connect_job *c, int fd, int *slot)
{
    int rc = -ECANCELED;
    pthread_mutex_lock(&c->mu);
    if (!c->cancelled) {
        for (int i = 0; i < MAX_ATTEMPTS; i++) {
            if (c->fds[i] < 0) {
                c->fds[i] = fd;
                *slot = i;
                rc = 0;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (rc < 0)
        close(fd);
    return rc;
}

/* Forget an attempt, closing it unless it won.  Under the lock, so that a
   cancel never shuts a number that was closed and reused. */
static void end_attempt(struct connect_job *c, int slot, int keep)
{
    pthread_mutex_lock(&c->mu);
    if (!keep)
        close(c->fds[slot]);
    c->fds[slot] = -1;
    pthread_mutex_unlock(&c->mu);
}

static void connect_cancel(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    pthread_mutex_lock(&c->mu);
    c->cancelled = 1;
    for (int i = 0; i < MAX_ATTEMPTS; i++)
        if (c->fds[i] >= 0)
            shutdown(c->fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------------
 * Happy Eyeballs
 * ---------------------------------------------------------------------- */

/* Order the addresses as RFC 8305 §4 says: alternate families, starting
   with the family the resolver put first. */
static int interleave(struct addrinfo *list, struct addrinfo **out, int max)
{
    struct addrinfo *first[MAX_ATTEMPTS], *other[MAX_ATTEMPTS];
    int nf = 0, no = 0, n = 0;
    int fam = list ? list->ai_family : AF_UNSPEC;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        if (ai->ai_family == fam && nf < MAX_ATTEMPTS)
            first[nf++] = ai;
        else if (ai->ai_family != fam && no < MAX_ATTEMPTS)
            other[no++] = ai;
    }
    for (int i = 0; n < max && (i < nf || i < no); i++) {
        if (i < nf)
            out[n++] = first[i];
        if (i < no && n < max)
            out[n++] = other[i];
    }
    return n;
}

/* Start one attempt; 1 if it connected at once, 0 if pending, <0 if it
   failed at once. */
static int start_attempt(struct connect_job *c, const struct addrinfo *ai,
                         int *slot)
{
    int fd = net_socket(ai->ai_family, c->type);
    if (fd < 0)
        return fd;
    int rc = add_attempt(c, fd, slot);
    if (rc < 0)
        return rc;
    rc = net_connect_start(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc == 0)
        return 1;
    if (rc == -EINPROGRESS)
        return 0;
    end_attempt(c, *slot, 0);
    return rc;
}

/* The winner is kept; every other attempt is closed. */
static int won(struct connect_job *c, const int *slots, int active, int win)
{
    int fd = c->fds[slots[win]];
    for (int j = 0; j < active; j++)
        end_attempt(c, slots[j], j == win);
    return fd;
}

/* Race the attempts; returns the winner's fd or the last error. */
static int race(struct connect_job *c, struct addrinfo **addrs, int n)
{
    struct pollfd pfd[MAX_ATTEMPTS];
    int slots[MAX_ATTEMPTS], active = 0, next = 0, err = -EHOSTUNREACH;
    long long next_at = 0;

    for (;;) {
        /* Start the next attempt when its turn has come. */
        if (next < n && (active == 0 || net_now_ms() >= next_at)) {
            int rc = start_attempt(c, addrs[next++], &slots[active]);
            if (rc == -ECANCELED)
                break;
            if (rc < 0) {
                err = rc;
                next_at = 0;            /* failed at once: next, now */
                continue;
            }
            pfd[active].fd = c->fds[slots[active]];
            pfd[active].events = POLLOUT;
            active++;
            if (rc == 1)
                return won(c, slots, active, active - 1);
            next_at = net_now_ms() + HEAD_START_MS;
        }
        if (active == 0)
            break;
        int wait = -1;
        if (next < n) {
            long long left = next_at - net_now_ms();
            wait = left > 0 ? (int)left : 0;
        }
        int ready = poll(pfd, (nfds_t)active, wait);
        if (ready < 0 && errno != EINTR) {
            err = -errno;
            break;
        }
        for (int i = 0; ready > 0 && i < active; i++) {
            if (!pfd[i].revents)
                continue;
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                soerr = errno;
            if (soerr == 0 && !(pfd[i].revents & (POLLHUP | POLLERR)))
                return won(c, slots, active, i);
            err = soerr ? -soerr : -ECONNREFUSED;
            end_attempt(c, slots[i], 0);
            active--;
            pfd[i] = pfd[active];
            slots[i] = slots[active];
            i--;
            next_at = net_now_ms();         /* a failure starts the next now */
        }
    }
    for (int i = 0; i < active; i++)
        end_attempt(c, slots[i], 0);
    return c->cancelled ? -ECANCELED : err;
}

static void connect_work(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    struct addrinfo hints, *list = NULL, *order[MAX_ATTEMPTS];
    char port[8];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = c->type;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%u", c->port);
    c->gai = getaddrinfo(c->host, port, &hints, &list);
    if (c->gai != 0) {
        c->rc = c->gai == EAI_SYSTEM ? -errno : -ENOENT;
        return;
    }
    /* A datagram "connect" cannot fail on the network: take the first. */
    int n = interleave(list, order, c->type == SOCK_DGRAM ? 1 : MAX_ATTEMPTS);
    c->rc = race(c, order, n);
    freeaddrinfo(list);
}

/* For an IP literal whose connect was started on the Lua thread. */
static void finish_work(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    int rc = net_connect_finish(c->fds[0], -1);
    c->rc = rc < 0 ? rc : c->fds[0];
    end_attempt(c, 0, rc == 0);
}

static void connect_destroy(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    if (c->rc >= 0)
        close(c->rc);           /* connected, but nobody took it */
    for (int i = 0; i < MAX_ATTEMPTS; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->host);
    free(c);
}

static const struct pool_job_ops connect_ops = {
    connect_work, connect_cancel, connect_destroy
};
static const struct pool_job_ops finish_ops = {
    finish_work, connect_cancel, connect_destroy
};

static struct connect_job *new_job(lua_State *L, const struct pool_job_ops *ops)
{
    struct connect_job *c = calloc(1, sizeof *c);
    if (!c)
        luaL_error(L, "not enough memory");
    pool_job_init(&c->base, ops, POOL_CONNECT, plu_state(L)->loop);
    pthread_mutex_init(&c->mu, NULL);
    for (int i = 0; i < MAX_ATTEMPTS; i++)
        c->fds[i] = -1;
    c->rc = -EINPROGRESS;
    return c;
}

/* ------------------------------------------------------------------------
 * socket.connect
 * ---------------------------------------------------------------------- */

#define BOX_INDEX 4   /* host, port, kind, box */

static int connect_k(lua_State *L, int status, lua_KContext ctx)
{
    struct pool_job **box = lua_touserdata(L, BOX_INDEX);
    struct connect_job *c = (struct connect_job *)*box;
    (void)status;
    if (!pool_job_isdone(&c->base))
        return plu_await(L, &c->base, ctx, connect_k);
    int rc = c->rc, gai = c->gai;
    c->rc = -ECANCELED;         /* the descriptor is ours now */
    plu_finish(L, &c->base);
    *box = NULL;
    pool_job_unref(&c->base);
    if (rc >= 0) {
        struct plu_socket *s = plu_socket_push(L, rc, 0);
        s->udp = ctx == SOCK_DGRAM;
        return 1;
    }
    if (gai != 0 && gai != EAI_SYSTEM)
        return plu_fail_gai(L, gai);
    return plu_fail(L, -rc);
}

unsigned plu_checkport(lua_State *L, int arg)
{
    lua_Integer port = luaL_checkinteger(L, arg);
    luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port out of range");
    return (unsigned)port;
}

/* An IP literal: connect on this thread, and wait on a worker only if
   the handshake is still under way. */
static int connect_literal(lua_State *L, struct netaddr *addr, int type,
                           struct pool_job **box)
{
    int fd = net_socket(addr->ss.ss_family, type);
    if (fd < 0)
        return plu_fail(L, -fd);
    int rc = net_connect_start(fd, (struct sockaddr *)&addr->ss, addr->len);
    if (rc == 0) {
        struct plu_socket *s = plu_socket_push(L, fd, 0);
        s->udp = type == SOCK_DGRAM;
        return 1;
    }
    if (rc != -EINPROGRESS) {
        close(fd);
        return plu_fail(L, -rc);
    }
    struct connect_job *c = new_job(L, &finish_ops);
    c->fds[0] = fd;
    *box = &c->base;
    plu_start(L, &c->base);
    return connect_k(L, LUA_OK, type);
}

int plu_connect(lua_State *L)
{
    static const char *const kinds[] = { "tcp", "udp", NULL };
    const char *host = luaL_checkstring(L, 1);
    unsigned port = plu_checkport(L, 2);
    int type = luaL_checkoption(L, 3, "tcp", kinds) == 1 ? SOCK_DGRAM
                                                          : SOCK_STREAM;
    struct netaddr addr;

    lua_settop(L, 3);
    struct pool_job **box = plu_push_box(L, 1);
    if (netaddr_parse_ip(host, port, &addr) == 0)
        return connect_literal(L, &addr, type, box);

    struct connect_job *c = new_job(L, &connect_ops);
    *box = &c->base;
    c->host = strdup(host);
    c->port = port;
    c->type = type;
    if (!c->host)
        return luaL_error(L, "not enough memory");
    plu_start(L, &c->base);
    return connect_k(L, LUA_OK, type);
}

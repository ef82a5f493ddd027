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

/* connect's options (ext), for pluto.luasocket's master sockets. */
struct conn_opts {
    int family;                 /* AF_UNSPEC, AF_INET or AF_INET6 */
    int has_local, reuseaddr;
    struct netaddr local;       /* bind to this first, if has_local */
};

/* A new socket for an attempt to 'family', with the options applied: 0
   or a negated errno (the descriptor then closed). */
static int attempt_socket(const struct conn_opts *o, int family, int type)
{
    int fd = net_socket(family, type), one = 1;
    if (fd < 0)
        return fd;
    if (o->reuseaddr)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (o->has_local) {
        struct netaddr a = o->local;
        /* An IPv4 local address for an IPv6 peer: the mapped form. */
        if (family == AF_INET6 && a.ss.ss_family == AF_INET)
            netaddr_map_v4(&a);
        if (a.ss.ss_family != family ||
            bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
            int e = a.ss.ss_family != family ? EAFNOSUPPORT : errno;
            close(fd);
            return -e;
        }
    }
    return fd;
}

struct connect_job {
    struct pool_job base;
    pthread_mutex_t mu;         /* guards fds[] and cancelled */
    int fds[MAX_ATTEMPTS];      /* attempts in flight; -1 when free */
    int cancelled;
    struct park_reg reg;        /* a literal's wait on fds[0] */
    int type;                   /* SOCK_STREAM or SOCK_DGRAM */
    char *host;                 /* NULL when started on the Lua thread */
    unsigned port;
    struct conn_opts o;         /* family, local address, ... */
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
    if (!keep) {
        if (slot == 0)
            park_reg_release(&c->reg);
        close(c->fds[slot]);
    }
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
    int fd = attempt_socket(&c->o, ai->ai_family, c->type);
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
        if (c->base.deadline) {         /* the caller's limit, if any */
            long long left = c->base.deadline - net_now_ms();
            if (left <= 0) {
                err = -ETIMEDOUT;
                break;
            }
            if (wait < 0 || left < wait)
                wait = (int)left;
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
    hints.ai_family = c->o.family;
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

/* For an IP literal whose connect was started on the Lua thread: a
   parked wait until the socket is writable (connected, or failed). */
static int finish_step(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fds[0], SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    c->rc = err ? -err : c->fds[0];
    end_attempt(c, 0, err == 0);
    return POOL_DONE;
}

/* Parked or queued, and ended: the attempt (a literal's) is closed at
   once, not when the completion is taken. */
static void connect_abort(struct pool_job *job, int err)
{
    struct connect_job *c = (struct connect_job *)job;
    c->rc = err;
    if (c->fds[0] >= 0)
        end_attempt(c, 0, 0);
}

static void connect_destroy(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    park_reg_release(&c->reg);
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
    .work = connect_work,
    .cancel = connect_cancel,
    .abort = connect_abort,
    .destroy = connect_destroy,
};
static const struct pool_job_ops finish_ops = {
    .step = finish_step,
    .abort = connect_abort,
    .destroy = connect_destroy,
};

/* A job for ops; 'fd' (may be -1) is its first attempt, closed here if
   there is no memory for the job. */
static struct connect_job *new_job(lua_State *L, const struct pool_job_ops *ops,
                                   int fd)
{
    struct connect_job *c = calloc(1, sizeof *c);
    if (!c) {
        if (fd >= 0)
            close(fd);
        luaL_error(L, "not enough memory");
    }
    pool_job_init(&c->base, ops, ops == &finish_ops ? POOL_WAIT : POOL_CONNECT,
                  plu_state(L)->loop);
    pthread_mutex_init(&c->mu, NULL);
    park_reg_init(&c->reg);
    for (int i = 0; i < MAX_ATTEMPTS; i++)
        c->fds[i] = -1;
    c->fds[0] = fd;
    c->rc = -EINPROGRESS;
    return c;
}

/* ------------------------------------------------------------------------
 * socket.connect
 * ---------------------------------------------------------------------- */

#define BOX_INDEX  4   /* host, port, kind, box, socket */
#define SOCK_INDEX 5

/* Returns the socket at SOCK_INDEX, made (closed) before any descriptor
   existed, or the failure. */
static int connect_k(lua_State *L, int status, lua_KContext ctx)
{
    struct pool_job **box = lua_touserdata(L, BOX_INDEX);
    struct plu_socket *s = lua_touserdata(L, SOCK_INDEX);
    struct connect_job *c = (struct connect_job *)*box;
    (void)status;
    if (!pool_job_isdone(&c->base))
        return plu_await(L, &c->base, ctx, connect_k);
    int rc = c->rc, gai = c->gai;
    plu_finish(L, &c->base);
    if (rc >= 0) {
        c->rc = -ECANCELED;     /* the descriptor is the socket's now */
        plu_socket_open(L, s, rc, 0, &c->reg);
    }
    *box = NULL;
    pool_job_unref(&c->base);
    if (rc >= 0) {
        lua_settop(L, SOCK_INDEX);
        return 1;
    }
    if (gai != 0 && gai != EAI_SYSTEM)
        return plu_fail_gai(L, gai);
    return plu_fail_rc(L, rc);          /* a limit that ran out: "timeout" */
}

unsigned plu_checkport(lua_State *L, int arg)
{
    lua_Integer port = luaL_checkinteger(L, arg);
    luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port out of range");
    return (unsigned)port;
}

/* opts at 4: family ("inet" | "inet6"), localaddr (an IP), localport,
   reuseaddr, timeout (seconds, for the whole connect; nil: none). */
static void check_conn_opts(lua_State *L, struct conn_opts *o, long long *deadline)
{
    static const char *const families[] = { "any", "inet", "inet6", NULL };
    static const int family_of[] = { AF_UNSPEC, AF_INET, AF_INET6 };
    memset(o, 0, sizeof *o);
    *deadline = 0;
    if (lua_isnoneornil(L, 4))
        return;
    luaL_checktype(L, 4, LUA_TTABLE);
    static const char *const known[] = { "family", "localaddr", "localport",
                                         "reuseaddr", "timeout", NULL };
    lua_pushnil(L);
    while (lua_next(L, 4)) {
        int ok = 0;
        lua_pop(L, 1);
        for (int i = 0; known[i] && !ok; i++)
            ok = plu_is_key(L, -1, known[i]);
        if (!ok)
            luaL_argerror(L, 4, lua_pushfstring(L, "unknown option '%s'",
                                                luaL_tolstring(L, -1, NULL)));
    }
    lua_getfield(L, 4, "family");
    o->family = family_of[lua_isnil(L, -1) ? 0 : plu_checkoption(L, -1, NULL, families)];
    lua_getfield(L, 4, "localaddr");
    lua_getfield(L, 4, "localport");
    if (!lua_isnil(L, -2) || !lua_isnil(L, -1)) {
        size_t n = 0;
        const char *ip = lua_isnil(L, -2) ? (o->family == AF_INET6 ? "::" : "0.0.0.0")
                                          : lua_tolstring(L, -2, &n);
        int isint;
        lua_Integer port = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isint);
        luaL_argcheck(L, lua_isnil(L, -1) || (isint && port >= 0 && port <= 65535), 4,
                      "localport must be a port number");
        luaL_argcheck(L, ip && (lua_isnil(L, -2) || strlen(ip) == n) &&
                      netaddr_parse_ip(ip, (unsigned)port, &o->local) == 0, 4,
                      "localaddr must be an IP address");
        o->has_local = 1;
    }
    lua_getfield(L, 4, "reuseaddr");
    o->reuseaddr = lua_toboolean(L, -1);
    lua_getfield(L, 4, "timeout");
    if (!lua_isnil(L, -1)) {
        lua_Number t = lua_tonumber(L, -1);
        luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER && t == t && t >= 0, 4,
                      "timeout must be a number of seconds >= 0");
        if (t < 1e12)
            *deadline = pool_now_ms() + (long long)(t * 1000 + 0.5);
    }
    lua_pop(L, 5);
}

/* An IP literal: connect on this thread, and wait (parked) only if the
   handshake is still under way. */
static int connect_literal(lua_State *L, struct netaddr *addr, int type,
                           struct pool_job **box, const struct conn_opts *o,
                           long long deadline)
{
    struct plu_socket *s = lua_touserdata(L, SOCK_INDEX);
    if (o->family && o->family != addr->ss.ss_family)
        return plu_fail(L, EAFNOSUPPORT);
    int fd = attempt_socket(o, addr->ss.ss_family, type);
    if (fd < 0)
        return plu_fail(L, -fd);
    int rc = net_connect_start(fd, (struct sockaddr *)&addr->ss, addr->len);
    if (rc == 0) {
        /* Connected at once (UDP, often loopback): no waiting. */
        plu_socket_open(L, s, fd, 0, NULL);
        lua_settop(L, SOCK_INDEX);
        return 1;
    }
    if (rc != -EINPROGRESS) {
        close(fd);
        return plu_fail(L, -rc);
    }
    struct connect_job *c = new_job(L, &finish_ops, fd);
    *box = &c->base;
    pool_job_wait_fd(&c->base, &c->reg, fd, POLLOUT);
    pool_job_set_deadline(&c->base, deadline);
    plu_start(L, &c->base);
    return connect_k(L, LUA_OK, type);
}

int plu_connect(lua_State *L)
{
    static const char *const kinds[] = { "tcp", "udp", NULL };
    const char *host = plu_checkcstring(L, 1, NULL);
    unsigned port = plu_checkport(L, 2);
    int type = plu_checkoption(L, 3, "tcp", kinds) == 1 ? SOCK_DGRAM
                                                         : SOCK_STREAM;
    struct netaddr addr;
    struct conn_opts o;
    long long deadline;
    check_conn_opts(L, &o, &deadline);

    lua_settop(L, 3);
    struct pool_job **box = plu_push_box(L, 1);
    plu_socket_new(L, type == SOCK_DGRAM);
    if (netaddr_parse_ip(host, port, &addr) == 0)
        return connect_literal(L, &addr, type, box, &o, deadline);

    struct connect_job *c = new_job(L, &connect_ops, -1);
    *box = &c->base;            /* the box frees it, whatever raises */
    c->host = strdup(host);
    if (!c->host)
        return luaL_error(L, "not enough memory");
    c->port = port;
    c->type = type;
    c->o = o;
    pool_job_set_deadline(&c->base, deadline);
    plu_start(L, &c->base);
    return connect_k(L, LUA_OK, type);
}

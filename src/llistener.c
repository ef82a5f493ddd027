/* SPDX-License-Identifier: MIT */
/*
 * llistener.c -- socket.listen and the listener handle: accept,
 * hasconnection, close, getsockname.
 *
 * As with sockets, at most one accept job runs per listener; an accepted
 * descriptor that nobody takes (the coroutine was abandoned, the listener
 * collected) is closed when the job is destroyed.
 */
#include "lplu.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct plu_listener *check_listener(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PLU_LISTENER_MT);
}

/* ------------------------------------------------------------------------
 * socket.listen(port | "ip:port" | "[ip6]:port")
 * ---------------------------------------------------------------------- */

/* Parse argument 1 into an address, raising for a caller's mistake. */
static void check_listen_spec(lua_State *L, int arg, struct netaddr *addr,
                              int *dual)
{
    char spec[128];
    int rc;
    if (lua_type(L, arg) == LUA_TNUMBER) {
        lua_Integer port;
        luaL_argcheck(L, lua_isinteger(L, arg), arg, "port must be an integer");
        port = lua_tointeger(L, arg);
        luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port out of range");
        snprintf(spec, sizeof spec, "%d", (int)port);
    } else {
        size_t len;
        const char *s = plu_checkcstring(L, arg, &len);
        luaL_argcheck(L, len < sizeof spec, arg, "address too long");
        memcpy(spec, s, len + 1);
    }
    rc = netaddr_parse_listen(spec, addr, dual);
    luaL_argcheck(L, rc != -2, arg, "port out of range");
    luaL_argcheck(L, rc == 0, arg, "not an IP address with a port");
}

/* opts at 'arg' (a table or nothing): backlog, reuseport. */
static void check_bind_opts(lua_State *L, int arg, struct net_bind_opts *o)
{
    o->backlog = 0;
    o->reuseport = 0;
    if (lua_isnoneornil(L, arg))
        return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        if (!plu_is_key(L, -1, "backlog") && !plu_is_key(L, -1, "reuseport"))
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                                                  luaL_tolstring(L, -1, NULL)));
    }
    if (lua_getfield(L, arg, "backlog") != LUA_TNIL) {
        int ok;
        lua_Integer n = lua_tointegerx(L, -1, &ok);
        luaL_argcheck(L, ok && n >= 1 && n <= 65535, arg,
                      "backlog must be an integer in 1..65535");
        o->backlog = (int)n;
    }
    if (lua_getfield(L, arg, "reuseport") != LUA_TNIL) {
        luaL_argcheck(L, lua_isboolean(L, -1), arg, "reuseport must be a boolean");
        o->reuseport = lua_toboolean(L, -1);
    }
    lua_pop(L, 2);
}

int plu_open_listen_spec(lua_State *L, int arg,
                         int (*open)(const struct netaddr *addr,
                                     const struct net_bind_opts *o))
{
    struct netaddr addr;
    struct net_bind_opts o;
    check_listen_spec(L, arg, &addr, &o.dual);
    check_bind_opts(L, arg + 1, &o);
    int fd = open(&addr, &o);
    if (o.dual && (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)) {
        /* No IPv6 on this machine: IPv4 only, same port. */
        unsigned port = ntohs(((struct sockaddr_in6 *)&addr.ss)->sin6_port);
        netaddr_parse_ip("0.0.0.0", port, &addr);
        o.dual = 0;
        fd = open(&addr, &o);
    }
    return fd;
}

static int open_tcp_listener(const struct netaddr *addr,
                             const struct net_bind_opts *o)
{
    return net_listen((const struct sockaddr *)&addr->ss, addr->len, o);
}

int plu_listen(lua_State *L)
{
    /* The handle first (closed): a memory error then leaves no port bound. */
    lua_settop(L, 2);
    struct plu_listener *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->fd = NULL;
    l->ajob = NULL;
    luaL_setmetatable(L, PLU_LISTENER_MT);
    int fd = plu_open_listen_spec(L, 1, open_tcp_listener);
    if (fd < 0)
        return plu_fail(L, -fd);
    l->fd = plu_fd_new(fd, NULL);
    if (!l->fd)
        return luaL_error(L, "not enough memory");
    return 1;
}

/* ------------------------------------------------------------------------
 * accept
 * ---------------------------------------------------------------------- */

struct accept_job {
    struct pool_job base;
    struct plu_fd *fd;
    int rc;                     /* the new descriptor, or -errno */
};

/* On a poller once a client is pending (or on the caller's thread). */
static int accept_step_job(struct pool_job *job)
{
    struct accept_job *a = (struct accept_job *)job;
    a->rc = net_accept_now(a->fd->fd);
    return a->rc == -EAGAIN ? POOL_AGAIN : POOL_DONE;
}

/* The listener's descriptor is let go of at once (a closed listener
   frees its port now), not when the completion is taken. */
static void accept_abort(struct pool_job *job, int err)
{
    struct accept_job *a = (struct accept_job *)job;
    a->rc = err;
    plu_fd_unref(a->fd);
    a->fd = NULL;
}

static void accept_destroy(struct pool_job *job)
{
    struct accept_job *a = (struct accept_job *)job;
    if (a->rc >= 0)
        close(a->rc);           /* accepted, but nobody took it */
    if (a->fd)
        plu_fd_unref(a->fd);
    free(a);
}

static const struct pool_job_ops accept_ops = {
    .step = accept_step_job,
    .abort = accept_abort,
    .destroy = accept_destroy,
};

static void start_accept(lua_State *L, struct plu_listener *l)
{
    struct accept_job *a = calloc(1, sizeof *a);
    if (!a)
        luaL_error(L, "not enough memory");
    pool_job_init(&a->base, &accept_ops, POOL_WAIT, plu_state(L)->loop);
    plu_fd_ref(l->fd);
    a->fd = l->fd;
    a->rc = -EINPROGRESS;
    pool_job_wait_fd(&a->base, &l->fd->reg, l->fd->fd, POLLIN);
    l->ajob = &a->base;
    plu_start(L, &a->base);
}

/* Take the finished accept job's descriptor (or -errno). */
static int take_accept(lua_State *L, struct plu_listener *l)
{
    struct accept_job *a = (struct accept_job *)l->ajob;
    plu_finish(L, &a->base);    /* may raise: the job keeps the client */
    int rc = a->rc;
    a->rc = -ECANCELED;         /* ours now, not the job's to close */
    l->ajob = NULL;
    pool_job_unref(&a->base);
    return rc;
}

/* Returns a socket handle made (closed) before the descriptor is taken
   from the job or the kernel, so that a memory error loses no client. */
static int accept_step(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_listener *l = check_listener(L, 1);
    int fd;
    (void)status;
    (void)ctx;
    for (;;) {
        lua_settop(L, 1);
        if (l->ajob) {
            if (!pool_job_isdone(l->ajob))
                return plu_await(L, l->ajob, 0, accept_step);
            plu_socket_new(L, 0);
            fd = take_accept(L, l);
        } else if (l->fd) {
            plu_socket_new(L, 0);
            fd = net_accept_now(l->fd->fd);
            if (fd == -EAGAIN) {
                start_accept(L, l);
                continue;
            }
        } else {
            return plu_fail_word(L, "closed", "EBADF");
        }
        if (!l->fd) {                  /* closed while we waited */
            if (fd >= 0)
                close(fd);
            return plu_fail_word(L, "closed", "EBADF");
        }
        if (fd < 0)
            return plu_fail(L, -fd);
        plu_socket_open(L, lua_touserdata(L, 2), fd, 1, NULL);
        return 1;
    }
}

static int lis_accept(lua_State *L)
{
    lua_settop(L, 1);
    return accept_step(L, LUA_OK, 0);
}

static int lis_hasconnection(lua_State *L)
{
    struct plu_listener *l = check_listener(L, 1);
    int has = 0;
    if (l->ajob)
        has = pool_job_isdone(l->ajob) &&
              ((struct accept_job *)l->ajob)->rc >= 0;
    else if (l->fd)
        has = net_wait(l->fd->fd, POLLIN, 0) == 0;
    lua_pushboolean(L, has);
    return 1;
}

/* ------------------------------------------------------------------------
 * close, getsockname, lifecycle
 * ---------------------------------------------------------------------- */

static void close_listener(struct plu_listener *l)
{
    if (!l->fd)
        return;
    if (l->ajob)
        pool_job_cancel(l->ajob);     /* a waiting accept wakes at once */
    park_cancel_reg(&l->fd->reg);     /* and a select */
    plu_fd_unref(l->fd);
    l->fd = NULL;
}

static int lis_close(lua_State *L)
{
    close_listener(check_listener(L, 1));
    return 0;
}

static int lis_gc(lua_State *L)
{
    struct plu_listener *l = luaL_testudata(L, 1, PLU_LISTENER_MT);
    if (!l)
        return 0;
    close_listener(l);
    if (l->ajob) {
        pool_job_unref(l->ajob);
        l->ajob = NULL;
    }
    return 0;
}

static int lis_getsockname(lua_State *L)
{
    struct plu_listener *l = check_listener(L, 1);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[NETADDR_IPSTRLEN];
    if (!l->fd)
        return plu_fail_word(L, "closed", "EBADF");
    if (getsockname(l->fd->fd, (struct sockaddr *)&ss, &len) < 0)
        return plu_fail(L, errno);
    int port = netaddr_format((struct sockaddr *)&ss, ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, port);
    return 2;
}

static int lis_tostring(lua_State *L)
{
    struct plu_listener *l = check_listener(L, 1);
    if (!l->fd) {
        lua_pushliteral(L, "listener (closed)");
        return 1;
    }
    lua_settop(L, 1);
    lis_getsockname(L);
    lua_pushfstring(L, "listener (%s:%d)", lua_tostring(L, 2),
                    (int)lua_tointeger(L, 3));
    return 1;
}

static const luaL_Reg listener_methods[] = {
    { "accept", lis_accept },
    { "hasconnection", lis_hasconnection },
    { "close", lis_close },
    { "getsockname", lis_getsockname },
    { NULL, NULL }
};

static const luaL_Reg listener_meta[] = {
    { "__gc", lis_gc },
    { "__close", lis_close },
    { "__tostring", lis_tostring },
    { NULL, NULL }
};

/* With the state userdata at the top of the stack. */
int plu_open_listener(lua_State *L)
{
    luaL_newmetatable(L, PLU_LISTENER_MT);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, listener_meta, 1);
    lua_createtable(L, 0, 7);
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, listener_methods, 1);
    plu_open_sockopt(L);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "listener");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    return 0;
}

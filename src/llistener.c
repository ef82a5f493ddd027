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

struct plu_listener {
    struct plu_fd *fd;          /* NULL once closed */
    struct pool_job *ajob;      /* accept in flight, at most one */
};

static struct plu_listener *check_listener(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PLU_LISTENER_MT);
}

/* ------------------------------------------------------------------------
 * socket.listen(port | "ip:port" | "[ip6]:port")
 * ---------------------------------------------------------------------- */

/* Parse argument 1 into an address, raising for a caller's mistake. */
static void check_listen_spec(lua_State *L, struct netaddr *addr, int *dual)
{
    char spec[128];
    int rc;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        lua_Integer port;
        luaL_argcheck(L, lua_isinteger(L, 1), 1, "port must be an integer");
        port = lua_tointeger(L, 1);
        luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
        snprintf(spec, sizeof spec, "%d", (int)port);
    } else {
        size_t len;
        const char *s = luaL_checklstring(L, 1, &len);
        luaL_argcheck(L, len < sizeof spec, 1, "address too long");
        memcpy(spec, s, len + 1);
    }
    rc = netaddr_parse_listen(spec, addr, dual);
    luaL_argcheck(L, rc != -2, 1, "port out of range");
    luaL_argcheck(L, rc == 0, 1, "not an IP address with a port");
}

int plu_open_listen_spec(lua_State *L,
                         int (*open)(const struct netaddr *addr, int dual))
{
    struct netaddr addr;
    int dual;
    check_listen_spec(L, &addr, &dual);
    int fd = open(&addr, dual);
    if (dual && (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)) {
        /* No IPv6 on this machine: IPv4 only, same port. */
        unsigned port = ntohs(((struct sockaddr_in6 *)&addr.ss)->sin6_port);
        netaddr_parse_ip("0.0.0.0", port, &addr);
        fd = open(&addr, 0);
    }
    return fd;
}

static int open_tcp_listener(const struct netaddr *addr, int dual)
{
    return net_listen((const struct sockaddr *)&addr->ss, addr->len, dual);
}

int plu_listen(lua_State *L)
{
    int fd = plu_open_listen_spec(L, open_tcp_listener);
    if (fd < 0)
        return plu_fail(L, -fd);
    struct plu_listener *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->fd = NULL;
    l->ajob = NULL;
    luaL_setmetatable(L, PLU_LISTENER_MT);
    l->fd = plu_fd_new(fd);
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

static void accept_work(struct pool_job *job)
{
    struct accept_job *a = (struct accept_job *)job;
    a->rc = net_accept_wait(a->fd->fd, -1);
}

static void accept_cancel(struct pool_job *job)
{
    shutdown(((struct accept_job *)job)->fd->fd, SHUT_RDWR);
}

static void accept_destroy(struct pool_job *job)
{
    struct accept_job *a = (struct accept_job *)job;
    if (a->rc >= 0)
        close(a->rc);           /* accepted, but nobody took it */
    plu_fd_unref(a->fd);
    free(a);
}

static const struct pool_job_ops accept_ops = {
    accept_work, accept_cancel, accept_destroy
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
    l->ajob = &a->base;
    plu_start(L, &a->base);
}

/* Take the finished accept job's descriptor (or -errno). */
static int take_accept(lua_State *L, struct plu_listener *l)
{
    struct accept_job *a = (struct accept_job *)l->ajob;
    int rc = a->rc;
    a->rc = -ECANCELED;         /* ours now, not the job's to close */
    l->ajob = NULL;
    plu_finish(L, &a->base);
    pool_job_unref(&a->base);
    return rc;
}

static int accept_step(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_listener *l = check_listener(L, 1);
    int fd;
    (void)status;
    (void)ctx;
    for (;;) {
        if (l->ajob) {
            if (!pool_job_isdone(l->ajob))
                return plu_await(L, l->ajob, 0, accept_step);
            fd = take_accept(L, l);
        } else if (l->fd) {
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
        plu_socket_push(L, fd, 1);
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
        shutdown(l->fd->fd, SHUT_RDWR);   /* wakes the accepting worker */
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
    struct plu_listener *l = lua_touserdata(L, 1);
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
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, listener_methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "listener");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * lsockopt.c -- s:setoption(name, value), s:getoption(name) and s:getfd()
 * on sockets and listeners: the socket options LuaSocket offers, under
 * its names, so that pluto.luasocket can pass them through.
 *
 * One table says what each name is (level, option, kind of value).  The
 * calls are plain setsockopt/getsockopt on the Lua thread: they never
 * wait.  Setting "linger" to { on = true, timeout = 0 } asks for an
 * abortive close (a reset): the socket is then closed at once, without
 * the lingering close (linger.h).
 */
#include "lplu.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

enum kind { K_BOOL, K_INT, K_LINGER, K_MREQ, K_MREQ6 };

struct option {
    const char *name;
    int level, opt;
    enum kind kind;
    int set_only;
};

static const struct option options[] = {
    { "keepalive", SOL_SOCKET, SO_KEEPALIVE, K_BOOL, 0 },
    { "reuseaddr", SOL_SOCKET, SO_REUSEADDR, K_BOOL, 0 },
    { "reuseport", SOL_SOCKET, SO_REUSEPORT, K_BOOL, 0 },
    { "broadcast", SOL_SOCKET, SO_BROADCAST, K_BOOL, 0 },
    { "dontroute", SOL_SOCKET, SO_DONTROUTE, K_BOOL, 0 },
    { "linger", SOL_SOCKET, SO_LINGER, K_LINGER, 0 },
    { "recv-buffer-size", SOL_SOCKET, SO_RCVBUF, K_INT, 0 },
    { "send-buffer-size", SOL_SOCKET, SO_SNDBUF, K_INT, 0 },
    { "tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, K_BOOL, 0 },
    { "tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, K_INT, 0 },
    { "tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, K_INT, 0 },
    { "tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, K_INT, 0 },
    { "ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, K_BOOL, 0 },
    { "ip-multicast-ttl", IPPROTO_IP, IP_MULTICAST_TTL, K_INT, 0 },
    { "ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, K_BOOL, 0 },
    { "ip-add-membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, K_MREQ, 1 },
    { "ip-drop-membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, K_MREQ, 1 },
    { "ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, K_INT, 0 },
    { "ipv6-multicast-hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, K_INT, 0 },
    { "ipv6-multicast-loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, K_BOOL, 0 },
    { "ipv6-add-membership", IPPROTO_IPV6, IPV6_JOIN_GROUP, K_MREQ6, 1 },
    { "ipv6-drop-membership", IPPROTO_IPV6, IPV6_LEAVE_GROUP, K_MREQ6, 1 },
    { NULL, 0, 0, 0, 0 }
};

/* The descriptor of the socket or listener at 1 (NULL: closed). */
static struct plu_fd *target(lua_State *L)
{
    struct plu_socket *s = luaL_testudata(L, 1, PLU_SOCKET_MT);
    if (s)
        return s->fd;
    struct plu_listener *l = luaL_testudata(L, 1, PLU_LISTENER_MT);
    if (!l)
        luaL_typeerror(L, 1, "socket or listener");
    return l->fd;
}

static const struct option *check_option(lua_State *L)
{
    plu_checkcstring(L, 2, NULL);
    for (const struct option *o = options; o->name; o++)
        if (plu_is_key(L, 2, o->name))
            return o;
    luaL_argerror(L, 2, lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, 2)));
    return NULL;
}

/* An int field of the table at 3, or 'dflt'. */
static int int_field(lua_State *L, const char *name, int dflt)
{
    lua_getfield(L, 3, name);
    int ok, v = (int)lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    return ok ? v : dflt;
}

/* A multicast group for membership: { multiaddr = ip, interface = ip | index }. */
static int group(lua_State *L, int kind, void *out, socklen_t *len)
{
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "multiaddr");
    const char *group = lua_tostring(L, -1);
    lua_getfield(L, 3, "interface");
    const char *iface = lua_tostring(L, -1);
    int ok = group != NULL;
    if (kind == K_MREQ) {
        struct ip_mreq *m = out;
        memset(m, 0, sizeof *m);
        ok = ok && inet_pton(AF_INET, group, &m->imr_multiaddr) == 1;
        if (iface && strcmp(iface, "*") != 0)
            ok = ok && inet_pton(AF_INET, iface, &m->imr_interface) == 1;
        *len = sizeof *m;
    } else {
        struct ipv6_mreq *m = out;
        memset(m, 0, sizeof *m);
        ok = ok && inet_pton(AF_INET6, group, &m->ipv6mr_multiaddr) == 1;
        m->ipv6mr_interface = (unsigned)int_field(L, "interface", 0);
        *len = sizeof *m;
    }
    lua_pop(L, 2);
    luaL_argcheck(L, ok, 3, "a group must be { multiaddr = ip [, interface = ...] }");
    return 0;
}

/* setoption(name, value): true, or nil, msg, errno. */
static int l_setoption(lua_State *L)
{
    struct plu_fd *f = target(L);
    const struct option *o = check_option(L);
    union {
        int i;
        struct linger lg;
        struct ip_mreq m4;
        struct ipv6_mreq m6;
    } v;
    socklen_t len = sizeof v.i;
    switch (o->kind) {
    case K_BOOL:
        luaL_checkany(L, 3);
        v.i = lua_toboolean(L, 3);
        break;
    case K_INT: {
        lua_Integer n = luaL_checkinteger(L, 3);
        luaL_argcheck(L, n >= 0 && n <= 0x7fffffff, 3, "out of range");
        v.i = (int)n;
        break;
    }
    case K_LINGER:
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "on");
        v.lg.l_onoff = lua_toboolean(L, -1);
        lua_pop(L, 1);
        v.lg.l_linger = int_field(L, "timeout", 0);
        luaL_argcheck(L, v.lg.l_linger >= 0, 3, "timeout must be >= 0");
        len = sizeof v.lg;
        break;
    case K_MREQ:
    case K_MREQ6:
        group(L, o->kind, &v, &len);
        break;
    }
    if (!f)
        return plu_fail_word(L, "closed", "EBADF");
    if (setsockopt(f->fd, o->level, o->opt, &v, len) < 0)
        return plu_fail(L, errno);
    /* A reset at close is what was asked for: no lingering close. */
    if (o->kind == K_LINGER)
        f->stream = !(v.lg.l_onoff && v.lg.l_linger == 0) && f->tcp;
    lua_pushboolean(L, 1);
    return 1;
}

/* getoption(name): the value, or nil, msg, errno. */
static int l_getoption(lua_State *L)
{
    struct plu_fd *f = target(L);
    const struct option *o = check_option(L);
    luaL_argcheck(L, !o->set_only, 2, "this option can only be set");
    union {
        int i;
        struct linger lg;
    } v;
    socklen_t len = o->kind == K_LINGER ? sizeof v.lg : sizeof v.i;
    if (!f)
        return plu_fail_word(L, "closed", "EBADF");
    if (getsockopt(f->fd, o->level, o->opt, &v, &len) < 0)
        return plu_fail(L, errno);
    switch (o->kind) {
    case K_BOOL:
        lua_pushboolean(L, v.i != 0);
        break;
    case K_LINGER:
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, v.lg.l_onoff != 0);
        lua_setfield(L, -2, "on");
        lua_pushinteger(L, v.lg.l_linger);
        lua_setfield(L, -2, "timeout");
        break;
    default:
        lua_pushinteger(L, v.i);
        break;
    }
    return 1;
}

/* getfd(): the descriptor number, or -1 once closed. */
static int l_getfd(lua_State *L)
{
    struct plu_fd *f = target(L);
    lua_pushinteger(L, f ? f->fd : -1);
    return 1;
}

static const luaL_Reg option_methods[] = {
    { "setoption", l_setoption },
    { "getoption", l_getoption },
    { "getfd", l_getfd },
    { NULL, NULL }
};

/* Adds the methods to the methods table at the top of the stack. */
void plu_open_sockopt(lua_State *L)
{
    luaL_setfuncs(L, option_methods, 0);
}

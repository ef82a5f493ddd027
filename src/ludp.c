/* SPDX-License-Identifier: MIT */
/*
 * ludp.c -- UDP: socket.udpserver(port | addr) and s:setpeer(ip, port).
 *
 * A UDP socket is a socket handle with 'udp' set: recv hands back one
 * datagram per call and remembers its sender; send sends one datagram to
 * the remembered peer (the last sender, or what setpeer chose), or to the
 * connected address of a socket made by connect(host, port, "udp").
 */
#include "lplu.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

static int bind_udp(const struct netaddr *addr, const struct net_bind_opts *o)
{
    return net_bind_udp((const struct sockaddr *)&addr->ss, addr->len, o);
}

int plu_udpserver(lua_State *L)
{
    lua_settop(L, 2);
    struct plu_socket *s = plu_socket_new(L, 1);   /* first: see listen */
    int fd = plu_open_listen_spec(L, 1, bind_udp);
    if (fd < 0)
        return plu_fail(L, -fd);
    plu_socket_open(L, s, fd, 1, NULL);
    return 1;
}

int plu_setpeer(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    const char *ip = plu_checkcstring(L, 2, NULL);
    unsigned port = plu_checkport(L, 3);
    struct netaddr addr;

    luaL_argcheck(L, s->udp, 1, "setpeer needs a UDP socket");
    luaL_argcheck(L, netaddr_parse_ip(ip, port, &addr) == 0, 2,
                  "not an IP address");
    /* A dual-stack socket reaches IPv4 peers through mapped addresses. */
    if (s->family == AF_INET6)
        netaddr_map_v4(&addr);
    *s->peer = addr;
    s->has_peer = 1;
    return 0;
}

/* _udp([family]): a datagram socket bound nowhere yet and aimed nowhere
   (LuaSocket's udp(), whose setsockname and setpeername come later). */
int plu_udp_open(lua_State *L)
{
    static const char *const families[] = { "inet", "inet6", NULL };
    int family = plu_checkoption(L, 1, "inet", families) ? AF_INET6 : AF_INET;
    lua_settop(L, 1);
    struct plu_socket *s = plu_socket_new(L, 1);
    int fd = net_socket(family, SOCK_DGRAM);
    if (fd < 0)
        return plu_fail(L, -fd);
    if (family == AF_INET6) {
        int zero = 0;           /* IPv4 peers too, through mapped addresses */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    plu_socket_open(L, s, fd, 0, NULL);
    return 1;
}

/* Argument idx as an IP for a datagram socket of 'family' ("*" is the
   wildcard), with port at idx + 1. */
static void check_udp_addr(lua_State *L, struct plu_socket *s, int idx,
                           struct netaddr *a)
{
    const char *ip = plu_checkcstring(L, idx, NULL);
    unsigned port = plu_checkport(L, idx + 1);
    if (strcmp(ip, "*") == 0)
        ip = s->family == AF_INET6 ? "::" : "0.0.0.0";
    luaL_argcheck(L, netaddr_parse_ip(ip, port, a) == 0, idx, "not an IP address");
    if (s->family == AF_INET6)
        netaddr_map_v4(a);
}

/* s:_bind(ip, port): bind a datagram socket (setsockname). */
int plu_udp_bind(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    struct netaddr a;
    luaL_argcheck(L, s->udp, 1, "a UDP socket");
    check_udp_addr(L, s, 2, &a);
    if (!s->fd)
        return plu_fail_word(L, "closed", "EBADF");
    if (bind(s->fd->fd, (struct sockaddr *)&a.ss, a.len) < 0)
        return plu_fail(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* s:_connect(ip, port): aim a datagram socket at one peer, whose
   datagrams alone it then receives (setpeername); s:_connect() undoes
   that. */
int plu_udp_connect(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    struct netaddr a;
    luaL_argcheck(L, s->udp, 1, "a UDP socket");
    if (lua_isnoneornil(L, 2)) {
        memset(&a, 0, sizeof a);
        a.ss.ss_family = AF_UNSPEC;
        a.len = sizeof a.ss;
    } else {
        check_udp_addr(L, s, 2, &a);
    }
    if (!s->fd)
        return plu_fail_word(L, "closed", "EBADF");
    if (connect(s->fd->fd, (struct sockaddr *)&a.ss, a.len) < 0 &&
        !(a.ss.ss_family == AF_UNSPEC && errno == EAFNOSUPPORT))
        return plu_fail(L, errno);
    s->has_peer = 0;            /* sends go to the connected peer, or none */
    lua_pushboolean(L, 1);
    return 1;
}

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

/* A bound datagram socket for spec ("port", "ip:port", "[ip6]:port"). */
static int bind_udp(const struct netaddr *addr, int dual)
{
    int one = 1, zero = 0;
    int fd = net_socket(addr->ss.ss_family, SOCK_DGRAM);
    if (fd < 0)
        return fd;
    if (addr->ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one,
                   sizeof one);
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int plu_udpserver(lua_State *L)
{
    int fd = plu_open_listen_spec(L, bind_udp);
    if (fd < 0)
        return plu_fail(L, -fd);
    struct plu_socket *s = plu_socket_push(L, fd, 1);
    s->udp = 1;
    return 1;
}

int plu_setpeer(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    const char *ip = luaL_checkstring(L, 2);
    unsigned port = plu_checkport(L, 3);
    struct netaddr addr;

    luaL_argcheck(L, s->udp, 1, "setpeer needs a UDP socket");
    luaL_argcheck(L, netaddr_parse_ip(ip, port, &addr) == 0, 2,
                  "not an IP address");
    /* A dual-stack socket reaches IPv4 peers through mapped addresses. */
    if (s->family == AF_INET6 && addr.ss.ss_family == AF_INET) {
        struct sockaddr_in v4 = *(struct sockaddr_in *)&addr.ss;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr.ss;
        memset(v6, 0, sizeof *v6);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = v4.sin_port;
        v6->sin6_addr.s6_addr[10] = 0xff;
        v6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
        addr.len = sizeof *v6;
    }
    s->peer = addr;
    s->has_peer = 1;
    return 0;
}

/* SPDX-License-Identifier: MIT */
/* netaddr.c -- address parsing and formatting (see netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static int parse_ipv4(const char *ip, unsigned port, struct netaddr *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1)
        return -1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)port);
    out->len = sizeof *sin;
    return 0;
}

/* "addr" or "addr%zone", without brackets. */
static int parse_ipv6(const char *ip, unsigned port, struct netaddr *out)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *zone = strchr(ip, '%');
    size_t n = zone ? (size_t)(zone - ip) : strlen(ip);

    memset(out, 0, sizeof *out);
    if (n >= INET6_ADDRSTRLEN)
        return -1;
    memcpy(text, ip, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
        return -1;
    if (zone) {
        char *end;
        unsigned long id = strtoul(zone + 1, &end, 10);
        if (zone[1] == '\0')
            return -1;
        if (*end != '\0' && (id = if_nametoindex(zone + 1)) == 0)
            return -1;
        sin6->sin6_scope_id = (uint32_t)id;
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((unsigned short)port);
    out->len = sizeof *sin6;
    return 0;
}

int netaddr_parse_ip(const char *ip, unsigned port, struct netaddr *out)
{
    size_t n = strlen(ip);
    if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
        char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        if (n - 2 >= sizeof text)
            return -1;
        memcpy(text, ip + 1, n - 2);
        text[n - 2] = '\0';
        return parse_ipv6(text, port, out);
    }
    if (parse_ipv4(ip, port, out) == 0)
        return 0;
    return parse_ipv6(ip, port, out);
}

/* A decimal port 0..65535 filling the whole string; -1 otherwise. */
static long parse_port(const char *s)
{
    char *end;
    long v;
    if (*s < '0' || *s > '9')
        return -1;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535)
        return -1;
    return v;
}

int netaddr_parse_listen(const char *spec, struct netaddr *out, int *dual)
{
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
    const char *colon = strrchr(spec, ':');
    long port;

    *dual = 0;
    if (!colon || (spec[0] != '[' && strchr(spec, ':') != colon)) {
        /* "8080", or a bare IPv6 literal without a port: only the
           former is allowed. */
        if (colon)
            return -1;
        port = parse_port(spec);
        if (port < 0)
            return -2;
        *dual = 1;
        return netaddr_parse_ip("::", (unsigned)port, out);
    }
    port = parse_port(colon + 1);
    if ((size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (spec[0] == '[' && host[strlen(host) - 1] != ']')
        return -1;
    if (netaddr_parse_ip(host, 0, out) != 0)
        return -1;
    if (port < 0)
        return -2;
    ((struct sockaddr_in *)&out->ss)->sin_port = htons((unsigned short)port);
    return 0;
}

static int format(const struct sockaddr *sa, char *buf, int brackets)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, buf, NETADDR_IPSTRLEN);
        return ntohs(sin->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        char *p = buf;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf,
                      NETADDR_IPSTRLEN);
            return ntohs(sin6->sin6_port);
        }
        if (brackets)
            *p++ = '[';
        inet_ntop(AF_INET6, &sin6->sin6_addr, p, INET6_ADDRSTRLEN);
        if (brackets)
            strcat(p, "]");
        return ntohs(sin6->sin6_port);
    }
    buf[0] = '\0';
    return -1;
}

int netaddr_format(const struct sockaddr *sa, char *buf)
{
    return format(sa, buf, 1);
}

int netaddr_format_plain(const struct sockaddr *sa, char *buf)
{
    return format(sa, buf, 0);
}

void netaddr_map_v4(struct netaddr *a)
{
    if (a->ss.ss_family != AF_INET)
        return;
    struct sockaddr_in v4 = *(struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    memset(v6, 0, sizeof *v6);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = v4.sin_port;
    v6->sin6_addr.s6_addr[10] = 0xff;
    v6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    a->len = sizeof *v6;
}

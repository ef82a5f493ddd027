/* SPDX-License-Identifier: MIT */
/*
 * netaddr.h -- IP literals and "ip:port" strings to socket addresses and
 * back.  Text forms follow Pluto: IPv6 in brackets ("[::1]") on output,
 * with or without brackets on input; IPv4-mapped IPv6 shown as IPv4.
 */
#ifndef PLUTO_NETADDR_H
#define PLUTO_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

struct netaddr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Longest text netaddr_format_ip writes, with brackets and the NUL. */
#define NETADDR_IPSTRLEN 64

/* Parse an IPv4 or IPv6 literal ("::1", "[::1]", "fe80::1%lo",
   "127.0.0.1") with the given port.  Returns 0, or -1 if it is no IP. */
int netaddr_parse_ip(const char *ip, unsigned port, struct netaddr *out);

/* Parse a listen spec: "port", "ip:port" or "[ip6]:port".  A bare port
   gives the IPv6 wildcard (*dual = 1, the caller tries IPv4 when the
   machine has no IPv6).  Returns 0, -1 for a malformed address, -2 for a
   port that is no number in 0..65535. */
int netaddr_parse_listen(const char *spec, struct netaddr *out, int *dual);

/* Write the IP (brackets around IPv6, mapped IPv4 unwrapped) into buf of
   NETADDR_IPSTRLEN bytes and return the port, or -1 if the family is
   unknown. */
int netaddr_format(const struct sockaddr *sa, char *buf);
/* An IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d), in place: how a
   dual-stack socket reaches or binds an IPv4 address. */
void netaddr_map_v4(struct netaddr *a);

/* Plain text without brackets, as resolve() returns it. */
int netaddr_format_plain(const struct sockaddr *sa, char *buf);

#endif

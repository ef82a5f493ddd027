/* SPDX-License-Identifier: MIT */
/*
 * netops.h -- the blocking network calls that workers make.
 *
 * Descriptors are always non-blocking.  The calls that never wait serve
 * the fast paths on the Lua thread and the steps that pollers run once a
 * descriptor is ready (park.h); the waiting calls (connect, and poll()
 * itself) are for workers, where a timeout lives in the poll() and a
 * shutdown() of the descriptor from another thread wakes it.
 *
 * Every function returns >= 0 on success or a negated errno value.
 * Timeouts are in milliseconds; a negative timeout means none.
 */
#ifndef PLUTO_NETOPS_H
#define PLUTO_NETOPS_H

#include <stddef.h>
#include <sys/socket.h>

#include "chunkq.h"

/* The most one receive hands back (SPEC: a recv delivers <= 64 KiB). */
#define NET_CHUNK_MAX (64 * 1024)

/* Milliseconds on the monotonic clock. */
long long net_now_ms(void);

/* A new non-blocking, close-on-exec socket. */
int net_socket(int family, int type);

/* Wait until fd is ready for 'events' (POLLIN/POLLOUT); -ETIMEDOUT. */
int net_wait(int fd, short events, int timeout_ms);

/* Start a connect; 0 if done at once, -EINPROGRESS if under way. */
int net_connect_start(int fd, const struct sockaddr *sa, socklen_t len);
/* Wait for a started connect to finish and return its outcome. */
int net_connect_finish(int fd, int timeout_ms);

/* One receive without waiting: bytes received (0 = end of stream) or
   -EAGAIN when nothing is there. */
long net_recv_now(int fd, void *buf, size_t len);
/* The same into a new chunk (<= NET_CHUNK_MAX, stored in *out; NULL at
   end of stream and on failure); -ENOMEM without memory for it. */
int net_recv_chunk_now(int fd, struct chunk **out);
/* One datagram, whole, into a new chunk (may be empty), without waiting;
   the sender's address goes to *from. */
int net_recvfrom_chunk_now(int fd, struct chunk **out,
                           struct sockaddr_storage *from, socklen_t *fromlen);
/* Receive one datagram without waiting, or -EAGAIN. */
long net_recvfrom_now(int fd, void *buf, size_t len,
                      struct sockaddr_storage *from, socklen_t *fromlen);
/* Send one datagram (to 'to', or the connected peer when NULL), waiting
   for room if timeout_ms != 0.  -EMSGSIZE when it is too big. */
int net_sendto(int fd, const void *buf, size_t len,
               const struct sockaddr *to, socklen_t tolen, int timeout_ms);

/* Send what the kernel takes without waiting; returns bytes taken (maybe
   0) or a negated errno other than EAGAIN. */
long net_send_now(int fd, const void *buf, size_t len);

/* Accept without waiting (-EAGAIN when no client is pending).  The new
   fd is non-blocking and close-on-exec. */
int net_accept_now(int fd);

/* How a listening (or bound datagram) socket is made. */
struct net_bind_opts {
    int dual;           /* IPv6 wildcard taking IPv4 too (IPV6_V6ONLY off) */
    int backlog;        /* listen(2)'s; <= 0: SOMAXCONN */
    int reuseport;      /* SO_REUSEPORT: other sockets may bind the port */
};

/* A listening socket bound to sa (SO_REUSEADDR).  Returns the fd. */
int net_listen(const struct sockaddr *sa, socklen_t len,
               const struct net_bind_opts *o);
/* A datagram socket bound to sa.  Returns the fd. */
int net_bind_udp(const struct sockaddr *sa, socklen_t len,
                 const struct net_bind_opts *o);

/* "ECONNREFUSED" for ECONNREFUSED, or NULL if unknown. */
const char *net_errname(int err);

#endif

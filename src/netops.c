/* SPDX-License-Identifier: MIT */
/* netops.c -- blocking network calls for workers (see netops.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "netops.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int net_socket(int family, int type)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

long long net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_wait(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    long long deadline = timeout_ms >= 0 ? net_now_ms() + timeout_ms : 0;
    int left = timeout_ms;

    for (;;) {
        int n = poll(&pfd, 1, left);
        if (n > 0)
            return 0;  /* ready, or an error/hangup the next call reports */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
        if (timeout_ms >= 0) {
            long long rest = deadline - net_now_ms();
            left = rest > 0 ? (int)rest : 0;
        }
    }
}

int net_connect_start(int fd, const struct sockaddr *sa, socklen_t len)
{
    while (connect(fd, sa, len) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int net_connect_finish(int fd, int timeout_ms)
{
    int err = 0;
    socklen_t len = sizeof err;
    int rc = net_wait(fd, POLLOUT, timeout_ms);
    if (rc < 0)
        return rc;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

long net_recv_now(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EWOULDBLOCK)
            return -EAGAIN;
        if (errno != EINTR)
            return -errno;
    }
}

/* A chunk received from fd now, cut down to its size: bytes, 0 at end
   of stream, -EAGAIN, or a negated errno.  The 64 KiB buffer is taken
   only once data is there, so that idle waiters hold no receive memory. */
static int chunk_now(int fd, struct chunk **out, struct sockaddr_storage *from,
                     socklen_t *fromlen)
{
    *out = NULL;
    struct chunk *c = malloc(sizeof *c + NET_CHUNK_MAX);
    if (!c)
        return -ENOMEM;
    long n = from ? net_recvfrom_now(fd, c->data, NET_CHUNK_MAX, from, fromlen)
                  : net_recv_now(fd, c->data, NET_CHUNK_MAX);
    if (n < 0 || (n == 0 && !from)) {
        free(c);
        return (int)n;
    }
    *out = chunk_trim(c, (size_t)n);
    return (int)n;
}

int net_recv_chunk_now(int fd, struct chunk **out)
{
    return chunk_now(fd, out, NULL, NULL);
}

int net_recvfrom_chunk_now(int fd, struct chunk **out,
                           struct sockaddr_storage *from, socklen_t *fromlen)
{
    return chunk_now(fd, out, from, fromlen);
}

long net_recvfrom_now(int fd, void *buf, size_t len,
                      struct sockaddr_storage *from, socklen_t *fromlen)
{
    for (;;) {
        *fromlen = sizeof *from;
        ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT,
                             (struct sockaddr *)from, fromlen);
        if (n >= 0)
            return n;
        if (errno == EWOULDBLOCK)
            return -EAGAIN;
        if (errno != EINTR)
            return -errno;
    }
}

int net_sendto(int fd, const void *buf, size_t len,
               const struct sockaddr *to, socklen_t tolen, int timeout_ms)
{
    for (;;) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT, to,
                           to ? tolen : 0);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK || timeout_ms == 0)
            return -errno;
        int rc = net_wait(fd, POLLOUT, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

long net_send_now(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(fd, (const char *)buf + done, len - done,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EWOULDBLOCK)
            break;
        return n < 0 ? -errno : -EPIPE;
    }
    return (long)done;
}

int net_accept_now(int fd)
{
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno == EWOULDBLOCK)
            return -EAGAIN;
        /* A client that gave up before we took it: try the next one. */
        if (errno == ECONNABORTED || errno == EINTR)
            continue;
        return -errno;
    }
}

/* A socket of sa's family and 'type', with o's options, bound to sa. */
static int bound_socket(int type, const struct sockaddr *sa, socklen_t len,
                        const struct net_bind_opts *o)
{
    int one = 1, zero = 0;
    int fd = net_socket(sa->sa_family, type);
    if (fd < 0)
        return fd;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (o->reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, o->dual ? &zero : &one,
                   sizeof one);
    if (bind(fd, sa, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int net_listen(const struct sockaddr *sa, socklen_t len,
               const struct net_bind_opts *o)
{
    int fd = bound_socket(SOCK_STREAM, sa, len, o);
    if (fd >= 0 && listen(fd, o->backlog > 0 ? o->backlog : SOMAXCONN) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int net_bind_udp(const struct sockaddr *sa, socklen_t len,
                 const struct net_bind_opts *o)
{
    return bound_socket(SOCK_DGRAM, sa, len, o);
}

const char *net_errname(int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EINVAL) E(ENFILE) E(EMFILE)
    E(ENOSPC) E(EPIPE) E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE)
    E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(EOPNOTSUPP)
    E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN)
    E(ENETUNREACH) E(ENETRESET) E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS)
    E(EISCONN) E(ENOTCONN) E(ESHUTDOWN) E(ETIMEDOUT) E(ECONNREFUSED)
    E(EHOSTDOWN) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ECANCELED)
#undef E
    default: return NULL;
    }
}

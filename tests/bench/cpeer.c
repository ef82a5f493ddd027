/* SPDX-License-Identifier: MIT */
/*
 * cpeer.c -- the benchmark's C reference peer: what this machine can do
 * with plain epoll (and GnuTLS for TLS), standing next to the Lua
 * implementations in every workload.  Built by tests/bench/run with
 *   cc -O2 -o cpeer cpeer.c $(pkg-config --cflags --libs gnutls) -pthread
 *
 * Modes (every mode ends by itself: bounded counts, idle and life limits):
 *   echo-server PORTFILE NCONN SIZE
 *       one thread, epoll, non-blocking; echoes whatever arrives; exits
 *       after NCONN connections have closed (0: never; the runner kills it).
 *   pp-client PORT NCONN ROUNDS SIZE
 *       NCONN connections in one epoll loop, each doing ROUNDS round trips
 *       of SIZE bytes; prints "RESULT <round trips per second>".
 *   bulk-sink PORTFILE TOTAL [CERT KEY]
 *       accepts one connection (TLS server if CERT/KEY are given), reads
 *       TOTAL bytes checking the pattern (see bench_common.lua), prints
 *       "RESULT <MiB/s>" timed from the first byte to the last.
 *   bulk-source PORT TOTAL CHUNK [CAFILE]
 *       connects (TLS client verifying "localhost" against CAFILE if
 *       given), sends TOTAL bytes of the pattern in CHUNK-byte writes, then
 *       reads until the peer closes.
 *   tls-server PORTFILE CERT KEY THREADS IDLE
 *       handshake server: THREADS threads, each its own epoll loop and its
 *       own listener on the shared port (SO_REUSEPORT); per connection a non-blocking GnuTLS handshake,
 *       then one byte "k", then close.  Exits once no connection came for
 *       IDLE seconds (after the first one), or after 600 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PROG "cpeer"
#include "cbench.h"

#define BLOCK 65536

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Listen on 127.0.0.1:port (0: a free one); with reuseport, several
   listeners can share the port (the kernel spreads connections). */
static int listen_on(int port, int reuseport)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (fd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, SOMAXCONN) < 0)
        die("bind/listen: %s", strerror(errno));
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static int listen_port(const char *portfile)
{
    int fd = listen_on(0, 0);
    write_port(portfile, local_port(fd));
    return fd;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect: %s", strerror(errno));
    nodelay(fd);
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                poll(&pf, 1, 1000);
                continue;
            }
            return;  /* peer gone: nothing to echo to */
        }
        c += w;
        n -= (size_t)w;
    }
}

/* ------------------------------------------------------------------------
 * The bulk pattern (the same as bench_common.lua): block k of 64 KiB
 * starts with k as a 4-byte big-endian number; byte j >= 4 of every block
 * is (j*131 + 7) mod 256.
 * ---------------------------------------------------------------------- */

static unsigned expect_byte(uint64_t o)
{
    unsigned j = (unsigned)(o & 0xFFFF);
    uint64_t k = o >> 16;
    if (j < 4)
        return (unsigned)((k >> (8 * (3 - j))) & 0xFF);
    return (j * 131 + 7) & 0xFF;
}

static void fill_block(unsigned char *b)
{
    for (unsigned j = 0; j < BLOCK; j++)
        b[j] = (unsigned char)((j * 131 + 7) & 0xFF);
}

/* Sampled check of a received chunk at stream offset off: its first and
   last byte, and the low byte of every block number that starts in it. */
static int check_chunk(const unsigned char *c, size_t n, uint64_t off)
{
    if (n == 0)
        return 1;
    if (c[0] != expect_byte(off) || c[n - 1] != expect_byte(off + n - 1))
        return 0;
    for (uint64_t b = (off + 0xFFFF) & ~(uint64_t)0xFFFF; b + 3 < off + n; b += BLOCK)
        if (c[b + 3 - off] != expect_byte(b + 3))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------
 * echo-server
 * ---------------------------------------------------------------------- */

static int echo_server(const char *portfile, long nconn)
{
    int lfd = listen_port(portfile), ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
    static char buf[BLOCK];
    long closed = 0;
    nonblock(lfd);
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    nodelay(c);
                    struct epoll_event e = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0) {
                write_all(fd, buf, (size_t)r);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
                if (nconn > 0 && ++closed >= nconn)
                    return 0;
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * pp-client
 * ---------------------------------------------------------------------- */

static int pp_client(int port, int nconn, long rounds, int size)
{
    int ep = epoll_create1(0), live = nconn;
    long *done = calloc((size_t)nconn, sizeof *done);
    int *got = calloc((size_t)nconn, sizeof *got), *fds = calloc((size_t)nconn, sizeof *fds);
    char *msg = malloc((size_t)size), buf[BLOCK];
    struct epoll_event evs[256];
    memset(msg, 'x', (size_t)size);
    for (int i = 0; i < nconn; i++) {
        fds[i] = connect_port(port);
        nonblock(fds[i]);
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    double t0 = now();
    for (int i = 0; i < nconn; i++)
        write_all(fds[i], msg, (size_t)size);
    while (live > 0) {
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n == 0)
            die("pp-client: no answer for 10 s");
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r = recv(fds[i], buf, sizeof buf, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                die("pp-client: connection lost");
            }
            got[i] += (int)r;
            while (got[i] >= size) {
                got[i] -= size;
                if (++done[i] < rounds) {
                    write_all(fds[i], msg, (size_t)size);
                } else {
                    close(fds[i]);
                    live--;
                }
            }
        }
    }
    double dt = now() - t0;
    printf("RESULT %.0f\n", (double)nconn * rounds / dt);
    return 0;
}

/* ------------------------------------------------------------------------
 * GnuTLS helpers (blocking sessions for bulk)
 * ---------------------------------------------------------------------- */

static void tls_check(int rc, const char *what)
{
    if (rc < 0)
        die("%s: %s", what, gnutls_strerror(rc));
}

static gnutls_session_t tls_server_session(int fd, gnutls_certificate_credentials_t cred,
                                           unsigned flags)
{
    gnutls_session_t s;
    tls_check(gnutls_init(&s, GNUTLS_SERVER | flags), "gnutls_init");
    tls_check(gnutls_set_default_priority(s), "priority");
    tls_check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
    gnutls_transport_set_int(s, fd);
    return s;
}

static gnutls_certificate_credentials_t server_cred(const char *cert, const char *key)
{
    gnutls_certificate_credentials_t c;
    tls_check(gnutls_certificate_allocate_credentials(&c), "credentials");
    tls_check(gnutls_certificate_set_x509_key_file(c, cert, key, GNUTLS_X509_FMT_PEM),
              "key file");
    return c;
}

/* ------------------------------------------------------------------------
 * bulk-sink, bulk-source
 * ---------------------------------------------------------------------- */

static int bulk_sink(const char *portfile, uint64_t total, const char *cert, const char *key)
{
    int lfd = listen_port(portfile);
    int fd = accept(lfd, NULL, NULL);
    static unsigned char buf[BLOCK];
    gnutls_session_t s = NULL;
    uint64_t off = 0;
    double t0 = 0;
    int ok = 1;
    if (fd < 0)
        die("accept: %s", strerror(errno));
    close(lfd);
    nodelay(fd);
    if (cert) {
        s = tls_server_session(fd, server_cred(cert, key), 0);
        int rc;
        do rc = gnutls_handshake(s); while (rc < 0 && !gnutls_error_is_fatal(rc));
        tls_check(rc, "handshake");
    }
    while (off < total) {
        ssize_t r = s ? gnutls_record_recv(s, buf, sizeof buf) : recv(fd, buf, sizeof buf, 0);
        if (s && r < 0 && !gnutls_error_is_fatal((int)r))
            continue;
        if (r <= 0)
            break;
        if (off == 0)
            t0 = now();
        if (!check_chunk(buf, (size_t)r, off))
            ok = 0;
        off += (uint64_t)r;
    }
    double dt = now() - t0;
    if (off != total || !ok) {
        printf("FAIL bytes=%llu expected=%llu pattern=%s\n", (unsigned long long)off,
               (unsigned long long)total, ok ? "ok" : "bad");
        return 1;
    }
    printf("RESULT %.1f\n", total / 1048576.0 / dt);
    fflush(stdout);
    close(fd);
    return 0;
}

static int bulk_source(int port, uint64_t total, size_t chunk, const char *cafile)
{
    int fd = connect_port(port);
    unsigned char *b = malloc(BLOCK), buf[4096];
    gnutls_session_t s = NULL;
    if (chunk != BLOCK)
        die("bulk-source: CHUNK must be %d", BLOCK);
    fill_block(b);
    if (cafile) {
        gnutls_certificate_credentials_t c;
        tls_check(gnutls_certificate_allocate_credentials(&c), "credentials");
        tls_check(gnutls_certificate_set_x509_trust_file(c, cafile, GNUTLS_X509_FMT_PEM),
                  "trust file");
        tls_check(gnutls_init(&s, GNUTLS_CLIENT), "gnutls_init");
        tls_check(gnutls_set_default_priority(s), "priority");
        tls_check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c), "credentials");
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9);
        gnutls_session_set_verify_cert(s, "localhost", 0);
        gnutls_transport_set_int(s, fd);
        int rc;
        do rc = gnutls_handshake(s); while (rc < 0 && !gnutls_error_is_fatal(rc));
        tls_check(rc, "handshake");
    }
    for (uint64_t k = 0; k * BLOCK < total; k++) {
        b[0] = (unsigned char)(k >> 24);
        b[1] = (unsigned char)(k >> 16);
        b[2] = (unsigned char)(k >> 8);
        b[3] = (unsigned char)k;
        if (s) {
            size_t done = 0;
            while (done < BLOCK) {
                ssize_t w = gnutls_record_send(s, b + done, BLOCK - done);
                if (w < 0 && !gnutls_error_is_fatal((int)w))
                    continue;
                tls_check((int)w, "record_send");
                done += (size_t)w;
            }
        } else {
            write_all(fd, b, BLOCK);
        }
    }
    /* Wait for the sink to close: a close with unread data (session
       tickets) would reset the connection and could lose the tail. */
    for (;;) {
        ssize_t r = s ? gnutls_record_recv(s, buf, sizeof buf) : recv(fd, buf, sizeof buf, 0);
        if (s && r < 0 && !gnutls_error_is_fatal((int)r))
            continue;
        if (r <= 0)
            break;
    }
    close(fd);
    return 0;
}

/* ------------------------------------------------------------------------
 * tls-server: thread per core, each its own epoll loop
 * ---------------------------------------------------------------------- */

struct hs_conn {
    int fd;
    gnutls_session_t s;
};

static gnutls_certificate_credentials_t hs_cred;
static atomic_long hs_done, hs_failed;
static _Atomic double hs_last;

static void hs_finish(int ep, struct hs_conn *c, int ok)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (ok) {
        gnutls_record_send(c->s, "k", 1);
        atomic_fetch_add(&hs_done, 1);
    } else {
        atomic_fetch_add(&hs_failed, 1);
    }
    gnutls_deinit(c->s);
    close(c->fd);
    free(c);
}

static void hs_step(int ep, struct hs_conn *c)
{
    int rc = gnutls_handshake(c->s);
    if (rc == 0) {
        hs_finish(ep, c, 1);
    } else if (gnutls_error_is_fatal(rc)) {
        hs_finish(ep, c, 0);
    } else {
        struct epoll_event e = { .data.ptr = c };
        e.events = gnutls_record_get_direction(c->s) ? EPOLLOUT : EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
}

static void *hs_thread(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            struct hs_conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    nodelay(fd);
                    c = malloc(sizeof *c);
                    c->fd = fd;
                    c->s = tls_server_session(fd, hs_cred, GNUTLS_NONBLOCK);
                    hs_last = now();
                    struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                    hs_step(ep, c);
                }
                continue;
            }
            hs_step(ep, c);
        }
    }
    return NULL;
}

static int tls_server(const char *portfile, const char *cert, const char *key, int threads,
                      double idle)
{
    double start = now();
    int port = 0;
    hs_cred = server_cred(cert, key);
    hs_last = 0;
    /* One listener per thread on the same port (SO_REUSEPORT): the kernel
       spreads the connections evenly, so no thread idles while another
       has a queue. */
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        int lfd = listen_on(port, 1);
        port = local_port(lfd);
        nonblock(lfd);
        pthread_create(&t, NULL, hs_thread, (void *)(intptr_t)lfd);
    }
    write_port(portfile, port);
    for (;;) {
        usleep(100000);
        double last = hs_last, t = now();
        if ((last > 0 && t - last > idle) || t - start > 600)
            break;
    }
    printf("served=%ld failed=%ld threads=%d\n", atomic_load(&hs_done),
           atomic_load(&hs_failed), threads);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "echo-server") && argc >= 4)
        return echo_server(argv[2], atol(argv[3]));
    if (!strcmp(m, "pp-client") && argc == 6)
        return pp_client(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
    if (!strcmp(m, "bulk-sink") && (argc == 4 || argc == 6))
        return bulk_sink(argv[2], strtoull(argv[3], NULL, 10), argc == 6 ? argv[4] : NULL,
                         argc == 6 ? argv[5] : NULL);
    if (!strcmp(m, "bulk-source") && (argc == 5 || argc == 6))
        return bulk_source(atoi(argv[2]), strtoull(argv[3], NULL, 10),
                           (size_t)atol(argv[4]), argc == 6 ? argv[5] : NULL);
    if (!strcmp(m, "tls-server") && argc == 7)
        return tls_server(argv[2], argv[3], argv[4], atoi(argv[5]), atof(argv[6]));
    fprintf(stderr, "usage: see the comment at the top of cpeer.c\n");
    return 2;
}

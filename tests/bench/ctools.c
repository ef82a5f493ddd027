/* SPDX-License-Identifier: MIT */
/*
 * ctools.c -- the benchmark's fixed load generators, the same against
 * every implementation.  Built by tests/bench/run with
 *   cc -O2 -o ctools ctools.c $(pkg-config --cflags --libs gnutls) -pthread
 *
 * Modes (all bounded in time):
 *   tls-load PORT CONNS SECONDS WARMUP
 *       CONNS threads, each a loop of: connect, full TLS handshake as a
 *       client (GnuTLS, system default priorities, no session tickets so
 *       no resumption, no certificate verification: the client's work
 *       stays small and identical for every server), read the server's
 *       one byte "k" (proof that the server finished its side), close.
 *       Counts handshakes completed between WARMUP and SECONDS; prints
 *       "RESULT <handshakes per second>" and "failed=N".
 *   idle-clients PORT N HOLD
 *       opens N connections (non-blocking connects, at most 256 in
 *       flight), prints "connected N" once all are established, then keeps
 *       them open and silent for HOLD seconds (the runner usually kills it
 *       sooner) and exits.  Their source addresses are 127.0.0.2-5, not
 *       the probe's 127.0.0.1: with tens of thousands of connections from
 *       one address to one port, the kernel's search for a free local
 *       port makes every new connect from that address take milliseconds
 *       (3 ms with 18,000, the C server as slow as any).
 *   slowloris PORT NSILENT NPARTIAL HOLD
 *       the same with NSILENT + NPARTIAL connections, the last NPARTIAL of
 *       which send the first 10 bytes of a ClientHello and stall: the
 *       attackers of a TLS server.
 *   tls-probe PORT K
 *       K times, one after the other: connect, full TLS handshake (as
 *       tls-load does), read the server's "k", close; prints
 *       "RESULT <median µs>" and "min=.. max=..".
 *   probe PORT K SIZE
 *       K times, one after the other: connect, send SIZE bytes, read SIZE
 *       bytes back, close; prints "RESULT <median µs>" and
 *       "min=.. max=.." (microseconds).
 *   http-server PORTFILE SIZE IDLE
 *       the HTTP server of the "http" workload, the same for every client
 *       library: one thread, epoll, non-blocking; on 127.0.0.1, backlog
 *       SOMAXCONN; reads each request up to its blank line and answers
 *       any of them with "200 OK", a Content-Length of SIZE, a fixed body
 *       and "Connection: close", then closes (the whole request was read,
 *       so the close is a FIN).  Exits once no connection came for IDLE
 *       seconds (after the first one), or after 600 s; prints
 *       "served=N".
 *   sign-speed KEYFILE SECONDS
 *       one thread signing a SHA-256 digest with the PEM private key again
 *       and again for SECONDS (GnuTLS, the library every GnuTLS server's
 *       handshakes sign with); prints "RESULT <signatures per second>".
 *       The ceiling of a GnuTLS server's RSA handshakes per core.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
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

#define BENCH_PROG "ctools"
#include "cbench.h"

static struct sockaddr_in target(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* ------------------------------------------------------------------------
 * tls-load
 * ---------------------------------------------------------------------- */

static int tl_port;
static double tl_start, tl_end;
static gnutls_certificate_credentials_t tl_cred;
static atomic_long tl_done, tl_failed;

/* One client handshake over fd and the server's "k": 1 if both came. */
static int handshake_and_k(int fd)
{
    gnutls_session_t s;
    int ok = 0, rc;
    gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_TICKETS);
    gnutls_set_default_priority(s);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tl_cred);
    gnutls_server_name_set(s, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_transport_set_int(s, fd);
    do rc = gnutls_handshake(s); while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc == 0) {
        char k;
        ssize_t r;
        do r = gnutls_record_recv(s, &k, 1);
        while (r < 0 && !gnutls_error_is_fatal((int)r));
        ok = r == 1 && k == 'k';
    }
    gnutls_deinit(s);
    return ok;
}

/* A blocking TCP socket to the target with a bounded wait on every step:
   a server that stops answering cannot hold the client past its time. */
static int bounded_socket(int seconds)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { .tv_sec = seconds };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void *tl_thread(void *arg)
{
    (void)arg;
    struct sockaddr_in a = target(tl_port);
    while (now() < tl_end) {
        int fd = bounded_socket(5), ok = 0;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            ok = handshake_and_k(fd);
        close(fd);
        double t = now();
        if (t >= tl_start && t < tl_end)
            atomic_fetch_add(ok ? &tl_done : &tl_failed, 1);
    }
    return NULL;
}

static int tls_load(int port, int conns, double seconds, double warmup)
{
    pthread_t *t = calloc((size_t)conns, sizeof *t);
    gnutls_certificate_allocate_credentials(&tl_cred);
    tl_port = port;
    double t0 = now();
    tl_start = t0 + warmup;
    tl_end = t0 + seconds;
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, tl_thread, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    printf("RESULT %.1f\n", atomic_load(&tl_done) / (seconds - warmup));
    printf("handshakes=%ld failed=%ld\n", atomic_load(&tl_done), atomic_load(&tl_failed));
    return 0;
}

/* ------------------------------------------------------------------------
 * idle-clients
 * ---------------------------------------------------------------------- */

/* A TLS record header (handshake, 256 bytes to come) and the start of a
   ClientHello: a server's TLS stack reads these, then waits for more. */
static const char hello_start[10] = "\x16\x03\x01\x01\x00\x01\x00\x00\xfc\x03";

/* N connections, the last 'partial' of which send hello_start and
   stall; held open and silent for 'hold' seconds. */
static int idle_clients(int port, int n, int partial, double hold)
{
    struct sockaddr_in a = target(port);
    int ep = epoll_create1(0), started = 0, connected = 0, inflight = 0, failed = 0;
    struct epoll_event evs[256];
    double deadline = now() + 120;
    while (connected < n) {
        while (inflight < 256 && started < n) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0)
                die("socket (%d open): %s", connected + inflight, strerror(errno));
            struct sockaddr_in src = { .sin_family = AF_INET };
            src.sin_addr.s_addr = htonl(0x7f000002u + (unsigned)started % 4);
            int one = 1;    /* the port is chosen at connect, per address */
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
                die("bind to 127.0.0.%u: %s", 2 + (unsigned)started % 4,
                    strerror(errno));
            started++;
            if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
                connected++;
                if (started > n - partial)
                    send(fd, hello_start, sizeof hello_start, MSG_NOSIGNAL);
                continue;
            }
            if (errno != EINPROGRESS)
                die("connect: %s", strerror(errno));
            struct epoll_event e = { .events = EPOLLOUT, .data.u64 =
                (uint64_t)(started > n - partial) << 32 | (uint32_t)fd };
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
            inflight++;
        }
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            int fd = (int)(uint32_t)evs[i].data.u64, err = 0;
            int stall = (int)(evs[i].data.u64 >> 32);
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            inflight--;
            if (err) {
                failed++;
                close(fd);
                started--;  /* try that one again */
                if (failed > 1000)
                    die("too many failed connects (%s)", strerror(err));
            } else {
                connected++;
                if (stall)
                    send(fd, hello_start, sizeof hello_start, MSG_NOSIGNAL);
            }
        }
        if (now() > deadline)
            die("only %d of %d connected after 120 s", connected, n);
    }
    printf("connected %d failed %d\n", connected, failed);
    fflush(stdout);
    /* Hold, silent; the runner normally kills us first. */
    double end = now() + hold;
    while (now() < end)
        poll(NULL, 0, 200);
    return 0;
}

/* ------------------------------------------------------------------------
 * probe
 * ---------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int probe(int port, int k, int size)
{
    struct sockaddr_in a = target(port);
    double *lat = calloc((size_t)k, sizeof *lat);
    char *msg = malloc((size_t)size), *buf = malloc((size_t)size);
    memset(msg, 'p', (size_t)size);
    for (int i = 0; i < k; i++) {
        double t0 = now();
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, got = 0;
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("probe connect: %s", strerror(errno));
        if (send(fd, msg, (size_t)size, MSG_NOSIGNAL) != size)
            die("probe send: %s", strerror(errno));
        while (got < size) {
            ssize_t r = recv(fd, buf + got, (size_t)(size - got), 0);
            if (r <= 0)
                die("probe recv: %s", r == 0 ? "closed" : strerror(errno));
            got += (int)r;
        }
        lat[i] = (now() - t0) * 1e6;
        close(fd);
        poll(NULL, 0, 10);   /* 10 ms apart: single connects, not a burst */
    }
    qsort(lat, (size_t)k, sizeof *lat, cmp_double);
    printf("RESULT %.0f\n", lat[k / 2]);
    printf("min=%.0f max=%.0f\n", lat[0], lat[k - 1]);
    return 0;
}

/* ------------------------------------------------------------------------
 * tls-probe
 * ---------------------------------------------------------------------- */

static int tls_probe(int port, int k)
{
    struct sockaddr_in a = target(port);
    double *lat = calloc((size_t)k, sizeof *lat);
    gnutls_certificate_allocate_credentials(&tl_cred);
    for (int i = 0; i < k; i++) {
        double t0 = now();
        int fd = bounded_socket(10);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("tls-probe connect: %s", strerror(errno));
        if (!handshake_and_k(fd))
            die("tls-probe: handshake %d failed", i + 1);
        lat[i] = (now() - t0) * 1e6;
        close(fd);
        poll(NULL, 0, 10);   /* 10 ms apart: single clients, not a burst */
    }
    qsort(lat, (size_t)k, sizeof *lat, cmp_double);
    printf("RESULT %.0f\n", lat[k / 2]);
    printf("min=%.0f max=%.0f\n", lat[0], lat[k - 1]);
    return 0;
}

/* ------------------------------------------------------------------------
 * http-server
 * ---------------------------------------------------------------------- */

struct hconn {
    int fd;
    int answering;              /* the request is read; sending the answer */
    size_t got, sent;
    char req[8192];
};

static char *http_answer;
static size_t http_answer_len;

static void http_close(int ep, struct hconn *h)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
    close(h->fd);
    free(h);
}

/* Send what the kernel takes; 1 once all of it went (the connection is
   then closed), 0 to wait for room, -1 on an error. */
static int http_send(int ep, struct hconn *h)
{
    while (h->sent < http_answer_len) {
        ssize_t n = send(h->fd, http_answer + h->sent, http_answer_len - h->sent,
                         MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event e = { .events = EPOLLOUT, .data.ptr = h };
            epoll_ctl(ep, EPOLL_CTL_MOD, h->fd, &e);
            return 0;
        }
        if (n <= 0)
            return -1;
        h->sent += (size_t)n;
    }
    return 1;
}

/* Read the request; answer once its blank line is there.  1: done with
   the connection, 0: waiting. */
static int http_read(int ep, struct hconn *h)
{
    for (;;) {
        ssize_t n = recv(h->fd, h->req + h->got, sizeof h->req - 1 - h->got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return 1;               /* gone before asking, or an error */
        h->got += (size_t)n;
        h->req[h->got] = '\0';
        if (strstr(h->req, "\r\n\r\n") || strstr(h->req, "\n\n")) {
            h->answering = 1;
            return http_send(ep, h) != 0;
        }
        if (h->got == sizeof h->req - 1)
            return 1;               /* a request this long is not ours */
    }
}

static int http_server(const char *portfile, long size, double idle)
{
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: "
                      "application/octet-stream\r\nContent-Length: %ld\r\n"
                      "Connection: close\r\n\r\n", size);
    http_answer_len = (size_t)hl + (size_t)size;
    http_answer = malloc(http_answer_len);
    memcpy(http_answer, head, (size_t)hl);
    for (long i = 0; i < size; i++)
        http_answer[hl + i] = (char)('a' + i % 26);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = target(0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, SOMAXCONN) < 0)
        die("http-server: bind/listen: %s", strerror(errno));
    socklen_t len = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    write_port(portfile, ntohs(a.sin_port));

    int ep = epoll_create1(0);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL }, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    long served = 0, open_conns = 0;
    double start = now(), last = 0;
    while (now() - start < 600 && (last == 0 || open_conns > 0 || now() - last < idle)) {
        int k = epoll_wait(ep, evs, 256, 200);
        for (int i = 0; i < k; i++) {
            struct hconn *h = evs[i].data.ptr;
            if (!h) {                               /* the listener */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    h = calloc(1, sizeof *h);
                    h->fd = fd;
                    struct epoll_event ce = { .events = EPOLLIN, .data.ptr = h };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                    open_conns++;
                    last = now();
                }
                continue;
            }
            int done = h->answering ? http_send(ep, h) != 0 : http_read(ep, h);
            if (done) {
                if (h->answering && h->sent == http_answer_len)
                    served++;
                http_close(ep, h);
                open_conns--;
                last = now();
            }
        }
    }
    printf("served=%ld\n", served);
    return 0;
}

/* ------------------------------------------------------------------------
 * sign-speed
 * ---------------------------------------------------------------------- */

static int sign_speed(const char *keyfile, double seconds)
{
    gnutls_datum_t pem, sig;
    gnutls_privkey_t key;
    if (gnutls_load_file(keyfile, &pem) < 0)
        die("cannot read %s", keyfile);
    if (gnutls_privkey_init(&key) < 0 ||
        gnutls_privkey_import_x509_raw(key, &pem, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
        die("cannot load the private key %s", keyfile);
    unsigned char digest[32];
    memset(digest, 0x5a, sizeof digest);
    gnutls_datum_t hash = { digest, sizeof digest };
    long n = 0;
    double t0 = now(), t;
    do {
        if (gnutls_privkey_sign_hash(key, GNUTLS_DIG_SHA256, 0, &hash, &sig) < 0)
            die("signing failed");
        gnutls_free(sig.data);
        n++;
    } while ((t = now()) - t0 < seconds);
    printf("RESULT %.1f\n", n / (t - t0));
    gnutls_privkey_deinit(key);
    gnutls_free(pem.data);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "tls-load") && argc == 6)
        return tls_load(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), atof(argv[5]));
    if (!strcmp(m, "idle-clients") && argc == 5)
        return idle_clients(atoi(argv[2]), atoi(argv[3]), 0, atof(argv[4]));
    if (!strcmp(m, "slowloris") && argc == 6)
        return idle_clients(atoi(argv[2]), atoi(argv[3]) + atoi(argv[4]),
                            atoi(argv[4]), atof(argv[5]));
    if (!strcmp(m, "tls-probe") && argc == 4)
        return tls_probe(atoi(argv[2]), atoi(argv[3]));
    if (!strcmp(m, "http-server") && argc == 5)
        return http_server(argv[2], atol(argv[3]), atof(argv[4]));
    if (!strcmp(m, "sign-speed") && argc == 4)
        return sign_speed(argv[2], atof(argv[3]));
    if (!strcmp(m, "probe") && argc == 5)
        return probe(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of ctools.c\n");
    return 2;
}

/* SPDX-License-Identifier: MIT */
/*
 * tls.c -- GnuTLS sessions in blocking style (see tls.h).
 *
 * Credentials are the costly part to set up, so they are made once and
 * shared: the system trust store once per process, a CA bundle once per
 * distinct content, a server's certificate set once per distinct list of
 * PEM pairs.  GnuTLS credentials are read-only once built and may be used
 * by many sessions in many threads at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "tls.h"

#include <errno.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "netops.h"

/* ------------------------------------------------------------------------
 * Transport: blocking pull and push over the non-blocking descriptor
 * ---------------------------------------------------------------------- */

/* A wait that ran out is reported as EAGAIN: GnuTLS then returns
   GNUTLS_E_AGAIN and the session stays usable for a later call. */
static int wait_errno(int rc)
{
    return rc == -ETIMEDOUT ? EAGAIN : -rc;
}

static ssize_t io_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct tls_io *io = p;
    if (io->pre) {
        size_t n = io->prelen - io->preoff;
        if (n > len)
            n = len;
        memcpy(buf, io->pre + io->preoff, n);
        io->preoff += n;
        if (io->preoff == io->prelen) {
            free(io->pre);
            io->pre = NULL;
        }
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = recv(io->fd, buf, len, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            io->recv_errno = errno;
            return -1;
        }
        if (io->recv_timeout_ms == 0) {
            io->recv_timed_out = 1;
            return -1;                  /* errno is EAGAIN */
        }
        int rc = net_wait(io->fd, POLLIN, io->recv_timeout_ms);
        if (rc < 0) {
            io->recv_timed_out = rc == -ETIMEDOUT;
            errno = wait_errno(rc);
            return -1;
        }
    }
}

static int io_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    struct tls_io *io = p;
    if (io->pre)
        return 1;
    int rc = net_wait(io->fd, POLLIN,
                      ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
    if (rc == -ETIMEDOUT)
        return 0;
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 1;
}

static ssize_t io_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    struct tls_io *io = p;
    for (;;) {
        ssize_t n = send(io->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            io->send_errno = errno;
            return -1;
        }
        if (io->send_timeout_ms == 0) {
            io->send_timed_out = 1;
            return -1;                  /* errno is EAGAIN */
        }
        int rc = net_wait(io->fd, POLLOUT, io->send_timeout_ms);
        if (rc < 0) {
            io->send_timed_out = rc == -ETIMEDOUT;
            errno = wait_errno(rc);
            return -1;
        }
    }
}

static void set_transport(gnutls_session_t s, struct tls_io *io)
{
    gnutls_transport_set_ptr(s, io);
    gnutls_transport_set_pull_function(s, io_pull);
    gnutls_transport_set_pull_timeout_function(s, io_pull_timeout);
    gnutls_transport_set_push_function(s, io_push);
}

/* ------------------------------------------------------------------------
 * Credential caches
 * ---------------------------------------------------------------------- */

struct cached {
    struct cached *next;
    uint64_t hash;
    char *blob;                 /* the PEM input, to compare on a hit */
    size_t len;
    unsigned refs;              /* sessions using it; 0: kept for reuse */
    struct cached **list;       /* the cache it is in */
    gnutls_certificate_credentials_t creds;
    gnutls_datum_t ticket_key;  /* servers: for session resumption */
};

#define KEEP_UNUSED 8           /* unused sets kept for a later reuse */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cached *server_cache, *ca_cache;

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void cached_free(struct cached *c)
{
    gnutls_certificate_free_credentials(c->creds);
    if (c->ticket_key.data)
        gnutls_free(c->ticket_key.data);
    free(c->blob);
    free(c);
}

/* Find an entry with this content and take a reference; cache_mu held. */
static struct cached *cache_find(struct cached *list, uint64_t h,
                                 const char *blob, size_t len)
{
    for (struct cached *c = list; c; c = c->next) {
        if (c->hash == h && c->len == len && memcmp(c->blob, blob, len) == 0) {
            c->refs++;
            return c;
        }
    }
    return NULL;
}

/* Drop unused entries beyond KEEP_UNUSED, oldest (last) first. */
static void cache_trim(struct cached **list)
{
    unsigned unused = 0;
    for (struct cached **pp = list; *pp;) {
        struct cached *c = *pp;
        if (c->refs == 0 && ++unused > KEEP_UNUSED) {
            *pp = c->next;
            cached_free(c);
            continue;
        }
        pp = &c->next;
    }
}

static void errmsg(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rc));
}

/* The PEM pairs joined into one blob: the cache key. */
static char *join_pairs(const struct tls_keypair *kp, size_t n, size_t *len)
{
    size_t total = 0, off = 0;
    for (size_t i = 0; i < n; i++)
        total += kp[i].chain_len + kp[i].key_len + 2;
    char *blob = malloc(total ? total : 1);
    if (!blob)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        memcpy(blob + off, kp[i].chain, kp[i].chain_len);
        off += kp[i].chain_len;
        blob[off++] = '\0';
        memcpy(blob + off, kp[i].key, kp[i].key_len);
        off += kp[i].key_len;
        blob[off++] = '\0';
    }
    *len = total;
    return blob;
}

/* Parse the chain on its own first: GnuTLS 3.7.9 leaks a certificate
   when gnutls_certificate_set_x509_key_mem2 meets a broken PEM chain
   (seen with LeakSanitizer), while the list import fails cleanly. */
static int check_chain(const gnutls_datum_t *chain)
{
    gnutls_x509_crt_t *list;
    unsigned n;
    int rc = gnutls_x509_crt_list_import2(&list, &n, chain,
                                          GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return 0;
}

static struct cached *load_server(const struct tls_keypair *kp, size_t n,
                                  char *blob, size_t len, uint64_t h,
                                  char *err, size_t errlen)
{
    struct cached *c = calloc(1, sizeof *c);
    int rc;
    if (!c || gnutls_certificate_allocate_credentials(&c->creds) < 0) {
        free(c);
        snprintf(err, errlen, "not enough memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        gnutls_datum_t chain = { (unsigned char *)kp[i].chain,
                                 (unsigned)kp[i].chain_len };
        gnutls_datum_t key = { (unsigned char *)kp[i].key,
                               (unsigned)kp[i].key_len };
        rc = check_chain(&chain);
        if (rc >= 0)
            rc = gnutls_certificate_set_x509_key_mem2(c->creds, &chain, &key,
                                                      GNUTLS_X509_FMT_PEM,
                                                      NULL, 0);
        if (rc < 0) {
            char what[32];
            snprintf(what, sizeof what, "certs[%zu]", i + 1);
            errmsg(err, errlen, what, rc);
            gnutls_certificate_free_credentials(c->creds);
            free(c);
            return NULL;
        }
    }
    rc = gnutls_session_ticket_key_generate(&c->ticket_key);
    if (rc < 0)
        c->ticket_key.data = NULL;      /* resumption off, still works */
    c->hash = h;
    c->blob = blob;
    c->len = len;
    c->refs = 1;
    return c;
}

struct tls_creds *tls_server_creds_get(const struct tls_keypair *kp,
                                              size_t n, char *err,
                                              size_t errlen)
{
    size_t len;
    char *blob = join_pairs(kp, n, &len);
    if (!blob) {
        snprintf(err, errlen, "not enough memory");
        return NULL;
    }
    uint64_t h = fnv1a(14695981039346656037ULL, blob, len);
    pthread_mutex_lock(&cache_mu);
    struct cached *c = cache_find(server_cache, h, blob, len);
    if (!c) {
        /* Parsing under the lock keeps one load per distinct set even
           when many handshakes start together. */
        c = load_server(kp, n, blob, len, h, err, errlen);
        if (c) {
            c->next = server_cache;
            c->list = &server_cache;
            server_cache = c;
            blob = NULL;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    free(blob);
    return (struct tls_creds *)c;
}

void tls_creds_put(struct tls_creds *sc)
{
    struct cached *c = (struct cached *)sc;
    pthread_mutex_lock(&cache_mu);
    if (--c->refs == 0)
        cache_trim(c->list);
    pthread_mutex_unlock(&cache_mu);
}

/* The system's trust store, read once per process. */
static gnutls_certificate_credentials_t system_creds;
static int system_rc;
static pthread_once_t system_once = PTHREAD_ONCE_INIT;

static void load_system(void)
{
    system_rc = gnutls_certificate_allocate_credentials(&system_creds);
    if (system_rc >= 0) {
        int n = gnutls_certificate_set_x509_system_trust(system_creds);
        system_rc = n < 0 ? n : 0;
    }
}

/* Credentials that trust no one: for verify = false. */
static gnutls_certificate_credentials_t any_creds;
static pthread_once_t any_once = PTHREAD_ONCE_INIT;

static void load_any(void)
{
    gnutls_certificate_allocate_credentials(&any_creds);
}

/* Client credentials trusting a PEM bundle (text, or a file name), with
   a reference taken. */
static struct cached *ca_creds(const char *pem, size_t len, char *err,
                               size_t errlen)
{
    uint64_t h = fnv1a(14695981039346656037ULL, pem, len);
    pthread_mutex_lock(&cache_mu);
    struct cached *c = cache_find(ca_cache, h, pem, len);
    if (!c) {
        int rc;
        c = calloc(1, sizeof *c);
        if (c)
            c->blob = malloc(len ? len : 1);
        if (!c || !c->blob || gnutls_certificate_allocate_credentials(&c->creds) < 0) {
            if (c)
                free(c->blob);
            free(c);
            pthread_mutex_unlock(&cache_mu);
            snprintf(err, errlen, "not enough memory");
            return NULL;
        }
        if (memmem(pem, len, "-----BEGIN", 10)) {
            gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
            rc = gnutls_certificate_set_x509_trust_mem(c->creds, &d,
                                                       GNUTLS_X509_FMT_PEM);
        } else {
            rc = gnutls_certificate_set_x509_trust_file(c->creds, pem,
                                                        GNUTLS_X509_FMT_PEM);
        }
        if (rc <= 0) {
            snprintf(err, errlen, "cafile: %s", rc == 0
                     ? "no certificate found" : gnutls_strerror(rc));
            gnutls_certificate_free_credentials(c->creds);
            free(c->blob);
            free(c);
            pthread_mutex_unlock(&cache_mu);
            return NULL;
        }
        memcpy(c->blob, pem, len);
        c->len = len;
        c->hash = h;
        c->refs = 1;
        c->next = ca_cache;
        c->list = &ca_cache;
        ca_cache = c;
    }
    pthread_mutex_unlock(&cache_mu);
    return c;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ---------------------------------------------------------------------- */

static int is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

static int set_alpn(gnutls_session_t s, const char *const *alpn, int server)
{
    gnutls_datum_t protos[16];
    unsigned n = 0;
    if (!alpn)
        return 0;
    while (alpn[n] && n < 16) {
        protos[n].data = (unsigned char *)alpn[n];
        protos[n].size = (unsigned)strlen(alpn[n]);
        n++;
    }
    return n ? gnutls_alpn_set_protocols(s, protos, n, server
                   ? GNUTLS_ALPN_SERVER_PRECEDENCE : 0) : 0;
}

/* The system's priorities (its crypto policy), less what is older than
   TLS 1.2. */
#define ONLY_12_13 "-VERS-TLS1.0:-VERS-TLS1.1:-VERS-SSL3.0"

/* Only (EC)DHE key exchanges, for require_ecdhe: plain RSA key transport
   and finite-field DHE groups are removed from the system's defaults. */
#define ECDHE_ONLY "-RSA:-DHE-RSA:-DHE-DSS:-GROUP-FFDHE2048:" \
    "-GROUP-FFDHE3072:-GROUP-FFDHE4096:-GROUP-FFDHE6144:-GROUP-FFDHE8192"

/* Both sets of priorities, parsed once per process (a session only takes
   a reference), instead of once per handshake.  NULL if parsing failed:
   set_priorities then parses per session, to report the error there. */
static gnutls_priority_t prio_plain, prio_ecdhe;
static pthread_once_t prio_once = PTHREAD_ONCE_INIT;

static void load_priorities(void)
{
    const char *where;
    if (gnutls_priority_init2(&prio_plain, ONLY_12_13, &where,
                              GNUTLS_PRIORITY_INIT_DEF_APPEND) < 0)
        prio_plain = NULL;
    if (gnutls_priority_init2(&prio_ecdhe, ONLY_12_13 ":" ECDHE_ONLY, &where,
                              GNUTLS_PRIORITY_INIT_DEF_APPEND) < 0)
        prio_ecdhe = NULL;
}

static int set_priorities(gnutls_session_t s, int ecdhe_only)
{
    const char *where = NULL;
    pthread_once(&prio_once, load_priorities);
    gnutls_priority_t p = ecdhe_only ? prio_ecdhe : prio_plain;
    if (p)
        return gnutls_priority_set(s, p);
    return gnutls_set_default_priority_append(
        s, ecdhe_only ? ONLY_12_13 ":" ECDHE_ONLY : ONLY_12_13, &where, 0);
}

int tls_client_new(gnutls_session_t *out, struct tls_io *io,
                   const struct tls_client_opts *o, struct tls_creds **held,
                   char *err, size_t errlen)
{
    gnutls_certificate_credentials_t creds;
    struct cached *ca = NULL;
    gnutls_session_t s;
    int rc;

    if (!o->verify) {
        pthread_once(&any_once, load_any);
        creds = any_creds;
    } else if (o->cafile) {
        ca = ca_creds(o->cafile, o->cafile_len, err, errlen);
        if (!ca)
            return GNUTLS_E_FILE_ERROR;
        creds = ca->creds;
    } else {
        pthread_once(&system_once, load_system);
        if (system_rc < 0) {
            errmsg(err, errlen, "system trust store", system_rc);
            return system_rc;
        }
        creds = system_creds;
    }
    rc = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL);
    if (rc < 0) {
        errmsg(err, errlen, "gnutls_init", rc);
        if (ca)
            tls_creds_put((struct tls_creds *)ca);
        return rc;
    }
    rc = set_priorities(s, o->require_ecdhe);
    if (rc >= 0)
        rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
    if (rc >= 0 && o->hostname && *o->hostname && !is_ip(o->hostname))
        rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, o->hostname,
                                    strlen(o->hostname));
    if (rc >= 0)
        rc = set_alpn(s, o->alpn, 0);
    /* Unusable session data only costs the resumption: ignore it. */
    if (rc >= 0 && o->session_data)
        (void)gnutls_session_set_data(s, o->session_data, o->session_len);
    if (rc < 0) {
        errmsg(err, errlen, "TLS setup", rc);
        gnutls_deinit(s);
        if (ca)
            tls_creds_put((struct tls_creds *)ca);
        return rc;
    }
    *held = (struct tls_creds *)ca;
    if (o->verify)
        gnutls_session_set_verify_cert(s, o->hostname, 0);
    set_transport(s, io);
    *out = s;
    return 0;
}

int tls_server_new(gnutls_session_t *out, struct tls_io *io,
                   struct tls_creds *sc, const char *const *alpn,
                   char *err, size_t errlen)
{
    struct cached *c = (struct cached *)sc;
    gnutls_session_t s;
    int rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
    if (rc < 0) {
        errmsg(err, errlen, "gnutls_init", rc);
        return rc;
    }
    rc = set_priorities(s, 0);
    if (rc >= 0)
        rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->creds);
    if (rc >= 0 && c->ticket_key.data)
        rc = gnutls_session_ticket_enable_server(s, &c->ticket_key);
    if (rc >= 0)
        rc = set_alpn(s, alpn, 1);
    if (rc < 0) {
        errmsg(err, errlen, "TLS setup", rc);
        gnutls_deinit(s);
        return rc;
    }
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
    set_transport(s, io);
    *out = s;
    return 0;
}

int tls_handshake(gnutls_session_t s, struct tls_io *io, int timeout_ms,
                  char *err, size_t errlen)
{
    int rc;
    io->recv_timeout_ms = io->send_timeout_ms = timeout_ms;
    gnutls_handshake_set_timeout(s, timeout_ms < 0 ? GNUTLS_INDEFINITE_TIMEOUT
                                                   : (unsigned)timeout_ms);
    io->recv_timed_out = io->send_timed_out = 0;
    io->recv_errno = io->send_errno = 0;
    do {
        rc = gnutls_handshake(s);
    } while (rc < 0 && !gnutls_error_is_fatal(rc) &&
             !(rc == GNUTLS_E_AGAIN &&
               (io->recv_timed_out || io->send_timed_out)));
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t txt;
        unsigned status = gnutls_session_get_verify_cert_status(s);
        if (gnutls_certificate_verification_status_print(
                status, GNUTLS_CRT_X509, &txt, 0) >= 0) {
            snprintf(err, errlen, "certificate verification failed: %s",
                     txt.data);
            gnutls_free(txt.data);
            return rc;
        }
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_TIMEDOUT)
        snprintf(err, errlen, "timeout");
    else if (rc < 0)
        snprintf(err, errlen, "%s", gnutls_strerror(rc));
    return rc;
}

int tls_pending(gnutls_session_t s)
{
    return gnutls_record_check_pending(s) > 0;
}

int tls_recv_chunk(gnutls_session_t s, struct tls_io *io, int timeout_ms,
                   struct chunk **out)
{
    *out = NULL;
    io->recv_timeout_ms = timeout_ms;
    struct chunk *c = malloc(sizeof *c + NET_CHUNK_MAX);
    if (!c)
        return GNUTLS_E_MEMORY_ERROR;
    ssize_t n;
    /* GNUTLS_E_AGAIN also comes after a post-handshake message (a TLS 1.3
       session ticket) was processed: only our own timeout ends the call. */
    io->recv_timed_out = 0;
    io->recv_errno = 0;
    do {
        n = gnutls_record_recv(s, c->data, NET_CHUNK_MAX);
    } while (n == GNUTLS_E_INTERRUPTED ||
             n == GNUTLS_E_REHANDSHAKE ||  /* refused: we never renegotiate */
             (n == GNUTLS_E_AGAIN && !io->recv_timed_out));
    if (n <= 0) {
        free(c);
        return (int)n;
    }
    *out = chunk_trim(c, (size_t)n);
    return (int)n;
}

/* GnuTLS's documented retry after GNUTLS_E_AGAIN: NULL, 0 sends the held
   record and returns how many bytes it carried. */
static ssize_t flush_held(gnutls_session_t s, struct tls_io *io)
{
    ssize_t n;
    do {
        n = gnutls_record_send(s, NULL, 0);
    } while (n == GNUTLS_E_INTERRUPTED ||
             (n == GNUTLS_E_AGAIN && !io->send_timed_out));
    return n;
}

int tls_send_all(gnutls_session_t s, struct tls_io *io, const void *buf,
                 size_t len, int timeout_ms, int *held, size_t *sent)
{
    io->send_timeout_ms = timeout_ms;
    io->send_timed_out = 0;
    io->send_errno = 0;
    *sent = 0;
    if (*held != TLS_HELD_NONE) {
        ssize_t n = flush_held(s, io);
        if (n < 0)
            return (int)n;          /* still held, as before */
        if (*held == TLS_HELD_OURS)
            *sent = (size_t)n;      /* it carried our first bytes */
        *held = TLS_HELD_NONE;
    }
    while (*sent < len) {
        ssize_t n = gnutls_record_send(s, (const char *)buf + *sent,
                                       len - *sent);
        if (n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n == GNUTLS_E_AGAIN && !io->send_timed_out)
            n = flush_held(s, io);  /* not our timeout: go on */
        if (n == GNUTLS_E_AGAIN)
            *held = TLS_HELD_OURS;
        if (n < 0)
            return (int)n;
        *sent += (size_t)n;
    }
    return 0;
}

int tls_bye(gnutls_session_t s, struct tls_io *io, int timeout_ms)
{
    int rc;
    io->send_timeout_ms = timeout_ms;
    io->send_timed_out = 0;
    do {
        rc = gnutls_bye(s, GNUTLS_SHUT_WR);
    } while (rc == GNUTLS_E_INTERRUPTED ||
             (rc == GNUTLS_E_AGAIN && !io->send_timed_out));
    return rc;
}

void *tls_session_data(gnutls_session_t s, size_t *len)
{
    gnutls_datum_t d;
    if (gnutls_session_get_data2(s, &d) < 0)
        return NULL;
    void *copy = malloc(d.size ? d.size : 1);
    if (copy)
        memcpy(copy, d.data, d.size);
    *len = d.size;
    gnutls_free(d.data);
    return copy;
}

const char *tls_errname(int err)
{
    const char *name = gnutls_strerror_name(err);
    return name ? name : "GNUTLS_E_UNKNOWN";
}

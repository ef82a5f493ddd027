/* SPDX-License-Identifier: MIT */
/*
 * tls.h -- TLS sessions over our descriptors with GnuTLS, blocking style.
 *
 * Every call here may block (it is made on a worker, or on the Lua thread
 * only where the kernel already has data or room): the transport's pull
 * and push functions wait in poll() with the caller's timeout, exactly
 * like the plain calls in netops.c.  No Lua here.
 *
 * Threads (GnuTLS's rule): one thread may be in gnutls_record_recv while
 * another is in gnutls_record_send or gnutls_bye on the same session;
 * nothing else is shared.  False start, early start and automatic
 * re-authentication are never enabled, so no call does both directions.
 * The handshake runs alone: the session is handed to the socket only once
 * it has finished.
 */
#ifndef PLUTO_TLS_H
#define PLUTO_TLS_H

#include <gnutls/gnutls.h>
#include <stddef.h>

#include "chunkq.h"

/* The transport under a session.  recv_timeout_ms is written only by the
   receiving side before its call, send_timeout_ms by the sending side. */
struct tls_io {
    int fd;
    int recv_timeout_ms, send_timeout_ms;   /* -1: none; 0: don't wait */
    int recv_timed_out, send_timed_out;     /* our wait ran out (not a
                                               GnuTLS retry request) */
    int recv_errno, send_errno;             /* the transport's own failure
                                               in the call under way (a
                                               reset, a broken pipe), or 0 */
    char *pre;                 /* bytes read before starttls, served first */
    size_t prelen, preoff;
};

/* Server certificates: one set per distinct list of PEM pairs, shared by
   every session using it and kept while any does. */
struct tls_keypair {
    const char *chain, *key;
    size_t chain_len, key_len;
};
struct tls_creds;

/* Returns the (possibly cached) set, or NULL with a message in err. */
struct tls_creds *tls_server_creds_get(const struct tls_keypair *kp,
                                              size_t n, char *err,
                                              size_t errlen);
void tls_creds_put(struct tls_creds *c);

struct tls_client_opts {
    const char *hostname;      /* verified against the certificate; SNI */
    const char *cafile;        /* PEM text or a file name; NULL: system */
    size_t cafile_len;
    int verify;                /* 0: accept any certificate (explicit) */
    int require_ecdhe;
    const char *const *alpn;   /* NULL-ended, or NULL */
    const void *session_data;  /* from tls_session_data, for resumption */
    size_t session_len;
};

/* New sessions over io; 0 or a GnuTLS error code (message in err).  A
   client with a cafile gets a reference to its cached trust set in
   *creds (else NULL), to put when the session is gone. */
int tls_client_new(gnutls_session_t *out, struct tls_io *io,
                   const struct tls_client_opts *o, struct tls_creds **creds,
                   char *err, size_t errlen);
int tls_server_new(gnutls_session_t *out, struct tls_io *io,
                   struct tls_creds *c, const char *const *alpn,
                   char *err, size_t errlen);

/* The handshake; 0 or a GnuTLS error code with a message in err (for a
   failed verification, what was wrong with the certificate). */
int tls_handshake(gnutls_session_t s, struct tls_io *io, int timeout_ms,
                  char *err, size_t errlen);

/* One record's worth of plaintext (<= 64 KiB) as a new chunk; returns its
   length, 0 at the end of the stream (close_notify), or a GnuTLS error:
   GNUTLS_E_AGAIN after the timeout, GNUTLS_E_PREMATURE_TERMINATION when
   the stream ended without close_notify (truncated), and after a failure
   of the transport, io->recv_errno says which. */
int tls_recv_chunk(gnutls_session_t s, struct tls_io *io, int timeout_ms,
                   struct chunk **out);
/* Plaintext already decrypted and waiting: a receive would not block. */
int tls_pending(gnutls_session_t s);

/* After GNUTLS_E_AGAIN, GnuTLS holds one encrypted record that must be
   sent before anything else: the caller keeps track of whose bytes it
   carries. */
enum tls_held {
    TLS_HELD_NONE,
    TLS_HELD_OURS,     /* the first bytes of the buffer we go on with */
    TLS_HELD_OTHER     /* bytes of an earlier send that was given up */
};

/* Send all of buf; 0 or a GnuTLS error code (GNUTLS_E_AGAIN when the
   timeout ran out; with timeout 0, when the kernel took no more; after a
   failure of the transport, io->send_errno says which).  *sent
   counts the bytes of buf that GnuTLS has taken.  *held says, on entry,
   what GnuTLS holds from before (flushed first), and on return after
   GNUTLS_E_AGAIN, what it holds now. */
int tls_send_all(gnutls_session_t s, struct tls_io *io, const void *buf,
                 size_t len, int timeout_ms, int *held, size_t *sent);

/* Send close_notify, waiting up to timeout_ms for room (0: never wait).
   0 once it is out, GNUTLS_E_AGAIN if it is still held (call again to
   finish), or another GnuTLS error. */
int tls_bye(gnutls_session_t s, struct tls_io *io, int timeout_ms);

/* Session data to resume with later (malloc'd), or NULL. */
void *tls_session_data(gnutls_session_t s, size_t *len);

/* "GNUTLS_E_..." for an error code. */
const char *tls_errname(int err);

#endif

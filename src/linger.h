/* SPDX-License-Identifier: MIT */
/*
 * linger.h -- the lingering close of a stream socket.
 *
 * close(2) on a TCP socket whose receive queue holds bytes we never read
 * makes Linux send a RST instead of a FIN, and the peer's kernel then
 * throws away whatever its reader had not taken yet -- data that our
 * send() had reported as sent.  A TLS 1.3 client that only sends always
 * has such bytes: the server's session tickets.  So a stream is closed as
 * web servers close a connection: close_notify (TLS) and FIN first, then
 * input read and discarded until the peer's end of stream, an error, or
 * LINGER_MS, and only then close(2).
 *
 * What can be done at once is done on the calling thread without waiting;
 * the rest is a parked job nobody waits for: it costs no thread while the
 * peer is silent.  No Lua here.
 */
#ifndef PLUTO_LINGER_H
#define PLUTO_LINGER_H

#include <gnutls/gnutls.h>

#include "tls.h"

/* How long a closed stream may wait for its peer's end of stream. */
#define LINGER_MS 5000

struct park_reg;

/* Close fd gracefully; takes over the descriptor, its registration with
   the pollers and, for TLS, the session, its transport and its credential
   reference (those may be NULL).  'shut' says our side already sent FIN
   (and close_notify). */
void linger_close(int fd, struct park_reg *reg, gnutls_session_t tls,
                  struct tls_io *io, struct tls_creds *creds, int shut);

#endif

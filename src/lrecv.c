/* SPDX-License-Identifier: MIT */
/*
 * lrecv.c -- receiving on a socket: recv, peek, unrecv, isopen.
 *
 * Ordering invariants (see also lsocket.c):
 *  - at most one receive job (rjob) per socket;
 *  - no fast-path receive while a receive job is in flight, or bytes
 *    would be reordered;
 *  - a receive job is started only when the chunk queue is empty, so its
 *    chunk goes to the back and unrecv'd chunks stay in front;
 *  - a chunk leaves the queue only once it is a Lua string.
 */
#include "lplu.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* A datagram socket answers whoever sent the last datagram. */
static void set_peer(struct plu_socket *s, const struct sockaddr_storage *from,
                     socklen_t len)
{
    if (len == 0 || len > sizeof s->peer->ss)
        return;
    memcpy(&s->peer->ss, from, len);
    s->peer->len = len;
    s->has_peer = 1;
}

/* ------------------------------------------------------------------------
 * Receiving
 * ---------------------------------------------------------------------- */

struct recv_job {
    struct pool_job base;
    struct plu_fd *fd;
    int rc;                    /* bytes, 0 at end of stream, or -errno */
    int tlserr;                /* a GnuTLS error (rc is then -EPROTO) */
    struct chunk *chunk;
    int udp;                   /* a datagram, and who sent it (the room */
    socklen_t fromlen;         /* for the address is there only then)  */
    struct sockaddr_storage from[];
};

/* The receive on either transport, without waiting; GnuTLS's outcomes
   become errno style: nothing there yet (GNUTLS_E_AGAIN) -EAGAIN, a
   failure of the transport its errno (a reset is ECONNRESET, as on plain
   TCP), any other -EPROTO with the GnuTLS error in *tlserr. */
static int receive(struct plu_fd *f, struct chunk **out, int *tlserr)
{
    if (!f->tls)
        return net_recv_chunk_now(f->fd, out);
    int n = tls_recv_chunk(f->tls, f->io, 0, out);
    if (n == GNUTLS_E_AGAIN)
        return -EAGAIN;
    if (n < 0 && f->io->recv_errno)
        return -f->io->recv_errno;
    if (n < 0) {
        *tlserr = n;
        return -EPROTO;
    }
    return n;
}

/* A receive's failure: the stream ended without TLS's close_notify is
   nil, "truncated" (nil first, so that loops end as at a clean end). */
static int fail_recv(lua_State *L, struct plu_socket *s, int rc, int tlserr)
{
    if (rc < 0 && !tlserr)
        s->stream_err = -rc;    /* a later send on the dead session says so */
    if (tlserr == GNUTLS_E_PREMATURE_TERMINATION)
        return plu_fail_word(L, "truncated", "GNUTLS_E_PREMATURE_TERMINATION");
    return tlserr ? plu_fail_tls(L, tlserr) : plu_fail_rc(L, rc);
}

/* On a poller once the descriptor is readable (or on the caller's
   thread, outside coroutines).  A TLS record that has only partly
   arrived stays inside GnuTLS for the next step. */
static int recv_step_job(struct pool_job *job)
{
    struct recv_job *r = (struct recv_job *)job;
    if (r->udp)
        r->rc = net_recvfrom_chunk_now(r->fd->fd, &r->chunk, r->from,
                                       &r->fromlen);
    else
        r->rc = receive(r->fd, &r->chunk, &r->tlserr);
    return r->rc == -EAGAIN ? POOL_AGAIN : POOL_DONE;
}

/* The descriptor is let go of at once, not when the completion is
   taken: a socket closed or collected while its receive was parked must
   close now, even if no scheduler ever polls again. */
static void recv_abort(struct pool_job *job, int err)
{
    struct recv_job *r = (struct recv_job *)job;
    r->rc = err;
    plu_fd_unref(r->fd);
    r->fd = NULL;
}

static void recv_destroy(struct pool_job *job)
{
    struct recv_job *r = (struct recv_job *)job;
    free(r->chunk);
    if (r->fd)
        plu_fd_unref(r->fd);
    free(r);
}

static const struct pool_job_ops recv_ops = {
    .step = recv_step_job,
    .abort = recv_abort,
    .destroy = recv_destroy,
};

/* The deadline of the next wait: the call's (settimeout's "t" limit) or
   the wait's own ("b"), whichever comes first; 0 for none. */
static long long wait_deadline(struct plu_socket *s)
{
    long long d = s->rdeadline;
    if (s->block_ms >= 0) {
        long long b = pool_now_ms() + s->block_ms;
        if (!d || b < d)
            d = b;
    }
    return d;
}

static int start_recv(lua_State *L, struct plu_socket *s)
{
    struct recv_job *r = calloc(1, sizeof *r +
                                (s->udp ? sizeof r->from[0] : 0));
    if (!r)
        return luaL_error(L, "not enough memory");
    pool_job_init(&r->base, &recv_ops, POOL_WAIT, plu_state(L)->loop);
    plu_fd_ref(s->fd);
    r->fd = s->fd;
    r->udp = s->udp;
    pool_job_wait_fd(&r->base, &s->fd->reg, s->fd->fd, POLLIN);
    pool_job_set_deadline(&r->base, wait_deadline(s));
    s->rjob = &r->base;
    plu_start(L, &r->base);
    return 0;
}

/* Take a finished receive job's outcome; returns a result count to hand
   back at once (a failure), or 0 when the chunk queue may now serve. */
/* Take a finished receive job's outcome into the socket: its chunk to
   the back of the buffer, the end of stream or failure into s->eof.
   Returns 0, or the failure (-ETIMEDOUT leaves the socket usable), with
   a GnuTLS error in *tlserr. */
static int take_recv_rc(lua_State *L, struct plu_socket *s, int *tlserr)
{
    struct recv_job *r = (struct recv_job *)s->rjob;
    int rc = r->rc;
    *tlserr = r->tlserr;
    if (r->chunk && s->fd) {
        chunkq_push_back(&s->rq, r->chunk);
        r->chunk = NULL;
        if (r->udp)
            set_peer(s, r->from, r->fromlen);
    }
    plu_release_job(L, &s->rjob);
    if (!s->fd)
        return 0;
    if (rc == 0 && !s->udp)
        s->eof = 1;
    if (rc >= 0)
        return 0;
    /* A datagram socket stays usable after an error (an ICMP refusal,
       say); a stream does not. */
    if (rc != -ETIMEDOUT)
        s->eof = !s->udp;
    return rc;
}

/* The same for recv: a result count to hand back at once (a failure), or
   0 when the chunk queue may now serve. */
static int take_recv(lua_State *L, struct plu_socket *s)
{
    int tlserr;
    int rc = take_recv_rc(L, s, &tlserr);
    return rc < 0 ? fail_recv(L, s, rc, tlserr) : 0;
}

/* recv's result: the bytes (counted as progress for retry_later). */
static int push_bytes(lua_State *L, const char *data, size_t len)
{
    plu_state(L)->received++;
    lua_pushlstring(L, data, len);
    return 1;
}

/* The oldest buffered chunk; it leaves the queue only once it is a Lua
   string, so that a memory error loses nothing. */
static int push_queued(lua_State *L, struct plu_socket *s)
{
    const struct chunk *c = chunkq_peek(&s->rq);
    push_bytes(L, chunk_start(c), c->len);
    free(chunkq_pop(&s->rq));
    return 1;
}

static int push_scratch(lua_State *L)
{
    lua_pushlstring(L, lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

/* Bytes just taken from the kernel into the scratch buffer become the
   result; should making the string fail, they go to the receive buffer
   (empty, since the fast path runs only then) before the error goes on. */
static int push_received(lua_State *L, struct plu_socket *s, char *buf,
                         size_t len)
{
    lua_pushcfunction(L, push_scratch);
    lua_pushlightuserdata(L, buf);
    lua_pushinteger(L, (lua_Integer)len);
    int rc = lua_pcall(L, 2, 1, 0);
    if (rc == LUA_OK) {
        plu_state(L)->received++;
        return 1;
    }
    struct chunk *c = chunk_new(buf, len);
    if (c)
        chunkq_push_back(&s->rq, c);
    return lua_error(L);
}

/* Receive what the kernel holds now into the scratch buffer (a datagram
   also records its sender); -EAGAIN when there is nothing. */
static long recv_now(lua_State *L, struct plu_socket *s, char **data)
{
    char *buf = plu_scratch(L);
    *data = buf;
    if (!s->udp)
        return net_recv_now(s->fd->fd, buf, NET_CHUNK_MAX);
    struct sockaddr_storage from;
    socklen_t len;
    long n = net_recvfrom_now(s->fd->fd, buf, NET_CHUNK_MAX, &from, &len);
    if (n >= 0)
        set_peer(s, &from, len);
    return n;
}

/* The fast paths: what the socket can deliver without waiting.  Return
   recv's result count, or 0 when there is nothing yet. */
static int recv_tls_now(lua_State *L, struct plu_socket *s)
{
    /* Plaintext already decrypted, or records already in the kernel, are
       read here with a pull that never waits (GnuTLS keeps a partial
       record for the next call, which a worker then makes). */
    if (!tls_pending(s->fd->tls) && net_wait(s->fd->fd, POLLIN, 0) != 0)
        return 0;
    struct chunk *c;
    int tlserr = 0;
    int rc = receive(s->fd, &c, &tlserr);
    if (rc > 0) {
        chunkq_push_back(&s->rq, c);
        return push_queued(L, s);
    }
    if (rc == -EAGAIN)
        return 0;
    s->eof = 1;
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    return fail_recv(L, s, rc, tlserr);
}

static int recv_plain_now(lua_State *L, struct plu_socket *s)
{
    char *buf;
    long n = recv_now(L, s, &buf);
    if (n > 0 || (n == 0 && s->udp))
        return push_received(L, s, buf, (size_t)n);
    if (n == -EAGAIN)
        return 0;
    s->eof = !s->udp;
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    return plu_fail_rc(L, (int)n);
}

static int recv_step(lua_State *L, int status, lua_KContext ctx);

/* A receive that found nothing, inside a coroutine, is not handed to a
   worker at once (a thread wake-up each way): it yields plainly, so that
   every scheduler resumes it after the other coroutines had their turn,
   and tries again, since with many connections busy its data has often
   arrived by then.  It keeps doing so while other receives in this
   lua_State deliver data in between, at most RETRY_ROUNDS times; when a
   round passes without any, or the rounds run out, it hands off.  So
   one busy connection and ten thousand idle ones cost each idle one a
   few extra non-blocking reads, once.  The context holds the rounds
   left (low bits) and plu_state.received at the last miss. */
#define RETRY_ROUNDS 8
#define RETRY_BITS 4
#define RETRY_LEFT(ctx) ((ctx) & ((1 << RETRY_BITS) - 1))
#define RETRY_SEEN(n) ((lua_KContext)((n) & 0xffffffUL) << RETRY_BITS)

static int retry_later(lua_State *L, lua_KContext ctx)
{
    if (!lua_isyieldable(L))
        return 0;
    unsigned long received = plu_state(L)->received;
    lua_KContext left = RETRY_LEFT(ctx);
    if (left == 0)                      /* first miss of this wait */
        left = RETRY_ROUNDS;
    else if (ctx - left == RETRY_SEEN(received) || --left == 0)
        return 0;
    return lua_yieldk(L, 0, RETRY_SEEN(received) | left, recv_step);
}

static int recv_step(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    (void)status;
    for (;;) {
        if (s->hjob) {
            if (!pool_job_isdone(s->hjob))
                return plu_await(L, s->hjob, 0, recv_step);
            plu_tls_settle(L, s);
        }
        if (s->rjob) {
            if (!pool_job_isdone(s->rjob))
                return plu_await(L, s->rjob, 0, recv_step);
            int n = take_recv(L, s);
            if (n)
                return n;
        }
        if (chunkq_peek(&s->rq))
            return push_queued(L, s);
        if (!s->fd || s->eof) {
            lua_pushnil(L);
            return 1;
        }
        int n = s->fd->tls ? recv_tls_now(L, s) : recv_plain_now(L, s);
        if (n)
            return n;
        if (retry_later(L, ctx))
            return 0;  /* not reached: lua_yieldk does not return */
        start_recv(L, s);
        ctx = 0;
    }
}

int plu_sock_recv(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    lua_settop(L, 1);
    /* A limit counts from the call, whatever it waits for. */
    s->rdeadline = plu_deadline(s, pool_now_ms());
    return recv_step(L, LUA_OK, 0);
}

int plu_sock_peek(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    const struct chunk *c;
    /* A receive that has finished counts as buffered. */
    if (s->rjob && pool_job_isdone(s->rjob)) {
        int n = take_recv(L, s);
        if (n) {
            lua_pop(L, n);
        }
    }
    c = chunkq_peek(&s->rq);
    if (!c && s->fd && !s->eof && !s->rjob && !s->hjob && !s->fd->tls) {
        /* Whatever the kernel holds now becomes the next chunk (read into
           a chunk made first, so that nothing read can be lost). */
        struct chunk *nc;
        struct sockaddr_storage from;
        socklen_t len;
        int n = s->udp ? net_recvfrom_chunk_now(s->fd->fd, &nc, &from, &len)
                       : net_recv_chunk_now(s->fd->fd, &nc);
        if (n == -ENOMEM)
            return luaL_error(L, "not enough memory");
        if (nc) {
            if (s->udp)
                set_peer(s, &from, len);
            chunkq_push_back(&s->rq, nc);
            c = nc;
        } else if (n != -EAGAIN && !s->udp) {
            s->eof = 1;
        }
    }
    if (!c)
        return 0;
    lua_pushlstring(L, chunk_start(c), c->len);
    return 1;
}

int plu_sock_unrecv(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (!s->fd)
        return 0;               /* closed: nothing is buffered any more */
    struct chunk *c = chunk_new(data, len);
    if (!c)
        return luaL_error(L, "not enough memory");
    chunkq_push_front(&s->rq, c);
    return 0;
}

/* Open until closed, or until the peer has closed and nothing is left to
   read.  Without a receive in flight, a peek at the kernel tells. */
int plu_sock_isopen(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    int open = s->fd != NULL;
    if (open && s->rq.head == NULL && !s->rjob && !s->udp && !s->eof) {
        char byte;
        ssize_t n = recv(s->fd->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR))
            s->eof = 1;
    }
    if (open && s->eof && s->rq.head == NULL &&
        !(s->rjob && pool_job_isdone(s->rjob) &&
          ((struct recv_job *)s->rjob)->chunk))
        open = 0;
    lua_pushboolean(L, open);
    return 1;
}


/* ------------------------------------------------------------------------
 * receive([pattern [, prefix]]): LuaSocket's patterns, on the same buffer
 * as recv, so that the two can be mixed (and a socket handed between this
 * module's API and pluto.luasocket) without losing or copying what was
 * received.  Nothing leaves the buffer until the result is a Lua string.
 * ---------------------------------------------------------------------- */

enum pattern { PAT_LINE, PAT_ALL, PAT_COUNT };

/* Argument 2: "*l"/"l" (the default), "*a"/"a", or a byte count. */
static enum pattern check_pattern(lua_State *L, size_t *count)
{
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, 2);
        luaL_argcheck(L, n >= 0, 2, "a byte count must be >= 0");
        *count = (size_t)n;
        return PAT_COUNT;
    }
    const char *p = luaL_optstring(L, 2, "*l");
    if (*p == '*')
        p++;
    if (strcmp(p, "l") == 0)
        return PAT_LINE;
    if (strcmp(p, "a") == 0)
        return PAT_ALL;
    return (enum pattern)luaL_argerror(L, 2, "invalid receive pattern");
}

/* Where a line ends in the buffer: the byte count up to and including its
   '\n', or 0 if none is there yet.  *scanned: bytes already known to hold
   no '\n' (kept across waits, so each byte is looked at once). */
static size_t line_end(const struct chunkq *q, size_t *scanned)
{
    size_t pos = 0;
    for (const struct chunk *c = q->head; c; c = c->next) {
        if (pos + c->len > *scanned) {
            size_t from = *scanned > pos ? *scanned - pos : 0;
            const char *nl = memchr(chunk_start(c) + from, '\n', c->len - from);
            if (nl)
                return pos + (size_t)(nl - chunk_start(c)) + 1;
        }
        pos += c->len;
    }
    *scanned = q->bytes;
    return 0;
}

/* Push prefix .. the first n bytes of the buffer (without CRs, for a
   line), then consume n + skip bytes.  The string is made first: a memory
   error leaves the buffer as it was. */
static void push_taken(lua_State *L, struct plu_socket *s, size_t n, size_t skip,
                       int strip_cr)
{
    luaL_Buffer b;
    size_t left = n;
    luaL_buffinit(L, &b);
    if (!lua_isnoneornil(L, 3)) {
        lua_pushvalue(L, 3);
        luaL_addvalue(&b);
    }
    for (const struct chunk *c = s->rq.head; c && left; c = c->next) {
        size_t k = c->len < left ? c->len : left;
        const char *p = chunk_start(c);
        if (!strip_cr) {
            luaL_addlstring(&b, p, k);
        } else {
            for (size_t i = 0; i < k; i++)
                if (p[i] != '\r')
                    luaL_addchar(&b, p[i]);
        }
        left -= k;
    }
    luaL_pushresult(&b);
    chunkq_consume(&s->rq, n + skip);
    plu_state(L)->received++;
}

/* nil, message, partial: the partial result is prefix .. everything the
   buffer holds, which is consumed (LuaSocket's rule: pass it back as the
   prefix of the next call). */
static int receive_fail(lua_State *L, struct plu_socket *s, enum pattern pat,
                        const char *word, int rc, int tlserr)
{
    push_taken(L, s, s->rq.bytes, 0, pat == PAT_LINE);
    lua_pushnil(L);
    if (word)
        lua_pushstring(L, word);
    else if (tlserr && tlserr != GNUTLS_E_PREMATURE_TERMINATION)
        lua_pushstring(L, gnutls_strerror(tlserr));
    else if (tlserr)
        lua_pushliteral(L, "truncated");
    else if (rc == -ETIMEDOUT)
        lua_pushliteral(L, "timeout");
    else
        lua_pushstring(L, strerror(-rc));
    lua_rotate(L, -3, 2);               /* nil, message, partial */
    return 3;
}

/* Data the kernel (or the TLS session) holds now, into the buffer: 1 if
   some came, 0 if none is there, or a failure (the end of the stream is
   s->eof, with 1). */
static int fill_now(struct plu_socket *s, int *tlserr)
{
    struct chunk *c = NULL;
    int rc;
    if (s->fd->tls) {
        if (!tls_pending(s->fd->tls) && net_wait(s->fd->fd, POLLIN, 0) != 0)
            return 0;
        rc = receive(s->fd, &c, tlserr);
    } else {
        rc = net_recv_chunk_now(s->fd->fd, &c);
    }
    if (rc == -EAGAIN)
        return 0;
    if (rc == -ENOMEM)
        return rc;
    if (c) {
        chunkq_push_back(&s->rq, c);
        return 1;
    }
    s->eof = 1;
    return rc == 0 ? 1 : (*tlserr ? -EPROTO : rc);
}

/* ctx: bytes of the buffer known to hold no '\n' (a line pattern). */
static int receive_k(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t count = 0, scanned = (size_t)ctx;
    enum pattern pat = check_pattern(L, &count);
    (void)status;
    luaL_argcheck(L, !s->udp, 1, "receive needs a TCP socket (use recv)");
    for (;;) {
        if (s->hjob) {
            if (!pool_job_isdone(s->hjob))
                return plu_await(L, s->hjob, (lua_KContext)scanned, receive_k);
            plu_tls_settle(L, s);
        }
        int tlserr = 0;
        if (s->rjob) {
            if (!pool_job_isdone(s->rjob))
                return plu_await(L, s->rjob, (lua_KContext)scanned, receive_k);
            int rc = take_recv_rc(L, s, &tlserr);
            if (rc < 0)
                return receive_fail(L, s, pat, NULL, rc, tlserr);
        }
        size_t n;
        if (pat == PAT_LINE && (n = line_end(&s->rq, &scanned)) > 0) {
            push_taken(L, s, n - 1, 1, 1);
            return 1;
        }
        if (pat == PAT_COUNT && s->rq.bytes >= count) {
            push_taken(L, s, count, 0, 0);
            return 1;
        }
        if (!s->fd || s->eof) {
            if (pat == PAT_ALL) {           /* "*a" ends at the end */
                push_taken(L, s, s->rq.bytes, 0, 0);
                return 1;
            }
            return receive_fail(L, s, pat, "closed", 0, 0);
        }
        int got = fill_now(s, &tlserr);
        if (got == -ENOMEM)
            return luaL_error(L, "not enough memory");
        if (got < 0)
            return receive_fail(L, s, pat, NULL, got, tlserr);
        if (got > 0)
            continue;
        long long deadline = wait_deadline(s);
        if (deadline && deadline <= pool_now_ms())
            return receive_fail(L, s, pat, "timeout", 0, 0);
        start_recv(L, s);
    }
}

int plu_sock_receive(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t count;
    check_pattern(L, &count);
    if (!lua_isnoneornil(L, 3))
        luaL_checkstring(L, 3);
    lua_settop(L, 3);
    s->rdeadline = plu_deadline(s, pool_now_ms());
    return receive_k(L, LUA_OK, 0);
}

/* s:_buffered(): bytes received and not consumed yet (LuaSocket's dirty):
   the buffer, and what a finished receive holds. */
int plu_sock_buffered(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t n = s->rq.bytes;
    if (s->rjob && pool_job_isdone(s->rjob) && ((struct recv_job *)s->rjob)->chunk)
        n += ((struct recv_job *)s->rjob)->chunk->len;
    if (s->fd && s->fd->tls && !s->rjob)
        n += (size_t)gnutls_record_check_pending(s->fd->tls);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

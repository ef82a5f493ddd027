/* SPDX-License-Identifier: MIT */
/*
 * lsocket.c -- the socket handle: send, recv, peek, unrecv, close and the
 * small queries.
 *
 * Ordering invariants:
 *  - at most one receive job (rjob) and one send job (wjob) per socket;
 *  - no fast-path receive while a receive job is in flight, and no
 *    fast-path send while a send job is, or bytes would be reordered;
 *  - a receive job is started only when the chunk queue is empty, so its
 *    chunk goes to the back and unrecv'd chunks stay in front.
 * The handle holds one reference to its plu_fd until close; each job holds
 * another, so the descriptor number outlives every worker using it.
 */
#include "lplu.h"
#include "linger.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Shared descriptors
 * ---------------------------------------------------------------------- */

struct plu_fd *plu_fd_new(int fd)
{
    struct plu_fd *f = malloc(sizeof *f);
    if (!f) {
        close(fd);
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->fd = fd;
    f->tls = NULL;
    f->io = NULL;
    f->creds = NULL;
    f->stream = 0;
    f->shut = 0;
    return f;
}

void plu_fd_ref(struct plu_fd *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void plu_fd_unref(struct plu_fd *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        if (f->stream) {
            /* No job uses the descriptor or the session any more. */
            linger_close(f->fd, f->tls, f->io, f->creds, f->shut);
            free(f);
            return;
        }
        if (f->tls)
            gnutls_deinit(f->tls);
        if (f->io) {
            free(f->io->pre);
            free(f->io);
        }
        if (f->creds)
            tls_creds_put(f->creds);
        close(f->fd);
        free(f);
    }
}

/* ------------------------------------------------------------------------
 * Results
 * ---------------------------------------------------------------------- */

int plu_fail(lua_State *L, int err)
{
    const char *name = net_errname(err);
    lua_pushnil(L);
    lua_pushstring(L, strerror(err));
    if (name)
        lua_pushstring(L, name);
    else
        lua_pushfstring(L, "E%d", err);
    return 3;
}

int plu_fail_word(lua_State *L, const char *word, const char *name)
{
    lua_pushnil(L);
    lua_pushstring(L, word);
    lua_pushstring(L, name);
    return 3;
}

static const char *gai_name(int gai)
{
    switch (gai) {
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SERVICE: return "EAI_SERVICE";
#ifdef EAI_NODATA
    case EAI_NODATA: return "EAI_NODATA";
#endif
    default: return "EAI_FAIL";
    }
}

int plu_fail_gai(lua_State *L, int gai)
{
    lua_pushnil(L);
    lua_pushstring(L, gai_strerror(gai));
    lua_pushstring(L, gai_name(gai));
    return 3;
}

int plu_fail_tls(lua_State *L, int code)
{
    lua_pushnil(L);
    lua_pushstring(L, gnutls_strerror(code));
    lua_pushstring(L, tls_errname(code));
    return 3;
}

/* A failure of a call with errno-style result rc < 0. */
static int fail_rc(lua_State *L, int rc)
{
    if (rc == -ETIMEDOUT)
        return plu_fail_word(L, "timeout", "ETIMEDOUT");
    return plu_fail(L, -rc);
}

/* ------------------------------------------------------------------------
 * Handles
 * ---------------------------------------------------------------------- */

struct plu_socket *plu_socket_push(lua_State *L, int fd, int server)
{
    struct plu_socket *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    chunkq_init(&s->rq);
    s->timeout_ms = -1;
    luaL_setmetatable(L, PLU_SOCKET_MT);
    s->fd = plu_fd_new(fd);
    if (!s->fd)
        luaL_error(L, "not enough memory");
    s->server = server != 0;
    int type = 0;
    socklen_t tlen = sizeof type;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen);
    s->udp = type == SOCK_DGRAM;
    s->fd->stream = !s->udp;
    if (!s->udp) {
        int one = 1;   /* small messages go out at once, as users expect */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    s->family = getsockname(fd, (struct sockaddr *)&ss, &len) == 0
                    ? ss.ss_family : AF_UNSPEC;
    return s;
}

struct plu_socket *plu_socket_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PLU_SOCKET_MT);
}

/* A datagram socket answers whoever sent the last datagram. */
static void set_peer(struct plu_socket *s, const struct sockaddr_storage *from,
                     socklen_t len)
{
    if (len == 0 || len > sizeof s->peer.ss)
        return;
    memcpy(&s->peer.ss, from, len);
    s->peer.len = len;
    s->has_peer = 1;
}

/* Drop the handle's hold on a finished job. */
static void release_job(lua_State *L, struct pool_job **slot)
{
    struct pool_job *job = *slot;
    *slot = NULL;
    plu_finish(L, job);
    pool_job_unref(job);
}

/* The one path for close, __close and __gc: wake the workers by shutting
   the descriptor, then let go of it; jobs keep their own references. */
void plu_close_socket(struct plu_socket *s)
{
    if (!s->fd)
        return;
    /* close_notify and FIN are sent by the lingering close once the last
       job has let go of the descriptor (one sender at a time). */
    if (s->rjob || s->wjob || s->hjob)
        shutdown(s->fd->fd, SHUT_RDWR);
    plu_fd_unref(s->fd);
    s->fd = NULL;
    s->eof = 1;
    chunkq_clear(&s->rq);
}

static int sock_close(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    plu_close_socket(s);
    return 0;
}

static int sock_gc(lua_State *L)
{
    struct plu_socket *s = lua_touserdata(L, 1);
    plu_close_socket(s);
    /* No coroutine can wait on these any more (they would hold s). */
    if (s->rjob) {
        pool_job_unref(s->rjob);
        s->rjob = NULL;
    }
    if (s->wjob) {
        pool_job_unref(s->wjob);
        s->wjob = NULL;
    }
    if (s->hjob) {
        pool_job_unref(s->hjob);
        s->hjob = NULL;
    }
    return 0;
}

static int sock_tostring(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    if (!s->fd) {
        lua_pushliteral(L, "socket (closed)");
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[NETADDR_IPSTRLEN] = "?";
    int port = -1;
    /* The peer, or for an unconnected UDP socket its own address. */
    if (getpeername(s->fd->fd, (struct sockaddr *)&ss, &len) == 0 ||
        (len = sizeof ss,
         getsockname(s->fd->fd, (struct sockaddr *)&ss, &len) == 0))
        port = netaddr_format((struct sockaddr *)&ss, ip);
    lua_pushfstring(L, "socket (%s, %s, %s:%d)", s->udp ? "udp" : "tcp",
                    s->server ? "server" : "client", ip, port);
    return 1;
}

/* ------------------------------------------------------------------------
 * Receiving
 * ---------------------------------------------------------------------- */

struct recv_job {
    struct pool_job base;
    struct plu_fd *fd;
    int timeout_ms;
    int rc;                    /* bytes, 0 at end of stream, or -errno */
    int tlserr;                /* a GnuTLS error (rc is then -EPROTO) */
    struct chunk *chunk;
    int udp;                   /* a datagram, and who sent it: */
    struct sockaddr_storage from;
    socklen_t fromlen;
};

/* The receive on either transport; GnuTLS's outcomes become errno style,
   a timeout (GNUTLS_E_AGAIN) as -ETIMEDOUT. */
static int receive(struct plu_fd *f, int timeout_ms, struct chunk **out,
                   int *tlserr)
{
    if (!f->tls)
        return net_recv_chunk(f->fd, timeout_ms, out);
    int n = tls_recv_chunk(f->tls, f->io, timeout_ms, out);
    if (n == GNUTLS_E_AGAIN)
        return -ETIMEDOUT;
    if (n < 0) {
        *tlserr = n;
        return -EPROTO;
    }
    return n;
}

static void recv_work(struct pool_job *job)
{
    struct recv_job *r = (struct recv_job *)job;
    if (r->udp)
        r->rc = net_recvfrom_chunk(r->fd->fd, r->timeout_ms, &r->chunk,
                                   &r->from, &r->fromlen);
    else
        r->rc = receive(r->fd, r->timeout_ms, &r->chunk, &r->tlserr);
}

static void recv_cancel(struct pool_job *job)
{
    shutdown(((struct recv_job *)job)->fd->fd, SHUT_RDWR);
}

static void recv_destroy(struct pool_job *job)
{
    struct recv_job *r = (struct recv_job *)job;
    free(r->chunk);
    plu_fd_unref(r->fd);
    free(r);
}

static const struct pool_job_ops recv_ops = {
    recv_work, recv_cancel, recv_destroy
};

static int start_recv(lua_State *L, struct plu_socket *s)
{
    struct recv_job *r = calloc(1, sizeof *r);
    if (!r)
        return luaL_error(L, "not enough memory");
    pool_job_init(&r->base, &recv_ops, POOL_WAIT, plu_state(L)->loop);
    plu_fd_ref(s->fd);
    r->fd = s->fd;
    r->timeout_ms = s->timeout_ms;
    r->udp = s->udp;
    s->rjob = &r->base;
    plu_start(L, &r->base);
    return 0;
}

/* Take a finished receive job's outcome; returns a result count to hand
   back at once (a failure), or 0 when the chunk queue may now serve. */
static int take_recv(lua_State *L, struct plu_socket *s)
{
    struct recv_job *r = (struct recv_job *)s->rjob;
    int rc = r->rc, tlserr = r->tlserr;
    if (r->chunk && s->fd) {
        chunkq_push_back(&s->rq, r->chunk);
        r->chunk = NULL;
        if (r->udp)
            set_peer(s, &r->from, r->fromlen);
    }
    release_job(L, &s->rjob);
    if (rc == 0 && !s->udp)
        s->eof = 1;
    if (rc < 0 && s->fd && rc != -ETIMEDOUT) {
        /* A datagram socket stays usable after an error (an ICMP
           refusal, say); a stream does not. */
        s->eof = !s->udp;
        return tlserr ? plu_fail_tls(L, tlserr) : fail_rc(L, rc);
    }
    if (rc == -ETIMEDOUT && s->fd)
        return fail_rc(L, rc);
    return 0;
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

/* recv's result: the bytes (counted as progress for retry_later). */
static int push_bytes(lua_State *L, const char *data, size_t len)
{
    plu_state(L)->received++;
    lua_pushlstring(L, data, len);
    return 1;
}

static int push_chunk(lua_State *L, struct chunk *c)
{
    push_bytes(L, c->data, c->len);
    free(c);
    return 1;
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
    int rc = receive(s->fd, 0, &c, &tlserr);
    if (rc > 0)
        return push_chunk(L, c);
    if (rc == -ETIMEDOUT)
        return 0;
    s->eof = 1;
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    return tlserr ? plu_fail_tls(L, tlserr) : fail_rc(L, rc);
}

static int recv_plain_now(lua_State *L, struct plu_socket *s)
{
    char *buf;
    long n = recv_now(L, s, &buf);
    if (n > 0 || (n == 0 && s->udp))
        return push_bytes(L, buf, (size_t)n);
    if (n == -EAGAIN)
        return 0;
    s->eof = !s->udp;
    if (n == 0) {
        lua_pushnil(L);
        return 1;
    }
    return fail_rc(L, (int)n);
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
        struct chunk *c = chunkq_pop(&s->rq);
        if (c)
            return push_chunk(L, c);
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

static int sock_recv(lua_State *L)
{
    lua_settop(L, 1);
    return recv_step(L, LUA_OK, 0);
}

static int sock_peek(lua_State *L)
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
        /* Whatever the kernel holds now becomes the next chunk. */
        char *buf;
        long n = recv_now(L, s, &buf);
        if (n > 0 || (n == 0 && s->udp)) {
            struct chunk *nc = chunk_new(buf, (size_t)n);
            if (!nc)
                return luaL_error(L, "not enough memory");
            chunkq_push_back(&s->rq, nc);
            c = nc;
        } else if (n != -EAGAIN && !s->udp) {
            s->eof = 1;
        }
    }
    if (!c)
        return 0;
    lua_pushlstring(L, c->data, c->len);
    return 1;
}

static int sock_unrecv(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    struct chunk *c = chunk_new(data, len);
    if (!c)
        return luaL_error(L, "not enough memory");
    chunkq_push_front(&s->rq, c);
    return 0;
}

/* ------------------------------------------------------------------------
 * Sending
 * ---------------------------------------------------------------------- */

struct send_job {
    struct pool_job base;
    struct plu_fd *fd;
    int timeout_ms;
    int rc;
    int tlserr;                /* a GnuTLS error (rc is then -EPROTO) */
    int held;                  /* TLS: what GnuTLS holds (enum tls_held) */
    int udp;                   /* one datagram, to 'to' if has_to */
    int has_to;
    struct netaddr to;
    unsigned seq;              /* tells one caller's job from the next */
    size_t len, sent;
    char data[];               /* the job's own copy of what is left */
};

/* The send on either transport, errno style (see receive). */
static int transmit(struct plu_fd *f, const char *data, size_t len,
                    int timeout_ms, int *held, size_t *sent, int *tlserr)
{
    if (!f->tls)
        return net_send_all(f->fd, data, len, timeout_ms, sent);
    int rc = tls_send_all(f->tls, f->io, data, len, timeout_ms, held, sent);
    if (rc == GNUTLS_E_AGAIN)
        return -ETIMEDOUT;
    if (rc < 0) {
        *tlserr = rc;
        return -EPROTO;
    }
    return 0;
}

static void send_work(struct pool_job *job)
{
    struct send_job *w = (struct send_job *)job;
    if (w->udp) {
        w->rc = net_sendto(w->fd->fd, w->data, w->len,
                           w->has_to ? (struct sockaddr *)&w->to.ss : NULL,
                           w->to.len, w->timeout_ms);
        return;
    }
    w->rc = transmit(w->fd, w->data, w->len, w->timeout_ms, &w->held,
                     &w->sent, &w->tlserr);
}

static void send_cancel(struct pool_job *job)
{
    shutdown(((struct send_job *)job)->fd->fd, SHUT_RDWR);
}

static void send_destroy(struct pool_job *job)
{
    struct send_job *w = (struct send_job *)job;
    plu_fd_unref(w->fd);
    free(w);
}

static const struct pool_job_ops send_ops = {
    send_work, send_cancel, send_destroy
};

static int send_step(lua_State *L, int status, lua_KContext ctx);

/* Hand what the kernel did not take to a worker; returns its number. */
static unsigned start_send(lua_State *L, struct plu_socket *s, const char *data,
                       size_t len, int held)
{
    struct send_job *w = malloc(sizeof *w + len);
    if (!w)
        luaL_error(L, "not enough memory");
    pool_job_init(&w->base, &send_ops, POOL_WAIT, plu_state(L)->loop);
    plu_fd_ref(s->fd);
    w->fd = s->fd;
    w->timeout_ms = s->timeout_ms;
    w->rc = 0;
    w->tlserr = 0;
    w->held = held;
    w->udp = s->udp;
    w->has_to = s->udp && s->has_peer;
    if (w->has_to)
        w->to = s->peer;
    w->len = len;
    w->sent = 0;
    w->seq = ++s->wseq ? s->wseq : ++s->wseq;   /* never 0 */
    memcpy(w->data, data, len);
    s->werr = 0;
    s->werr_tls = 0;
    s->wjob = &w->base;
    plu_start(L, &w->base);
    return w->seq;
}

/* Let go of a finished send job, remembering its outcome for its owner
   in case another coroutine got to it first. */
static void release_send(lua_State *L, struct plu_socket *s)
{
    struct send_job *w = (struct send_job *)s->wjob;
    s->werr = w->rc;
    s->werr_tls = w->tlserr;
    /* A TLS send that timed out leaves a record inside GnuTLS whose bytes
       were reported as not sent: the next send flushes and discards it. */
    if (w->held != TLS_HELD_NONE)
        s->tls_held = TLS_HELD_OTHER;
    release_job(L, &s->wjob);
}

/* ctx: 0 until this call hands bytes to a worker, then that job's
   sequence number, so that the call can tell its own job from a later
   caller's. */
static int send_step(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    (void)status;
    for (;;) {
        if (s->hjob) {
            if (!pool_job_isdone(s->hjob))
                return plu_await(L, s->hjob, ctx, send_step);
            plu_tls_settle(L, s);
        }
        struct send_job *w = (struct send_job *)s->wjob;
        if (w && !pool_job_isdone(&w->base))
            return plu_await(L, &w->base, ctx, send_step);
        if (ctx != 0) {
            /* Our job is done; someone else may have released it, in
               which case its outcome was kept in werr. */
            if (w && w->seq == (unsigned)ctx)
                release_send(L, s);
            if (!s->fd)
                return plu_fail_word(L, "closed", "EBADF");
            if (s->werr < 0)
                return s->werr_tls ? plu_fail_tls(L, s->werr_tls)
                                   : fail_rc(L, s->werr);
            lua_pushboolean(L, 1);
            return 1;
        }
        if (w)
            release_send(L, s);      /* an earlier caller's, now drained */
        if (!s->fd)
            return plu_fail_word(L, "closed", "EBADF");
        size_t len;
        const char *data = lua_tolstring(L, 2, &len);
        if (s->udp) {
            /* One datagram: it goes whole or not at all. */
            int rc = net_sendto(s->fd->fd, data, len, s->has_peer
                                ? (struct sockaddr *)&s->peer.ss : NULL,
                                s->peer.len, 0);
            if (rc == 0) {
                lua_pushboolean(L, 1);
                return 1;
            }
            if (rc != -EAGAIN)
                return fail_rc(L, rc);
            ctx = start_send(L, s, data, len, TLS_HELD_NONE);
            continue;
        }
        if (s->fd->tls) {
            /* Fast path: what the kernel takes without waiting. */
            size_t sent;
            int tlserr = 0, held = s->tls_held;
            int rc = transmit(s->fd, data, len, 0, &held, &sent, &tlserr);
            s->tls_held = TLS_HELD_NONE;    /* a job takes it over */
            if (rc == 0) {
                lua_pushboolean(L, 1);
                return 1;
            }
            if (rc != -ETIMEDOUT)
                return tlserr ? plu_fail_tls(L, tlserr) : fail_rc(L, rc);
            ctx = start_send(L, s, data + sent, len - sent, held);
            continue;
        }
        long n = net_send_now(s->fd->fd, data, len);
        if (n < 0)
            return fail_rc(L, (int)n);
        if ((size_t)n == len) {
            lua_pushboolean(L, 1);
            return 1;
        }
        ctx = start_send(L, s, data + n, len - (size_t)n, TLS_HELD_NONE);
    }
}

static int sock_send(lua_State *L)
{
    plu_socket_check(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    return send_step(L, LUA_OK, 0);
}

/* ------------------------------------------------------------------------
 * Queries and small operations
 * ---------------------------------------------------------------------- */

static int push_address(lua_State *L, struct plu_socket *s, int peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[NETADDR_IPSTRLEN];
    int rc;
    if (!s->fd)
        return plu_fail_word(L, "closed", "EBADF");
    rc = peer ? getpeername(s->fd->fd, (struct sockaddr *)&ss, &len)
              : getsockname(s->fd->fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return plu_fail(L, errno);
    int port = netaddr_format((struct sockaddr *)&ss, ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, port);
    return 2;
}

static int sock_getpeer(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    if (s->udp && s->has_peer && s->fd) {
        char ip[NETADDR_IPSTRLEN];
        int port = netaddr_format((struct sockaddr *)&s->peer.ss, ip);
        lua_pushstring(L, ip);
        lua_pushinteger(L, port);
        return 2;
    }
    return push_address(L, s, 1);
}

static int sock_getsockname(lua_State *L)
{
    return push_address(L, plu_socket_check(L, 1), 0);
}

static int sock_getside(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    lua_pushstring(L, s->server ? "server" : "client");
    return 1;
}

static int sock_istls(lua_State *L)
{
    lua_pushboolean(L, plu_socket_check(L, 1)->tls);
    return 1;
}

static int sock_isudp(lua_State *L)
{
    lua_pushboolean(L, plu_socket_check(L, 1)->udp);
    return 1;
}

/* Open until closed, or until the peer has closed and nothing is left to
   read.  Without a receive in flight, a peek at the kernel tells. */
static int sock_isopen(lua_State *L)
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

static int sock_shutdown(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    if (!s->fd)
        return plu_fail_word(L, "closed", "EBADF");
    /* TLS: close_notify first, if no send is in flight (one sender). */
    if (s->fd->tls && !s->wjob)
        tls_bye(s->fd->tls, s->fd->io, 0);
    if (shutdown(s->fd->fd, SHUT_WR) < 0)
        return plu_fail(L, errno);
    s->fd->shut = 1;
    lua_pushboolean(L, 1);
    return 1;
}

static int sock_settimeout(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    if (lua_isnoneornil(L, 2)) {
        s->timeout_ms = -1;
    } else {
        lua_Number t = luaL_checknumber(L, 2);
        luaL_argcheck(L, t >= 0 && t < 2e6, 2, "seconds must be >= 0");
        s->timeout_ms = (int)(t * 1000 + 0.5);
    }
    return 0;
}

static const luaL_Reg socket_methods[] = {
    { "send", sock_send },
    { "recv", sock_recv },
    { "peek", sock_peek },
    { "unrecv", sock_unrecv },
    { "close", sock_close },
    { "shutdown", sock_shutdown },
    { "getpeer", sock_getpeer },
    { "getsockname", sock_getsockname },
    { "getside", sock_getside },
    { "istls", sock_istls },
    { "isudp", sock_isudp },
    { "isopen", sock_isopen },
    { "settimeout", sock_settimeout },
    { "starttls", plu_starttls },
    { "setpeer", plu_setpeer },
    { "tlssession", plu_tlssession },
    { NULL, NULL }
};

static const luaL_Reg socket_meta[] = {
    { "__gc", sock_gc },
    { "__close", sock_close },
    { "__tostring", sock_tostring },
    { NULL, NULL }
};

/* With the state userdata at the top of the stack. */
int plu_open_socket(lua_State *L)
{
    luaL_newmetatable(L, PLU_SOCKET_MT);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, socket_meta, 1);
    lua_createtable(L, 0, sizeof socket_methods / sizeof *socket_methods);
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, socket_methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "socket");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    return 0;
}

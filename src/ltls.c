/* SPDX-License-Identifier: MIT */
/*
 * ltls.c -- s:starttls(hostname | certs [, opts]) and s:tlssession().
 *
 * The handshake is one job on the cpu lane: a blocking gnutls_handshake
 * (and, for a client with early_data, the first send) on a worker.  The
 * job owns the session until it is done; whoever then touches the socket
 * first settles it (plu_tls_settle): the session moves into the socket's
 * plu_fd, or the socket is closed.  While the handshake runs, other calls
 * on the socket wait for it, so no byte is read or written around it.
 */
#include "lplu.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define MAX_ALPN 16

/* A handshake's deadline when settimeout set none, on both sides (as web
   servers bound their TLS handshakes: nginx's ssl_handshake_timeout,
   Apache's mod_reqtimeout): a client that never finishes holds its
   socket, and at most one thread, no longer than this. */
#define HANDSHAKE_MS 10000

struct hs_job {
    struct pool_job base;
    struct plu_fd *fd;
    gnutls_session_t session;   /* owned until settled */
    struct tls_io *io;          /* owned until settled */
    struct tls_creds *creds;
    char *early;                /* client: bytes to send once allowed */
    size_t early_len;
    int rc;                     /* 0 or a GnuTLS error */
    const char *errname;        /* instead of GnuTLS's name, or NULL */
    char err[512];
    char alpn[256];             /* the protocol chosen, or "" */
};

static int time_left(struct hs_job *h)
{
    long long left = h->base.deadline - pool_now_ms();
    return left <= 0 ? 0 : left > 1000000000 ? 1000000000 : (int)left;
}

static void timed_out(struct hs_job *h)
{
    h->rc = GNUTLS_E_TIMEDOUT;
    h->errname = "ETIMEDOUT";
    snprintf(h->err, sizeof h->err, "timeout");
}

static void drop_fd(struct hs_job *h)
{
    if (h->fd) {
        plu_fd_unref(h->fd);
        h->fd = NULL;
    }
}

/* On a cpu-lane worker: the whole handshake, one blocking call bounded
   by the deadline (and a client's early data). */
static void hs_work(struct pool_job *job)
{
    struct hs_job *h = (struct hs_job *)job;
    int left = time_left(h);
    if (left == 0) {
        timed_out(h);
        return;
    }
    h->rc = tls_handshake(h->session, h->io, left, h->err, sizeof h->err);
    if (h->rc == GNUTLS_E_AGAIN || h->rc == GNUTLS_E_TIMEDOUT) {
        timed_out(h);
        return;
    }
    /* The transport failed (a reset, a broken pipe): say so, as plain
       TCP would, rather than GnuTLS's "Error in the pull function". */
    int e = h->io->recv_errno ? h->io->recv_errno : h->io->send_errno;
    if (h->rc < 0 && e) {
        h->errname = net_errname(e);
        snprintf(h->err, sizeof h->err, "%s", strerror(e));
    }
    if (h->rc < 0)
        return;
    gnutls_datum_t proto;
    if (gnutls_alpn_get_selected_protocol(h->session, &proto) == 0 &&
        proto.size < sizeof h->alpn) {
        memcpy(h->alpn, proto.data, proto.size);
        h->alpn[proto.size] = '\0';
    }
    if (h->early) {
        size_t sent;
        int held = TLS_HELD_NONE;
        int rc = tls_send_all(h->session, h->io, h->early, h->early_len,
                              time_left(h), &held, &sent);
        if (rc < 0) {
            h->rc = rc;
            snprintf(h->err, sizeof h->err, "early_data: %s",
                     gnutls_strerror(rc));
        }
    }
}

/* A server whose client has not sent its whole first record yet waits,
   parked, until it has: a client that trickles its ClientHello, or sends
   a few bytes and stalls, then costs no thread.  The socket's receive
   low-water mark makes the kernel report it readable only once the
   record is all there (5 bytes of header first); nothing is read here.
   Anything that is not a plausible handshake record goes to the
   handshake at once, which fails it. */
#define RECORD_MAX (5 + 16384 + 2048)

static int set_lowat(int fd, int bytes)
{
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes);
}

static int hs_first_record(struct pool_job *job)
{
    struct hs_job *h = (struct hs_job *)job;
    int fd = h->io->fd, avail = 0;
    unsigned char hdr[5];
    ssize_t n = recv(fd, hdr, sizeof hdr, MSG_PEEK | MSG_DONTWAIT);
    int want = n == (ssize_t)sizeof hdr ? 5 + (hdr[3] << 8 | hdr[4]) : 5;
    if (n <= 0 || (n == (ssize_t)sizeof hdr && (hdr[0] != 22 || want > RECORD_MAX)) ||
        ioctl(fd, FIONREAD, &avail) < 0 || avail >= want || set_lowat(fd, want) < 0) {
        set_lowat(fd, 1);
        return POOL_WORK;
    }
    return POOL_AGAIN;
}

static void hs_cancel(struct pool_job *job)
{
    shutdown(((struct hs_job *)job)->fd->fd, SHUT_RDWR);
}

/* Ended before it ran: the deadline passed while the client was silent
   (or the job was queued), or the socket was closed. */
static void hs_abort(struct pool_job *job, int err)
{
    struct hs_job *h = (struct hs_job *)job;
    if (err == -ETIMEDOUT) {
        timed_out(h);
    } else {
        h->rc = GNUTLS_E_PREMATURE_TERMINATION;
        h->errname = err == -ECANCELED ? "EBADF" : net_errname(-err);
        snprintf(h->err, sizeof h->err, "%s",
                 err == -ECANCELED ? "closed" : strerror(-err));
    }
    /* The session is not used again: let the descriptor go now (a socket
       closed or collected closes at once), not when the completion is
       taken.  Settling closes the socket of a failed handshake anyway. */
    drop_fd(h);
}

static void hs_destroy(struct pool_job *job)
{
    struct hs_job *h = (struct hs_job *)job;
    if (h->session)
        gnutls_deinit(h->session);
    if (h->io) {
        free(h->io->pre);
        free(h->io);
    }
    if (h->creds)
        tls_creds_put(h->creds);
    free(h->early);
    drop_fd(h);
    free(h);
}

static const struct pool_job_ops hs_ops = {
    .work = hs_work,
    .step = hs_first_record,
    .cancel = hs_cancel,
    .abort = hs_abort,
    .destroy = hs_destroy,
};

/* ------------------------------------------------------------------------
 * Settling: install or close
 * ---------------------------------------------------------------------- */

void plu_tls_settle(lua_State *L, struct plu_socket *s)
{
    struct hs_job *h = (struct hs_job *)s->hjob;
    plu_finish(L, &h->base);    /* may raise: then nothing has changed */
    s->hjob = NULL;
    /* The job may live on in a box until collected: let go of the
       descriptor now, so that closing the socket really closes it. */
    drop_fd(h);
    if (h->rc == 0 && s->fd) {
        s->fd->tls = h->session;
        s->fd->io = h->io;
        s->fd->creds = h->creds;
        h->session = NULL;
        h->io = NULL;
        h->creds = NULL;
        s->tls = 1;
    } else {
        plu_close_socket(s);
    }
    /* The job stays referenced by the caller of starttls, if it still
       waits (see starttls_k); this drops the socket's hold. */
    pool_job_unref(&h->base);
}

/* ------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------- */

/* opts.alpn: an array of strings, copied into names[] (NULL-ended). */
static int read_alpn(lua_State *L, int opts, const char **names)
{
    int n = 0;
    names[0] = NULL;
    if (lua_isnoneornil(L, opts))
        return 0;
    if (lua_getfield(L, opts, "alpn") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_argcheck(L, lua_istable(L, -1), opts, "alpn must be an array of strings");
    for (n = 0; n < MAX_ALPN; n++) {
        if (lua_rawgeti(L, -1, n + 1) == LUA_TNIL) {
            lua_pop(L, 1);
            break;
        }
        size_t len;
        const char *p = lua_tolstring(L, -1, &len);
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING && len > 0 && len < 256,
                      opts, "alpn must be an array of non-empty strings");
        luaL_argcheck(L, strlen(p) == len, opts, "an alpn name contains a NUL byte");
        names[n] = p;       /* kept alive by the opts table */
        lua_pop(L, 1);
    }
    names[n] = NULL;
    lua_pop(L, 1);
    return n;
}

static const char *opt_string(lua_State *L, int opts, const char *name,
                              size_t *len)
{
    const char *v = NULL;
    if (lua_isnoneornil(L, opts))
        return NULL;
    int t = lua_getfield(L, opts, name);
    if (t != LUA_TNIL) {
        if (t != LUA_TSTRING)
            luaL_argerror(L, opts, lua_pushfstring(L, "%s must be a string",
                                                   name));
        v = lua_tolstring(L, -1, len);   /* kept alive by the opts table */
    }
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int opts, const char *name, int dflt)
{
    int v = dflt;
    if (lua_isnoneornil(L, opts))
        return dflt;
    int t = lua_getfield(L, opts, name);
    if (t != LUA_TNIL) {
        if (t != LUA_TBOOLEAN)
            luaL_argerror(L, opts, lua_pushfstring(L, "%s must be a boolean",
                                                   name));
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* certs: an array of { chain = PEM, private_key = PEM }. */
static size_t read_certs(lua_State *L, struct tls_keypair *kp, size_t max)
{
    size_t n = luaL_len(L, 2);
    luaL_argcheck(L, n > 0, 2, "certs must be a non-empty array");
    luaL_argcheck(L, n <= max, 2, "too many certificates");
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, 2, (lua_Integer)i + 1) != LUA_TTABLE)
            luaL_argerror(L, 2, lua_pushfstring(L,
                "certs[%d] must be a table with chain and private_key",
                (int)i + 1));
        if (lua_getfield(L, -1, "chain") != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L,
                "certs[%d].chain must be a PEM string", (int)i + 1));
        kp[i].chain = lua_tolstring(L, -1, &kp[i].chain_len);
        if (lua_getfield(L, -2, "private_key") != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L,
                "certs[%d].private_key must be a PEM string", (int)i + 1));
        kp[i].key = lua_tolstring(L, -1, &kp[i].key_len);
        lua_pop(L, 3);      /* the strings stay alive in the certs table */
    }
    return n;
}

/* ------------------------------------------------------------------------
 * starttls
 * ---------------------------------------------------------------------- */

/* Everything received but not yet consumed goes to the handshake first
   (a ClientHello already pulled in by peek or recv). */
static int take_buffered(struct plu_socket *s, struct tls_io *io)
{
    size_t total = s->rq.bytes, off = 0;
    if (total == 0)
        return 0;
    io->pre = malloc(total);
    if (!io->pre)
        return -1;
    struct chunk *c;
    while ((c = chunkq_pop(&s->rq)) != NULL) {
        memcpy(io->pre + off, chunk_start(c), c->len);
        off += c->len;
        free(c);
    }
    io->prelen = total;
    io->preoff = 0;
    return 0;
}

#define BOX 4   /* socket, hostname|certs, opts, box */

static int starttls_k(lua_State *L, int status, lua_KContext ctx);

/* Result of a finished handshake job held in the box at BOX. */
static int starttls_result(lua_State *L, struct hs_job *h)
{
    if (h->rc == 0) {
        lua_pushboolean(L, 1);
        if (h->alpn[0]) {
            lua_pushstring(L, h->alpn);
            return 2;
        }
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, h->err[0] ? h->err : gnutls_strerror(h->rc));
    lua_pushstring(L, h->errname ? h->errname : tls_errname(h->rc));
    return 3;
}

static int starttls_k(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    struct pool_job **box = lua_touserdata(L, BOX);
    struct hs_job *h = (struct hs_job *)*box;
    int n;
    (void)status;
    (void)ctx;
    if (!pool_job_isdone(&h->base))
        return plu_await(L, &h->base, 0, starttls_k);
    if (s->hjob == &h->base)
        plu_tls_settle(L, s);
    else
        plu_finish(L, &h->base);    /* another call settled it for us */
    if (h->rc == 0 && !s->tls) {
        /* The handshake worked, but the socket was closed meanwhile. */
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        lua_pushliteral(L, "EBADF");
        n = 3;
    } else {
        n = starttls_result(L, h);
    }
    plu_box_release(L, BOX);        /* h is not used below */
    return n;
}

/* Wait for receive and send jobs still in flight (an abandoned recv
   would otherwise eat the handshake's bytes). */
static int drain_k(lua_State *L, int status, lua_KContext ctx);

static struct hs_job *new_hs_job(lua_State *L, struct plu_socket *s)
{
    struct pool_job **box = plu_push_box(L, 0);
    struct hs_job *h = calloc(1, sizeof *h);
    struct tls_io *io = calloc(1, sizeof *io);
    if (!h || !io) {
        free(h);
        free(io);
        luaL_error(L, "not enough memory");
    }
    pool_job_init(&h->base, &hs_ops, POOL_CPU, plu_state(L)->loop);
    plu_fd_ref(s->fd);
    h->fd = s->fd;
    h->io = io;
    io->fd = s->fd->fd;
    io->recv_timeout_ms = io->send_timeout_ms = -1;
    pool_job_set_deadline(&h->base, pool_now_ms() +
                          (s->timeout_ms >= 0 ? s->timeout_ms : HANDSHAKE_MS));
    *box = &h->base;            /* the box's reference */
    return h;
}

/* The name to verify and send as SNI: "[::1]" means ::1 (getpeer's
   form), and DNS names compare case-insensitively, so lower case (a
   server picks its certificate by an exact match). */
static const char *plain_hostname(lua_State *L, int idx)
{
    size_t len;
    const char *h = plu_checkcstring(L, idx, &len);
    luaL_Buffer b;
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++)
        luaL_addchar(&b, (char)(h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 32 : h[i]));
    luaL_pushresult(&b);
    lua_replace(L, idx);            /* kept alive in its argument slot */
    return lua_tostring(L, idx);
}

/* A misspelt option would be silently ignored: refuse it. */
static void check_options(lua_State *L, int opts, int server)
{
    static const char *const client[] = { "alpn", "early_data",
        "require_ecdhe", "cafile", "verify", "session", NULL };
    static const char *const srv[] = { "alpn", NULL };
    const char *const *known = server ? srv : client;
    if (lua_isnoneornil(L, opts))
        return;
    lua_pushnil(L);
    while (lua_next(L, opts)) {
        int ok = 0;
        lua_pop(L, 1);
        for (int i = 0; known[i] && !ok; i++)
            ok = plu_is_key(L, -1, known[i]);
        if (!ok)
            luaL_argerror(L, opts, lua_pushfstring(L, "unknown option '%s'%s",
                          luaL_tolstring(L, -1, NULL),
                          server ? " for a server" : ""));
    }
}

/* Set up the session for either side; on failure push false, msg. */
static int setup_session(lua_State *L, struct plu_socket *s, struct hs_job *h)
{
    const char *alpn[MAX_ALPN + 1];
    int rc;
    check_options(L, 3, lua_type(L, 2) != LUA_TSTRING);
    read_alpn(L, 3, alpn);
    if (lua_type(L, 2) == LUA_TSTRING) {
        struct tls_client_opts o;
        memset(&o, 0, sizeof o);
        o.hostname = plain_hostname(L, 2);
        o.cafile = opt_string(L, 3, "cafile", &o.cafile_len);
        luaL_argcheck(L, !o.cafile || strlen(o.cafile) == o.cafile_len, 3,
                      "cafile contains a NUL byte");
        o.verify = opt_bool(L, 3, "verify", 1);
        o.require_ecdhe = opt_bool(L, 3, "require_ecdhe", 0);
        o.alpn = alpn[0] ? alpn : NULL;
        o.session_data = opt_string(L, 3, "session", &o.session_len);
        size_t elen;
        const char *early = opt_string(L, 3, "early_data", &elen);
        if (early && elen) {
            h->early = malloc(elen);
            if (!h->early)
                return luaL_error(L, "not enough memory");
            memcpy(h->early, early, elen);
            h->early_len = elen;
        }
        rc = tls_client_new(&h->session, h->io, &o, &h->creds, h->err,
                            sizeof h->err);
    } else {
        struct tls_keypair kp[64];
        size_t n = read_certs(L, kp, 64);
        luaL_argcheck(L, s->server, 2,
                      "certs given, but this socket did not come from a listener");
        h->creds = tls_server_creds_get(kp, n, h->err, sizeof h->err);
        rc = h->creds ? tls_server_new(&h->session, h->io, h->creds,
                                       alpn[0] ? alpn : NULL, h->err,
                                       sizeof h->err)
                      : GNUTLS_E_CERTIFICATE_ERROR;
    }
    return rc;
}

int plu_starttls(lua_State *L)
{
    int t = lua_type(L, 2);
    struct plu_socket *s = plu_socket_check(L, 1);
    luaL_argcheck(L, !s->udp, 1, "starttls needs a TCP socket");
    luaL_argexpected(L, t == LUA_TSTRING || t == LUA_TTABLE, 2,
                     "hostname or certs");
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    return drain_k(L, LUA_OK, 0);
}

static int drain_k(lua_State *L, int status, lua_KContext ctx)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    (void)status;
    (void)ctx;
    lua_settop(L, 3);
    if (s->tls || s->hjob) {
        lua_pushnil(L);
        return 1;
    }
    if (s->rjob && !pool_job_isdone(s->rjob))
        return plu_await(L, s->rjob, 0, drain_k);
    if (s->wjob && !pool_job_isdone(s->wjob))
        return plu_await(L, s->wjob, 0, drain_k);
    if (s->rjob || s->wjob) {
        /* Let recv/peek take the finished jobs' results first. */
        lua_getfield(L, 1, "peek");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 0);
        if (s->wjob) {
            plu_finish(L, s->wjob);
            pool_job_unref(s->wjob);
            s->wjob = NULL;
        }
    }
    if (!s->fd) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "closed");
        lua_pushliteral(L, "EBADF");
        return 3;
    }
    struct hs_job *h = new_hs_job(L, s);
    int rc = setup_session(L, s, h);
    if (rc == 0 && take_buffered(s, h->io) < 0)
        return luaL_error(L, "not enough memory");
    if (rc < 0) {
        h->rc = rc;
        drop_fd(h);             /* so that close really closes */
        plu_close_socket(s);
        int n = starttls_result(L, h);
        plu_box_release(L, BOX);
        return n;
    }
    pool_job_ref(&h->base);     /* the socket's reference */
    s->hjob = &h->base;
    /* A server whose client has not sent its first record yet waits for
       it parked, without a thread (hs_first_record); the rest runs on the
       cpu lane.  A client speaks first: straight to the lane. */
    if (lua_type(L, 2) == LUA_TTABLE && !h->io->pre)
        pool_job_wait_fd(&h->base, &s->fd->reg, s->fd->fd, POLLIN);
    plu_start(L, &h->base);
    return starttls_k(L, LUA_OK, 0);
}

/* s:tlssession(): data to pass as opts.session to resume later. */
int plu_tlssession(lua_State *L)
{
    struct plu_socket *s = plu_socket_check(L, 1);
    size_t len;
    /* Not while a worker may be inside gnutls_record_recv (a TLS 1.3
       ticket arrives there): the session is not to be shared.  Servers
       have nothing to resume with: their side keeps no tickets. */
    if (!s->fd || !s->fd->tls || s->server ||
        (s->rjob && !pool_job_isdone(s->rjob)))
        return 0;
    void *data = tls_session_data(s->fd->tls, &len);
    if (!data)
        return 0;
    lua_pushlstring(L, data, len);
    free(data);
    return 1;
}

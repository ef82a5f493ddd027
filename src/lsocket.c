/* SPDX-License-Identifier: MIT */
/*
 * lsocket.c -- the socket handle: shared descriptors, results, making,
 * closing and collecting handles, the small queries, and the method
 * table (receiving is in lrecv.c, sending in lsend.c).
 *
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

struct plu_fd *plu_fd_new(int fd, struct park_reg *reg)
{
    struct plu_fd *f = malloc(sizeof *f);
    if (!f) {
        if (reg)
            park_reg_release(reg);
        close(fd);
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->fd = fd;
    park_reg_init(&f->reg);
    if (reg) {
        f->reg = *reg;          /* the registration moves with the fd */
        park_reg_init(reg);
    }
    f->tls = NULL;
    f->io = NULL;
    f->creds = NULL;
    f->stream = 0;
    f->shut = 0;
    f->tcp = 0;
    return f;
}

void plu_fd_ref(struct plu_fd *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void plu_fd_unref(struct plu_fd *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* No job uses the descriptor or the session any more. */
    if (f->stream) {
        linger_close(f->fd, &f->reg, f->tls, f->io, f->creds, f->shut);
    } else {
        park_reg_release(&f->reg);
        close(f->fd);
    }
    free(f);
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

int plu_fail_rc(lua_State *L, int rc)
{
    if (rc == -ETIMEDOUT)
        return plu_fail_word(L, "timeout", "ETIMEDOUT");
    return plu_fail(L, -rc);
}

/* ------------------------------------------------------------------------
 * Handles
 * ---------------------------------------------------------------------- */

/* A handle is made closed, before its descriptor exists, and opened
   afterwards, as liolib.c does with files: a memory error while making
   it then leaves no descriptor open. */
struct plu_socket *plu_socket_new(lua_State *L, int udp)
{
    size_t size = sizeof(struct plu_socket) + (udp ? sizeof(struct netaddr) : 0);
    struct plu_socket *s = lua_newuserdatauv(L, size, 0);
    memset(s, 0, size);
    chunkq_init(&s->rq);
    s->timeout_ms = s->block_ms = -1;
    s->udp = udp != 0;
    luaL_setmetatable(L, PLU_SOCKET_MT);
    return s;
}

void plu_socket_open(lua_State *L, struct plu_socket *s, int fd, int server,
                     struct park_reg *reg)
{
    s->fd = plu_fd_new(fd, reg);
    if (!s->fd)
        luaL_error(L, "not enough memory");
    s->server = server != 0;
    s->fd->stream = s->fd->tcp = !s->udp;
    if (!s->udp) {
        int one = 1;   /* small messages go out at once, as users expect */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    s->family = getsockname(fd, (struct sockaddr *)&ss, &len) == 0
                    ? ss.ss_family : AF_UNSPEC;
}

struct plu_socket *plu_socket_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, PLU_SOCKET_MT);
}

/* Drop the handle's hold on a finished job.  plu_finish may raise (a
   memory error): the job then stays in its slot, to be taken again. */
void plu_release_job(lua_State *L, struct pool_job **slot)
{
    struct pool_job *job = *slot;
    plu_finish(L, job);
    *slot = NULL;
    pool_job_unref(job);
}

/* The one path for close, __close and __gc: end the jobs in flight, so
   that every waiter wakes (a parked one completes at once; a handshake
   blocked on its peer is woken by shutting the descriptor down), then
   let go of the descriptor; jobs keep their own references, and the last
   one closes it (gracefully, see linger.h). */
void plu_close_socket(struct plu_socket *s)
{
    if (!s->fd)
        return;
    if (s->rjob)
        pool_job_cancel(s->rjob);
    if (s->wjob)
        pool_job_cancel(s->wjob);
    if (s->hjob)
        pool_job_cancel(s->hjob);
    park_cancel_reg(&s->fd->reg);      /* selects waiting on it */
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
    /* (Called by hand, getmetatable(s).__gc(x), x may be anything.) */
    struct plu_socket *s = luaL_testudata(L, 1, PLU_SOCKET_MT);
    if (!s)
        return 0;
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
        int port = netaddr_format((struct sockaddr *)&s->peer->ss, ip);
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

/* shutdown([mode]): "send" (the default: no more sending, the peer sees
   the end of the stream), "receive" or "both" (LuaSocket's modes). */
static int sock_shutdown(lua_State *L)
{
    static const char *const modes[] = { "send", "receive", "both", NULL };
    static const int how[] = { SHUT_WR, SHUT_RD, SHUT_RDWR };
    struct plu_socket *s = plu_socket_check(L, 1);
    int mode = plu_checkoption(L, 2, "send", modes);
    if (!s->fd)
        return plu_fail_word(L, "closed", "EBADF");
    /* TLS: close_notify first, if no send is in flight (one sender). */
    if (how[mode] != SHUT_RD && s->fd->tls && !s->wjob)
        tls_bye(s->fd->tls, s->fd->io, 0);
    if (shutdown(s->fd->fd, how[mode]) < 0)
        return plu_fail(L, errno);
    if (how[mode] != SHUT_RD)
        s->fd->shut = 1;
    lua_pushboolean(L, 1);
    return 1;
}

/* settimeout(seconds | nil [, mode]): nil or math.huge, no limit; NaN
   or a negative number, a caller's error.  Mode "t" (the default): the
   limit of each call, counted from the call; "b": of each wait inside a
   call (LuaSocket's block timeout; a call waits once for recv, maybe
   several times for receive patterns and big sends).  Both may be set. */
static int sock_settimeout(lua_State *L)
{
    static const char *const modes[] = { "t", "b", NULL };
    struct plu_socket *s = plu_socket_check(L, 1);
    long long ms = -1;
    if (!lua_isnoneornil(L, 2)) {
        lua_Number t = luaL_checknumber(L, 2);
        luaL_argcheck(L, t == t, 2, "seconds is NaN");
        luaL_argcheck(L, t >= 0, 2, "seconds must be >= 0");
        ms = t >= 1e12 ? -1 : (long long)(t * 1000 + 0.5);
    }
    if (plu_checkoption(L, 3, "t", modes) == 0)
        s->timeout_ms = ms;
    else
        s->block_ms = ms;
    return 0;
}

static const luaL_Reg socket_methods[] = {
    { "send", plu_sock_send },
    { "recv", plu_sock_recv },
    { "peek", plu_sock_peek },
    { "unrecv", plu_sock_unrecv },
    { "receive", plu_sock_receive },
    { "close", sock_close },
    { "shutdown", sock_shutdown },
    { "getpeer", sock_getpeer },
    { "getsockname", sock_getsockname },
    { "getside", sock_getside },
    { "istls", sock_istls },
    { "isudp", sock_isudp },
    { "isopen", plu_sock_isopen },
    { "settimeout", sock_settimeout },
    { "starttls", plu_starttls },
    { "setpeer", plu_setpeer },
    { "tlssession", plu_tlssession },
    { "_bind", plu_udp_bind },
    { "_connect", plu_udp_connect },
    { "_buffered", plu_sock_buffered },
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
    lua_createtable(L, 0, sizeof socket_methods / sizeof *socket_methods + 3);
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, socket_methods, 1);
    plu_open_sockopt(L);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "socket");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    return 0;
}

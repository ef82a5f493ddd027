/*
 * lconnect.c -- socket.connect(host, port): resolve on a worker, then try
 * every address in the resolver's order until one connects.
 *
 * The job lives in a small "box" userdata on the caller's stack while it
 * waits; if the caller is abandoned and collected, the box's __gc cancels
 * the attempt (shuts the descriptor being connected) and the job frees
 * itself when its worker returns.
 */
#include "lplu.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct connect_job {
    struct pool_job base;
    pthread_mutex_t mu;         /* guards cur_fd and cancelled */
    int cur_fd;                 /* the descriptor being connected, or -1 */
    int cancelled;
    char *host;                 /* NULL when 'addr' is already known */
    unsigned port;
    int rc;                     /* the connected fd, or -errno */
    int gai;                    /* a getaddrinfo error, when rc fails so */
};

/* Publish the descriptor being tried, unless the job was cancelled. */
static int set_current(struct connect_job *c, int fd)
{
    int ok;
    pthread_mutex_lock(&c->mu);
    ok = !c->cancelled;
    c->cur_fd = ok ? fd : -1;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

/* Stop publishing a descriptor before closing it, so that a cancel never
   shuts a number that has been reused. */
static void drop_current(struct connect_job *c, int close_it)
{
    pthread_mutex_lock(&c->mu);
    if (close_it && c->cur_fd >= 0)
        close(c->cur_fd);
    c->cur_fd = -1;
    pthread_mutex_unlock(&c->mu);
}

/* One attempt: 0 and c->rc = fd, or -errno. */
static int try_address(struct connect_job *c, const struct sockaddr *sa,
                       socklen_t len)
{
    int fd = net_socket(sa->sa_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    if (!set_current(c, fd)) {
        close(fd);
        return -ECANCELED;
    }
    int rc = net_connect_start(fd, sa, len);
    if (rc == -EINPROGRESS)
        rc = net_connect_finish(fd, -1);
    if (rc < 0) {
        drop_current(c, 1);
        return rc;
    }
    drop_current(c, 0);
    c->rc = fd;
    return 0;
}

static void connect_work(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    struct addrinfo hints, *list = NULL;
    char port[8];
    int rc = -EHOSTUNREACH;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%u", c->port);
    c->gai = getaddrinfo(c->host, port, &hints, &list);
    if (c->gai != 0) {
        c->rc = c->gai == EAI_SYSTEM ? -errno : -ENOENT;
        return;
    }
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        rc = try_address(c, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0 || rc == -ECANCELED)
            break;
    }
    freeaddrinfo(list);
    if (rc < 0)
        c->rc = rc;
}

/* For an IP literal whose connect was started on the Lua thread. */
static void finish_work(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    int rc = net_connect_finish(c->cur_fd, -1);
    if (rc < 0) {
        drop_current(c, 1);
        c->rc = rc;
    } else {
        c->rc = c->cur_fd;
        drop_current(c, 0);
    }
}

static void connect_cancel(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    pthread_mutex_lock(&c->mu);
    c->cancelled = 1;
    if (c->cur_fd >= 0)
        shutdown(c->cur_fd, SHUT_RDWR);
    pthread_mutex_unlock(&c->mu);
}

static void connect_destroy(struct pool_job *job)
{
    struct connect_job *c = (struct connect_job *)job;
    if (c->rc >= 0)
        close(c->rc);           /* connected, but nobody took it */
    if (c->cur_fd >= 0)
        close(c->cur_fd);
    pthread_mutex_destroy(&c->mu);
    free(c->host);
    free(c);
}

static const struct pool_job_ops connect_ops = {
    connect_work, connect_cancel, connect_destroy
};
static const struct pool_job_ops finish_ops = {
    finish_work, connect_cancel, connect_destroy
};

/* ------------------------------------------------------------------------
 * The box that keeps a job alive on the stack
 * ---------------------------------------------------------------------- */

static int box_gc(lua_State *L)
{
    struct pool_job **box = lua_touserdata(L, 1);
    if (*box) {
        pool_job_cancel(*box);
        pool_job_unref(*box);
        *box = NULL;
    }
    return 0;
}

static struct pool_job **push_box(lua_State *L)
{
    struct pool_job **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, PLU_BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return box;
}

static struct connect_job *new_job(lua_State *L, const struct pool_job_ops *ops)
{
    struct connect_job *c = calloc(1, sizeof *c);
    if (!c)
        luaL_error(L, "not enough memory");
    pool_job_init(&c->base, ops, POOL_CONNECT, plu_state(L)->loop);
    pthread_mutex_init(&c->mu, NULL);
    c->cur_fd = -1;
    c->rc = -EINPROGRESS;
    return c;
}

/* ------------------------------------------------------------------------
 * socket.connect
 * ---------------------------------------------------------------------- */

#define BOX_INDEX 4   /* host, port, kind, box */

static const char *gai_name(int gai)
{
    switch (gai) {
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
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

static int connect_k(lua_State *L, int status, lua_KContext ctx)
{
    struct pool_job **box = lua_touserdata(L, BOX_INDEX);
    struct connect_job *c = (struct connect_job *)*box;
    (void)status;
    (void)ctx;
    if (!pool_job_isdone(&c->base))
        return plu_await(L, &c->base, 0, connect_k);
    int rc = c->rc, gai = c->gai;
    c->rc = -ECANCELED;         /* the descriptor is ours now */
    plu_finish(L, &c->base);
    *box = NULL;
    pool_job_unref(&c->base);
    if (rc >= 0) {
        plu_socket_push(L, rc, 0);
        return 1;
    }
    if (gai != 0 && gai != EAI_SYSTEM) {
        lua_pushnil(L);
        lua_pushstring(L, gai_strerror(gai));
        lua_pushstring(L, gai_name(gai));
        return 3;
    }
    return plu_fail(L, -rc);
}

unsigned plu_checkport(lua_State *L, int arg)
{
    lua_Integer port = luaL_checkinteger(L, arg);
    luaL_argcheck(L, port >= 0 && port <= 65535, arg, "port out of range");
    return (unsigned)port;
}

int plu_connect(lua_State *L)
{
    static const char *const kinds[] = { "tcp", "udp", NULL };
    const char *host = luaL_checkstring(L, 1);
    unsigned port = plu_checkport(L, 2);
    int kind = luaL_checkoption(L, 3, "tcp", kinds);
    struct netaddr addr;
    struct connect_job *c;

    luaL_argcheck(L, kind == 0, 3, "UDP sockets are not supported yet");
    lua_settop(L, 3);
    struct pool_job **box = push_box(L);

    if (netaddr_parse_ip(host, port, &addr) == 0) {
        /* An IP literal: start here, wait on a worker only if needed. */
        int fd = net_socket(addr.ss.ss_family, SOCK_STREAM);
        if (fd < 0)
            return plu_fail(L, -fd);
        int rc = net_connect_start(fd, (struct sockaddr *)&addr.ss, addr.len);
        if (rc == 0) {
            plu_socket_push(L, fd, 0);
            return 1;
        }
        if (rc != -EINPROGRESS) {
            close(fd);
            return plu_fail(L, -rc);
        }
        c = new_job(L, &finish_ops);
        c->cur_fd = fd;
    } else {
        c = new_job(L, &connect_ops);
        c->host = strdup(host);
        c->port = port;
        if (!c->host) {
            pool_job_unref(&c->base);
            return luaL_error(L, "not enough memory");
        }
    }
    *box = &c->base;
    plu_start(L, &c->base);
    return connect_k(L, LUA_OK, 0);
}

/* SPDX-License-Identifier: MIT */
/*
 * lselect.c -- socket._select(readers, writers, timeout): which sockets
 * and listeners could be read from (or accepted on) and written to now,
 * waiting for one to be if none is.  What pluto.luasocket's select is
 * made of; any number of descriptors (no FD_SETSIZE).
 *
 * Inside a coroutine the wait is one parked readiness job per object, all
 * with the select's deadline, and the coroutine waits on any of them; the
 * jobs whose descriptor was not ready are cancelled when it returns.
 * Outside a coroutine it is one poll(2).  Readiness, as LuaSocket means it:
 * a socket is readable when its buffer holds data (a chunk, a finished
 * receive, TLS plaintext) or the kernel has data or an end for it; a
 * listener when a client waits; a socket is writable when no send is in
 * flight and the kernel has room.  An object closed before the
 * call is left out; one closed while the call waits is ready.
 */
#include "lplu.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Readiness jobs: parked until the descriptor is ready, then done
 * ---------------------------------------------------------------------- */

struct ready_job {
    struct pool_job base;
    struct plu_fd *fd;
    int entry;                  /* its object's place in scan's fds[] */
    int closed;                 /* cancelled: its object was closed */
};

static int ready_step(struct pool_job *job)
{
    (void)job;
    return POOL_DONE;
}

static void ready_abort(struct pool_job *job, int err)
{
    struct ready_job *r = (struct ready_job *)job;
    r->closed = err == -ECANCELED;
    plu_fd_unref(r->fd);        /* at once: a closed socket closes now */
    r->fd = NULL;
}

static void ready_destroy(struct pool_job *job)
{
    struct ready_job *r = (struct ready_job *)job;
    if (r->fd)
        plu_fd_unref(r->fd);
    free(r);
}

static const struct pool_job_ops ready_ops = {
    .step = ready_step,
    .abort = ready_abort,
    .destroy = ready_destroy,
};

/* The jobs of one select, in a box on the caller's stack: collected with
   it if the caller is abandoned. */
struct jobset {
    int n;
    struct pool_job *jobs[];
};

static int jobset_gc(lua_State *L)
{
    struct jobset *js = luaL_testudata(L, 1, "pluto.socket.jobset");
    if (!js)
        return 0;
    for (int i = 0; i < js->n; i++) {
        pool_job_cancel(js->jobs[i]);
        pool_job_unref(js->jobs[i]);
    }
    js->n = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Looking at the objects
 * ---------------------------------------------------------------------- */

/* What select may watch: its descriptor, and whether it is ready anyway
   (buffered data, a finished operation).  NULL: closed, or not ours. */
static struct plu_fd *watched(lua_State *L, int idx, int writing, int *ready)
{
    struct plu_socket *s = luaL_testudata(L, idx, PLU_SOCKET_MT);
    *ready = 0;
    if (s) {
        if (!s->fd)
            return NULL;
        if (writing) {
            if (s->wjob && !pool_job_isdone(s->wjob))
                return NULL;        /* busy: not writable yet */
        } else {
            *ready = s->rq.head || s->eof ||
                     (s->rjob && pool_job_isdone(s->rjob)) ||
                     (s->fd->tls && !s->rjob && tls_pending(s->fd->tls));
        }
        return s->fd;
    }
    struct plu_listener *l = luaL_testudata(L, idx, PLU_LISTENER_MT);
    if (l && !writing) {
        *ready = l->ajob && pool_job_isdone(l->ajob);
        return l->fd;
    }
    return NULL;
}

/* Arrays 1 (readers) and 2 (writers), as ready now: push two arrays of
   the indexes of the ready ones; returns how many are ready.  With
   'block' >= 0 (outside coroutines), first wait that long in poll(2)
   for one to be.  'fds' has room for every entry.  An object closed
   while the select's job waited on it counts as ready: a call on it
   returns "closed" at once (a server's select loop then sees its
   listener go, rather than wait on without it). */
static int scan(lua_State *L, struct pollfd *fds, int block,
                const struct jobset *js)
{
    int n = 0, ready = 0, nr = (int)lua_rawlen(L, 1), nw = (int)lua_rawlen(L, 2);
    for (int list = 1; list <= 2; list++) {
        int len = list == 1 ? nr : nw;
        for (int i = 1; i <= len; i++) {
            int now;
            lua_rawgeti(L, list, i);
            struct plu_fd *f = watched(L, -1, list == 2, &now);
            lua_pop(L, 1);
            fds[n].fd = f ? f->fd : -1;         /* poll ignores -1 */
            fds[n].events = list == 1 ? POLLIN : POLLOUT;
            fds[n].revents = now ? POLLIN : 0;
            ready += now;
            n++;
        }
    }
    for (int i = 0; i < js->n; i++) {
        struct ready_job *r = (struct ready_job *)js->jobs[i];
        if (pool_job_isdone(&r->base) && r->closed) {
            fds[r->entry].revents = POLLHUP;
            ready++;
        }
    }
    if (!ready) {
        int rc;
        while ((rc = poll(fds, (nfds_t)n, block < 0 ? 0 : block)) < 0 && errno == EINTR)
            ;
        ready = rc > 0 ? rc : 0;
    }
    ready = 0;
    for (int list = 1, k = 0; list <= 2; list++) {
        int len = list == 1 ? nr : nw, found = 0;
        lua_createtable(L, 4, 0);
        for (int i = 1; i <= len; i++, k++) {
            if (fds[k].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)) {
                lua_pushinteger(L, i);
                lua_rawseti(L, -2, ++found);
            }
        }
        ready += found;
    }
    return ready;
}

/* ------------------------------------------------------------------------
 * select
 * ---------------------------------------------------------------------- */

#define SET 4           /* readers, writers, deadline, jobset */

/* Cancel and let go of the select's jobs, taking those that finished. */
static void finish_jobs(lua_State *L)
{
    struct jobset *js = lua_touserdata(L, SET);
    for (int i = 0; i < js->n; i++) {
        pool_job_cancel(js->jobs[i]);   /* a parked one completes now */
        if (pool_job_isdone(js->jobs[i]))
            plu_finish(L, js->jobs[i]);
    }
    for (int i = 0; i < js->n; i++)
        pool_job_unref(js->jobs[i]);
    js->n = 0;
}

/* Park a readiness job for every object (the jobset has room). */
static void park_all(lua_State *L, double deadline)
{
    struct jobset *js = lua_touserdata(L, SET);
    for (int list = 1, k = 0; list <= 2; list++) {
        int len = (int)lua_rawlen(L, list);
        for (int i = 1; i <= len; i++, k++) {
            int now;
            lua_rawgeti(L, list, i);
            struct plu_fd *f = watched(L, -1, list == 2, &now);
            lua_pop(L, 1);
            if (!f)
                continue;
            struct ready_job *r = calloc(1, sizeof *r);
            if (!r)
                luaL_error(L, "not enough memory");
            pool_job_init(&r->base, &ready_ops, POOL_WAIT, plu_state(L)->loop);
            plu_fd_ref(f);
            r->fd = f;
            r->entry = k;
            pool_job_wait_fd(&r->base, &f->reg, f->fd, list == 1 ? POLLIN : POLLOUT);
            if (deadline >= 0)
                pool_job_set_deadline(&r->base, (long long)deadline + 1);
            js->jobs[js->n++] = &r->base;
            pool_submit(&r->base);
        }
    }
}

static int any_done(const struct jobset *js)
{
    for (int i = 0; i < js->n; i++)
        if (pool_job_isdone(js->jobs[i]))
            return 1;
    return 0;
}

static int select_k(lua_State *L, int status, lua_KContext ctx)
{
    struct jobset *js = lua_touserdata(L, SET);
    double deadline = lua_tonumber(L, 3);
    size_t entries = lua_rawlen(L, 1) + lua_rawlen(L, 2);
    (void)status;
    (void)ctx;
    for (;;) {
        lua_settop(L, SET);
        /* Resumed before any of its descriptors was ready: wait on. */
        if (js->n > 0 && !any_done(js))
            return plu_await_any(L, js->jobs, js->n, 0, select_k);
        int yieldable = lua_isyieldable(L);
        double left = deadline < 0 ? -1 : deadline - plu_now_ms();
        int block = 0;
        if (!yieldable)
            block = left < 0 ? -1 : left > 1e9 ? 1000000000 : (int)(left + 0.999);
        struct pollfd *fds = lua_newuserdatauv(L, sizeof *fds * (entries + 1), 0);
        int ready = scan(L, fds, block, js);
        if (ready > 0 || (deadline >= 0 && plu_now_ms() >= deadline)) {
            finish_jobs(L);
            if (yieldable)
                plu_set_sleeping(L, -1);
            if (ready > 0)
                return 2;
            lua_pushliteral(L, "timeout");
            return 3;
        }
        if (!yieldable)
            continue;               /* poll woke for nothing of ours */
        /* In a coroutine, nothing ready: wait for readiness or the
           deadline, parked; with nothing to watch, just sleep. */
        finish_jobs(L);
        park_all(L, deadline);
        if (js->n == 0) {
            if (deadline < 0)
                return luaL_error(L, "select: nothing to wait for, and no timeout");
            plu_set_sleeping(L, deadline);
            return lua_yieldk(L, 0, 0, select_k);
        }
    }
}

/* _select(readers, writers [, timeout]): arrays of sockets and
   listeners; timeout in seconds (nil or negative: no limit). Returns two
   arrays of the indexes of the ready ones, and "timeout" if none was by
   then. */
int plu_select(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Number t = luaL_optnumber(L, 3, -1);
    luaL_argcheck(L, t == t, 3, "timeout is NaN");
    double deadline = t < 0 || t > 1e12 ? -1 : plu_now_ms() + t * 1000;
    lua_settop(L, 2);
    lua_pushnumber(L, deadline);
    size_t entries = lua_rawlen(L, 1) + lua_rawlen(L, 2);
    struct jobset *js = lua_newuserdatauv(L, sizeof *js +
                                          sizeof js->jobs[0] * entries, 0);
    js->n = 0;
    if (luaL_newmetatable(L, "pluto.socket.jobset")) {
        lua_pushcfunction(L, jobset_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return select_k(L, LUA_OK, 0);
}

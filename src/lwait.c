/* SPDX-License-Identifier: MIT */
/*
 * lwait.c -- how a Lua call waits for a job: yield inside a coroutine,
 * block outside one; and how a scheduler learns which coroutines to resume.
 *
 * Three tables live in the registry, one set per lua_State:
 *   WAITERS  job (light userdata) -> the first coroutine waiting on it
 *            (weak values: a coroutine nobody keeps may be collected while
 *            its job runs; the job then completes into nothing);
 *   MORE     job -> array of further coroutines waiting on the same job
 *            (rare: two coroutines receiving on one socket), weak values;
 *   WAITING  coroutine -> true (waits on a job) or the deadline of a sleep
 *            (weak keys); what the scheduler reads to know why a
 *            coroutine yielded;
 *   READY    coroutine -> true: its job finished (weak keys); filled by
 *            _poll, emptied by the schedulers that own the coroutines.
 *
 * A coroutine is never resumed by this code: continuations re-check the
 * job's done flag, so a scheduler that resumes too early (Pluto's busy
 * polling one) only makes the coroutine yield again.
 */
#include "lplu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char WAITERS_KEY, MORE_KEY, WAITING_KEY, READY_KEY, STATE_KEY;

double plu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *plu_checkcstring(lua_State *L, int arg, size_t *len)
{
    size_t n;
    const char *p = luaL_checklstring(L, arg, &n);
    if (strlen(p) != n)
        luaL_argerror(L, arg, "contains a NUL byte");
    if (len)
        *len = n;
    return p;
}

int plu_checkoption(lua_State *L, int arg, const char *def,
                    const char *const names[])
{
    if (!(def && lua_isnoneornil(L, arg)))
        plu_checkcstring(L, arg, NULL);
    return luaL_checkoption(L, arg, def, names);
}

int plu_is_key(lua_State *L, int idx, const char *name)
{
    size_t len;
    const char *k = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len)
                                                    : NULL;
    return k && len == strlen(name) && memcmp(k, name, len) == 0;
}

/* ------------------------------------------------------------------------
 * The per-state object
 * ---------------------------------------------------------------------- */

static int state_gc(lua_State *L)
{
    struct plu_state *st = lua_touserdata(L, 1);
    if (!st || lua_rawlen(L, 1) != sizeof *st)
        return 0;
    while (st->taken) {
        struct pool_job *job = st->taken;
        st->taken = job->next;
        pool_job_unref(job);
    }
    if (st->loop) {
        /* Jobs still running finish into nothing and free themselves. */
        pool_loop_close(st->loop);
        st->loop = NULL;
    }
    free(st->scratch);
    st->scratch = NULL;
    return 0;
}

static void new_weak_table(lua_State *L, void *key, const char *mode)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int plu_state_open(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &STATE_KEY) == LUA_TUSERDATA)
        return 1;
    lua_pop(L, 1);
    struct plu_state *st = lua_newuserdatauv(L, sizeof *st, 0);
    st->loop = NULL;
    st->taken = NULL;
    st->scratch = NULL;
    st->received = 0;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    st->loop = pool_loop_new();
    if (!st->loop)
        luaL_error(L, "pluto.socket: cannot create an eventfd: %s",
                   strerror(errno));
    new_weak_table(L, &WAITERS_KEY, "v");
    new_weak_table(L, &MORE_KEY, "k");
    new_weak_table(L, &WAITING_KEY, "k");
    new_weak_table(L, &READY_KEY, "k");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &STATE_KEY);
    return 1;
}

struct plu_state *plu_state(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

char *plu_scratch(lua_State *L)
{
    struct plu_state *st = plu_state(L);
    if (!st->scratch) {
        st->scratch = malloc(NET_CHUNK_MAX);
        if (!st->scratch)
            luaL_error(L, "not enough memory");
    }
    return st->scratch;
}

/* ------------------------------------------------------------------------
 * Waiting
 * ---------------------------------------------------------------------- */

void plu_start(lua_State *L, struct pool_job *job)
{
    if (lua_isyieldable(L))
        pool_submit(job);
    else
        pool_run_inline(job);
}

/* Record that the running coroutine waits on job (it is on no list yet,
   or is listed already when it yields again). */
static void add_waiter(lua_State *L, struct pool_job *job)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITERS_KEY);
    int t = lua_rawgetp(L, -1, job);
    if (t == LUA_TNIL) {
        lua_pushthread(L);
        lua_rawsetp(L, -3, job);
    } else if (t != LUA_TTHREAD || lua_tothread(L, -1) != L) {
        /* Another coroutine waits on the same job: keep this one in MORE. */
        lua_rawgetp(L, LUA_REGISTRYINDEX, &MORE_KEY);
        lua_pushlightuserdata(L, job);
        if (lua_rawget(L, -2) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);            /* a weak-keyed set of threads */
            lua_createtable(L, 0, 1);
            lua_pushliteral(L, "k");
            lua_setfield(L, -2, "__mode");
            lua_setmetatable(L, -2);
            lua_pushlightuserdata(L, job);
            lua_pushvalue(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushthread(L);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITING_KEY);
    lua_pushthread(L);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    job->udata = job;   /* marks "has waiters to clean up" */
}

int plu_await_any(lua_State *L, struct pool_job *const *jobs, int n,
                  lua_KContext ctx, lua_KFunction k)
{
    for (int i = 0; i < n; i++)
        add_waiter(L, jobs[i]);
    return lua_yieldk(L, 0, ctx, k);
}

int plu_await(lua_State *L, struct pool_job *job, lua_KContext ctx,
              lua_KFunction k)
{
    if (pool_job_isdone(job))
        return k(L, LUA_OK, ctx);
    if (lua_isyieldable(L)) {
        add_waiter(L, job);
        return lua_yieldk(L, 0, ctx, k);
    }
    pool_loop_wait_job(plu_state(L)->loop, job);
    return k(L, LUA_OK, ctx);
}

/* A waiter the job's end concerns: ready to resume, and no longer
   waiting (if it must wait again when resumed, it registers again; if
   not, a plain yield of it must not look like a wait).  The thread is at
   the top; it is popped. */
static void make_ready(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITING_KEY);
    lua_pushvalue(L, -2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &READY_KEY);
    lua_insert(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Move every coroutine waiting on job, but 'except', into READY, and
   forget the job's waiters.  Leaves the stack as it found it. */
static void wake_waiters(lua_State *L, struct pool_job *job, lua_State *except)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITERS_KEY);
    if (lua_rawgetp(L, -1, job) == LUA_TTHREAD &&
        lua_tothread(L, -1) != except)
        make_ready(L);
    else
        lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawsetp(L, -2, job);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &MORE_KEY);
    lua_pushlightuserdata(L, job);
    if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            if (lua_tothread(L, -1) != except) {
                lua_pushvalue(L, -1);
                make_ready(L);
            }
        }
        lua_pushlightuserdata(L, job);
        lua_pushnil(L);
        lua_rawset(L, -4);
    }
    lua_pop(L, 2);
}

void plu_finish(lua_State *L, struct pool_job *job)
{
    struct plu_state *st = plu_state(L);
    /* Off the done list even if nobody waited (it finished before the
       caller looked): a scheduler that never calls _poll must not
       accumulate finished jobs. */
    pool_loop_forget(st->loop, job);
    if (!job->udata)
        return;             /* ran inline, or nobody ever waited on it */
    wake_waiters(L, job, L);    /* may raise: then it is done again */
    job->udata = NULL;
    /* This coroutine no longer waits, nor is it ready for a scheduler. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITING_KEY);
    lua_pushthread(L);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &READY_KEY);
    lua_pushthread(L);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

/* ------------------------------------------------------------------------
 * Boxes: a job kept alive on a caller's stack
 * ---------------------------------------------------------------------- */

static int box_release(lua_State *L, int cancel)
{
    struct pool_job **box = luaL_testudata(L, 1, cancel ? PLU_BOX_MT
                                                        : PLU_BOX_MT ".keep");
    if (box && *box) {
        /* The caller was abandoned: stop the work early if it can be. */
        if (cancel)
            pool_job_cancel(*box);
        pool_job_unref(*box);
        *box = NULL;
    }
    return 0;
}

static int box_gc_cancel(lua_State *L)
{
    return box_release(L, 1);
}

static int box_gc_keep(lua_State *L)
{
    return box_release(L, 0);
}

void plu_box_release(lua_State *L, int idx)
{
    struct pool_job **box = lua_touserdata(L, idx);
    if (*box) {
        pool_job_unref(*box);
        *box = NULL;
    }
}

struct pool_job **plu_push_box(lua_State *L, int cancel)
{
    struct pool_job **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, cancel ? PLU_BOX_MT : PLU_BOX_MT ".keep")) {
        lua_pushcfunction(L, cancel ? box_gc_cancel : box_gc_keep);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return box;
}

/* ------------------------------------------------------------------------
 * What the scheduler calls
 * ---------------------------------------------------------------------- */

/* _poll([timeout_ms]): wait up to timeout_ms (default: forever; NaN is
   an error, infinity forever) for finished jobs, move their coroutines
   into the READY set and return it.  The caller removes the coroutines
   it resumes.  A memory error while moving them leaves the jobs not yet
   handed over in st->taken, for the next call: none is lost. */
static int l_poll(lua_State *L)
{
    struct plu_state *st = plu_state(L);
    lua_Number t = luaL_optnumber(L, 1, -1);
    luaL_argcheck(L, t == t, 1, "timeout is NaN");
    int timeout = t < 0 || t > 1e9 ? -1 : (int)(t + 0.999);

    if (!st->taken) {
        if (timeout != 0 && pool_loop_wait(st->loop, timeout) < 0)
            return luaL_error(L, "poll: %s", strerror(errno));
        st->taken = pool_loop_take(st->loop);
    }
    while (st->taken) {
        struct pool_job *job = st->taken;
        if (job->udata)
            wake_waiters(L, job, NULL);     /* may raise: job stays */
        /* The waiter still finds the job on its socket and will call
           plu_finish, which then has nothing left to forget. */
        st->taken = job->next;
        pool_job_unref(job);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &READY_KEY);
    return 1;
}

/* _waitstate(co): nil if co did not yield for an operation, true if it
   waits on a job, or the deadline (ms, _now's clock) of its sleep. */
static int l_waitstate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITING_KEY);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    return 1;
}

/* _pollfd(): the descriptor that becomes readable when an operation of
   this state finishes (its completion eventfd), for a host's own loop. */
static int l_pollfd(lua_State *L)
{
    lua_pushinteger(L, pool_loop_fd(plu_state(L)->loop));
    return 1;
}

/* _pending(): whether finished operations wait for _poll. */
static int l_pending(lua_State *L)
{
    struct plu_state *st = plu_state(L);
    lua_pushboolean(L, st->taken != NULL || pool_loop_pending(st->loop));
    return 1;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, plu_now_ms());
    return 1;
}

/* _gettime(): the system's clock (wall time), in seconds since the epoch
   with its fraction, as LuaSocket's gettime gives it. */
static int l_gettime(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
    return 1;
}

/* ------------------------------------------------------------------------
 * sleep(ms)
 * ---------------------------------------------------------------------- */

void plu_set_sleeping(lua_State *L, double deadline)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &WAITING_KEY);
    lua_pushthread(L);
    if (deadline < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, deadline);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    double deadline = lua_tonumber(L, 2);
    if (plu_now_ms() < deadline)
        return lua_yieldk(L, 0, 0, sleep_k);
    plu_set_sleeping(L, -1);
    return 0;
}

static int l_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    /* (NaN fails every comparison.) */
    luaL_argcheck(L, ms >= 0 && ms < 1e12, 1, "must be a finite number of "
                  "milliseconds >= 0");
    if (lua_isyieldable(L)) {
        double deadline = plu_now_ms() + ms;
        lua_settop(L, 1);
        lua_pushnumber(L, deadline);
        if (ms == 0)
            return lua_yield(L, 0);  /* just let the others run */
        plu_set_sleeping(L, deadline);
        return lua_yieldk(L, 0, 0, sleep_k);
    }
    struct timespec ts = { (time_t)(ms / 1000),
                           (long)((ms - 1000 * (double)(time_t)(ms / 1000))
                                  * 1e6) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

static const luaL_Reg wait_funcs[] = {
    { "_poll", l_poll },
    { "_waitstate", l_waitstate },
    { "_now", l_now },
    { "_gettime", l_gettime },
    { "_pollfd", l_pollfd },
    { "_pending", l_pending },
    { "sleep", l_sleep },
    { NULL, NULL }
};

/* Adds the functions above to the module table at -2, state at -1. */
void plu_open_wait(lua_State *L)
{
    lua_pushvalue(L, -1);
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    luaL_setfuncs(L, wait_funcs, 1);
    lua_pop(L, 1);
}

/* SPDX-License-Identifier: MIT */
/*
 * lmodule.c -- luaopen_pluto_socket: the module table, config/stats,
 * bind, and the names Pluto programs use ("pluto:socket").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "lplu.h"

#include <dlfcn.h>
#include <string.h>

void plu_open_wait(lua_State *L);

/* ------------------------------------------------------------------------
 * config / stats
 * ---------------------------------------------------------------------- */

static const char *const lane_fields[POOL_NLANES][2] = {
    { "wait_threads", "wait_stack" },
    { "connect_threads", "connect_stack" },
    { "dns_threads", "dns_stack" },
    { "cpu_threads", "cpu_stack" },
};

/* Read an integer field of table 1 into *out if present. */
static void opt_field(lua_State *L, const char *name, lua_Integer lo,
                      lua_Integer hi, lua_Integer *out)
{
    int t = lua_getfield(L, 1, name);
    if (t != LUA_TNIL) {
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < lo || v > hi) {
            const char *msg = lua_pushfstring(L,
                "field '%s' must be an integer in %I..%I", name, lo, hi);
            luaL_argerror(L, 1, msg);
        }
        *out = v;
    }
    lua_pop(L, 1);
}

static void push_config(lua_State *L, const struct pool_config *cfg)
{
    lua_createtable(L, 0, 2 * POOL_NLANES + 1);
    for (int i = 0; i < POOL_NLANES; i++) {
        lua_pushinteger(L, cfg->max_threads[i]);
        lua_setfield(L, -2, lane_fields[i][0]);
        lua_pushinteger(L, (lua_Integer)cfg->stack_size[i]);
        lua_setfield(L, -2, lane_fields[i][1]);
    }
    lua_pushinteger(L, cfg->idle_ms);
    lua_setfield(L, -2, "idle_ms");
    lua_pushinteger(L, cfg->spin_us);
    lua_setfield(L, -2, "spin_us");
}

/* A misspelt field would be silently ignored: refuse it. */
static void check_known_fields(lua_State *L)
{
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int known = plu_is_key(L, -2, "idle_ms") || plu_is_key(L, -2, "spin_us");
        for (int i = 0; i < POOL_NLANES && !known; i++)
            known = plu_is_key(L, -2, lane_fields[i][0]) ||
                    plu_is_key(L, -2, lane_fields[i][1]);
        if (!known) {
            lua_pushvalue(L, -2);
            luaL_argerror(L, 1, lua_pushfstring(L, "unknown field '%s'",
                                                luaL_tolstring(L, -1, NULL)));
        }
        lua_pop(L, 1);
    }
}

/* config([t]): set the pool's limits named in t; returns them all. */
static int l_config(lua_State *L)
{
    struct pool_config cfg;
    pool_get_config(&cfg);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        check_known_fields(L);
        for (int i = 0; i < POOL_NLANES; i++) {
            lua_Integer n = cfg.max_threads[i], st = (lua_Integer)cfg.stack_size[i];
            opt_field(L, lane_fields[i][0], 1, 30000, &n);
            opt_field(L, lane_fields[i][1], 32 * 1024, 64 * 1024 * 1024, &st);
            cfg.max_threads[i] = (unsigned)n;
            cfg.stack_size[i] = (size_t)st;
        }
        lua_Integer idle = cfg.idle_ms, spin = cfg.spin_us;
        opt_field(L, "idle_ms", 1, 3600 * 1000, &idle);
        opt_field(L, "spin_us", 0, 1000, &spin);
        cfg.idle_ms = (unsigned)idle;
        cfg.spin_us = (unsigned)spin;
        if (pool_set_config(&cfg) != 0)
            return luaL_argerror(L, 1, "invalid pool limits");
    }
    push_config(L, &cfg);
    return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static int l_stats(lua_State *L)
{
    struct pool_lane_stats st[POOL_NLANES];
    pool_get_stats(st);
    lua_createtable(L, 0, POOL_NLANES);
    for (int i = 0; i < POOL_NLANES; i++) {
        lua_createtable(L, 0, 6);
        set_int(L, "threads", st[i].threads);
        set_int(L, "idle", st[i].idle);
        set_int(L, "busy", st[i].busy);
        set_int(L, "queued", st[i].queued);
        set_int(L, "parked", st[i].parked);
        set_int(L, "completed", (lua_Integer)st[i].completed);
        lua_setfield(L, -2, pool_lane_name((enum pool_lane)i));
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * bind, in Lua: it only strings listen, accept and the scheduler together
 * ---------------------------------------------------------------------- */

static const char bind_source[] =
    "local socket = ...\n"
    "local function closing(callback, s)\n"
    "  local ok, err = pcall(callback, s)\n"
    "  s:close()\n"
    "  if not ok then error(err, 0) end\n"
    "end\n"
    "return function(sched, addr, callback, opts)\n"
    "  if type(sched) ~= 'table' or type(sched.add) ~= 'function' then\n"
    "    error(\"bad argument #1 to 'bind' (scheduler expected, got \"..type(sched)..\")\", 2)\n"
    "  end\n"
    "  if type(callback) ~= 'function' then\n"
    "    error(\"bad argument #3 to 'bind' (function expected, got \"..type(callback)..\")\", 2)\n"
    "  end\n"
    "  local l, err = socket.listen(addr, opts)\n"
    "  if not l then error('bind: cannot listen on '..tostring(addr)..': '..err, 2) end\n"
    "  local acceptor = sched:add(function()\n"
    "    while true do\n"
    "      local s, err = l:accept()\n"
    "      if s then\n"
    "        sched:add(closing, callback, s)  -- no closure per client\n"
    "      elseif err == 'closed' then\n"
    "        return\n"
    "      else\n"
    "        socket.sleep(50)  -- out of descriptors or memory: retry soon\n"
    "      end\n"
    "    end\n"
    "  end)\n"
    "  return acceptor, l\n"
    "end\n";

static void add_bind(lua_State *L)
{
    if (luaL_loadbuffer(L, bind_source, sizeof bind_source - 1, "=bind") != 0)
        lua_error(L);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_setfield(L, -2, "bind");
}

/* ------------------------------------------------------------------------
 * Names and loading
 * ---------------------------------------------------------------------- */

/* "pluto:socket" and "pluto:scheduler" load pluto.socket and
   pluto.scheduler.  Preloaders rather than package.loaded entries, so that
   error messages name functions 'pluto.socket.connect', not by the alias. */
static void add_pluto_names(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    luaL_loadstring(L, "return require 'pluto.socket'");
    lua_setfield(L, -2, "pluto:socket");
    luaL_loadstring(L, "return require 'pluto.scheduler'");
    lua_setfield(L, -2, "pluto:scheduler");
    lua_pop(L, 1);
}

/* Workers may still run this library's code after lua_close (a resolver
   cannot be interrupted), so keep it mapped for the life of the process. */
static void pin_library(void)
{
    Dl_info info;
    if (dladdr((void *)pin_library, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

static const luaL_Reg module_funcs[] = {
    { "connect", plu_connect },
    { "listen", plu_listen },
    { "resolve", plu_resolve },
    { "udpserver", plu_udpserver },
    { "config", l_config },
    { "stats", l_stats },
    { "_select", plu_select },
    { "_lookup", plu_lookup },
    { "_reverse", plu_reverse },
    { "_gethostname", plu_gethostname },
    { "_udp", plu_udp_open },
    { NULL, NULL }
};

int luaopen_pluto_socket(lua_State *L)
{
    pin_library();
    plu_state_open(L);
    plu_open_socket(L);
    plu_open_listener(L);
    lua_newtable(L);
    lua_pushvalue(L, -2);
    luaL_setfuncs(L, module_funcs, 1);
    lua_insert(L, -2);              /* module, state */
    plu_open_wait(L);
    lua_pop(L, 1);                  /* module */
    add_bind(L);
    lua_pushliteral(L, "pluto.socket " PACKAGE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    add_pluto_names(L);
    return 1;
}

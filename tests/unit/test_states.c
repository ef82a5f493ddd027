/* SPDX-License-Identifier: MIT */
/* test_states.c -- several lua_States, each in its own thread, use the
   module at once: each one's completions resume only its own coroutines,
   and closing a state with work in flight neither crashes nor hangs.

   Needs PLUTO_CPATH (a package.cpath finding pluto.socket) and
   PLUTO_LPATH (a package.path finding pluto.scheduler). */
#include <check.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define NSTATES 4
#define NCLIENTS 40     /* per state, as in the chunk below */

/* Each state runs an echo server and 40 clients under its own scheduler,
   then leaves one coroutine waiting in recv (and one in accept) while the
   state is closed.  Returns "ok" or an error message. */
static const char chunk[] =
    "local socket = require 'pluto.socket'\n"
    "local Scheduler = require 'pluto.scheduler'\n"
    "local id = ...\n"
    "local sched = Scheduler.new()\n"
    "local _, l = socket.bind(sched, '127.0.0.1:0', function(s)\n"
    "  while true do local d = s:recv(); if not d then break end; s:send(d) end\n"
    "end)\n"
    "local _, port = l:getsockname()\n"
    "local done = 0\n"
    "for i = 1, 40 do\n"
    "  sched:add(function()\n"
    "    local c = assert(socket.connect('127.0.0.1', port))\n"
    "    for j = 1, 5 do\n"
    "      local msg = ('state %d client %d msg %d'):format(id, i, j)\n"
    "      assert(c:send(msg))\n"
    "      local got = ''\n"
    "      while #got < #msg do got = got .. assert(c:recv()) end\n"
    "      assert(got == msg, 'crossed data: ' .. got)\n"
    "    end\n"
    "    c:close()\n"
    "    done = done + 1\n"
    "    if done == 40 then l:close() end\n"
    "  end)\n"
    "end\n"
    "sched:run()\n"
    "assert(done == 40)\n"
    /* Work left in flight for lua_close: a recv and an accept. */
    "local l2 = assert(socket.listen('127.0.0.1:0'))\n"
    "local c2 = assert(socket.connect('127.0.0.1', select(2, l2:getsockname())))\n"
    "local s2 = assert(l2:accept())\n"
    "KEEP = { coroutine.create(function() return s2:recv() end),\n"
    "         coroutine.create(function() return l2:accept() end), c2, l2 }\n"
    "coroutine.resume(KEEP[1]); coroutine.resume(KEEP[2])\n"
    "assert(coroutine.status(KEEP[1]) == 'suspended')\n"
    "return 'ok'\n";

static void set_path(lua_State *L, const char *field, const char *env)
{
    const char *v = getenv(env);
    if (!v)
        return;
    lua_getglobal(L, "package");
    lua_pushstring(L, v);
    lua_setfield(L, -2, field);
    lua_pop(L, 1);
}

static void *run_state(void *arg)
{
    long id = (long)arg;
    char *result;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    set_path(L, "cpath", "PLUTO_CPATH");
    set_path(L, "path", "PLUTO_LPATH");
    if (luaL_loadstring(L, chunk) != LUA_OK) {
        result = strdup(lua_tostring(L, -1));
    } else {
        lua_pushinteger(L, id);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK)
            result = strdup(lua_tostring(L, -1));
        else
            result = strdup(lua_tostring(L, -1));
    }
    lua_close(L);   /* with a recv and an accept still in flight */
    return result;
}

START_TEST(states_in_threads)
{
    pthread_t t[NSTATES];
    ck_assert_msg(getenv("PLUTO_CPATH") != NULL, "PLUTO_CPATH not set");
    for (long i = 0; i < NSTATES; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, run_state, (void *)i), 0);
    for (int i = 0; i < NSTATES; i++) {
        void *r;
        pthread_join(t[i], &r);
        ck_assert_msg(r && strcmp(r, "ok") == 0, "state %d: %s", i,
                      r ? (char *)r : "(null)");
        free(r);
    }
}
END_TEST

int main(void)
{
    /* Both ends of every client's connection are in this process, plus a
       few per state: skip (77, as automake counts it) below that. */
    struct rlimit rl;
    rlim_t need = NSTATES * (2 * NCLIENTS + 16);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < need) {
        printf("SKIP: needs %lu open descriptors (%d states with %d connections "
               "each); the limit is %lu\n", (unsigned long)need, NSTATES,
               NCLIENTS, (unsigned long)rl.rlim_cur);
        return 77;
    }
    Suite *s = suite_create("states");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, states_in_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

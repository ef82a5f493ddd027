/* SPDX-License-Identifier: MIT */
/*
 * luahost.c -- a minimal stand-in for the lua5.4 interpreter, built only
 * for ThreadSanitizer runs (configure --enable-sanitizer=thread).
 *
 * Why: an instrumented socket.so needs the sanitizer runtime in the
 * process.  Under ASan, tests/run-lua preloads libasan into the stock
 * lua5.4.  Under TSan that does not work: every program started with
 * libtsan preloaded but not built for it (the /bin/sh behind io.popen and
 * os.execute, so testlib's watchdog and every tool a test starts) crashes
 * at once.  This program is compiled with -fsanitize=thread itself, links
 * the system's liblua5.4, and needs no LD_PRELOAD, so children run clean.
 *
 * Usage, as far as the tests need lua5.4's:
 *   luahost [-e STAT] [-l NAME] [--] [SCRIPT [ARGS...]]
 * SCRIPT "-" reads standard input.  The global `arg` and the chunk's `...`
 * are set as lua5.4 sets them.  Exit status: 0, or 1 after an error (with
 * a traceback on stderr), or whatever os.exit() says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static const char *progname = "luahost";

/* Message handler: add a traceback to the error message. */
static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)",
		                      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Call the function below its nargs arguments on top of the stack. */
static int docall(lua_State *L, int nargs, int nresults)
{
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	int status = lua_pcall(L, nargs, nresults, base);
	lua_remove(L, base);
	return status;
}

static int report(lua_State *L, int status)
{
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error)");
		fflush(stderr);
		lua_pop(L, 1);
	}
	return status;
}

/* require(name) and set the global of the same name, as lua5.4 -l does. */
static int dolibrary(lua_State *L, const char *name)
{
	lua_getglobal(L, "require");
	lua_pushstring(L, name);
	int status = docall(L, 1, 1);
	if (status == LUA_OK)
		lua_setglobal(L, name);
	return report(L, status);
}

static int usage(void)
{
	fprintf(stderr, "usage: %s [-e stat] [-l name] [--] [script [args]]\n",
	        progname);
	return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	int script = 0;      /* index of the script in argv, 0 if none */
	int i;

	if (argv[0] && argv[0][0])
		progname = argv[0];

	/* First pass: find where the script is, check the options. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			if (i + 1 < argc)
				script = i + 1;
			break;
		}
		if (strcmp(argv[i], "-e") == 0 || strcmp(argv[i], "-l") == 0) {
			if (++i >= argc)
				return usage();
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return usage();
		script = i;    /* a name, or "-" for stdin */
		break;
	}

	lua_State *L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "%s: cannot create a Lua state\n", progname);
		return EXIT_FAILURE;
	}
	luaL_openlibs(L);

	/* arg: the script at 0, its arguments at 1.., the rest negative. */
	int base = script ? script : argc;
	lua_createtable(L, argc - base > 0 ? argc - base : 0, base + 1);
	for (i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - base);
	}
	lua_setglobal(L, "arg");

	int status = LUA_OK;
	int end = script ? script : argc;
	for (i = 1; i < end && status == LUA_OK; i++) {
		if (strcmp(argv[i], "-e") == 0) {
			status = luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]),
			                         "=(command line)");
			status = report(L, status == LUA_OK ? docall(L, 0, 0) : status);
			i++;
		} else if (strcmp(argv[i], "-l") == 0) {
			status = dolibrary(L, argv[i + 1]);
			i++;
		}
	}

	if (status == LUA_OK && script) {
		const char *fname = argv[script];
		if (strcmp(fname, "-") == 0)
			fname = NULL;    /* stdin */
		status = luaL_loadfile(L, fname);
		if (status == LUA_OK) {
			int n = argc - script - 1;
			luaL_checkstack(L, n, "too many arguments to script");
			for (i = script + 1; i < argc; i++)
				lua_pushstring(L, argv[i]);
			status = docall(L, n, 0);
		}
		report(L, status);
	}

	lua_close(L);
	return status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}

# SPDX-License-Identifier: MIT
# pluto_deps.m4 -- find Lua 5.4, GnuTLS and Check.          -*- Autoconf -*-
#
# Every failure names the Debian package to install, because that is what
# a person reading the error needs to know.

# PLUTO_MISSING(WHAT, DEBIAN-PACKAGE, [NOTE])
# -------------------------------------------
# Stop configure: WHAT is missing.  When pkg-config itself is absent, say
# so first: it is the usual reason why everything else "is missing".
AC_DEFUN([PLUTO_MISSING], [
  AS_IF([test -z "$PKG_CONFIG"],
    [AC_MSG_ERROR([$1 not found, and pkg-config is not installed, so it could not be looked up.
  On Debian: apt-get install pkg-config $2]m4_ifval([$3], [
  $3]))],
    [AC_MSG_ERROR([$1 not found.
  On Debian: apt-get install $2
  (or set PKG_CONFIG_PATH, or the matching *_CFLAGS and *_LIBS variables)]m4_ifval([$3], [
  $3]))])
])

# PLUTO_CHECK_LUA
# ---------------
# Lua 5.4 headers (LUA_CFLAGS), its library (LUA_LIBS: only for test host
# programs, the module itself never links liblua), the interpreter (LUA),
# and the install directories luacmoddir and luamoddir.
AC_DEFUN([PLUTO_CHECK_LUA], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])

  AC_ARG_WITH([lua-include],
    [AS_HELP_STRING([--with-lua-include=DIR],
      [directory holding lua.h for Lua 5.4 (skips pkg-config for the compile flags)])],
    [], [with_lua_include=])

  AS_CASE([$with_lua_include],
    [yes|no], [AC_MSG_ERROR([--with-lua-include needs a directory])],
    [""], [
      PKG_CHECK_MODULES([LUA], [lua5.4 >= 5.4.0], [],
        [PLUTO_MISSING([Lua 5.4 (pkg-config module lua5.4)], [liblua5.4-dev])])
    ], [
      LUA_CFLAGS="-I$with_lua_include"
      dnl LUA_LIBS is only used by the test host program; take it from
      dnl pkg-config when it can tell, else the Debian library name.
      AS_IF([test -z "$LUA_LIBS"], [
        AS_IF([test -n "$PKG_CONFIG" && $PKG_CONFIG --exists lua5.4 2>/dev/null],
          [LUA_LIBS=`$PKG_CONFIG --libs lua5.4`],
          [LUA_LIBS=-llua5.4])
      ])
      AC_SUBST([LUA_CFLAGS])
      AC_SUBST([LUA_LIBS])
    ])

  dnl Whatever the source of the flags, make sure they give Lua 5.4 headers.
  AC_CACHE_CHECK([for Lua 5.4 headers], [pluto_cv_lua_headers], [
    pluto_save_CPPFLAGS=$CPPFLAGS
    CPPFLAGS="$CPPFLAGS $LUA_CFLAGS"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#if LUA_VERSION_NUM != 504
#error not Lua 5.4
#endif
]], [[lua_State *L = 0; (void)L;]])],
      [pluto_cv_lua_headers=yes], [pluto_cv_lua_headers=no])
    CPPFLAGS=$pluto_save_CPPFLAGS
  ])
  AS_IF([test "x$pluto_cv_lua_headers" != xyes],
    [AC_MSG_ERROR([Lua 5.4 headers (lua.h, lauxlib.h, lualib.h) not usable with LUA_CFLAGS='$LUA_CFLAGS'.
  On Debian: apt-get install liblua5.4-dev])])

  dnl The interpreter runs the Lua tests and the demo.
  AC_ARG_VAR([LUA], [the Lua 5.4 interpreter used by the tests])
  AC_PATH_PROGS([LUA], [lua5.4 lua-5.4 lua54 lua])
  AS_IF([test -z "$LUA"],
    [AC_MSG_ERROR([no Lua 5.4 interpreter found (needed by make check).
  On Debian: apt-get install lua5.4   (or set LUA=/path/to/lua5.4)])])
  AC_MSG_CHECKING([whether $LUA is Lua 5.4])
  AS_IF([test "x`$LUA -e 'io.write(_VERSION)' 2>/dev/null`" = "xLua 5.4"],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([$LUA is not Lua 5.4.
  On Debian: apt-get install lua5.4   (or set LUA=/path/to/lua5.4)])])

  dnl Install directories.  The defaults follow the prefix (so that
  dnl distcheck and --prefix=$HOME work) and are on stock Lua's search
  dnl path for the usual prefixes /usr/local and /usr.
  AC_ARG_WITH([lua-cmoddir],
    [AS_HELP_STRING([--with-lua-cmoddir=DIR],
      [where C modules go; pluto/socket.so is installed below it @<:@LIBDIR/lua/5.4@:>@])],
    [luacmoddir=$withval], [luacmoddir='${libdir}/lua/5.4'])
  AC_ARG_WITH([lua-moddir],
    [AS_HELP_STRING([--with-lua-moddir=DIR],
      [where Lua modules go; pluto/*.lua are installed below it @<:@DATADIR/lua/5.4@:>@])],
    [luamoddir=$withval], [luamoddir='${datadir}/lua/5.4'])
  AS_CASE([$luacmoddir], [yes|no|""], [AC_MSG_ERROR([--with-lua-cmoddir needs a directory])])
  AS_CASE([$luamoddir], [yes|no|""], [AC_MSG_ERROR([--with-lua-moddir needs a directory])])
  AC_SUBST([luacmoddir])
  AC_SUBST([luamoddir])
])

# PLUTO_CHECK_GNUTLS
# ------------------
AC_DEFUN([PLUTO_CHECK_GNUTLS], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  PKG_CHECK_MODULES([GNUTLS], [gnutls >= 3.7.0], [],
    [PLUTO_MISSING([GnuTLS >= 3.7 (pkg-config module gnutls)], [libgnutls28-dev])])
])

# PLUTO_CHECK_CHECK
# -----------------
# The Check unit-test framework, needed only by make check.  Required by
# default so that a build cannot silently run fewer tests; --without-check
# builds without the unit tests (and says so).  Sets the conditional
# HAVE_CHECK.
AC_DEFUN([PLUTO_CHECK_CHECK], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  AC_ARG_WITH([check],
    [AS_HELP_STRING([--without-check],
      [do not build the Check unit tests (make check then runs only the Lua tests)])],
    [], [with_check=yes])
  AS_IF([test "x$with_check" != xno], [
    PKG_CHECK_MODULES([CHECK], [check >= 0.11], [],
      [PLUTO_MISSING([Check >= 0.11 (pkg-config module check, the unit-test framework)],
        [check],
        [Check is needed by make check; configure --without-check to build without the unit tests.])])
  ], [
    AC_MSG_WARN([--without-check: the C unit tests will not be built or run])
  ])
  AM_CONDITIONAL([HAVE_CHECK], [test "x$with_check" != xno])
])

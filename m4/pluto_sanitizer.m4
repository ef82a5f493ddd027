# SPDX-License-Identifier: MIT
# pluto_sanitizer.m4 -- --enable-sanitizer=address|thread.  -*- Autoconf -*-
#
# PLUTO_SANITIZER
# ---------------
# Adds the sanitizer's flags to CFLAGS and LDFLAGS (so that every object,
# the module, the core library and the unit test programs are built with
# it).  The Lua interpreter lua5.4 is not instrumented, so the Lua tests
# need the sanitizer runtime in the process some other way:
#   address: the test wrapper LD_PRELOADs the shared runtimes found here
#            into lua5.4;
#   thread:  preloading libtsan makes every uninstrumented child (the
#            /bin/sh of io.popen and os.execute) crash, so the tests run
#            in tests/luahost instead, a small interpreter built with TSan.
#
# Substitutes SANITIZER ("", "address" or "thread") and SANITIZER_PRELOAD
# (colon-separated runtime paths for LD_PRELOAD); defines the conditional
# LUA_HOST (build tests/luahost).
AC_DEFUN([PLUTO_SANITIZER], [
  AC_REQUIRE([AC_PROG_CC])
  AC_ARG_ENABLE([sanitizer],
    [AS_HELP_STRING([--enable-sanitizer=KIND],
      [build for testing with a sanitizer: address (ASan+UBSan) or thread (TSan)])],
    [], [enable_sanitizer=no])

  SANITIZER=
  SANITIZER_PRELOAD=
  AS_CASE([$enable_sanitizer],
    [no], [],
    [address], [
      SANITIZER=address
      pluto_san_flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
      pluto_san_libs="libasan.so libubsan.so"
    ],
    [thread], [
      SANITIZER=thread
      pluto_san_flags="-fsanitize=thread -g -O1"
      pluto_san_libs=
    ],
    [AC_MSG_ERROR([--enable-sanitizer takes address or thread, not '$enable_sanitizer'])])

  AS_IF([test -n "$SANITIZER"], [
    CFLAGS="$CFLAGS $pluto_san_flags"
    LDFLAGS="$LDFLAGS $pluto_san_flags"
    AC_MSG_CHECKING([whether $CC can build with -fsanitize=$SANITIZER])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [[return 0;]])],
      [AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([$CC cannot build with $pluto_san_flags (GCC's sanitizer runtimes come with build-essential on Debian)])])
    for pluto_lib in $pluto_san_libs; do
      AC_MSG_CHECKING([for the shared runtime $pluto_lib])
      pluto_path=`$CC -print-file-name=$pluto_lib 2>/dev/null`
      dnl When the compiler does not know the file it echoes the bare name.
      AS_IF([test -n "$pluto_path" && test "x$pluto_path" != "x$pluto_lib" && test -f "$pluto_path"],
        [AC_MSG_RESULT([$pluto_path])],
        [AC_MSG_RESULT([no])
         AC_MSG_ERROR([$CC -print-file-name=$pluto_lib found nothing: the tests need the shared sanitizer runtime to preload into lua5.4])])
      SANITIZER_PRELOAD="$SANITIZER_PRELOAD${SANITIZER_PRELOAD:+:}$pluto_path"
    done
  ])
  AC_SUBST([SANITIZER])
  AC_SUBST([SANITIZER_PRELOAD])
  AM_CONDITIONAL([LUA_HOST], [test "x$SANITIZER" = xthread])
])

# SPDX-License-Identifier: MIT
# pluto_pthread.m4 -- find how to build threaded code.       -*- Autoconf -*-
#
# PLUTO_CHECK_PTHREAD
# -------------------
# Sets and substitutes PTHREAD_CFLAGS and PTHREAD_LIBS.  Tries, in order:
#   -pthread   the compiler driver option (GCC, Clang): it defines _REENTRANT
#              where the system wants it and links the thread library;
#   -lpthread  for compilers without that option.
# Fails configure if neither links a program that starts and joins a thread.
AC_DEFUN([PLUTO_CHECK_PTHREAD], [
  AC_CACHE_CHECK([how to build with POSIX threads], [pluto_cv_pthread], [
    pluto_cv_pthread=no
    pluto_save_CFLAGS=$CFLAGS
    pluto_save_LIBS=$LIBS
    for pluto_try in -pthread -lpthread; do
      AS_CASE([$pluto_try],
        [-pthread], [CFLAGS="$pluto_save_CFLAGS -pthread"])
      LIBS="$pluto_try $pluto_save_LIBS"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[
#include <pthread.h>
static void *run(void *arg) { return arg; }
]], [[
pthread_t t;
void *r = 0;
if (pthread_create(&t, 0, run, &t) != 0) return 1;
if (pthread_join(t, &r) != 0) return 1;
return r != &t;
]])], [pluto_cv_pthread=$pluto_try])
      CFLAGS=$pluto_save_CFLAGS
      LIBS=$pluto_save_LIBS
      test "x$pluto_cv_pthread" != xno && break
    done
  ])
  AS_CASE([$pluto_cv_pthread],
    [-pthread],  [PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread],
    [-lpthread], [PTHREAD_CFLAGS=; PTHREAD_LIBS=-lpthread],
    [AC_MSG_ERROR([cannot build a program with POSIX threads (tried -pthread and -lpthread); on Debian install build-essential])])
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])

/* SPDX-License-Identifier: MIT */
/*
 * cbench.h -- the helpers that the benchmark's C programs (cpeer.c,
 * ctools.c) share.  Each program defines BENCH_PROG (its name, for
 * messages) before including this; both are built as one file each by
 * tests/bench/run, so the helpers are static.
 */
#ifndef PLUTO_CBENCH_H
#define PLUTO_CBENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Print "PROG: message" on stderr and exit 1. */
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(BENCH_PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Tell the runner the port through PORTFILE (written under a temporary
   name, then renamed, so a reader never sees half a number). */
static void write_port(const char *portfile, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
    FILE *f = fopen(tmp, "w");
    if (!f)
        die("%s: %s", tmp, strerror(errno));
    fprintf(f, "%d\n", port);
    fclose(f);
    rename(tmp, portfile);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * torture.c -- allocation-failure torture for pluto.socket, in the manner
 * of Lua's own ltests.c and curl's torture tests.
 *
 * Runs a Lua script over and over, each time in a fresh lua_State whose
 * allocator fails from the Nth allocation on, for N = 1, 2, 3 ... until a
 * run finishes without reaching the Nth allocation.  Each run must end in
 * success, or in a Lua error saying "not enough memory"; anything else is
 * a failure.  After each run the state is closed and the process's
 * descriptors must come back to what they were before (within a bounded
 * wait: sockets are closed gracefully on a worker for a short while).
 * A run that takes too long is a hang: an alarm ends the program.
 * Memory leaks are LeakSanitizer's to find, in the ASan build.
 *
 * Usage:
 *   torture [options] SCRIPT [ARGS...]
 *     -m MODE   once   only the Nth allocation fails (Lua's emergency
 *                      collection then retries it, so this mostly tests
 *                      a full collection at every allocation);
 *               from   the Nth and every later one fail (the default);
 *               burst  the Nth and the next B-1 fail, then memory is back
 *     -b B      burst length (default 10)
 *     -s N      first N (default 1)
 *     -k K      step between Ns (default 1)
 *     -r RUNS   instead of -k: a step giving about RUNS runs, from the
 *               allocation count of the warm-up run
 *     -e N      last N at most (default: no limit)
 *     -t SEC    time limit of one run, close and descriptor check
 *               included (default 30)
 *     -w MS     how long the descriptors may take to come back (2000)
 *     -x COUNT  stop after COUNT failed runs (default 10)
 *     -v        one line per run
 *     -1        a single run, failing nothing unless the script asks:
 *               TORTURE.fail(k [, count]) makes the k-th counted
 *               allocation after the call fail, and the count-1 after
 *               it (default 1; TORTURE.fail(0) stops failing).  For
 *               reproducers of a few lines.  The warm-up run before it
 *               (which sets the descriptor baseline) ignores the calls.
 * Counted allocations are those that need memory (a new block, or a
 * block that grows), from the start of the script's main chunk (the
 * libraries are opened and the script compiled before), through
 * lua_close.  Before the first N a warm-up run without failures measures
 * how many allocations a run makes and sets the descriptor baseline.
 *
 * The script gets ARGS as its `...`, and a global TORTURE = { mode =
 * "once"|"from"|"burst"|"script", n = N (0 in the warm-up run), burst =
 * B, warmup = true in the warm-up run, fail = see -1 }.  package.cpath
 * is PLUTO_CPATH and package.path PLUTO_LPATH when they are set (else
 * Lua's defaults, which follow LUA_CPATH/LUA_PATH), as in
 * tests/unit/test_states.c.
 *
 * Output: a line per failed run (every run with -v), then one summary
 * line "torture: ...".  Exit status 0 when every run ended well, 1 when
 * some did not, 2 for a usage or setup error, 3 for a hang.
 */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#else
#define HAVE_ASAN 0
#endif

/* ------------------------------------------------------------------------
 * The failing allocator
 * ---------------------------------------------------------------------- */

enum mode { MODE_ONCE, MODE_FROM, MODE_BURST };
static const char *const mode_names[] = { "once", "from", "burst" };

struct ctl {
    enum mode mode;
    unsigned long n;          /* first allocation to fail; 0: none */
    unsigned long burst;
    unsigned long count;      /* counted allocations in this run */
    unsigned long hits;       /* failures injected in this run */
    int active;               /* counting (and failing) now */
    int scripted;             /* -1: only TORTURE.fail injects */
};

static int should_fail(const struct ctl *c, unsigned long k)
{
    if (c->n == 0 || k < c->n)
        return 0;
    switch (c->mode) {
    case MODE_ONCE: return k == c->n;
    case MODE_FROM: return 1;
    case MODE_BURST: return k - c->n < c->burst;
    }
    return 0;
}

/* Called when a run's first failure is injected: a place for a debugger's
   breakpoint ("break torture_first_failure") to see who allocated. */
__attribute__((noinline)) void torture_first_failure(unsigned long k);
__attribute__((noinline)) void torture_first_failure(unsigned long k)
{
    __asm__ volatile("" : : "r"(k) : "memory");
}

/* Lua's allocator contract: free on nsize 0; for a new block ptr is NULL
   and osize tells the kind of object, not a size. */
static void *torture_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct ctl *c = ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (c->active && (ptr == NULL || nsize > osize)) {
        unsigned long k = ++c->count;
        if (should_fail(c, k)) {
            if (c->hits++ == 0)
                torture_first_failure(k);
            return NULL;
        }
    }
    return realloc(ptr, nsize);
}

/* ------------------------------------------------------------------------
 * Warnings (an error in a __gc metamethod is one)
 * ---------------------------------------------------------------------- */

static char warn_buf[512];
static size_t warn_len;
static int warn_bad;          /* a warning not about memory, this run */
static char warn_last[512];

static void torture_warn(void *ud, const char *msg, int tocont)
{
    (void)ud;
    size_t len = strlen(msg);
    if (warn_len == 0 && !tocont && msg[0] == '@')
        return;                 /* a control message such as "@on" */
    if (len > sizeof warn_buf - 1 - warn_len)
        len = sizeof warn_buf - 1 - warn_len;
    memcpy(warn_buf + warn_len, msg, len);
    warn_len += len;
    warn_buf[warn_len] = '\0';
    if (tocont)
        return;
    if (!strstr(warn_buf, "not enough memory")) {
        warn_bad = 1;
        snprintf(warn_last, sizeof warn_last, "%s", warn_buf);
    }
    warn_len = 0;
}

/* ------------------------------------------------------------------------
 * Descriptors: the set of /proc/self/fd targets ("socket:[1234]")
 * ---------------------------------------------------------------------- */

#define MAX_FDS 4096

struct fdset {
    int n;
    int fd[MAX_FDS];
    char *what[MAX_FDS];
};

static void fdset_clear(struct fdset *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->what[i]);
    s->n = 0;
}

/* Read the process's descriptors, leaving out the directory's own. */
static int fdset_read(struct fdset *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    fdset_clear(s);
    while ((e = readdir(d)) != NULL && s->n < MAX_FDS) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len < 0)
            continue;           /* closed meanwhile */
        target[len] = '\0';
        s->fd[s->n] = fd;
        s->what[s->n] = strdup(target);
        if (!s->what[s->n])
            break;
        s->n++;
    }
    closedir(d);
    return s->n;
}

static int fdset_has(const struct fdset *s, int fd, const char *what)
{
    for (int i = 0; i < s->n; i++)
        if (s->fd[i] == fd && strcmp(s->what[i], what) == 0)
            return 1;
    return 0;
}

/* Descriptors in 'now' but not in 'base'; their description into buf. */
static int fdset_extra(const struct fdset *now, const struct fdset *base,
                       char *buf, size_t size)
{
    int extra = 0;
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < now->n; i++) {
        if (fdset_has(base, now->fd[i], now->what[i]))
            continue;
        extra++;
        if (off < size) {
            int w = snprintf(buf + off, size - off, "%s%d -> %s",
                             extra > 1 ? ", " : "", now->fd[i], now->what[i]);
            off += w > 0 ? (size_t)w : 0;
        }
    }
    return extra;
}

static void fdset_copy(struct fdset *dst, const struct fdset *src)
{
    fdset_clear(dst);
    for (int i = 0; i < src->n; i++) {
        dst->fd[i] = src->fd[i];
        dst->what[i] = strdup(src->what[i]);
        if (!dst->what[i])
            break;
        dst->n = i + 1;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------
 * Hangs and crashes: say which run it was
 * ---------------------------------------------------------------------- */

static char current[256] = "torture: setting up\n";

static void write_current(const char *what)
{
    ssize_t r = write(2, what, strlen(what));
    r = write(2, current, strlen(current));
    (void)r;
}

static void on_alarm(int sig)
{
    (void)sig;
    write_current("torture: HANG: time limit reached in ");
    _exit(3);
}

static void on_crash(int sig)
{
    write_current("torture: CRASH (signal) in ");
    signal(sig, SIG_DFL);
    raise(sig);
}

#if HAVE_ASAN
static void on_asan_death(void)
{
    write_current("torture: sanitizer report in ");
}
#endif

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(SIGABRT, &sa, NULL);
#if HAVE_ASAN
    __asan_set_death_callback(on_asan_death);   /* ASan owns SIGSEGV */
#else
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
#endif
}

/* ------------------------------------------------------------------------
 * One run
 * ---------------------------------------------------------------------- */

enum outcome { OUT_OK, OUT_NOMEM, OUT_FAIL };

struct run {
    enum outcome outcome;
    unsigned long count, hits;
    int leaked;                 /* descriptors not back */
    char msg[600];
    char fds[600];
};

static struct ctl ctl;
static const char *script;
static int script_argc;
static char **script_argv;

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

/* Tracebacks on one line, so that each run reports one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\t')
            *s = *s == '\n' ? '|' : ' ';
}

static int is_memory_error(int status, lua_State *L)
{
    if (status == LUA_ERRMEM)
        return 1;
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    return status == LUA_ERRRUN && m && strstr(m, "not enough memory");
}

/* TORTURE.fail(k [, count]): in a -1 run, fail the k-th counted
   allocation from now and the count-1 after it. */
static int l_fail(lua_State *L)
{
    lua_Integer k = luaL_checkinteger(L, 1);
    lua_Integer count = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, k >= 0, 1, "must be >= 0");
    luaL_argcheck(L, count >= 1, 2, "must be >= 1");
    if (ctl.scripted) {
        ctl.mode = MODE_BURST;
        ctl.n = k == 0 ? 0 : ctl.count + (unsigned long)k;
        ctl.burst = (unsigned long)count;
    }
    return 0;
}

/* Run the script once with allocation n failing (0: none). */
static void run_once(unsigned long n, struct run *r)
{
    memset(r, 0, sizeof *r);
    ctl.n = n;
    ctl.count = ctl.hits = 0;
    ctl.active = 0;
    warn_bad = 0;
    warn_len = 0;

    lua_State *L = lua_newstate(torture_alloc, &ctl);
    if (!L) {
        fprintf(stderr, "torture: cannot create a Lua state\n");
        exit(2);
    }
    lua_setwarnf(L, torture_warn, NULL);
    luaL_openlibs(L);
    set_path(L, "cpath", "PLUTO_CPATH");
    set_path(L, "path", "PLUTO_LPATH");
    /* What the script may want to know: TORTURE = { mode =, n =, burst = }
       (n 0 in the warm-up run). */
    lua_createtable(L, 0, 5);
    lua_pushboolean(L, n == 0 && !ctl.scripted);
    lua_setfield(L, -2, "warmup");
    lua_pushcfunction(L, l_fail);
    lua_setfield(L, -2, "fail");
    lua_pushstring(L, ctl.scripted ? "script" : mode_names[ctl.mode]);
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, (lua_Integer)ctl.burst);
    lua_setfield(L, -2, "burst");
    lua_setglobal(L, "TORTURE");
    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "torture: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    for (int i = 0; i < script_argc; i++)
        lua_pushstring(L, script_argv[i]);

    /* No message handler: it would need memory to run.  The status and
       the error object say what happened. */
    ctl.active = 1;
    int status = lua_pcall(L, script_argc, 0, 0);
    if (status == LUA_OK) {
        r->outcome = OUT_OK;
    } else if (is_memory_error(status, L)) {
        r->outcome = OUT_NOMEM;
    } else {
        r->outcome = OUT_FAIL;
        const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                       : NULL;
        snprintf(r->msg, sizeof r->msg, "error (status %d): %s", status,
                 m ? m : luaL_typename(L, -1));
        one_line(r->msg);
    }
    lua_close(L);
    ctl.active = 0;
    r->count = ctl.count;
    r->hits = ctl.hits;
    if (warn_bad && r->outcome != OUT_FAIL) {
        r->outcome = OUT_FAIL;
        snprintf(r->msg, sizeof r->msg, "warning: %s", warn_last);
    }
}

/* Wait up to wait_ms for the descriptors to be those of 'base'; returns
   how many are left over, described in r->fds. */
static int check_fds(const struct fdset *base, struct fdset *now,
                     int wait_ms, struct run *r)
{
    double end = now_ms() + wait_ms;
    int extra;
    for (;;) {
        fdset_read(now);
        extra = fdset_extra(now, base, r->fds, sizeof r->fds);
        if (extra == 0 || now_ms() >= end)
            break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return extra;
}

/* ------------------------------------------------------------------------
 * Main
 * ---------------------------------------------------------------------- */

static struct fdset base, now;

/* The baseline: the descriptors once the warm-up run's sockets are gone
   (their lingering closes end within wait_ms). */
static void settle_baseline(int wait_ms)
{
    double end = now_ms() + wait_ms;
    fdset_read(&base);
    while (now_ms() < end) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        fdset_read(&now);
        if (now.n >= base.n)
            break;              /* nothing closed in 50 ms: settled */
        fdset_copy(&base, &now);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: torture [-m once|from|burst] [-b B] [-s N] [-k K | -r RUNS]\n"
            "               [-e N] [-t SEC] [-w MS] [-x COUNT] [-v] SCRIPT [ARGS...]\n");
    exit(2);
}

static unsigned long num_arg(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    unsigned long start = 1, step = 1, last = 0, runs_wanted = 0;
    unsigned long time_limit = 30, wait_ms = 2000, max_fail = 10;
    int verbose = 0, single = 0, opt;

    ctl.mode = MODE_FROM;
    ctl.burst = 10;
    while ((opt = getopt(argc, argv, "+m:b:s:k:r:e:t:w:x:v1")) != -1) {
        switch (opt) {
        case 'm':
            if (strcmp(optarg, "once") == 0) ctl.mode = MODE_ONCE;
            else if (strcmp(optarg, "from") == 0) ctl.mode = MODE_FROM;
            else if (strcmp(optarg, "burst") == 0) ctl.mode = MODE_BURST;
            else usage();
            break;
        case 'b': ctl.burst = num_arg(optarg); break;
        case 's': start = num_arg(optarg); break;
        case 'k': step = num_arg(optarg); break;
        case 'r': runs_wanted = num_arg(optarg); break;
        case 'e': last = num_arg(optarg); break;
        case 't': time_limit = num_arg(optarg); break;
        case 'w': wait_ms = num_arg(optarg); break;
        case 'x': max_fail = num_arg(optarg); break;
        case 'v': verbose = 1; break;
        case '1': single = 1; break;
        default: usage();
        }
    }
    if (optind >= argc || start == 0 || step == 0 || ctl.burst == 0 ||
        time_limit == 0)
        usage();
    script = argv[optind];
    script_argc = argc - optind - 1;
    script_argv = argv + optind + 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    install_handlers();

    /* Warm-up: no failure.  It must succeed; it loads the module and
       GnuTLS for good, so the baseline counts what they keep. */
    struct run r;
    double t0 = now_ms();
    snprintf(current, sizeof current, "%s, warm-up run (no failures)\n", script);
    alarm((unsigned)time_limit);
    run_once(0, &r);
    settle_baseline((int)wait_ms);
    alarm(0);
    if (r.outcome != OUT_OK) {
        printf("torture: %s: the warm-up run (no failures) did not succeed: %s\n",
               script, r.outcome == OUT_NOMEM ? "not enough memory" : r.msg);
        return 1;
    }
    unsigned long warm_count = r.count;
    if (single) {
        snprintf(current, sizeof current, "%s, single run\n", script);
        ctl.scripted = 1;
        alarm((unsigned)(time_limit + wait_ms / 1000 + 1));
        run_once(0, &r);
        int extra = check_fds(&base, &now, (int)wait_ms, &r);
        alarm(0);
        printf("torture: %s single run: %s, %lu failures injected%s%s",
               script, r.outcome == OUT_OK ? "ok" : r.outcome == OUT_NOMEM
               ? "not enough memory" : r.msg, r.hits,
               extra ? "; descriptors still open: " : "", extra ? r.fds : "");
        printf("\n");
        snprintf(current, sizeof current, "at exit (a leak report covers "
                 "the whole process)\n");
        fdset_clear(&base);
        fdset_clear(&now);
        return r.outcome == OUT_FAIL || extra ? 1 : 0;
    }
    if (runs_wanted)
        step = warm_count / runs_wanted > 1 ? warm_count / runs_wanted : 1;

    unsigned long runs = 0, ok = 0, nomem = 0, failed = 0, leak_runs = 0;
    unsigned long leaked = 0, hits = 0, last_run = start, n;
    int exhausted = 0;
    for (n = start; last == 0 || n <= last; n += step) {
        snprintf(current, sizeof current, "%s, mode %s, N=%lu\n", script,
                 mode_names[ctl.mode], n);
        alarm((unsigned)(time_limit + wait_ms / 1000 + 1));
        run_once(n, &r);
        int extra = check_fds(&base, &now, (int)wait_ms, &r);
        alarm(0);
        runs++;
        last_run = n;
        hits += r.hits;
        if (extra) {
            leak_runs++;
            leaked += (unsigned long)extra;
            /* Report each leaked descriptor once: they join the baseline. */
            fdset_copy(&base, &now);
        }
        const char *word = r.outcome == OUT_OK ? "ok"
                           : r.outcome == OUT_NOMEM ? "nomem" : "FAIL";
        if (r.outcome == OUT_OK) ok++;
        else if (r.outcome == OUT_NOMEM) nomem++;
        if (r.outcome == OUT_FAIL || extra)
            failed++;
        if (verbose || r.outcome == OUT_FAIL || extra) {
            printf("N=%lu %s%s allocations=%lu injected=%lu", n, word,
                   extra ? " LEAK" : "", r.count, r.hits);
            if (r.outcome == OUT_FAIL)
                printf(": %s", r.msg);
            if (extra)
                printf("; %d descriptor(s) still open after %lu ms: %s",
                       extra, wait_ms, r.fds);
            printf("\n");
        }
        if (r.hits == 0) {          /* the Nth allocation never came */
            exhausted = 1;
            break;
        }
        if (failed >= max_fail) {
            printf("torture: stopping after %lu failed runs\n", failed);
            break;
        }
    }
    printf("torture: %s mode=%s%s N=%lu..%lu step %lu (warm-up run: %lu "
           "allocations): %lu runs, %lu ok, %lu nomem, %lu failed; "
           "%lu descriptors leaked in %lu runs; %lu failures injected; "
           "%s; %.1f s\n",
           script, mode_names[ctl.mode],
           ctl.mode == MODE_BURST ? (snprintf(current, sizeof current,
                                              " burst=%lu", ctl.burst), current)
                                  : "",
           start, last_run, step, warm_count, runs, ok, nomem, failed,
           leaked, leak_runs, hits,
           exhausted ? "complete (last run reached no failure)" : "INCOMPLETE",
           (now_ms() - t0) / 1000);
    snprintf(current, sizeof current, "at exit (a leak report covers every "
             "run)\n");
    fdset_clear(&base);
    fdset_clear(&now);
    return failed ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c -- Check unit tests for the worker pool and its completion
 * loops (src/pool.c, API in src/pool.h).
 *
 * Every test runs in its own forked process (CK_FORK, Check's default), so
 * it starts with a fresh pool: no threads, the default configuration, all
 * counters zero.  The tests rely on that: CK_FORK=no is not supported.
 * Every wait is bounded twice: by a deadline inside the test, which fails
 * with a message saying what did not happen, and by tcase_set_timeout.
 * Conditions are awaited by polling them every millisecond up to a
 * deadline, never by sleeping a fixed time and hoping.
 *
 * Thread counts stay in the low hundreds: the same program runs under
 * ThreadSanitizer, which fails past a few thousand live threads.
 *
 * Build: gcc -Wall -Wextra -O1 -g -pthread -Isrc tests/unit/test_pool.c \
 *            src/pool.c $(pkg-config --cflags --libs check)
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "unittest.h"


/* The lane whose mechanics the tests exercise: any lane of blocking work
   (the wait lane runs no blocking work: its threads are the pollers,
   tested in test_park.c). */
#define LANE POOL_CONNECT

/* ------------------------------------------------------------------------
 * The test job
 * ---------------------------------------------------------------------- */

enum work_kind {
    W_NOOP,   /* returns at once */
    W_GATE,   /* blocks until its gate opens */
    W_RECV,   /* blocks in recv() on fd[0] until data or shutdown */
    W_POLL,   /* blocks in poll() on fd[0], then recv()s */
};

struct tjob {
    struct pool_job base;        /* first, so a pool_job * is a tjob * */
    int id;
    enum work_kind kind;
    struct gate *gate;           /* W_GATE */
    int fd[2];                   /* W_RECV, W_POLL: work blocks on fd[0] */
    atomic_int runs;             /* work entered */
    atomic_int returned;         /* work returned */
    atomic_int cancels;          /* cancel called */
    int seen;                    /* times taken off a loop (test thread) */
    int seq;                     /* global order in which work returned */
    ssize_t got;                 /* what recv() returned */
    int aborted;                 /* the error abort was called with */
    pthread_t thread;            /* where work ran */
    atomic_int tid;              /* the kernel's id of that thread */
    char *result;                /* owned by the job, freed by destroy */
};

/* Process-wide tallies (each test runs in its own process). */
static atomic_int g_entered;     /* work calls entered */
static atomic_int g_returned;    /* work calls returned */
static atomic_int g_cancels;     /* cancel calls */
static atomic_int g_destroyed;   /* destroy calls */
static atomic_int g_seq;         /* next tjob.seq */

static void tjob_work(struct pool_job *pj)
{
    struct tjob *j = (struct tjob *)pj;
    char buf[64];

    atomic_fetch_add(&j->runs, 1);
    j->thread = pthread_self();
    atomic_store(&j->tid, (int)gettid());
    atomic_fetch_add(&g_entered, 1);
    switch (j->kind) {
    case W_NOOP:
        break;
    case W_GATE:
        gate_wait(j->gate);
        break;
    case W_POLL: {
        struct pollfd p = { .fd = j->fd[0], .events = POLLIN };
        while (poll(&p, 1, -1) < 0 && errno == EINTR)
            ;
        j->got = recv(j->fd[0], buf, sizeof buf, 0);
        break;
    }
    case W_RECV:
        j->got = recv(j->fd[0], buf, sizeof buf, 0);
        break;
    }
    /* A result the job owns until destroy: a leak shows under LSan. */
    j->result = malloc(32);
    if (j->result)
        snprintf(j->result, 32, "job %d", j->id);
    j->seq = atomic_fetch_add(&g_seq, 1);
    atomic_fetch_add(&j->returned, 1);
    atomic_fetch_add(&g_returned, 1);
}

/* May run with pool locks held (pool_shutdown): takes none. */
static void tjob_cancel(struct pool_job *pj)
{
    struct tjob *j = (struct tjob *)pj;
    atomic_fetch_add(&j->cancels, 1);
    atomic_fetch_add(&g_cancels, 1);
    if (j->fd[0] >= 0)
        shutdown(j->fd[0], SHUT_RDWR);
}

static void tjob_destroy(struct pool_job *pj)
{
    struct tjob *j = (struct tjob *)pj;
    if (j->fd[0] >= 0)
        close(j->fd[0]);
    if (j->fd[1] >= 0)
        close(j->fd[1]);
    free(j->result);
    free(j);
    atomic_fetch_add(&g_destroyed, 1);
}

static void tjob_abort(struct pool_job *pj, int err)
{
    ((struct tjob *)pj)->aborted = err;
}

static const struct pool_job_ops tjob_ops = {
    .work = tjob_work,
    .cancel = tjob_cancel,
    .abort = tjob_abort,
    .destroy = tjob_destroy,
};

static struct tjob *tjob_new(int id, enum work_kind kind, enum pool_lane lane,
                             struct pool_loop *loop, struct gate *gate)
{
    struct tjob *j = calloc(1, sizeof *j);
    ck_assert_ptr_nonnull(j);
    j->id = id;
    j->kind = kind;
    j->gate = gate;
    j->fd[0] = j->fd[1] = -1;
    j->got = -2;
    if (kind == W_RECV || kind == W_POLL)
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                    j->fd), 0);
    pool_job_init(&j->base, &tjob_ops, lane, loop);
    return j;
}

static struct tjob *tjob_submit(int id, enum work_kind kind,
                                enum pool_lane lane, struct pool_loop *loop,
                                struct gate *gate)
{
    struct tjob *j = tjob_new(id, kind, lane, loop, gate);
    pool_submit(&j->base);
    return j;
}

static int refs_of(struct tjob *j)
{
    return atomic_load(&j->base.refs);
}

/* ------------------------------------------------------------------------
 * Pool and loop helpers
 * ---------------------------------------------------------------------- */

static struct pool_lane_stats lane_stats(enum pool_lane lane)
{
    struct pool_lane_stats s[POOL_NLANES];
    pool_get_stats(s);
    return s[lane];
}

static unsigned total_threads(void)
{
    struct pool_lane_stats s[POOL_NLANES];
    unsigned n = 0;
    pool_get_stats(s);
    for (int i = 0; i < POOL_NLANES; i++)
        n += s[i].threads;
    return n;
}

/* Every worker of the lane is back waiting for work: each one has
   returned from posting its last job. */
static int lane_quiet(enum pool_lane lane)
{
    struct pool_lane_stats s = lane_stats(lane);
    return s.busy == 0 && s.queued == 0 && s.idle == s.threads;
}

/* Set the caps of all lanes and the idle time; stack sizes unchanged.
   'lane' is the cap of LANE, 'wait' the wait lane's (its pollers). */
static void set_caps(unsigned lane, unsigned wait, unsigned dns,
                     unsigned cpu, unsigned idle_ms)
{
    struct pool_config c;
    pool_get_config(&c);
    c.max_threads[LANE] = lane;
    c.max_threads[POOL_WAIT] = wait;
    c.max_threads[POOL_DNS] = dns;
    c.max_threads[POOL_CPU] = cpu;
    c.idle_ms = idle_ms;
    ck_assert_int_eq(pool_set_config(&c), 0);
}

/* Take completions off 'loop' until 'want' jobs came or 'ms' passed.  Each
   job taken is counted in its 'seen', appended to 'order' (if given, room
   for 'want'), and the done list's reference is dropped; the creator is
   expected to hold its own.  Returns how many came. */
static int collect(struct pool_loop *loop, int want, struct tjob **order,
                   int ms)
{
    long long deadline = now_ms() + ms;
    int got = 0;

    while (got < want) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        int r = pool_loop_wait(loop, (int)left);
        ck_assert_int_ge(r, 0);
        if (r == 0)
            break;
        struct pool_job *pj = pool_loop_take(loop);
        while (pj) {
            struct pool_job *next = pj->next;
            struct tjob *j = (struct tjob *)pj;
            ck_assert_msg(pool_job_isdone(pj),
                          "job %d taken before it was done", j->id);
            j->seen++;
            if (order && got < want)
                order[got] = j;
            got++;
            pool_job_unref(pj);
            pj = next;
        }
    }
    return got;
}

/* A fixed, seeded shuffle, so a failing order can be reproduced. */
static void shuffle(int *a, int n, unsigned seed)
{
    for (int i = 0; i < n; i++)
        a[i] = i;
    for (int i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % (unsigned)(i + 1));
        int t = a[i];
        a[i] = a[k];
        a[k] = t;
    }
}

/* Whether a thread of this process sleeps in the kernel (state S): a
   worker blocked in recv()/poll(), a test thread blocked in poll(). */
static int thread_sleeping(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

/* ------------------------------------------------------------------------
 * Every job completes exactly once
 * ---------------------------------------------------------------------- */

START_TEST(test_every_job_completes_once)
{
    enum { NBLOCKING = POOL_NLANES - 1, N = 700 * NBLOCKING };
    struct tjob **jobs = calloc(N, sizeof *jobs);
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(jobs);
    ck_assert_ptr_nonnull(loop);
    set_caps(16, 16, 16, 16, 1000);

    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, W_NOOP,  /* every lane but the wait lane */
                              (enum pool_lane)(POOL_CONNECT + i % NBLOCKING),
                              loop, NULL);

    int got = collect(loop, N, NULL, 3 * DEADLINE_MS);
    ck_assert_int_eq(got, N);
    /* Nothing more arrives: no job is posted twice. */
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    ck_assert_ptr_null(pool_loop_take(loop));

    for (int i = 0; i < N; i++) {
        ck_assert_msg(pool_job_isdone(&jobs[i]->base), "job %d not done", i);
        ck_assert_int_eq(atomic_load(&jobs[i]->runs), 1);
        ck_assert_int_eq(atomic_load(&jobs[i]->returned), 1);
        ck_assert_msg(jobs[i]->seen == 1, "job %d taken %d times", i,
                      jobs[i]->seen);
        ck_assert_int_eq(refs_of(jobs[i]), 1);   /* only the creator's */
    }
    struct pool_lane_stats s[POOL_NLANES];
    pool_get_stats(s);
    for (int l = POOL_CONNECT; l < POOL_NLANES; l++) {
        ck_assert_uint_eq(s[l].completed, N / NBLOCKING);
        ck_assert_uint_le(s[l].threads, 16);
    }

    ck_assert_int_eq(atomic_load(&g_destroyed), 0);
    for (int i = 0; i < N; i++)
        pool_job_unref(&jobs[i]->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
    free(jobs);
}
END_TEST

/* ------------------------------------------------------------------------
 * Completion order and load
 * ---------------------------------------------------------------------- */

/* One thread runs the jobs one after another, so the order they finish
   in is known (their seq); the done list must hand them back in it, and
   the lane queue must start them in the order they were submitted. */
START_TEST(test_order_single_thread)
{
    enum { N = 64 };
    struct tjob *jobs[N], *order[N];
    struct gate g;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);
    set_caps(8, 8, 8, 1, 1000);

    /* The first job holds the only CPU thread until everything queued. */
    jobs[0] = tjob_submit(0, W_GATE, POOL_CPU, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == 1, DEADLINE_MS));
    for (int i = 1; i < N; i++)
        jobs[i] = tjob_submit(i, W_NOOP, POOL_CPU, loop, NULL);
    ck_assert_uint_eq(lane_stats(POOL_CPU).queued, N - 1);
    gate_open(&g);

    /* Wait until all are posted, then take them in as few takes as
       possible: the list itself must be in order. */
    ck_assert(WAIT_FOR(lane_stats(POOL_CPU).completed == N && lane_quiet(POOL_CPU),
                       DEADLINE_MS));
    ck_assert_int_eq(collect(loop, N, order, DEADLINE_MS), N);
    for (int k = 0; k < N; k++) {
        ck_assert_msg(order[k]->seq == k,
                      "completion %d is job %d which finished %d-th", k,
                      order[k]->id, order[k]->seq);
        ck_assert_msg(order[k]->id == k,
                      "lane queue not FIFO: %d-th job to run was job %d", k,
                      order[k]->id);
    }
    for (int i = 0; i < N; i++)
        pool_job_unref(&jobs[i]->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
    gate_destroy(&g);
}
END_TEST

/* Eight jobs block on their own gates on eight threads; the test opens
   the gates in a chosen order and each completion must be the job it
   just released, never another one. */
START_TEST(test_order_released)
{
    enum { N = 8 };
    static const int perm[N] = { 5, 2, 7, 0, 3, 6, 1, 4 };
    struct tjob *jobs[N];
    struct gate gates[N];
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(N, 8, 8, 8, 1000);

    for (int i = 0; i < N; i++) {
        gate_init(&gates[i]);
        jobs[i] = tjob_submit(i, W_GATE, LANE, loop, &gates[i]);
    }
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == N, DEADLINE_MS));
    ck_assert_uint_eq(lane_stats(LANE).threads, N);
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);

    for (int k = 0; k < N; k++) {
        struct tjob *first = NULL;
        gate_open(&gates[perm[k]]);
        ck_assert_int_eq(collect(loop, 1, &first, DEADLINE_MS), 1);
        ck_assert_msg(first == jobs[perm[k]],
                      "released job %d, got job %d", perm[k], first->id);
        for (int m = k + 1; m < N; m++)
            ck_assert_msg(!pool_job_isdone(&jobs[perm[m]]->base),
                          "job %d done before its release", perm[m]);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i]->seen, 1);
        pool_job_unref(&jobs[i]->base);
        gate_destroy(&gates[i]);
    }
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
}
END_TEST

/* The eventfd wakes a thread blocked in poll() on it. */
struct delayed_open {
    struct gate *gate;
    int waiter;                  /* tid of the thread that will block */
    atomic_int opened;
};

/* Opens the gate once the waiter is asleep (or after the deadline, and
   the test then checks the rest). */
static void *open_later(void *arg)
{
    struct delayed_open *d = arg;
    (void)WAIT_FOR(thread_sleeping(d->waiter), DEADLINE_MS);
    atomic_store(&d->opened, 1);
    gate_open(d->gate);
    return NULL;
}

START_TEST(test_eventfd_wakes_poller)
{
    struct gate g;
    struct delayed_open d = { .gate = &g, .waiter = (int)gettid() };
    pthread_t t;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);

    struct tjob *j = tjob_submit(0, W_GATE, LANE, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == 1, DEADLINE_MS));
    struct pollfd p = { .fd = pool_loop_fd(loop), .events = POLLIN };
    ck_assert_int_eq(poll(&p, 1, 0), 0);     /* nothing done: not readable */

    ck_assert_int_eq(pthread_create(&t, NULL, open_later, &d), 0);
    ck_assert_int_eq(poll(&p, 1, DEADLINE_MS), 1);
    ck_assert(p.revents & POLLIN);
    ck_assert_int_eq(atomic_load(&d.opened), 1);
    struct pool_job *taken = pool_loop_take(loop);
    ck_assert_ptr_eq(taken, &j->base);
    ck_assert_ptr_null(taken->next);
    pool_job_unref(taken);
    /* Taking resets it: not readable while nothing new is done. */
    ck_assert_int_eq(poll(&p, 1, 0), 0);

    pthread_join(t, NULL);
    pool_job_unref(&j->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 1);
    pool_loop_close(loop);
    gate_destroy(&g);
}
END_TEST

/* Hundreds of jobs blocked at once, released one by one in a shuffled
   order by another thread while the test sleeps in poll() on the loop's
   eventfd and takes whatever is done: every completion arrives, none
   twice, and the waiter is never left asleep with completions pending. */
enum { LOAD_N = 200, LOAD_ROUNDS = 3 };

struct releaser {
    struct gate *gates;
    int order[LOAD_N];
};

static void *release_all(void *arg)
{
    struct releaser *r = arg;
    for (int i = 0; i < LOAD_N; i++) {
        gate_open(&r->gates[r->order[i]]);
        if (i % 7 == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_load_no_loss)
{
    struct gate *gates = calloc(LOAD_N, sizeof *gates);
    struct tjob **jobs = calloc(LOAD_N, sizeof *jobs);
    struct releaser *rel = calloc(1, sizeof *rel);
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(gates);
    ck_assert_ptr_nonnull(jobs);
    ck_assert_ptr_nonnull(rel);
    ck_assert_ptr_nonnull(loop);
    set_caps(LOAD_N, 8, 8, 8, 5000);
    int efd = pool_loop_fd(loop);

    for (int round = 0; round < LOAD_ROUNDS; round++) {
        int base = atomic_load(&g_entered);
        for (int i = 0; i < LOAD_N; i++) {
            gate_init(&gates[i]);
            jobs[i] = tjob_submit(round * LOAD_N + i, W_GATE, LANE,
                                  loop, &gates[i]);
        }
        ck_assert_msg(WAIT_FOR(atomic_load(&g_entered) == base + LOAD_N,
                               DEADLINE_MS),
                      "round %d: only %d of %d jobs started", round,
                      atomic_load(&g_entered) - base, LOAD_N);
        ck_assert_uint_eq(lane_stats(LANE).threads, LOAD_N);

        pthread_t t;
        rel->gates = gates;
        shuffle(rel->order, LOAD_N, 17u + (unsigned)round);
        ck_assert_int_eq(pthread_create(&t, NULL, release_all, rel), 0);

        int seen = 0, wakes = 0;
        long long deadline = now_ms() + 3 * DEADLINE_MS;
        while (seen < LOAD_N) {
            struct pollfd p = { .fd = efd, .events = POLLIN };
            int n = poll(&p, 1, 5000);
            ck_assert_msg(n == 1,
                          "round %d: waiter not woken, %d of %d completions "
                          "seen, %d done", round, seen, LOAD_N,
                          atomic_load(&g_returned) - round * LOAD_N);
            wakes++;
            for (struct pool_job *pj = pool_loop_take(loop); pj;) {
                struct pool_job *next = pj->next;
                ((struct tjob *)pj)->seen++;
                seen++;
                pool_job_unref(pj);
                pj = next;
            }
            ck_assert_msg(now_ms() < deadline, "round %d: %d of %d seen",
                          round, seen, LOAD_N);
        }
        pthread_join(t, NULL);
        ck_assert_int_eq(seen, LOAD_N);
        ck_assert_int_le(wakes, LOAD_N);
        for (int i = 0; i < LOAD_N; i++) {
            ck_assert_msg(jobs[i]->seen == 1, "round %d: job %d seen %d times",
                          round, i, jobs[i]->seen);
            ck_assert_int_eq(atomic_load(&jobs[i]->runs), 1);
            pool_job_unref(&jobs[i]->base);
            gate_destroy(&gates[i]);
        }
        ck_assert_int_eq(atomic_load(&g_destroyed), (round + 1) * LOAD_N);
        /* Threads are reused by the next round, not added. */
        ck_assert_uint_le(lane_stats(LANE).threads, LOAD_N);
    }
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    pool_loop_close(loop);
    free(rel);
    free(jobs);
    free(gates);
}
END_TEST

/* ------------------------------------------------------------------------
 * Growth and shrink of the thread count
 * ---------------------------------------------------------------------- */

START_TEST(test_grow_to_cap_then_shrink)
{
    enum { CAP = 4, M = 10, IDLE_MS = 100 };
    struct tjob *jobs[M];
    struct gate g;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);
    set_caps(8, 8, CAP, 8, IDLE_MS);
    ck_assert_uint_eq(total_threads(), 0);

    /* On demand: one more thread per blocked job, up to the cap. */
    for (int i = 0; i < M; i++) {
        jobs[i] = tjob_submit(i, W_GATE, POOL_DNS, loop, &g);
        int running = i + 1 < CAP ? i + 1 : CAP;
        ck_assert(WAIT_FOR(atomic_load(&g_entered) == running, DEADLINE_MS));
        struct pool_lane_stats s = lane_stats(POOL_DNS);
        ck_assert_uint_eq(s.threads, running);
        ck_assert_uint_eq(s.busy, running);
        ck_assert_uint_eq(s.queued, i + 1 - running);
    }
    /* Exactly the cap, no more, however long one looks. */
    struct pool_lane_stats s = lane_stats(POOL_DNS);
    ck_assert_uint_eq(s.threads, CAP);
    ck_assert_uint_eq(s.queued, M - CAP);
    ck_assert_uint_eq(s.idle, 0);
    ck_assert_int_eq(atomic_load(&g_entered), CAP);
    ck_assert_uint_eq(total_threads(), CAP);   /* other lanes untouched */

    long long opened = now_ms();
    gate_open(&g);
    ck_assert_int_eq(collect(loop, M, NULL, DEADLINE_MS), M);
    for (int i = 0; i < M; i++)
        ck_assert_int_eq(atomic_load(&jobs[i]->runs), 1);
    ck_assert_uint_eq(lane_stats(POOL_DNS).completed, M);

    /* Shrink: every thread leaves once idle for IDLE_MS, not before. */
    long long first_exit = 0;
    long long deadline = now_ms() + DEADLINE_MS;
    for (;;) {
        s = lane_stats(POOL_DNS);
        ck_assert_uint_le(s.threads, CAP);
        if (s.threads < CAP && !first_exit)
            first_exit = now_ms();
        if (s.threads == 0)
            break;
        ck_assert_msg(now_ms() < deadline,
                      "%u threads still alive %d ms after going idle",
                      s.threads, DEADLINE_MS);
        sleep_ms(1);
    }
    ck_assert_msg(first_exit - opened >= IDLE_MS / 2,
                  "a thread left %lld ms after its work ended (idle_ms %d)",
                  first_exit - opened, IDLE_MS);
    ck_assert_uint_eq(total_threads(), 0);

    /* And it grows again on the next job. */
    struct tjob *again = tjob_submit(M, W_NOOP, POOL_DNS, loop, NULL);
    ck_assert_int_eq(collect(loop, 1, NULL, DEADLINE_MS), 1);
    ck_assert_int_eq(atomic_load(&again->runs), 1);
    pool_job_unref(&again->base);

    for (int i = 0; i < M; i++)
        pool_job_unref(&jobs[i]->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), M + 1);
    pool_loop_close(loop);
    gate_destroy(&g);
}
END_TEST

/* Start 'n' threads in 'lane' and let them all go idle. */
static void make_idle_threads(enum pool_lane lane, int n)
{
    struct gate g;
    struct tjob *jobs[64];
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    ck_assert_int_le(n, 64);
    gate_init(&g);
    int base = atomic_load(&g_entered);
    for (int i = 0; i < n; i++)
        jobs[i] = tjob_submit(i, W_GATE, lane, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == base + n, DEADLINE_MS));
    gate_open(&g);
    ck_assert_int_eq(collect(loop, n, NULL, DEADLINE_MS), n);
    for (int i = 0; i < n; i++)
        pool_job_unref(&jobs[i]->base);
    pool_loop_close(loop);
    gate_destroy(&g);
    ck_assert(WAIT_FOR(lane_quiet(lane), DEADLINE_MS));
    ck_assert_uint_eq(lane_stats(lane).threads, n);
}

/* Threads already idle obey a lowered idle time: they do not wait out the
   one that was in force when they went idle. */
START_TEST(test_lowered_idle_ms_applies_to_idle_threads)
{
    set_caps(8, 8, 8, 8, 60000);
    make_idle_threads(LANE, 4);
    set_caps(8, 8, 8, 8, 100);
    ck_assert_msg(WAIT_FOR(lane_stats(LANE).threads == 0, 3000),
                  "%u idle threads still alive 3 s after idle_ms became 100",
                  lane_stats(LANE).threads);
}
END_TEST

/* Threads over a lowered cap leave once idle, and the new cap holds. */
START_TEST(test_lowered_cap_applies)
{
    struct gate g;
    struct tjob *jobs[5];
    set_caps(8, 8, 8, 8, 60000);
    make_idle_threads(LANE, 6);
    set_caps(2, 8, 8, 8, 60000);
    ck_assert_msg(WAIT_FOR(lane_stats(LANE).threads == 2, 3000),
                  "%u threads left over a cap of 2",
                  lane_stats(LANE).threads);

    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);
    int base = atomic_load(&g_entered);
    for (int i = 0; i < 5; i++)
        jobs[i] = tjob_submit(i, W_GATE, LANE, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == base + 2, DEADLINE_MS));
    struct pool_lane_stats s = lane_stats(LANE);
    ck_assert_uint_eq(s.threads, 2);
    ck_assert_uint_eq(s.queued, 3);
    gate_open(&g);
    ck_assert_int_eq(collect(loop, 5, NULL, DEADLINE_MS), 5);
    for (int i = 0; i < 5; i++)
        pool_job_unref(&jobs[i]->base);
    pool_loop_close(loop);
    gate_destroy(&g);
}
END_TEST

/* Raising the cap while jobs wait in the queue starts threads for them:
   they need not wait for a new submission or a running job to end. */
START_TEST(test_raised_cap_starts_queued_jobs)
{
    enum { N = 5 };
    struct tjob *jobs[N];
    struct gate g;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);
    set_caps(2, 8, 8, 8, 1000);
    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, W_GATE, LANE, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == 2, DEADLINE_MS));
    ck_assert_uint_eq(lane_stats(LANE).queued, N - 2);

    set_caps(8, 8, 8, 8, 1000);
    int started = WAIT_FOR(atomic_load(&g_entered) == N, 3000);
    struct pool_lane_stats s = lane_stats(LANE);
    gate_open(&g);   /* let the rest finish whatever the outcome */
    ck_assert_int_eq(collect(loop, N, NULL, DEADLINE_MS), N);
    for (int i = 0; i < N; i++)
        pool_job_unref(&jobs[i]->base);
    pool_loop_close(loop);
    gate_destroy(&g);
    ck_assert_msg(started, "cap raised to 8: still %u threads, %u queued "
                  "after 3 s", s.threads, s.queued);
}
END_TEST

/* pool_submit never fails: when no thread can be created the job stays
   queued, is not lost, and runs once a thread can be had (the next
   submission) -- or inline in pool_shutdown.  pthread_create is made to
   fail with RLIMIT_AS, which the sanitizers' huge mappings do not allow:
   plain builds only. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_RLIMIT_AS 1
#endif

#ifndef NO_RLIMIT_AS
static void limit_address_space(struct rlimit *old)
{
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &pages), 1);
    fclose(f);
    ck_assert_int_eq(getrlimit(RLIMIT_AS, old), 0);
    struct rlimit lim = *old;
    lim.rlim_cur = (rlim_t)pages * (rlim_t)page + (16u << 20);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
}
#endif

START_TEST(test_thread_create_failure_queues)
{
#ifdef NO_RLIMIT_AS
    return;
#else
    struct rlimit old;
    struct pool_config c;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(8, 8, 8, 8, 1000);
    pool_get_config(&c);
    size_t dns_stack = c.stack_size[POOL_DNS];
    c.stack_size[POOL_DNS] = 64u << 20;   /* cannot be mapped below */
    ck_assert_int_eq(pool_set_config(&c), 0);

    /* With no thread on the lane and none to be had, a job fails at once
       (aborted with EAGAIN, completed without running) instead of waiting
       for a thread that will never come. */
    limit_address_space(&old);
    struct tjob *a = tjob_submit(0, W_NOOP, POOL_DNS, loop, NULL);
    struct pool_lane_stats s = lane_stats(POOL_DNS);
    ck_assert_uint_eq(s.threads, 0);
    ck_assert_uint_eq(s.queued, 0);
    ck_assert(pool_job_isdone(&a->base));
    ck_assert_int_eq(atomic_load(&a->runs), 0);
    ck_assert_int_eq(a->aborted, -EAGAIN);
    ck_assert_int_eq(collect(loop, 1, NULL, 1000), 1);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);

    /* With a thread on the lane (held by a gate), a job that cannot get a
       thread of its own waits in the queue for that one. */
    struct gate g;
    gate_init(&g);
    c.stack_size[POOL_DNS] = dns_stack;
    ck_assert_int_eq(pool_set_config(&c), 0);
    struct tjob *b = tjob_submit(1, W_GATE, POOL_DNS, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&b->runs) == 1, DEADLINE_MS));
    c.stack_size[POOL_DNS] = 64u << 20;
    ck_assert_int_eq(pool_set_config(&c), 0);
    limit_address_space(&old);
    struct tjob *d = tjob_submit(2, W_NOOP, POOL_DNS, loop, NULL);
    ck_assert_uint_eq(lane_stats(POOL_DNS).queued, 1);
    ck_assert_uint_eq(lane_stats(POOL_DNS).threads, 1);
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
    gate_open(&g);
    ck_assert_int_eq(collect(loop, 2, NULL, DEADLINE_MS), 2);
    ck_assert_int_eq(b->seen, 1);
    ck_assert_int_eq(d->seen, 1);
    ck_assert_int_eq(atomic_load(&d->runs), 1);
    ck_assert_int_eq(a->seen, 1);
    gate_destroy(&g);

    pool_job_unref(&a->base);
    pool_job_unref(&b->base);
    pool_job_unref(&d->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 3);
    pool_loop_close(loop);
#endif
}
END_TEST

/* ------------------------------------------------------------------------
 * Lanes do not starve each other
 * ---------------------------------------------------------------------- */

START_TEST(test_lanes_do_not_starve)
{
    enum { CAP = 8, EXTRA = 8, NQUICK = 2 };
    static const enum pool_lane others[NQUICK] = { POOL_DNS, POOL_CPU };
    struct tjob *waits[CAP + EXTRA], *quick[NQUICK];
    struct gate g;
    struct pool_loop *loop = pool_loop_new();
    struct pool_loop *qloop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    ck_assert_ptr_nonnull(qloop);
    gate_init(&g);
    set_caps(CAP, 4, 4, 2, 1000);

    /* LANE full: every thread blocked, more waiting behind. */
    for (int i = 0; i < CAP + EXTRA; i++)
        waits[i] = tjob_submit(i, W_GATE, LANE, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == CAP, DEADLINE_MS));
    struct pool_lane_stats s = lane_stats(LANE);
    ck_assert_uint_eq(s.threads, CAP);
    ck_assert_uint_eq(s.queued, EXTRA);

    /* A lookup and a handshake still run at once. */
    long long t0 = now_ms();
    for (int i = 0; i < NQUICK; i++)
        quick[i] = tjob_submit(100 + i, W_NOOP, others[i], qloop, NULL);
    ck_assert_int_eq(collect(qloop, NQUICK, NULL, 2000), NQUICK);
    ck_assert_int_lt(now_ms() - t0, 2000);
    for (int i = 0; i < NQUICK; i++) {
        ck_assert_int_eq(quick[i]->seen, 1);
        ck_assert_int_eq(quick[i]->base.lane, others[i]);
        pool_job_unref(&quick[i]->base);
    }
    for (int i = 0; i < CAP + EXTRA; i++)
        ck_assert(!pool_job_isdone(&waits[i]->base));
    ck_assert_uint_eq(lane_stats(LANE).queued, EXTRA);

    gate_open(&g);
    ck_assert_int_eq(collect(loop, CAP + EXTRA, NULL, DEADLINE_MS),
                     CAP + EXTRA);
    for (int i = 0; i < CAP + EXTRA; i++)
        pool_job_unref(&waits[i]->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), CAP + EXTRA + NQUICK);
    pool_loop_close(loop);
    pool_loop_close(qloop);
    gate_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------
 * pool_shutdown with jobs blocked in the kernel
 * ---------------------------------------------------------------------- */

static void all_lanes_have_no_threads(void)
{
    struct pool_lane_stats s[POOL_NLANES];
    pool_get_stats(s);
    for (int l = 0; l < POOL_NLANES; l++) {
        ck_assert_msg(s[l].threads == 0, "lane %s: %u threads after shutdown",
                      pool_lane_name((enum pool_lane)l), s[l].threads);
        ck_assert_uint_eq(s[l].busy, 0);
        ck_assert_uint_eq(s[l].queued, 0);
    }
}

/* Half the jobs block in recv(), half in poll(); all are running. */
START_TEST(test_shutdown_wakes_blocked_jobs)
{
    enum { N = 16 };
    struct tjob *jobs[N];
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(32, 8, 8, 8, 60000);

    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, i % 2 ? W_POLL : W_RECV, LANE, loop,
                              NULL);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == N, DEADLINE_MS));
    for (int i = 0; i < N; i++)
        ck_assert_msg(WAIT_FOR(thread_sleeping(atomic_load(&jobs[i]->tid)),
                               DEADLINE_MS), "job %d never blocked", i);
    ck_assert_int_eq(atomic_load(&g_returned), 0);

    ck_assert_msg(run_bounded(pool_shutdown, DEADLINE_MS),
                  "pool_shutdown did not return within %d ms", DEADLINE_MS);
    ck_assert_int_eq(atomic_load(&g_returned), N);
    all_lanes_have_no_threads();
    for (int i = 0; i < N; i++) {
        ck_assert(pool_job_isdone(&jobs[i]->base));
        ck_assert_int_eq(atomic_load(&jobs[i]->runs), 1);
        ck_assert_int_eq(atomic_load(&jobs[i]->returned), 1);
        ck_assert_int_ge(atomic_load(&jobs[i]->cancels), 1);
        ck_assert_msg(jobs[i]->got == 0, "job %d: recv returned %zd", i,
                      jobs[i]->got);
    }
    /* They finished and were posted, each once. */
    ck_assert_int_eq(collect(loop, N, NULL, 1000), N);
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i]->seen, 1);
        pool_job_unref(&jobs[i]->base);
    }
    ck_assert_int_eq(atomic_load(&g_destroyed), N);

    /* The pool is usable afterwards. */
    struct tjob *j = tjob_submit(N, W_NOOP, LANE, loop, NULL);
    ck_assert_int_eq(collect(loop, 1, NULL, DEADLINE_MS), 1);
    ck_assert_uint_eq(lane_stats(LANE).threads, 1);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* More jobs than the cap: some still queued when the pool shuts down.
   Each is cancelled, and each still completes exactly once. */
START_TEST(test_shutdown_with_queued_jobs)
{
    enum { CAP = 4, N = 12 };
    struct tjob *jobs[N];
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(CAP, 8, 8, 8, 60000);

    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, W_POLL, LANE, loop, NULL);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == CAP, DEADLINE_MS));
    ck_assert_uint_eq(lane_stats(LANE).queued, N - CAP);

    ck_assert_msg(run_bounded(pool_shutdown, DEADLINE_MS),
                  "pool_shutdown did not return within %d ms", DEADLINE_MS);
    all_lanes_have_no_threads();
    /* The running ones were woken (cancel); the queued ones ended
       without running. */
    int ran = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(pool_job_isdone(&jobs[i]->base), "job %d not done", i);
        int runs = atomic_load(&jobs[i]->runs);
        ck_assert_int_le(runs, 1);
        ck_assert_int_eq(atomic_load(&jobs[i]->returned), runs);
        ck_assert_int_eq(atomic_load(&jobs[i]->cancels) >= 1, runs);
        ran += runs;
    }
    ck_assert_int_eq(ran, CAP);
    ck_assert_int_eq(collect(loop, N, NULL, 1000), N);
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i]->seen, 1);
        pool_job_unref(&jobs[i]->base);
    }
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
}
END_TEST

/* The owner went away first: the loop is closed and the creator's
   references dropped while the jobs block.  Shutdown must still wake
   them, and every job must be destroyed (its result freed) by the time
   it returns; LSan checks that nothing else is left. */
START_TEST(test_shutdown_after_loop_closed)
{
    enum { N = 16 };
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(32, 8, 8, 8, 60000);

    struct tjob *jobs[N];
    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, i % 2 ? W_POLL : W_RECV, LANE, loop,
                              NULL);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == N, DEADLINE_MS));
    /* Still held by the pool while they block: safe to look at. */
    for (int i = 0; i < N; i++)
        ck_assert_msg(WAIT_FOR(thread_sleeping(atomic_load(&jobs[i]->tid)),
                               DEADLINE_MS), "job %d never blocked", i);
    for (int i = 0; i < N; i++)
        pool_job_unref(&jobs[i]->base);
    pool_loop_close(loop);
    ck_assert_int_eq(atomic_load(&g_destroyed), 0);

    ck_assert_msg(run_bounded(pool_shutdown, DEADLINE_MS),
                  "pool_shutdown did not return within %d ms", DEADLINE_MS);
    ck_assert_int_eq(atomic_load(&g_returned), N);
    ck_assert_int_ge(atomic_load(&g_cancels), N);
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    all_lanes_have_no_threads();
}
END_TEST

/* ------------------------------------------------------------------------
 * A loop closed with jobs in flight
 * ---------------------------------------------------------------------- */

START_TEST(test_loop_closed_with_jobs_in_flight)
{
    enum { N = 20 };
    struct tjob *jobs[N];
    struct gate g;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);
    set_caps(32, 8, 8, 8, 1000);

    for (int i = 0; i < N; i++)
        jobs[i] = tjob_submit(i, W_GATE, LANE, loop, &g);
    /* And one whose completion nobody waits for. */
    struct tjob *orphan = tjob_submit(N, W_GATE, LANE, NULL, &g);
    pool_job_unref(&orphan->base);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == N + 1, DEADLINE_MS));

    /* The creator lets go of the even ones; keeps the odd ones. */
    for (int i = 0; i < N; i += 2)
        pool_job_unref(&jobs[i]->base);
    pool_loop_close(loop);
    gate_open(&g);

    /* Dropped completions free the jobs nobody else holds... */
    ck_assert_msg(WAIT_FOR(atomic_load(&g_destroyed) == N / 2 + 1,
                           DEADLINE_MS),
                  "%d of %d jobs destroyed", atomic_load(&g_destroyed),
                  N / 2 + 1);
    /* ...and give up the pool's reference on the others. */
    for (int i = 1; i < N; i += 2) {
        ck_assert_msg(WAIT_FOR(refs_of(jobs[i]) == 1, DEADLINE_MS),
                      "job %d still has %d refs", i, refs_of(jobs[i]));
        ck_assert(pool_job_isdone(&jobs[i]->base));
        ck_assert_int_eq(atomic_load(&jobs[i]->runs), 1);
        ck_assert_int_eq(jobs[i]->seen, 0);
    }
    ck_assert(WAIT_FOR(lane_quiet(LANE), DEADLINE_MS));
    ck_assert_int_eq(atomic_load(&g_destroyed), N / 2 + 1);
    for (int i = 1; i < N; i += 2)
        pool_job_unref(&jobs[i]->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), N + 1);
    ck_assert_int_eq(atomic_load(&g_returned), N + 1);
    gate_destroy(&g);

    /* The pool goes on serving other loops. */
    struct pool_loop *other = pool_loop_new();
    ck_assert_ptr_nonnull(other);
    struct tjob *j = tjob_submit(99, W_NOOP, LANE, other, NULL);
    ck_assert_int_eq(collect(other, 1, NULL, DEADLINE_MS), 1);
    pool_job_unref(&j->base);
    pool_loop_close(other);
}
END_TEST

/* Completions already on the done list when the loop closes are
   dropped by the close itself. */
START_TEST(test_loop_closed_with_pending_completions)
{
    enum { N = 5 };
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(8, 8, 8, 8, 1000);
    for (int i = 0; i < N; i++) {
        struct tjob *j = tjob_submit(i, W_NOOP, LANE, loop, NULL);
        pool_job_unref(&j->base);
    }
    ck_assert(WAIT_FOR(lane_stats(LANE).completed == N &&
                       lane_quiet(LANE), DEADLINE_MS));
    ck_assert_int_eq(pool_loop_wait(loop, 0), 1);
    ck_assert_int_eq(atomic_load(&g_destroyed), 0);
    pool_loop_close(loop);
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
}
END_TEST

/* ------------------------------------------------------------------------
 * pool_run_inline, pool_loop_wait_job, pool_loop_forget, pool_job_cancel
 * ---------------------------------------------------------------------- */

START_TEST(test_run_inline)
{
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    struct tjob *j = tjob_new(0, W_NOOP, POOL_DNS, loop, NULL);
    ck_assert(!pool_job_isdone(&j->base));

    pool_run_inline(&j->base);
    ck_assert(pool_job_isdone(&j->base));
    ck_assert_int_eq(atomic_load(&j->runs), 1);
    ck_assert(pthread_equal(j->thread, pthread_self()));
    /* Nothing posted, no pool reference taken, no thread started. */
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    ck_assert_ptr_null(pool_loop_take(loop));
    ck_assert_int_eq(refs_of(j), 1);
    ck_assert_uint_eq(total_threads(), 0);
    ck_assert_uint_eq(lane_stats(POOL_DNS).completed, 0);
    /* Waiting for an inline job returns at once. */
    pool_loop_wait_job(loop, &j->base);

    pool_job_unref(&j->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 1);
    pool_loop_close(loop);
}
END_TEST

START_TEST(test_wait_job_blocks_until_done)
{
    struct gate g;
    struct delayed_open d = { .gate = &g, .waiter = (int)gettid() };
    pthread_t t;
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    gate_init(&g);

    struct tjob *j = tjob_submit(0, W_GATE, LANE, loop, &g);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == 1, DEADLINE_MS));
    ck_assert(!pool_job_isdone(&j->base));
    ck_assert_int_eq(pthread_create(&t, NULL, open_later, &d), 0);

    pool_loop_wait_job(loop, &j->base);
    ck_assert_int_eq(atomic_load(&d.opened), 1);
    ck_assert(pool_job_isdone(&j->base));
    ck_assert_int_eq(atomic_load(&j->returned), 1);
    pool_loop_wait_job(loop, &j->base);    /* already done: returns */
    pthread_join(t, NULL);

    /* The owner consumed it: forget it, and take never hands it back. */
    pool_loop_forget(loop, &j->base);
    ck_assert_int_eq(refs_of(j), 1);
    ck_assert(WAIT_FOR(lane_quiet(LANE), DEADLINE_MS));
    ck_assert_ptr_null(pool_loop_take(loop));
    pool_job_unref(&j->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 1);
    pool_loop_close(loop);
    gate_destroy(&g);
}
END_TEST

START_TEST(test_forget)
{
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    struct tjob *a = tjob_submit(0, W_NOOP, LANE, loop, NULL);
    struct tjob *b = tjob_submit(1, W_NOOP, LANE, loop, NULL);
    pool_loop_wait_job(loop, &a->base);
    pool_loop_wait_job(loop, &b->base);
    ck_assert(WAIT_FOR(lane_stats(LANE).completed == 2 &&
                       lane_quiet(LANE), DEADLINE_MS));
    ck_assert_int_eq(refs_of(a), 2);   /* creator + done list */
    ck_assert_int_eq(refs_of(b), 2);

    pool_loop_forget(loop, &a->base);
    ck_assert_int_eq(refs_of(a), 1);
    pool_loop_forget(loop, &a->base);  /* not listed any more: no-op */
    ck_assert_int_eq(refs_of(a), 1);

    struct pool_job *taken = pool_loop_take(loop);
    ck_assert_ptr_eq(taken, &b->base);
    ck_assert_ptr_null(taken->next);
    pool_job_unref(taken);
    ck_assert_int_eq(refs_of(b), 1);
    pool_loop_forget(loop, &b->base);  /* taken already: no-op */
    ck_assert_int_eq(refs_of(b), 1);
    ck_assert_ptr_null(pool_loop_take(loop));

    ck_assert_int_eq(atomic_load(&g_destroyed), 0);
    pool_job_unref(&a->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 1);
    pool_job_unref(&b->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 2);
    pool_loop_close(loop);
}
END_TEST

/* The binding's fast path: it sees the done flag, consumes the job and
   forgets it.  A job that is done must be on the done list already (or
   dropped), or forget misses it and take hands it over a second time. */
START_TEST(test_forget_right_after_done)
{
    enum { ITER = 1000 };
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    set_caps(1, 8, 8, 8, 60000);

    for (int i = 0; i < ITER; i++) {
        struct tjob *j = tjob_submit(i, W_NOOP, LANE, loop, NULL);
        /* Spin (bounded), as a polling continuation would, so as to see
           the flag the moment it is set. */
        long long deadline = now_ms() + DEADLINE_MS;
        for (unsigned spin = 0; !pool_job_isdone(&j->base); spin++)
            if (spin % 4096 == 0)
                ck_assert_msg(now_ms() < deadline, "job %d never done", i);
        pool_loop_forget(loop, &j->base);
        int refs = refs_of(j);
        ck_assert(WAIT_FOR(lane_quiet(LANE), DEADLINE_MS));
        struct pool_job *late = pool_loop_take(loop);
        ck_assert_msg(late == NULL,
                      "iteration %d: job done and forgotten (refs then %d) "
                      "was later returned by take", i, refs);
        pool_job_unref(&j->base);
        ck_assert_int_eq(atomic_load(&g_destroyed), i + 1);
    }
    pool_loop_close(loop);
}
END_TEST

START_TEST(test_cancel_running_job)
{
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    struct tjob *j = tjob_submit(0, W_RECV, LANE, loop, NULL);
    ck_assert(WAIT_FOR(atomic_load(&g_entered) == 1, DEADLINE_MS));
    ck_assert(!pool_job_isdone(&j->base));

    pool_job_cancel(&j->base);
    ck_assert_int_eq(atomic_load(&j->cancels), 1);
    ck_assert_int_eq(collect(loop, 1, NULL, DEADLINE_MS), 1);
    ck_assert_int_eq(j->got, 0);
    /* Cancelling a job that is done does nothing. */
    pool_job_cancel(&j->base);
    ck_assert_int_eq(atomic_load(&j->cancels), 1);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* ------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------- */

static void config_unchanged(const struct pool_config *want, const char *what)
{
    struct pool_config now;
    pool_get_config(&now);
    ck_assert_msg(memcmp(&now, want, sizeof now) == 0,
                  "config changed by a rejected set (%s)", what);
}

START_TEST(test_config_rejects_out_of_range)
{
    struct pool_config c0, bad;
    pool_get_config(&c0);
    /* The defaults are themselves valid. */
    ck_assert_int_eq(pool_set_config(&c0), 0);
    config_unchanged(&c0, "defaults set again");
    for (int l = 0; l < POOL_NLANES; l++) {
        ck_assert_uint_ge(c0.max_threads[l], 1);
        ck_assert_uint_gt(c0.stack_size[l], 0);
    }

    bad = c0;
    bad.max_threads[POOL_DNS] = 0;
    ck_assert_int_eq(pool_set_config(&bad), EINVAL);
    config_unchanged(&c0, "max_threads 0");

    bad = c0;
    bad.max_threads[POOL_WAIT] = UINT_MAX;
    ck_assert_int_eq(pool_set_config(&bad), EINVAL);
    config_unchanged(&c0, "max_threads UINT_MAX");

    bad = c0;
    bad.stack_size[POOL_CPU] = (size_t)2 << 30;   /* 2 GiB */
    ck_assert_int_eq(pool_set_config(&bad), EINVAL);
    config_unchanged(&c0, "stack 2 GiB");

    bad = c0;
    bad.stack_size[POOL_CONNECT] = SIZE_MAX;
    ck_assert_int_eq(pool_set_config(&bad), EINVAL);
    config_unchanged(&c0, "stack SIZE_MAX");

    /* All or nothing: a valid field next to an invalid one is not kept. */
    bad = c0;
    bad.idle_ms = c0.idle_ms + 1;
    bad.max_threads[POOL_WAIT] = c0.max_threads[POOL_WAIT] + 1;
    bad.max_threads[POOL_CPU] = 0;
    ck_assert_int_eq(pool_set_config(&bad), EINVAL);
    config_unchanged(&c0, "valid fields next to max_threads 0");

    /* A valid change is taken, whole. */
    struct pool_config good = c0, now;
    good.max_threads[POOL_WAIT] = 7;
    good.max_threads[POOL_DNS] = 3;
    good.idle_ms = 1234;
    ck_assert_int_eq(pool_set_config(&good), 0);
    pool_get_config(&now);
    ck_assert_uint_eq(now.max_threads[POOL_WAIT], 7);
    ck_assert_uint_eq(now.max_threads[POOL_DNS], 3);
    ck_assert_uint_eq(now.max_threads[POOL_CONNECT],
                      c0.max_threads[POOL_CONNECT]);
    ck_assert_uint_eq(now.idle_ms, 1234);
    ck_assert_uint_eq(total_threads(), 0);
}
END_TEST

/* pool.h: stack_size is "bytes, rounded up to the minimum". */
START_TEST(test_config_small_stack_rounded_up)
{
    struct pool_config c;
    pool_get_config(&c);
    c.stack_size[LANE] = 1;
    ck_assert_msg(pool_set_config(&c) == 0,
                  "a 1-byte stack size is rejected, not rounded up");
    pool_get_config(&c);
    ck_assert_uint_ge(c.stack_size[LANE], 1);

    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    struct tjob *j = tjob_submit(0, W_NOOP, LANE, loop, NULL);
    ck_assert_int_eq(collect(loop, 1, NULL, DEADLINE_MS), 1);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* A stack size in range but not a multiple of the page size works. */
START_TEST(test_config_odd_stack_size)
{
    struct pool_config c;
    pool_get_config(&c);
    c.stack_size[POOL_CONNECT] = 100001;
    ck_assert_int_eq(pool_set_config(&c), 0);
    struct pool_loop *loop = pool_loop_new();
    ck_assert_ptr_nonnull(loop);
    struct tjob *j = tjob_submit(0, W_NOOP, POOL_CONNECT, loop, NULL);
    ck_assert_int_eq(collect(loop, 1, NULL, DEADLINE_MS), 1);
    ck_assert_uint_eq(lane_stats(POOL_CONNECT).threads, 1);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

START_TEST(test_lane_names)
{
    for (int a = 0; a < POOL_NLANES; a++) {
        const char *na = pool_lane_name((enum pool_lane)a);
        ck_assert_ptr_nonnull(na);
        ck_assert_int_gt(strlen(na), 0);
        for (int b = 0; b < a; b++)
            ck_assert_str_ne(na, pool_lane_name((enum pool_lane)b));
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 * ---------------------------------------------------------------------- */

/* Runs in the test's own process after a passing test: no thread is left
   running when it exits, so the sanitizers see a quiet process. */
static void teardown(void)
{
    pool_shutdown();
}

static void add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, TCASE_SECS);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    add(s, "exactly_once", test_every_job_completes_once);
    add(s, "order_single_thread", test_order_single_thread);
    add(s, "order_released", test_order_released);
    add(s, "eventfd_wakes_poller", test_eventfd_wakes_poller);
    add(s, "load_no_loss", test_load_no_loss);
    add(s, "grow_to_cap_then_shrink", test_grow_to_cap_then_shrink);
    add(s, "lowered_idle_ms", test_lowered_idle_ms_applies_to_idle_threads);
    add(s, "lowered_cap", test_lowered_cap_applies);
    add(s, "raised_cap", test_raised_cap_starts_queued_jobs);
    add(s, "thread_create_failure", test_thread_create_failure_queues);
    add(s, "lanes_do_not_starve", test_lanes_do_not_starve);
    add(s, "shutdown_wakes_blocked", test_shutdown_wakes_blocked_jobs);
    add(s, "shutdown_with_queued", test_shutdown_with_queued_jobs);
    add(s, "shutdown_after_loop_closed", test_shutdown_after_loop_closed);
    add(s, "loop_closed_in_flight", test_loop_closed_with_jobs_in_flight);
    add(s, "loop_closed_pending", test_loop_closed_with_pending_completions);
    add(s, "run_inline", test_run_inline);
    add(s, "wait_job", test_wait_job_blocks_until_done);
    add(s, "forget", test_forget);
    add(s, "forget_right_after_done", test_forget_right_after_done);
    add(s, "cancel", test_cancel_running_job);
    add(s, "config_out_of_range", test_config_rejects_out_of_range);
    add(s, "config_small_stack", test_config_small_stack_rounded_up);
    add(s, "config_odd_stack", test_config_odd_stack_size);
    add(s, "lane_names", test_lane_names);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

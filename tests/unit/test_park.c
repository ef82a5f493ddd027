/* SPDX-License-Identifier: MIT */
/*
 * test_park.c -- Check unit tests for waiting without a thread: parked
 * jobs, the pollers, and deadlines (src/park.c, API in src/pool.h and
 * src/park.h).
 *
 * Every test runs in its own forked process (Check's default), so it
 * starts with no pollers and the default configuration.  Descriptors are
 * socketpairs; a test job reads what has arrived on fd[0] in its step and
 * is done once it has 'want' bytes.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "park.h"
#include "pool.h"
#include "unittest.h"

/* ------------------------------------------------------------------------
 * The test job
 * ---------------------------------------------------------------------- */

struct pjob {
    struct pool_job base;
    int fd[2];                  /* the job waits on fd[0]; tests write fd[1] */
    struct park_reg reg;
    int want;                   /* bytes to read before the step says done */
    int got;
    int write_side;             /* waits for POLLOUT instead, writes 1 byte */
    struct gate *gate;          /* work waits for it, if set */
    atomic_int steps, works, aborts;
    int abort_err;
    pthread_t stepped_on;       /* the thread of the last step */
};

static atomic_int g_destroyed;

static int pjob_step(struct pool_job *pj)
{
    struct pjob *j = (struct pjob *)pj;
    char buf[64];
    j->stepped_on = pthread_self();
    atomic_fetch_add(&j->steps, 1);
    if (j->write_side)
        return send(j->fd[0], "w", 1, MSG_DONTWAIT) == 1 ? POOL_DONE
                                                         : POOL_AGAIN;
    ssize_t n = recv(j->fd[0], buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0)
        j->got += (int)n;
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return POOL_DONE;       /* end of stream or an error */
    return j->got >= j->want ? POOL_DONE : POOL_AGAIN;
}

static void pjob_work(struct pool_job *pj)
{
    struct pjob *j = (struct pjob *)pj;
    atomic_fetch_add(&j->works, 1);
    if (j->gate)
        gate_wait(j->gate);
}

static void pjob_abort(struct pool_job *pj, int err)
{
    struct pjob *j = (struct pjob *)pj;
    atomic_fetch_add(&j->aborts, 1);
    j->abort_err = err;
}

static void pjob_destroy(struct pool_job *pj)
{
    struct pjob *j = (struct pjob *)pj;
    park_reg_release(&j->reg);
    close(j->fd[0]);
    close(j->fd[1]);
    free(j);
    atomic_fetch_add(&g_destroyed, 1);
}

static const struct pool_job_ops step_ops = {
    .step = pjob_step, .abort = pjob_abort, .destroy = pjob_destroy,
};
/* Parked until readable, then blocking work on its lane. */
static const struct pool_job_ops work_ops = {
    .work = pjob_work, .abort = pjob_abort, .destroy = pjob_destroy,
};

static struct pjob *pjob_new(const struct pool_job_ops *ops,
                             enum pool_lane lane, struct pool_loop *loop,
                             int want)
{
    struct pjob *j = calloc(1, sizeof *j);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                SOCK_CLOEXEC, 0, j->fd), 0);
    park_reg_init(&j->reg);
    j->want = want;
    pool_job_init(&j->base, ops, lane, loop);
    pool_job_wait_fd(&j->base, &j->reg, j->fd[0], POLLIN);
    return j;
}

static struct pool_lane_stats wait_stats(void)
{
    struct pool_lane_stats s[POOL_NLANES];
    pool_get_stats(s);
    return s[POOL_WAIT];
}

static void poke(struct pjob *j, const char *bytes)
{
    ck_assert_int_eq(write(j->fd[1], bytes, strlen(bytes)),
                     (ssize_t)strlen(bytes));
}

/* Take completions until 'want' came or 'ms' passed; drops the done
   list's references.  Returns how many came. */
static int collect(struct pool_loop *loop, int want, int ms)
{
    long long deadline = now_ms() + ms;
    int got = 0;
    while (got < want && now_ms() < deadline) {
        if (pool_loop_wait(loop, (int)(deadline - now_ms())) <= 0)
            continue;
        for (struct pool_job *pj = pool_loop_take(loop); pj;) {
            struct pool_job *next = pj->next;
            ck_assert(pool_job_isdone(pj));
            got++;
            pool_job_unref(pj);
            pj = next;
        }
    }
    return got;
}

/* ------------------------------------------------------------------------
 * Parking and stepping
 * ---------------------------------------------------------------------- */

/* A parked job costs no thread of its own and runs its step once its
   descriptor is ready; a step that wants more waits again. */
START_TEST(test_parked_until_ready)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, loop, 3);
    pool_submit(&j->base);
    ck_assert(WAIT_FOR(wait_stats().parked == 1, DEADLINE_MS));
    sleep_ms(50);
    ck_assert(!pool_job_isdone(&j->base));
    ck_assert_int_eq(atomic_load(&j->steps), 0);
    ck_assert_uint_eq(wait_stats().threads, 1);     /* one poller */

    /* One byte at a time: each readiness is one step, then parked again. */
    for (int i = 1; i <= 3; i++) {
        poke(j, "x");
        if (i < 3)
            ck_assert(WAIT_FOR(atomic_load(&j->steps) == i &&
                               wait_stats().parked == 1, DEADLINE_MS));
    }
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(j->got, 3);
    ck_assert_int_eq(atomic_load(&j->steps), 3);
    ck_assert_int_eq(atomic_load(&j->aborts), 0);
    ck_assert_uint_eq(wait_stats().parked, 0);
    pool_job_unref(&j->base);
    ck_assert_int_eq(atomic_load(&g_destroyed), 1);
    pool_loop_close(loop);
}
END_TEST

/* Many idle waits, few threads: thousands parked are watched by the
   pollers alone, and every one completes once its data comes. */
START_TEST(test_many_parked_few_threads)
{
    enum { N = 3000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 100) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 2 * N + 100) {
        fprintf(stderr, "skipped: needs %d descriptors\n", 2 * N + 100);
        return;
    }
    struct pool_loop *loop = pool_loop_new();
    struct pjob **jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i] = pjob_new(&step_ops, POOL_WAIT, loop, 1);
        pool_submit(&jobs[i]->base);
    }
    ck_assert(WAIT_FOR(wait_stats().parked == N, DEADLINE_MS));
    struct pool_config c;
    pool_get_config(&c);
    ck_assert_uint_le(wait_stats().threads, c.max_threads[POOL_WAIT]);
    for (int i = 0; i < N; i++)
        poke(jobs[i], "!");
    ck_assert_int_eq(collect(loop, N, 3 * DEADLINE_MS), N);
    ck_assert_uint_le(wait_stats().threads, c.max_threads[POOL_WAIT]);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i]->got, 1);
        pool_job_unref(&jobs[i]->base);
    }
    free(jobs);
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
}
END_TEST

/* One descriptor, a reader and a writer parked on it: each is woken for
   its own direction only. */
START_TEST(test_both_directions)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *r = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    /* A writer job on the reader's descriptor: it shares the slot. */
    struct pjob *w = calloc(1, sizeof *w);
    ck_assert_ptr_nonnull(w);
    w->fd[0] = dup(r->fd[0]);
    w->fd[1] = dup(r->fd[1]);
    park_reg_init(&w->reg);
    w->write_side = 1;
    pool_job_init(&w->base, &step_ops, POOL_WAIT, loop);
    pool_submit(&r->base);
    ck_assert(WAIT_FOR(wait_stats().parked == 1, DEADLINE_MS));
    pool_job_wait_fd(&w->base, &r->reg, r->fd[0], POLLOUT);
    pool_submit(&w->base);
    /* The socket is writable at once: the writer completes, the reader
       stays parked. */
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert(pool_job_isdone(&w->base));
    ck_assert(!pool_job_isdone(&r->base));
    ck_assert(WAIT_FOR(wait_stats().parked == 1, DEADLINE_MS));
    poke(r, "r");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(r->got, 1);
    pool_job_unref(&w->base);
    pool_job_unref(&r->base);
    pool_loop_close(loop);
}
END_TEST

/* Several jobs waiting to read on one descriptor: one readiness wakes
   them all (here the first to step reads the byte, the others find
   nothing and wait again, until more comes). */
START_TEST(test_two_readers_one_slot)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *a = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    struct pjob *b = calloc(1, sizeof *b);
    ck_assert_ptr_nonnull(b);
    b->fd[0] = dup(a->fd[0]);
    b->fd[1] = dup(a->fd[1]);
    park_reg_init(&b->reg);
    b->want = 1;
    pool_job_init(&b->base, &step_ops, POOL_WAIT, loop);
    pool_job_wait_fd(&b->base, &a->reg, a->fd[0], POLLIN);
    pool_submit(&a->base);
    pool_submit(&b->base);
    ck_assert(WAIT_FOR(wait_stats().parked == 2, DEADLINE_MS));
    poke(a, "1");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert(WAIT_FOR(atomic_load(&a->steps) >= 1 && atomic_load(&b->steps) >= 1,
                       DEADLINE_MS));
    ck_assert(WAIT_FOR(wait_stats().parked == 1, DEADLINE_MS));
    poke(a, "2");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(a->got + b->got, 2);
    ck_assert_uint_eq(wait_stats().parked, 0);
    pool_job_unref(&b->base);       /* b first: it holds a's registration */
    pool_job_unref(&a->base);
    pool_loop_close(loop);
}
END_TEST

/* A job without a step goes, once its descriptor is ready, to its lane's
   blocking work (as a server handshake does after the first flight). */
START_TEST(test_ready_then_work)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&work_ops, POOL_CPU, loop, 1);
    pool_submit(&j->base);
    struct pool_lane_stats s[POOL_NLANES];
    ck_assert(WAIT_FOR((pool_get_stats(s), s[POOL_CPU].parked == 1),
                       DEADLINE_MS));
    sleep_ms(30);
    ck_assert_int_eq(atomic_load(&j->works), 0);
    poke(j, "hello");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(atomic_load(&j->works), 1);
    pool_get_stats(s);
    ck_assert_uint_eq(s[POOL_CPU].parked, 0);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* ------------------------------------------------------------------------
 * Deadlines and cancelling
 * ---------------------------------------------------------------------- */

/* A parked job whose deadline passes is aborted with ETIMEDOUT on time;
   its step never ran. */
START_TEST(test_deadline_while_parked)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    long long t0 = now_ms();
    pool_job_set_deadline(&j->base, t0 + 150);
    pool_submit(&j->base);
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    long long ms = now_ms() - t0;
    ck_assert_msg(ms >= 140 && ms < 2000, "aborted after %lld ms", ms);
    ck_assert_int_eq(atomic_load(&j->aborts), 1);
    ck_assert_int_eq(j->abort_err, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&j->steps), 0);
    ck_assert_uint_eq(wait_stats().parked, 0);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* Jobs with different deadlines end in deadline order, each on time,
   whatever order they were parked in. */
START_TEST(test_deadlines_in_order)
{
    enum { N = 6 };
    static const int after[N] = { 300, 100, 500, 200, 50, 400 };
    struct pool_loop *loop = pool_loop_new();
    struct pjob *jobs[N];
    long long t0 = now_ms();
    for (int i = 0; i < N; i++) {
        jobs[i] = pjob_new(&step_ops, POOL_WAIT, loop, 1);
        pool_job_set_deadline(&jobs[i]->base, t0 + after[i]);
        pool_submit(&jobs[i]->base);
    }
    long long done_at[N] = { 0 };
    for (int got = 0; got < N && now_ms() < t0 + DEADLINE_MS;) {
        if (pool_loop_wait(loop, 100) <= 0)
            continue;
        for (struct pool_job *pj = pool_loop_take(loop); pj;) {
            struct pool_job *next = pj->next;
            for (int i = 0; i < N; i++)
                if (pj == &jobs[i]->base)
                    done_at[i] = now_ms() - t0;
            got++;
            pool_job_unref(pj);
            pj = next;
        }
    }
    for (int i = 0; i < N; i++) {
        ck_assert_msg(done_at[i] >= after[i] - 10 && done_at[i] < after[i] + 1000,
                      "job %d (deadline %d ms) ended after %lld ms", i, after[i],
                      done_at[i]);
        ck_assert_int_eq(jobs[i]->abort_err, -ETIMEDOUT);
        pool_job_unref(&jobs[i]->base);
    }
    pool_loop_close(loop);
}
END_TEST

/* A job waiting for a thread of its lane (the cap reached by a job that
   blocks) still ends at its deadline, without running. */
START_TEST(test_deadline_while_queued)
{
    struct pool_loop *loop = pool_loop_new();
    struct pool_config c;
    pool_get_config(&c);
    c.max_threads[POOL_CONNECT] = 1;
    ck_assert_int_eq(pool_set_config(&c), 0);
    struct gate g;
    gate_init(&g);
    struct pjob *b = pjob_new(&work_ops, POOL_CONNECT, loop, 1);
    b->base.events = 0;                 /* straight to the lane */
    b->gate = &g;
    pool_submit(&b->base);
    ck_assert(WAIT_FOR(atomic_load(&b->works) == 1, DEADLINE_MS));
    struct pjob *q = pjob_new(&work_ops, POOL_CONNECT, loop, 1);
    q->base.events = 0;
    long long t0 = now_ms();
    pool_job_set_deadline(&q->base, t0 + 150);
    pool_submit(&q->base);
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    long long ms = now_ms() - t0;
    ck_assert(pool_job_isdone(&q->base));
    ck_assert(!pool_job_isdone(&b->base));
    ck_assert_msg(ms >= 140 && ms < 2000, "aborted after %lld ms", ms);
    ck_assert_int_eq(q->abort_err, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&q->works), 0);
    gate_open(&g);
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    pool_job_unref(&b->base);
    pool_job_unref(&q->base);
    gate_destroy(&g);
    pool_loop_close(loop);
}
END_TEST

/* Cancelling a parked job completes it at once (ECANCELED), without a
   step; a later readiness of its descriptor does nothing. */
START_TEST(test_cancel_parked)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    pool_submit(&j->base);
    ck_assert(WAIT_FOR(wait_stats().parked == 1, DEADLINE_MS));
    pool_job_cancel(&j->base);
    ck_assert(pool_job_isdone(&j->base));
    ck_assert_int_eq(j->abort_err, -ECANCELED);
    ck_assert_uint_eq(wait_stats().parked, 0);
    poke(j, "late");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    sleep_ms(30);
    ck_assert_int_eq(atomic_load(&j->steps), 0);
    ck_assert_int_eq(pool_loop_wait(loop, 0), 0);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* A descriptor number reused after its registration was released gets a
   fresh one: an event of the old one never reaches the new job. */
START_TEST(test_reused_number)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *a = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    pool_submit(&a->base);
    poke(a, "a");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    int old = a->fd[0];
    pool_job_unref(&a->base);            /* releases, closes */
    struct pjob *b = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    ck_assert_int_eq(b->fd[0] == old || b->fd[1] == old, 1);
    pool_submit(&b->base);
    sleep_ms(50);
    ck_assert(!pool_job_isdone(&b->base));
    poke(b, "b");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert_int_eq(b->got, 1);
    pool_job_unref(&b->base);
    pool_loop_close(loop);
}
END_TEST

/* Pokes j once its owner has taken the parked jobs back to wait on them
   itself (then none is parked): a poller can no longer step it first. */
static void *poke_when_taken(void *arg)
{
    if (WAIT_FOR(wait_stats().parked == 0, DEADLINE_MS))
        poke(arg, "b");
    return NULL;
}

/* An owner about to sleep with few parked jobs waits on them itself: the
   ready one's step runs on the owner's own thread (no poller woken), the
   others are parked again; with many parked, they stay on the shared set,
   where the owner waits too. */
START_TEST(test_owner_waits_for_few_itself)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *a = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    struct pjob *b = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    pool_submit(&a->base);
    pool_submit(&b->base);
    ck_assert(WAIT_FOR(wait_stats().parked == 2, DEADLINE_MS));
    pthread_t poker;
    ck_assert_int_eq(pthread_create(&poker, NULL, poke_when_taken, b), 0);
    ck_assert_int_eq(pool_loop_wait(loop, DEADLINE_MS), 1);
    pthread_join(poker, NULL);
    ck_assert(pool_job_isdone(&b->base));
    ck_assert(pthread_equal(b->stepped_on, pthread_self()));
    ck_assert(!pool_job_isdone(&a->base));
    ck_assert_uint_eq(wait_stats().parked, 1);      /* a parked again */
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    /* a's readiness with its owner not waiting: a poller steps it. */
    poke(a, "a");
    ck_assert(WAIT_FOR(pool_job_isdone(&a->base), DEADLINE_MS));
    ck_assert(!pthread_equal(a->stepped_on, pthread_self()));
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    pool_job_unref(&a->base);
    pool_job_unref(&b->base);

    /* Many parked: the owner waits on its eventfd and on the shared set
       (park_lead), alongside the pollers; whichever takes the event steps
       the job, once, and the rest stay parked. */
    enum { MANY = 10 };
    struct pjob *m[MANY];
    for (int i = 0; i < MANY; i++) {
        m[i] = pjob_new(&step_ops, POOL_WAIT, loop, 1);
        pool_submit(&m[i]->base);
    }
    ck_assert(WAIT_FOR(wait_stats().parked == MANY, DEADLINE_MS));
    /* Nothing ready: the shared set does not wake the owner. */
    ck_assert_int_eq(pool_loop_wait(loop, 100), 0);
    poke(m[3], "!");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert(pool_job_isdone(&m[3]->base));
    ck_assert_uint_eq(wait_stats().parked, MANY - 1);
    for (int i = 0; i < MANY; i++)
        ck_assert(i == 3 || !pool_job_isdone(&m[i]->base));
    for (int i = 0; i < MANY; i++)
        pool_job_unref(&m[i]->base);
    pool_loop_close(loop);
}
END_TEST

/* The owner's own wait keeps the jobs' deadlines. */
START_TEST(test_owner_wait_keeps_deadlines)
{
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    long long t0 = now_ms();
    pool_job_set_deadline(&j->base, t0 + 150);
    pool_submit(&j->base);
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    long long ms = now_ms() - t0;
    ck_assert_msg(ms >= 140 && ms < 2000, "aborted after %lld ms", ms);
    ck_assert_int_eq(j->abort_err, -ETIMEDOUT);
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* ------------------------------------------------------------------------
 * Pollers, inline runs, shutdown
 * ---------------------------------------------------------------------- */

/* Pollers leave after idle_ms once nothing is parked or timed. */
START_TEST(test_pollers_leave_when_idle)
{
    struct pool_config c;
    pool_get_config(&c);
    c.idle_ms = 100;
    ck_assert_int_eq(pool_set_config(&c), 0);
    struct pool_loop *loop = pool_loop_new();
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, loop, 1);
    pool_submit(&j->base);
    ck_assert(WAIT_FOR(wait_stats().threads >= 1, DEADLINE_MS));
    /* While something is parked, the last poller stays. */
    sleep_ms(300);
    ck_assert_uint_ge(wait_stats().threads, 1);
    poke(j, "x");
    ck_assert_int_eq(collect(loop, 1, DEADLINE_MS), 1);
    ck_assert(WAIT_FOR(wait_stats().threads == 0, 3000));
    pool_job_unref(&j->base);
    pool_loop_close(loop);
}
END_TEST

/* Outside the pool (a caller that may block): wait in poll(2) up to the
   deadline, then step. */
START_TEST(test_run_inline_waits_and_times_out)
{
    struct pjob *j = pjob_new(&step_ops, POOL_WAIT, NULL, 2);
    poke(j, "12");
    pool_run_inline(&j->base);
    ck_assert(pool_job_isdone(&j->base));
    ck_assert_int_eq(j->got, 2);
    pool_job_unref(&j->base);

    j = pjob_new(&step_ops, POOL_WAIT, NULL, 1);
    long long t0 = now_ms();
    pool_job_set_deadline(&j->base, t0 + 100);
    pool_run_inline(&j->base);
    long long ms = now_ms() - t0;
    ck_assert_msg(ms >= 95 && ms < 2000, "returned after %lld ms", ms);
    ck_assert_int_eq(j->abort_err, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&j->steps), 0);
    ck_assert_uint_eq(wait_stats().threads, 0);    /* no poller needed */
    pool_job_unref(&j->base);
}
END_TEST

/* Shutdown aborts what is parked (ECANCELED) and stops every poller. */
START_TEST(test_shutdown_aborts_parked)
{
    enum { N = 20 };
    struct pool_loop *loop = pool_loop_new();
    struct pjob *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = pjob_new(&step_ops, POOL_WAIT, loop, 1);
        if (i % 2)
            pool_job_set_deadline(&jobs[i]->base, now_ms() + 60000);
        pool_submit(&jobs[i]->base);
    }
    ck_assert(WAIT_FOR(wait_stats().parked == N, DEADLINE_MS));
    ck_assert_msg(run_bounded(pool_shutdown, DEADLINE_MS),
                  "pool_shutdown did not return");
    ck_assert_uint_eq(wait_stats().threads, 0);
    ck_assert_uint_eq(wait_stats().parked, 0);
    ck_assert_int_eq(collect(loop, N, 1000), N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i]->abort_err, -ECANCELED);
        pool_job_unref(&jobs[i]->base);
    }
    ck_assert_int_eq(atomic_load(&g_destroyed), N);
    pool_loop_close(loop);
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 * ---------------------------------------------------------------------- */

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

int main(void)
{
    Suite *s = suite_create("park");
    add(s, "parked_until_ready", test_parked_until_ready);
    add(s, "many_parked_few_threads", test_many_parked_few_threads);
    add(s, "both_directions", test_both_directions);
    add(s, "two_readers_one_slot", test_two_readers_one_slot);
    add(s, "ready_then_work", test_ready_then_work);
    add(s, "deadline_while_parked", test_deadline_while_parked);
    add(s, "deadlines_in_order", test_deadlines_in_order);
    add(s, "deadline_while_queued", test_deadline_while_queued);
    add(s, "cancel_parked", test_cancel_parked);
    add(s, "owner_waits_for_few", test_owner_waits_for_few_itself);
    add(s, "owner_wait_deadlines", test_owner_wait_keeps_deadlines);
    add(s, "reused_number", test_reused_number);
    add(s, "pollers_leave_when_idle", test_pollers_leave_when_idle);
    add(s, "run_inline", test_run_inline_waits_and_times_out);
    add(s, "shutdown_aborts_parked", test_shutdown_aborts_parked);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

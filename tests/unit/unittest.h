/* SPDX-License-Identifier: MIT */
/*
 * unittest.h -- what the Check unit tests share: time, bounded waiting,
 * gates that hold a job's work until the test opens them, and calls
 * bounded in time.  Each test program includes it once.
 */
#ifndef PLUTO_UNITTEST_H
#define PLUTO_UNITTEST_H

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#define DEADLINE_MS 10000   /* how long a test waits for any one thing */
#define TCASE_SECS  60      /* Check's own limit around each test */

/* ------------------------------------------------------------------------
 * Time and bounded waiting
 * ---------------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Poll a condition every millisecond until it holds or 'ms' pass;
   evaluates to whether it held.  (A GNU statement expression.) */
#define WAIT_FOR(cond, ms)                                       \
    __extension__ ({                                             \
        long long wf_deadline_ = now_ms() + (ms);                \
        int wf_ok_;                                              \
        while (!(wf_ok_ = !!(cond)) && now_ms() < wf_deadline_)  \
            sleep_ms(1);                                         \
        wf_ok_;                                                  \
    })

/* ------------------------------------------------------------------------
 * A gate: work functions block on it until the test opens it
 * ---------------------------------------------------------------------- */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
};

static void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
}

static void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

static void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Run fn on another thread; 1 if it returned within ms, 0 if not (the
   thread is then left behind; the test fails and its process ends). */
struct bounded_call {
    void (*fn)(void);
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
};

static void *bounded_main(void *arg)
{
    struct bounded_call *b = arg;
    b->fn();
    pthread_mutex_lock(&b->mu);
    b->finished = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static int run_bounded(void (*fn)(void), int ms)
{
    static struct bounded_call b;   /* outlives a thread left behind */
    pthread_t t;
    struct timespec deadline;
    int finished;

    b.fn = fn;
    b.finished = 0;
    pthread_mutex_init(&b.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b.cv, &ca);
    pthread_condattr_destroy(&ca);
    ck_assert_int_eq(pthread_create(&t, NULL, bounded_main, &b), 0);

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b.mu);
    while (!b.finished &&
           pthread_cond_timedwait(&b.cv, &b.mu, &deadline) != ETIMEDOUT)
        ;
    finished = b.finished;
    pthread_mutex_unlock(&b.mu);
    if (finished)
        pthread_join(t, NULL);
    return finished;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * pool.c -- worker threads in lanes, and completion loops (see pool.h).
 *
 * Each lane is one mutex, one condition variable and one FIFO queue, in the
 * manner of libuv's threadpool, but threads are started on demand (up to the
 * lane's cap) and leave after idle_ms without work.
 *
 * Invariant used to decide when to start a thread: every idle thread will
 * take one queued job, so a new thread is needed exactly when the queue
 * holds more jobs than there are idle threads.
 */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_FACTOR 4   /* sanitizers need much bigger frames */
#else
#define STACK_FACTOR 1
#endif

#define MIN_STACK   (32 * 1024)
#define MAX_STACK   (64u * 1024 * 1024)
#define MAX_THREADS 30000u

struct job_list {
    struct pool_job *head, *tail;
    unsigned count;
};

struct lane {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* a job was queued, or the pool is stopping */
    pthread_cond_t exit_cv;   /* the last thread left */
    struct job_list queue;
    struct job_list running;
    unsigned threads, idle;
    unsigned long long completed;
    int stopping;
    /* This lane's copy of the settings, read by workers under mu. */
    unsigned max_threads, idle_ms;
    size_t stack_size;
};

struct pool_loop {
    pthread_mutex_t mu;
    pthread_cond_t job_cv;    /* broadcast on posts while sync_waiters > 0 */
    struct job_list done;
    unsigned sync_waiters;
    int closed;
    int efd;
    /* Set while the owner spins before sleeping: a post then needs no
       eventfd write.  Both are seq_cst, Dekker style: either the owner
       sees 'pending' after its spin, or the poster sees it not spinning. */
    atomic_int pending;           /* the done list is not empty */
    atomic_int spinning;
    atomic_int refs;
};

static struct lane lanes[POOL_NLANES];
static atomic_uint spin_setting = 50000;   /* config.spin_us, in ns */
/* CPU-lane jobs (handshakes) running now: while there are any, an owner
   about to sleep does not spin, since the core it would burn is the one
   a handshake needs. */
static atomic_int cpu_jobs_running;
static int start_worker(enum pool_lane id);
static pthread_once_t lanes_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t config_mu = PTHREAD_MUTEX_INITIALIZER;

/* Guarded by config_mu; each lane keeps its own copy under its lock. */
static struct pool_config config = {
    /* The cpu lane runs handshakes, which are CPU-heavy but also wait on
       their peers inside one blocking call.  A cap near the core count
       would let a few slow clients stall every other handshake, and a
       process that is both client and server of itself would deadlock once
       its own handshakes filled the lane; so the cap is high, and the
       kernel shares the cores among the threads that compute. */
    .max_threads = { 16384, 256, 1024, 4096 },
    .stack_size = { 64 * 1024, 128 * 1024, 128 * 1024, 256 * 1024 },
    .idle_ms = 10000,
    .spin_us = 50,
};

static const char *const lane_names[POOL_NLANES] = {
    "wait", "connect", "dns", "cpu"
};

const char *pool_lane_name(enum pool_lane lane)
{
    return lane_names[lane];
}

/* ------------------------------------------------------------------------
 * Intrusive doubly linked lists
 * ---------------------------------------------------------------------- */

static void list_push(struct job_list *l, struct pool_job *job,
                      enum pool_job_where where)
{
    job->next = NULL;
    job->prev = l->tail;
    if (l->tail)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
    l->count++;
    job->where = where;
}

static void list_unlink(struct job_list *l, struct pool_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        l->head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        l->tail = job->prev;
    job->prev = job->next = NULL;
    job->where = POOL_NOWHERE;
    l->count--;
}

/* ------------------------------------------------------------------------
 * Setup
 * ---------------------------------------------------------------------- */

static void lanes_init(void)
{
    for (int i = 0; i < POOL_NLANES; i++) {
        pthread_mutex_init(&lanes[i].mu, NULL);
        pthread_cond_init(&lanes[i].exit_cv, NULL);
        /* Idle timeouts are measured on the monotonic clock. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&lanes[i].work_cv, &ca);
        pthread_condattr_destroy(&ca);
        lanes[i].max_threads = config.max_threads[i];
        lanes[i].stack_size = config.stack_size[i];
        lanes[i].idle_ms = config.idle_ms;
    }
}

static void ensure_init(void)
{
    pthread_once(&lanes_once, lanes_init);
}

/* ------------------------------------------------------------------------
 * Jobs
 * ---------------------------------------------------------------------- */

static void loop_unref(struct pool_loop *loop);

void pool_job_init(struct pool_job *job, const struct pool_job_ops *ops,
                   enum pool_lane lane, struct pool_loop *loop)
{
    job->ops = ops;
    job->loop = loop;
    if (loop)
        atomic_fetch_add_explicit(&loop->refs, 1, memory_order_relaxed);
    atomic_init(&job->refs, 1);
    atomic_init(&job->done, 0);
    job->lane = lane;
    job->prev = job->next = NULL;
    job->where = POOL_NOWHERE;
    job->udata = NULL;
}

void pool_job_ref(struct pool_job *job)
{
    atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
}

void pool_job_unref(struct pool_job *job)
{
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
        return;
    struct pool_loop *loop = job->loop;
    job->ops->destroy(job);
    if (loop)
        loop_unref(loop);
}

void pool_job_cancel(struct pool_job *job)
{
    if (!pool_job_isdone(job) && job->ops->cancel)
        job->ops->cancel(job);
}

void pool_run_inline(struct pool_job *job)
{
    job->ops->work(job);
    atomic_store_explicit(&job->done, 1, memory_order_release);
}

/* ------------------------------------------------------------------------
 * Loops
 * ---------------------------------------------------------------------- */

struct pool_loop *pool_loop_new(void)
{
    struct pool_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->efd < 0) {
        int e = errno;
        free(loop);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&loop->mu, NULL);
    pthread_cond_init(&loop->job_cv, NULL);
    atomic_init(&loop->refs, 1);
    return loop;
}

static void loop_unref(struct pool_loop *loop)
{
    if (atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_acq_rel) != 1)
        return;
    close(loop->efd);
    pthread_mutex_destroy(&loop->mu);
    pthread_cond_destroy(&loop->job_cv);
    free(loop);
}

void pool_loop_close(struct pool_loop *loop)
{
    struct pool_job *job;
    pthread_mutex_lock(&loop->mu);
    loop->closed = 1;
    job = loop->done.head;
    loop->done.head = loop->done.tail = NULL;
    loop->done.count = 0;
    for (struct pool_job *j = job; j; j = j->next)
        j->where = POOL_NOWHERE;
    pthread_mutex_unlock(&loop->mu);
    while (job) {
        struct pool_job *next = job->next;
        pool_job_unref(job);
        job = next;
    }
    loop_unref(loop);
}

int pool_loop_fd(struct pool_loop *loop)
{
    return loop->efd;
}

/* Called by a worker when a job's work has returned: marks it done and
   hands the pool's reference over to the done list (or drops it if
   nobody listens). */
static void loop_post(struct pool_job *job)
{
    struct pool_loop *loop = job->loop;
    if (!loop) {
        atomic_store_explicit(&job->done, 1, memory_order_release);
        pool_job_unref(job);
        return;
    }
    pthread_mutex_lock(&loop->mu);
    /* 'done' is set under the loop lock, with the job already listed, so
       that an owner who sees it done can always unlink it (forget). */
    atomic_store_explicit(&job->done, 1, memory_order_release);
    if (loop->closed) {
        pthread_mutex_unlock(&loop->mu);
        pool_job_unref(job);
        return;
    }
    int was_empty = loop->done.head == NULL;
    list_push(&loop->done, job, POOL_DONELIST);
    atomic_store(&loop->pending, 1);
    if (was_empty && !atomic_load(&loop->spinning)) {
        uint64_t one = 1;
        /* Cannot fail short of a counter overflow, which a reset per
           take makes impossible. */
        ssize_t r = write(loop->efd, &one, sizeof one);
        (void)r;
    }
    if (loop->sync_waiters)
        pthread_cond_broadcast(&loop->job_cv);
    pthread_mutex_unlock(&loop->mu);
}

/* A completion that comes within a few microseconds of the owner running
   out of work (an echo's reply) is taken without the owner falling
   asleep in the kernel and being woken: that wake-up is most of a
   round trip's cost.  Bounded, and only when the owner would sleep. */
static int spin_for_completion(struct pool_loop *loop, unsigned spin_ns)
{
    struct timespec t0, t;
    int seen = 0;
    atomic_store(&loop->spinning, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1; !seen; i++) {
        seen = atomic_load_explicit(&loop->pending, memory_order_acquire);
        if ((i & 1) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((unsigned long long)(t.tv_sec - t0.tv_sec) * 1000000000ULL +
                (unsigned long long)(t.tv_nsec - t0.tv_nsec) > spin_ns)
                break;
            /* The worker we wait for may be queued on this very core:
               a spin that never yields holds it off until the spin ends
               (on the 2-core benchmark machine, yielding took one
               connection's echo from about 18,000 round trips/s, with
               runs down at 8,000, to about 29,000). */
            sched_yield();
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    atomic_store(&loop->spinning, 0);
    return seen || atomic_load(&loop->pending);
}

int pool_loop_wait(struct pool_loop *loop, int timeout_ms)
{
    struct pollfd pfd = { .fd = loop->efd, .events = POLLIN };
    unsigned spin_ns = atomic_load_explicit(&spin_setting, memory_order_relaxed);
    if (timeout_ms != 0 && spin_ns &&
        atomic_load_explicit(&cpu_jobs_running, memory_order_relaxed) == 0 &&
        spin_for_completion(loop, spin_ns))
        return 1;
    for (;;) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n >= 0)
            return n > 0;
        if (errno != EINTR)
            return -1;
    }
}

struct pool_job *pool_loop_take(struct pool_loop *loop)
{
    uint64_t count;
    /* Reset the eventfd before detaching: a post that lands after this
       read finds the list empty again and writes a fresh wake-up. */
    ssize_t r = read(loop->efd, &count, sizeof count);
    (void)r;
    pthread_mutex_lock(&loop->mu);
    atomic_store_explicit(&loop->pending, 0, memory_order_relaxed);
    struct pool_job *head = loop->done.head;
    for (struct pool_job *j = head; j; j = j->next)
        j->where = POOL_NOWHERE;
    loop->done.head = loop->done.tail = NULL;
    loop->done.count = 0;
    pthread_mutex_unlock(&loop->mu);
    return head;
}

void pool_loop_forget(struct pool_loop *loop, struct pool_job *job)
{
    int listed;
    pthread_mutex_lock(&loop->mu);
    listed = job->where == POOL_DONELIST;
    if (listed)
        list_unlink(&loop->done, job);
    if (!loop->done.head)
        atomic_store_explicit(&loop->pending, 0, memory_order_relaxed);
    pthread_mutex_unlock(&loop->mu);
    if (listed)
        pool_job_unref(job);
}

void pool_loop_wait_job(struct pool_loop *loop, struct pool_job *job)
{
    pthread_mutex_lock(&loop->mu);
    loop->sync_waiters++;
    while (!pool_job_isdone(job))
        pthread_cond_wait(&loop->job_cv, &loop->mu);
    loop->sync_waiters--;
    pthread_mutex_unlock(&loop->mu);
}

/* ------------------------------------------------------------------------
 * Workers
 * ---------------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, const struct timespec *from,
                           unsigned ms)
{
    *ts = *from;
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait for a job with the lane lock held; NULL when the thread should
   leave (idle too long, lane over its cap, or the pool stopping). */
static struct pool_job *next_job(struct lane *ln)
{
    struct timespec since, deadline;
    clock_gettime(CLOCK_MONOTONIC, &since);
    while (!ln->queue.head) {
        if (ln->stopping || ln->threads > ln->max_threads)
            return NULL;
        /* Recomputed on each pass: a lowered idle_ms applies at once. */
        deadline_after(&deadline, &since, ln->idle_ms);
        ln->idle++;
        int rc = pthread_cond_timedwait(&ln->work_cv, &ln->mu, &deadline);
        ln->idle--;
        if (rc == ETIMEDOUT && !ln->queue.head)
            return NULL;
    }
    struct pool_job *job = ln->queue.head;
    list_unlink(&ln->queue, job);
    list_push(&ln->running, job, POOL_RUNNING);
    return job;
}

static void *worker_main(void *arg)
{
    enum pool_lane id = (enum pool_lane)(intptr_t)arg;
    struct lane *ln = &lanes[id];
    struct pool_job *job;

    pthread_mutex_lock(&ln->mu);
    while ((job = next_job(ln)) != NULL) {
        pthread_mutex_unlock(&ln->mu);
        if (id == POOL_CPU)
            atomic_fetch_add_explicit(&cpu_jobs_running, 1, memory_order_relaxed);
        job->ops->work(job);
        if (id == POOL_CPU)
            atomic_fetch_sub_explicit(&cpu_jobs_running, 1, memory_order_relaxed);
        pthread_mutex_lock(&ln->mu);
        list_unlink(&ln->running, job);
        ln->completed++;
        pthread_mutex_unlock(&ln->mu);
        loop_post(job);
        pthread_mutex_lock(&ln->mu);
    }
    if (--ln->threads == 0)
        pthread_cond_broadcast(&ln->exit_cv);
    pthread_mutex_unlock(&ln->mu);
    return NULL;
}

/* Start one worker; called with the lane lock held.  Signals stay blocked
   in workers so that the host's handlers run on its own threads. */
static int start_worker(enum pool_lane id)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    size_t stack = lanes[id].stack_size * STACK_FACTOR;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, stack);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&tid, &attr, worker_main, (void *)(intptr_t)id);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        lanes[id].threads++;
    return rc;
}

void pool_submit(struct pool_job *job)
{
    struct lane *ln;

    ensure_init();
    ln = &lanes[job->lane];
    pool_job_ref(job);
    pthread_mutex_lock(&ln->mu);
    list_push(&ln->queue, job, POOL_QUEUED);
    if (ln->queue.count > ln->idle &&
        ln->threads < ln->max_threads &&
        start_worker(job->lane) == 0) {
        /* the new thread finds the job on its own */
    } else {
        /* An idle thread takes it; or, when no thread could be started
           (EAGAIN or the cap), a busy one will once its call returns. */
        pthread_cond_signal(&ln->work_cv);
    }
    pthread_mutex_unlock(&ln->mu);
}

/* ------------------------------------------------------------------------
 * Configuration, statistics, shutdown
 * ---------------------------------------------------------------------- */

void pool_get_config(struct pool_config *cfg)
{
    ensure_init();
    pthread_mutex_lock(&config_mu);
    *cfg = config;
    pthread_mutex_unlock(&config_mu);
}

int pool_set_config(const struct pool_config *cfg)
{
    ensure_init();
    for (int i = 0; i < POOL_NLANES; i++) {
        if (cfg->max_threads[i] < 1 || cfg->max_threads[i] > MAX_THREADS)
            return EINVAL;
        if (cfg->stack_size[i] > MAX_STACK)
            return EINVAL;
    }
    if (cfg->idle_ms < 1 || cfg->idle_ms > 3600 * 1000 || cfg->spin_us > 1000)
        return EINVAL;
    pthread_mutex_lock(&config_mu);
    config = *cfg;
    atomic_store_explicit(&spin_setting, cfg->spin_us * 1000u,
                          memory_order_relaxed);
    for (int i = 0; i < POOL_NLANES; i++) {
        pthread_mutex_lock(&lanes[i].mu);
        lanes[i].max_threads = cfg->max_threads[i];
        lanes[i].stack_size = cfg->stack_size[i] < MIN_STACK
                                  ? MIN_STACK : cfg->stack_size[i];
        lanes[i].idle_ms = cfg->idle_ms;
        /* Wake idle threads so that a lowered cap or idle time applies,
           and start threads for queued jobs that a raised cap allows. */
        pthread_cond_broadcast(&lanes[i].work_cv);
        while (lanes[i].queue.count > lanes[i].idle &&
               lanes[i].threads < lanes[i].max_threads &&
               start_worker((enum pool_lane)i) == 0)
            ;
        pthread_mutex_unlock(&lanes[i].mu);
    }
    pthread_mutex_unlock(&config_mu);
    return 0;
}

void pool_get_stats(struct pool_lane_stats stats[POOL_NLANES])
{
    ensure_init();
    for (int i = 0; i < POOL_NLANES; i++) {
        struct lane *ln = &lanes[i];
        pthread_mutex_lock(&ln->mu);
        stats[i].threads = ln->threads;
        stats[i].idle = ln->idle;
        stats[i].busy = ln->running.count;
        stats[i].queued = ln->queue.count;
        stats[i].completed = ln->completed;
        pthread_mutex_unlock(&ln->mu);
    }
}

void pool_shutdown(void)
{
    ensure_init();
    for (int i = 0; i < POOL_NLANES; i++) {
        struct lane *ln = &lanes[i];
        pthread_mutex_lock(&ln->mu);
        ln->stopping = 1;
        /* Queued jobs are cancelled too: when a worker gets to them
           their descriptors are already shut, so they return at once. */
        for (struct pool_job *j = ln->running.head; j; j = j->next)
            pool_job_cancel(j);
        for (struct pool_job *j = ln->queue.head; j; j = j->next)
            pool_job_cancel(j);
        pthread_cond_broadcast(&ln->work_cv);
        pthread_mutex_unlock(&ln->mu);
    }
    for (int i = 0; i < POOL_NLANES; i++) {
        struct lane *ln = &lanes[i];
        pthread_mutex_lock(&ln->mu);
        /* Queued jobs with no thread left to run them (the cap was zero
           or thread creation failed): run them here, so each completes
           exactly once. */
        while (ln->queue.head && ln->threads == 0) {
            struct pool_job *job = ln->queue.head;
            list_unlink(&ln->queue, job);
            pthread_mutex_unlock(&ln->mu);
            job->ops->work(job);
            loop_post(job);
            pthread_mutex_lock(&ln->mu);
            ln->completed++;
        }
        while (ln->threads > 0)
            pthread_cond_wait(&ln->exit_cv, &ln->mu);
        ln->stopping = 0;
        pthread_mutex_unlock(&ln->mu);
    }
}

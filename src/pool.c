/* SPDX-License-Identifier: MIT */
/*
 * pool.c -- worker threads in lanes, and completion loops (see pool.h).
 *
 * Each lane is one mutex, one condition variable and one FIFO queue, in the
 * manner of libuv's threadpool, but threads are started on demand (up to the
 * lane's cap) and leave after idle_ms without work.  The wait lane has no
 * queue here: its threads are park.c's pollers.
 *
 * Invariant used to decide when to start a thread: every idle thread will
 * take one queued job, so a new thread is needed exactly when the queue
 * holds more jobs than there are idle threads.
 */
#include "pool.h"
#include "park.h"
#include "poolint.h"

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

#define MIN_STACK   (32 * 1024)
#define MAX_STACK   (64u * 1024 * 1024)
#define MAX_THREADS 30000u

struct lane {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* a job was queued, or the pool is stopping */
    pthread_cond_t exit_cv;   /* the last thread left */
    struct job_list queue;
    struct job_list running;
    unsigned threads, idle;
    int stopping;
    /* This lane's copy of the settings, read by workers under mu. */
    unsigned max_threads, idle_ms;
    size_t stack_size;
};


static struct lane lanes[POOL_NLANES];
static atomic_ullong completed[POOL_NLANES];
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
    .max_threads = { 4, 256, 1024, 4096 },
    .stack_size = { 256 * 1024, 128 * 1024, 128 * 1024, 256 * 1024 },
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
    atomic_store_explicit(&job->where, where, memory_order_relaxed);
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
    atomic_store_explicit(&job->where, POOL_NOWHERE, memory_order_relaxed);
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
    atomic_init(&job->cancelled, 0);
    job->lane = lane;
    job->prev = job->next = NULL;
    atomic_store_explicit(&job->where, POOL_NOWHERE, memory_order_relaxed);
    job->fd = -1;
    job->events = 0;
    job->reg = NULL;
    job->deadline = 0;
    job->park_next = NULL;
    job->parked = 0;
    job->heap_index = -1;
    job->udata = NULL;
}

void pool_job_wait_fd(struct pool_job *job, struct park_reg *reg, int fd,
                      short events)
{
    job->reg = reg;
    job->fd = fd;
    job->events = events;
}

long long pool_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void abort_job(struct pool_job *job, int err)
{
    if (job->ops->abort)
        job->ops->abort(job, err);
}

/* Take the job out of its lane's queue if it is there; 1 if it was. */
static int unqueue(struct pool_job *job)
{
    struct lane *ln = &lanes[job->lane];
    int was;
    ensure_init();
    pthread_mutex_lock(&ln->mu);
    was = atomic_load_explicit(&job->where, memory_order_relaxed) == POOL_QUEUED;
    if (was)
        list_unlink(&ln->queue, job);
    pthread_mutex_unlock(&ln->mu);
    return was;
}

void pool_job_cancel(struct pool_job *job)
{
    if (pool_job_isdone(job))
        return;
    /* Before looking where the job is: a step that returns AGAIN, or a
       job on its way to a queue, then sees the flag under the lock that
       the look below takes. */
    atomic_store(&job->cancelled, 1);
    if (park_unpark(job) || unqueue(job)) {
        abort_job(job, -ECANCELED);
        pool_complete(job);
        return;
    }
    if (job->ops->cancel)
        job->ops->cancel(job);
}

void pool_abort_queued(struct pool_job *job, int err)
{
    if (unqueue(job)) {
        abort_job(job, err);
        pool_complete(job);
    }
}

/* Wait in poll(2) for the job's descriptor, up to its deadline: 1 ready,
   0 the deadline passed. */
static int wait_inline(struct pool_job *job)
{
    struct pollfd pfd = { .fd = job->fd, .events = job->events };
    for (;;) {
        int left = -1;
        if (job->deadline) {
            long long rest = job->deadline - pool_now_ms();
            if (rest <= 0)
                return 0;
            left = rest > 1000000000 ? 1000000000 : (int)rest;
        }
        int n = poll(&pfd, 1, left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 1;           /* the step meets the error itself */
    }
}

void pool_run_inline(struct pool_job *job)
{
    int rc = job->events ? POOL_AGAIN : POOL_WORK;
    while (rc == POOL_AGAIN) {
        if (!wait_inline(job)) {
            abort_job(job, -ETIMEDOUT);
            rc = POOL_DONE;
            break;
        }
        rc = job->ops->step ? job->ops->step(job) : POOL_WORK;
    }
    if (rc == POOL_WORK)
        job->ops->work(job);
    atomic_store_explicit(&job->done, 1, memory_order_release);
}

/* ------------------------------------------------------------------------
 * Loops
 * ---------------------------------------------------------------------- */

struct pool_loop *pool_loop_new(void)
{
    park_prepare();
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
        atomic_store_explicit(&j->where, POOL_NOWHERE, memory_order_relaxed);
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

int pool_loop_pending(struct pool_loop *loop)
{
    return atomic_load(&loop->pending);
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
        loop->written = 1;
    }
    if (loop->sync_waiters)
        pthread_cond_broadcast(&loop->job_cv);
    pthread_mutex_unlock(&loop->mu);
}

void pool_complete(struct pool_job *job)
{
    if (job->deadline)
        park_heap_remove(job);
    atomic_fetch_add_explicit(&completed[job->lane], 1, memory_order_relaxed);
    loop_post(job);
}

/* Nanoseconds since t0 (CLOCK_MONOTONIC). */
static unsigned long long ns_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)(t.tv_sec - t0->tv_sec) * 1000000000ULL +
           (unsigned long long)(t.tv_nsec - t0->tv_nsec);
}

/* A completion that comes within a few microseconds of the owner running
   out of work (an echo's reply) is taken without the owner falling
   asleep in the kernel and being woken: that wake-up is most of a
   round trip's cost.  Bounded, and only when the owner would sleep. */
static int spin_for_completion(struct pool_loop *loop, unsigned spin_ns)
{
    struct timespec t0;
    int seen = 0;
    atomic_store(&loop->spinning, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1; !seen; i++) {
        seen = atomic_load_explicit(&loop->pending, memory_order_acquire);
        if ((i & 1) == 0) {
            if (ns_since(&t0) > spin_ns)
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

/* The direct wait's spin, the same idea: look at the descriptors (poll
   without waiting) for up to spin_ns before sleeping on them.  A reply
   that comes meanwhile is taken with no wake-up at all; where waking a
   sleeping core is dear (in a virtual machine, as here), that is most of
   a round trip: one connection's echo went from about 10,000 round
   trips/s to about 40,000.  Returns poll's result (0: nothing yet). */
static int spin_on_fds(struct pollfd *pfd, nfds_t n, unsigned spin_ns)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        int rc = poll(pfd, n, 0);
        if (rc > 0 || (rc < 0 && errno != EINTR))
            return rc;
        if (ns_since(&t0) > spin_ns)
            return 0;
        if (i & 1)
            sched_yield();      /* the peer may be queued on this core */
    }
}

/* With at most this many parked jobs, an owner about to sleep waits on
   their descriptors itself (direct_wait). */
#define DIRECT_MAX 4

/* The owner is about to sleep, and its state has only a few parked jobs
   (one connection, say): it waits for them itself, in one poll(2) with
   its eventfd, and runs their steps on its own thread as a poller would.
   A readiness then reaches the waiting coroutine's thread with no other
   thread woken, as in a blocking client -- where through a poller it is
   two wake-ups.  Returns as pool_loop_wait, or -2 if it does not apply. */
static int direct_wait(struct pool_loop *loop, int timeout_ms, unsigned spin_ns)
{
    struct pool_job *jobs[DIRECT_MAX];
    struct pollfd pfd[DIRECT_MAX + 1];
    int n = park_take_loop(loop, jobs, DIRECT_MAX);
    if (n == 0)
        return -2;
    long long now = pool_now_ms();
    pfd[0].fd = loop->efd;
    pfd[0].events = POLLIN;
    for (int i = 0; i < n; i++) {
        pfd[i + 1].fd = jobs[i]->fd;
        pfd[i + 1].events = jobs[i]->events;
        if (jobs[i]->deadline) {
            long long left = jobs[i]->deadline - now;
            left = left < 0 ? 0 : left > 1000000000 ? 1000000000 : left;
            if (timeout_ms < 0 || left < timeout_ms)
                timeout_ms = (int)left;
        }
    }
    int rc = spin_ns ? spin_on_fds(pfd, (nfds_t)n + 1, spin_ns) : 0;
    if (rc == 0)
        while ((rc = poll(pfd, (nfds_t)n + 1, timeout_ms)) < 0 && errno == EINTR)
            ;
    /* The owner is awake and will look: its own posts (and others') need
       no eventfd write meanwhile. */
    atomic_store(&loop->spinning, 1);
    now = pool_now_ms();
    for (int i = 0; i < n; i++) {
        struct pool_job *job = jobs[i];
        int ready = rc > 0 && pfd[i + 1].revents != 0;
        if (!ready && job->deadline && now >= job->deadline) {
            abort_job(job, -ETIMEDOUT);
            pool_complete(job);
        } else {
            park_resume(job, ready);
        }
    }
    atomic_store(&loop->spinning, 0);
    return rc < 0 ? -1 : rc > 0 || atomic_load(&loop->pending);
}

/* The owner is about to sleep with more parked jobs than a direct wait
   takes (fifty connections, say): it sleeps on its eventfd and on the
   shared epoll set, and takes what becomes ready there itself
   (park_lead), so that its own readiness reaches it without a poller's
   hop.  First it looks for up to spin_ns without sleeping, as
   spin_for_completion does.  Returns as pool_loop_wait, or -2. */
static int lead_wait(struct pool_loop *loop, int timeout_ms, unsigned spin_ns)
{
    int ep = park_lead_fd(loop);
    if (ep < 0)
        return -2;
    struct pollfd pfd[2] = { { .fd = loop->efd, .events = POLLIN },
                             { .fd = ep, .events = POLLIN } };
    struct timespec t0;
    int rc;
    atomic_store(&loop->spinning, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1; spin_ns; i++) {
        if (atomic_load_explicit(&loop->pending, memory_order_acquire))
            break;
        rc = poll(&pfd[1], 1, 0);
        if (rc > 0 && park_lead() > 0 && atomic_load(&loop->pending))
            break;
        if (ns_since(&t0) > spin_ns)
            break;
        if (i & 1)
            sched_yield();
    }
    atomic_store(&loop->spinning, 0);
    if (atomic_load(&loop->pending))
        return 1;
    while ((rc = poll(pfd, 2, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (rc > 0 && pfd[1].revents)
        park_lead();
    return rc < 0 ? -1 : rc > 0 || atomic_load(&loop->pending);
}

int pool_loop_wait(struct pool_loop *loop, int timeout_ms)
{
    struct pollfd pfd = { .fd = loop->efd, .events = POLLIN };
    unsigned spin_ns = atomic_load_explicit(&spin_setting, memory_order_relaxed);
    if (timeout_ms != 0) {
        /* No spin while a handshake runs: the core is the handshake's. */
        int busy = atomic_load_explicit(&cpu_jobs_running, memory_order_relaxed) != 0;
        int rc = direct_wait(loop, timeout_ms, busy ? 0 : spin_ns);
        if (rc == -2)
            rc = lead_wait(loop, timeout_ms, busy ? 0 : spin_ns);
        if (rc != -2)
            return rc;
    }
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
    pthread_mutex_lock(&loop->mu);
    /* Reset the eventfd (if it was written: most takes follow a spin or
       the owner's own wait, without a write) and detach, both under the
       lock: a post after this finds the list empty and writes afresh. */
    if (loop->written) {
        ssize_t r = read(loop->efd, &count, sizeof count);
        (void)r;
        loop->written = 0;
    }
    atomic_store_explicit(&loop->pending, 0, memory_order_relaxed);
    struct pool_job *head = loop->done.head;
    for (struct pool_job *j = head; j; j = j->next)
        atomic_store_explicit(&j->where, POOL_NOWHERE, memory_order_relaxed);
    loop->done.head = loop->done.tail = NULL;
    loop->done.count = 0;
    pthread_mutex_unlock(&loop->mu);
    return head;
}

void pool_loop_forget(struct pool_loop *loop, struct pool_job *job)
{
    int listed;
    pthread_mutex_lock(&loop->mu);
    listed = atomic_load_explicit(&job->where, memory_order_relaxed) == POOL_DONELIST;
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
    /* A stopping pool's queued jobs are aborted by pool_shutdown, never
       run: their descriptors were not shut down to wake them. */
    if (ln->stopping)
        return NULL;
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
        pthread_mutex_unlock(&ln->mu);
        pool_complete(job);
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
    size_t stack = lanes[id].stack_size * POOL_STACK_FACTOR;

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

void pool_queue_work(struct pool_job *job)
{
    struct lane *ln = &lanes[job->lane];
    pthread_mutex_lock(&ln->mu);
    /* Cancelled on its way here: pool_job_cancel looked for it in the
       queue before it was there. */
    if (atomic_load(&job->cancelled) || ln->stopping) {
        pthread_mutex_unlock(&ln->mu);
        abort_job(job, -ECANCELED);
        pool_complete(job);
        return;
    }
    list_push(&ln->queue, job, POOL_QUEUED);
    int rc = 0;
    if (ln->queue.count > ln->idle && ln->threads < ln->max_threads)
        rc = start_worker(job->lane);
    if (rc != 0 && ln->threads == 0) {
        /* No thread could be started and none runs on this lane: nothing
           would ever take the job.  It fails (EAGAIN) rather than wait. */
        list_unlink(&ln->queue, job);
        pthread_mutex_unlock(&ln->mu);
        abort_job(job, -rc);
        pool_complete(job);
        return;
    }
    /* A new thread finds the job on its own; or an idle thread takes it;
       or, at the cap or when no more threads could be started, a busy
       one will once its call returns. */
    pthread_cond_signal(&ln->work_cv);
    pthread_mutex_unlock(&ln->mu);
}

void pool_submit(struct pool_job *job)
{
    ensure_init();
    pool_job_ref(job);
    if (job->lane == POOL_WAIT && !job->events) {
        abort_job(job, -EINVAL);    /* the wait lane runs no blocking work */
        pool_complete(job);
        return;
    }
    if (job->events) {
        int rc = park_job(job);
        if (rc < 0) {
            abort_job(job, rc);
            pool_complete(job);
        }
        return;
    }
    /* Watched while queued, so that it can time out before it runs. */
    if (job->deadline)
        park_heap_add(job);
    pool_queue_work(job);
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
    park_set_limits(cfg->max_threads[POOL_WAIT],
                    cfg->stack_size[POOL_WAIT] < MIN_STACK
                        ? MIN_STACK : cfg->stack_size[POOL_WAIT],
                    cfg->idle_ms);
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
        if (i == POOL_WAIT) {
            park_get_stats(&stats[i]);
        } else {
            pthread_mutex_lock(&ln->mu);
            stats[i].threads = ln->threads;
            stats[i].idle = ln->idle;
            stats[i].busy = ln->running.count;
            stats[i].queued = ln->queue.count;
            pthread_mutex_unlock(&ln->mu);
        }
        stats[i].parked = park_parked((enum pool_lane)i);
        stats[i].completed = atomic_load_explicit(&completed[i],
                                                  memory_order_relaxed);
    }
}

void pool_shutdown(void)
{
    ensure_init();
    park_shutdown();
    for (int i = 0; i < POOL_NLANES; i++) {
        struct lane *ln = &lanes[i];
        struct pool_job *job;
        pthread_mutex_lock(&ln->mu);
        ln->stopping = 1;
        /* Running jobs are woken; queued ones end without running. */
        for (job = ln->running.head; job; job = job->next)
            if (job->ops->cancel)
                job->ops->cancel(job);
        while ((job = ln->queue.head) != NULL) {
            list_unlink(&ln->queue, job);
            pthread_mutex_unlock(&ln->mu);
            abort_job(job, -ECANCELED);
            pool_complete(job);
            pthread_mutex_lock(&ln->mu);
        }
        pthread_cond_broadcast(&ln->work_cv);
        while (ln->threads > 0)
            pthread_cond_wait(&ln->exit_cv, &ln->mu);
        ln->stopping = 0;
        pthread_mutex_unlock(&ln->mu);
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * pool.h -- the process-wide worker pool and the per-owner completion loops.
 *
 * A job is one operation: a plain blocking call (connect, getaddrinfo, a
 * TLS handshake) run on a worker thread of its lane, or a wait for a
 * descriptor's readiness followed by a call that cannot block then (recv,
 * accept, send), run by a poller (park.h).  When it has finished, the job
 * is marked done and posted to the completion loop it was created for; the
 * loop's eventfd becomes readable when its done list goes from empty to
 * non-empty, so one wake-up can hand back many finished jobs.
 *
 * Nothing here knows about Lua: the binding (l*.c) keeps one loop per
 * lua_State and maps finished jobs to coroutines.
 *
 * Lanes: each kind of blocking work has its own queue, threads and cap,
 * so that a burst of slow lookups cannot keep a handshake from starting.
 * Threads are created on demand up to the lane's cap, with small stacks,
 * and exit after being idle for a while.  Waiting for readiness takes no
 * thread at all: ten thousand idle connections are ten thousand parked
 * jobs watched by the wait lane's few pollers.
 *
 * Ownership: a job is reference counted.  The creator holds one
 * reference; pool_submit() takes another for the pool, which travels with
 * the job through parking, the lane queue and the run to the loop's done
 * list and is dropped by whoever takes the job off that list
 * (pool_loop_take or pool_loop_forget).  The last pool_job_unref() calls
 * ops->destroy, which frees whatever the job owns (a received buffer, an
 * accepted fd...).
 *
 * Completing: exactly once, by whoever holds the job at that moment (the
 * worker whose work returned, the poller whose step said POOL_DONE, or the
 * thread that aborted it off a slot, a queue or the deadline heap).
 *
 * Locks: each lane has one mutex; each loop has one mutex; park.c has
 * one.  No code holds two of them at once (pool_set_config holds the
 * config mutex, then each lane's in turn), and no callback (work, step,
 * cancel, abort, destroy) is called with any of them held, except cancel
 * during pool_shutdown, which must therefore not take pool or loop locks.
 */
#ifndef PLUTO_POOL_H
#define PLUTO_POOL_H

#include <stdatomic.h>
#include <stddef.h>

struct park_reg;

enum pool_lane {
    POOL_WAIT,    /* the pollers: jobs waiting for readiness, and their
                     non-blocking steps (recv, accept, send)            */
    POOL_CONNECT, /* outgoing TCP connects (and the lookups they need)     */
    POOL_DNS,     /* getaddrinfo for resolve()                             */
    POOL_CPU,     /* TLS handshakes: CPU-heavy, and they wait on the peer  */
    POOL_NLANES
};

struct pool_job;
struct pool_loop;

/* What a step tells the poller that ran it. */
enum pool_step {
    POOL_DONE,    /* finished: complete the job                          */
    POOL_AGAIN,   /* not yet: wait for job->events on job->fd again      */
    POOL_WORK     /* ready for blocking work: queue it on the job's lane */
};

struct pool_job_ops {
    /* On a worker of the job's lane: the blocking call.  NULL for a job
       that only waits and steps (its lane is then POOL_WAIT). */
    void (*work)(struct pool_job *job);
    /* On a poller, once job->fd is ready: a call that cannot block now;
       returns enum pool_step.  NULL: go straight to work. */
    int (*step)(struct pool_job *job);
    /* Any thread: make a running work return soon (shut its descriptor
       down).  May be NULL.  Never called for a parked or queued job:
       those are ended by abort. */
    void (*cancel)(struct pool_job *job);
    /* The job ends without running (any more): its deadline passed
       (-ETIMEDOUT) or it was cancelled or could not be parked (a negated
       errno).  Records that as the outcome.  May be NULL. */
    void (*abort)(struct pool_job *job, int err);
    /* The last reference went: free it all. */
    void (*destroy)(struct pool_job *job);
};

enum pool_job_where { POOL_NOWHERE, POOL_QUEUED, POOL_RUNNING, POOL_DONELIST };

struct pool_job {
    const struct pool_job_ops *ops;
    struct pool_loop *loop;       /* completions go here; holds a loop ref */
    atomic_int refs;
    atomic_int done;              /* 1 once work returned (release/acquire) */
    atomic_int cancelled;         /* pool_job_cancel was called */
    enum pool_lane lane;
    /* Links: the job is in at most one of the lanes' and loops' lists at
       a time, said by 'where' (an enum pool_job_where), which changes
       only under the mutex of the list it enters or leaves.  Atomic
       (relaxed): a lane asks "in my queue?" under its own mutex while
       the job may be entering a loop's list under that loop's. */
    atomic_int where;
    struct pool_job *prev, *next;
    /* Waiting for readiness (set before pool_submit, and by a step that
       returns POOL_AGAIN): */
    struct park_reg *reg;         /* fd's registration (park.h) */
    int fd;
    short events;                 /* POLLIN or POLLOUT; 0: no waiting */
    /* Guarded by park.c's mutex: */
    struct pool_job *park_next;   /* in its slot's list, or a ready list */
    struct pool_job *loop_prev, *loop_next;  /* in its loop's parked list */
    short parked;                 /* on a slot now */
    int heap_index;               /* in the deadline heap; -1: not */
    long long deadline;           /* pool_now_ms(); 0: none */
    void *udata;                  /* free for the owner (the binding) */
};

/* Jobs ------------------------------------------------------------------ */

/* Prepare a job embedded in a larger struct; refs = 1 (the creator's).
   'loop' may be NULL for a job nobody waits on. */
void pool_job_init(struct pool_job *job, const struct pool_job_ops *ops,
                   enum pool_lane lane, struct pool_loop *loop);
void pool_job_ref(struct pool_job *job);
void pool_job_unref(struct pool_job *job);

/* Before pool_submit: the job starts by waiting for 'events' on fd, whose
   registration is *reg (the job must hold whatever keeps fd open). */
void pool_job_wait_fd(struct pool_job *job, struct park_reg *reg, int fd,
                      short events);
/* Before pool_submit: the job ends with abort(-ETIMEDOUT) if it is not
   done by then (ms on pool_now_ms's clock). */
static inline void pool_job_set_deadline(struct pool_job *job,
                                         long long deadline)
{
    job->deadline = deadline;
}

static inline int pool_job_isdone(struct pool_job *job)
{
    return atomic_load_explicit(&job->done, memory_order_acquire);
}

/* Start the job: park it when it waits for a descriptor, else queue it
   on its lane (starting a thread if none is free and the cap allows).
   Takes a reference for the pool.  Never fails: a job that cannot be
   parked is aborted and completes at once; one that finds no thread
   waits in the queue for a running one. */
void pool_submit(struct pool_job *job);

/* Run the job on the calling thread (for callers that may block): wait
   for its descriptor in poll(2) up to its deadline, step, work; then mark
   it done.  Nothing is posted. */
void pool_run_inline(struct pool_job *job);

/* Ask a job to finish early: a parked or queued one is aborted with
   -ECANCELED and completes at once; a running one gets ops->cancel; one
   whose step is running completes when the step returns. */
void pool_job_cancel(struct pool_job *job);

/* Milliseconds on the monotonic clock (deadlines). */
long long pool_now_ms(void);

/* Loops ----------------------------------------------------------------- */

struct pool_loop *pool_loop_new(void);       /* NULL (errno set) on failure */
/* The owner is gone: completions posted from now on are dropped; the loop
   is freed when the last job referring to it is. */
void pool_loop_close(struct pool_loop *loop);
int pool_loop_fd(struct pool_loop *loop);    /* the eventfd, to poll for POLLIN */
/* Whether finished jobs wait to be taken (never blocks). */
int pool_loop_pending(struct pool_loop *loop);

/* Wait until a completion is pending or timeout_ms passes (-1: forever);
   first, unless timeout_ms is 0, spin for up to config.spin_us.
   Returns 1 if something may be pending (a job forgotten after it was
   posted can leave a wake-up with nothing to take), 0 on timeout, -1 on
   error. */
int pool_loop_wait(struct pool_loop *loop, int timeout_ms);

/* Detach every finished job; returns the first (follow ->next, NULL-ended).
   The caller owns one reference per job and must unref each. */
struct pool_job *pool_loop_take(struct pool_loop *loop);

/* The owner consumed a finished job without taking it: unlink it from the
   done list if it is still there (dropping the list's reference). */
void pool_loop_forget(struct pool_loop *loop, struct pool_job *job);

/* Block the calling thread until 'job' is done, without spinning. */
void pool_loop_wait_job(struct pool_loop *loop, struct pool_job *job);

/* Configuration and statistics (process-wide) ---------------------------- */

struct pool_config {
    unsigned max_threads[POOL_NLANES]; /* 1..30000 */
    size_t stack_size[POOL_NLANES];    /* bytes, <= 64 MiB; rounded up to
                                          32 KiB (x4 under sanitizers) */
    unsigned idle_ms;                  /* 1..3600000: an idle thread exits */
    unsigned spin_us;                  /* 0..1000: pool_loop_wait watches
                                          for a completion this long before
                                          sleeping in the kernel */
};

struct pool_lane_stats {
    unsigned threads, idle, busy, queued;
    unsigned parked;                   /* waiting for readiness */
    unsigned long long completed;
};

void pool_get_config(struct pool_config *cfg);
/* Returns 0, or EINVAL if a field is out of range (nothing changed then). */
int pool_set_config(const struct pool_config *cfg);
void pool_get_stats(struct pool_lane_stats stats[POOL_NLANES]);
const char *pool_lane_name(enum pool_lane lane);

/* Abort every parked and queued job, cancel every running one, let them
   all complete, and wait until every thread (workers, pollers) has
   exited.  The pool is usable afterwards. */
void pool_shutdown(void);

#endif

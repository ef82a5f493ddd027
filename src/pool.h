/* SPDX-License-Identifier: MIT */
/*
 * pool.h -- the process-wide worker pool and the per-owner completion loops.
 *
 * A job is one plain blocking call (poll+recv, connect, getaddrinfo, a TLS
 * handshake...) run on a worker thread.  When its work function returns,
 * the job is marked done and posted to the completion loop it was created
 * for; the loop's eventfd becomes readable when its done list goes from
 * empty to non-empty, so one wake-up can hand back many finished jobs.
 *
 * Nothing here knows about Lua: the binding (l*.c) keeps one loop per
 * lua_State and maps finished jobs to coroutines.
 *
 * Lanes: each kind of work has its own queue, threads and cap, so that
 * ten thousand jobs waiting for data (POOL_WAIT) cannot keep a connect,
 * a DNS lookup or a handshake from starting.  Threads are created on
 * demand up to the lane's cap, with small stacks, and exit after being
 * idle for a while.
 *
 * Ownership: a job is reference counted.  The creator holds one
 * reference; pool_submit() takes another for the pool, which travels with
 * the job from the lane queue to the loop's done list and is dropped by
 * whoever takes the job off that list (pool_loop_take or
 * pool_loop_forget).  The last pool_job_unref() calls ops->destroy, which
 * frees whatever the job owns (a received buffer, an accepted fd...).
 *
 * Locks: each lane has one mutex; each loop has one mutex.  No code holds
 * two of them at once (pool_set_config holds the config mutex, then each
 * lane's in turn), and no callback (work, cancel, destroy) is called
 * with a lane or loop mutex held, except cancel during pool_shutdown,
 * which must therefore not take pool or loop locks.
 */
#ifndef PLUTO_POOL_H
#define PLUTO_POOL_H

#include <stdatomic.h>
#include <stddef.h>

enum pool_lane {
    POOL_WAIT,    /* waits for a peer: recv, accept, send on a full buffer */
    POOL_CONNECT, /* outgoing TCP connects (and the lookups they need)     */
    POOL_DNS,     /* getaddrinfo for resolve()                             */
    POOL_CPU,     /* TLS handshakes: CPU-heavy, and they wait on the peer  */
    POOL_NLANES
};

struct pool_job;
struct pool_loop;

struct pool_job_ops {
    void (*work)(struct pool_job *job);    /* on a worker: the blocking call */
    void (*cancel)(struct pool_job *job);  /* any thread: make work return soon
                                              (e.g. shutdown its fd); may be NULL */
    void (*destroy)(struct pool_job *job); /* last reference gone: free it all */
};

enum pool_job_where { POOL_NOWHERE, POOL_QUEUED, POOL_RUNNING, POOL_DONELIST };

struct pool_job {
    const struct pool_job_ops *ops;
    struct pool_loop *loop;       /* completions go here; holds a loop ref */
    atomic_int refs;
    atomic_int done;              /* 1 once work returned (release/acquire) */
    enum pool_lane lane;
    /* Links: the job is in at most one list at a time, said by 'where',
       which is guarded by the mutex of the list it is in. */
    struct pool_job *prev, *next;
    enum pool_job_where where;
    void *udata;                  /* free for the owner (the binding) */
};

/* Jobs ------------------------------------------------------------------ */

/* Prepare a job embedded in a larger struct; refs = 1 (the creator's).
   'loop' may be NULL for a job nobody waits on. */
void pool_job_init(struct pool_job *job, const struct pool_job_ops *ops,
                   enum pool_lane lane, struct pool_loop *loop);
void pool_job_ref(struct pool_job *job);
void pool_job_unref(struct pool_job *job);

static inline int pool_job_isdone(struct pool_job *job)
{
    return atomic_load_explicit(&job->done, memory_order_acquire);
}

/* Queue the job on its lane; starts a thread if none is free and the cap
   allows.  Takes a reference for the pool.  Never fails: when no thread
   can be created the job waits in the queue for a running one. */
void pool_submit(struct pool_job *job);

/* Run the work on the calling thread (for callers that may block) and mark
   the job done; nothing is posted. */
void pool_run_inline(struct pool_job *job);

/* Ask a job to finish early (calls ops->cancel if it is not done). */
void pool_job_cancel(struct pool_job *job);

/* Loops ----------------------------------------------------------------- */

struct pool_loop *pool_loop_new(void);       /* NULL (errno set) on failure */
/* The owner is gone: completions posted from now on are dropped; the loop
   is freed when the last job referring to it is. */
void pool_loop_close(struct pool_loop *loop);
int pool_loop_fd(struct pool_loop *loop);    /* the eventfd, to poll for POLLIN */

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
    unsigned long long completed;
};

void pool_get_config(struct pool_config *cfg);
/* Returns 0, or EINVAL if a field is out of range (nothing changed then). */
int pool_set_config(const struct pool_config *cfg);
void pool_get_stats(struct pool_lane_stats stats[POOL_NLANES]);
const char *pool_lane_name(enum pool_lane lane);

/* Cancel every queued and running job, let them finish and post, and wait
   until every worker thread has exited.  The pool is usable afterwards. */
void pool_shutdown(void);

#endif

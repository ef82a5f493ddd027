/* SPDX-License-Identifier: MIT */
/*
 * poolint.h -- what pool.c offers park.c (and nobody else).
 */
#ifndef PLUTO_POOLINT_H
#define PLUTO_POOLINT_H

#include <pthread.h>
#include <stdatomic.h>

#include "pool.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define POOL_STACK_FACTOR 4     /* sanitizers need much bigger frames */
#else
#define POOL_STACK_FACTOR 1
#endif

struct job_list {
    struct pool_job *head, *tail;
    unsigned count;
};

/* A completion loop (pool.h).  The parked list is park.c's. */
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
    int written;                  /* the eventfd holds a count (under mu) */
    atomic_int refs;
    /* The loop's parked jobs, linked through loop_next: guarded by park.c's
       mutex (the owner may wait on them itself, park_take_loop). */
    struct pool_job *parked;
    unsigned nparked;
};

/* The job has finished (or was aborted): off the deadline heap, marked
   done, posted to its loop.  Hands over the pool's reference. */
void pool_complete(struct pool_job *job);

/* A parked job is ready for its blocking work: queue it on its lane.
   Hands over the pool's reference. */
void pool_queue_work(struct pool_job *job);

/* A job whose deadline passed may still be in its lane's queue: if so,
   take it out, abort it with err and complete it. */
void pool_abort_queued(struct pool_job *job, int err);

#endif

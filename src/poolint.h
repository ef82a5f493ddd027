/*
 * poolint.h -- what pool.c offers park.c (and nobody else).
 */
#ifndef PLUTO_POOLINT_H
#define PLUTO_POOLINT_H

#include "pool.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define POOL_STACK_FACTOR 4     /* sanitizers need much bigger frames */
#else
#define POOL_STACK_FACTOR 1
#endif

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

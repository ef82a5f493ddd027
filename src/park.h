/* SPDX-License-Identifier: MIT */
/*
 * park.h -- waiting for readiness without a thread per wait.
 *
 * A job that must wait for a descriptor -- a recv on an idle connection,
 * an accept with no client, a send into a full buffer, a server handshake
 * whose client has not spoken yet -- is *parked*: its descriptor is armed
 * (EPOLLONESHOT) in one process-wide epoll set and no thread is tied to
 * it.  A few poller threads, the *wait* lane, block in epoll_wait on that
 * set: a plain blocking call, as Apache httpd's event MPM parks its idle
 * connections on one listener thread.  The poller that gets a
 * descriptor's event runs the job's step there (a recv, accept or send
 * that cannot block now) or hands the job to its lane for blocking work
 * (gnutls_handshake on the cpu lane).  So threads follow the number of
 * operations doing work, not the number of connections.
 *
 * Deadlines of jobs that are parked or queued on a lane are kept here
 * too, in one heap that the pollers watch: a timeout fires whether the
 * operation waits for readiness, waits for a thread, or runs (a running
 * call has its own limit, computed from the same deadline).
 *
 * Descriptors.  The owner of a descriptor keeps a struct park_reg next to
 * it, and calls park_reg_release() before close(2).  The registration is
 * a slot in a table that is never freed, named in epoll's data by its
 * index and a generation number, so that an event that was already on its
 * way when its descriptor went away is recognised as stale and ignored
 * (epoll can deliver it after EPOLL_CTL_DEL returned).  A slot keeps a
 * list of the jobs waiting to read and one of those waiting to write (a
 * socket's receive and a select's readiness wait, say); readiness takes
 * the whole list of its direction.
 *
 * Locks: one mutex (park_mu) guards the slots, the deadline heap, each
 * job's 'parked' flag and heap index, and the pollers' bookkeeping.  It
 * is never held together with a lane's or a loop's mutex, and no job
 * callback runs under it.  epoll_ctl is called under it, so that the
 * armed events always match the jobs listed in the slot.
 */
#ifndef PLUTO_PARK_H
#define PLUTO_PARK_H

#include "pool.h"

/* A descriptor's registration; -1: never parked on. */
struct park_reg {
    int slot;
};

static inline void park_reg_init(struct park_reg *r)
{
    r->slot = -1;
}

/* The descriptor is about to be closed: forget it (no job may be parked
   on it: every job waiting on a descriptor holds a reference to it). */
void park_reg_release(struct park_reg *r);

/* The descriptor's owner is closing it: every job still parked on it (a
   select's readiness wait, say) is cancelled, so it completes now rather
   than at its deadline.  Not with park_mu held. */
void park_cancel_reg(struct park_reg *r);

/* Between pool.c and park.c ------------------------------------------- */

/* Make the epoll set (two descriptors, kept for the life of the process)
   now rather than at the first park: pool_loop_new calls it, so that a
   program's descriptor count does not change later on. */
void park_prepare(void);

/* Park a job that waits for job->fd (job->events); returns 0, or a
   negated errno when it cannot be parked (cancelled: -ECANCELED; its
   deadline passed: -ETIMEDOUT; no poller thread could be started,
   epoll_ctl failed): the caller then aborts and completes it. */
int park_job(struct pool_job *job);

/* Take the job off its slot if it is parked there; 1 if it was (the
   caller now owns its completion), 0 if not. */
int park_unpark(struct pool_job *job);

/* The owner of 'loop' is about to sleep and will wait for its few parked
   jobs itself, in one poll(2), rather than through a poller and the
   loop's eventfd (one thread hop less: a readiness reaches the waiting
   coroutine's own thread).  If the loop has 1..max parked jobs, takes
   them all off their slots (disarming what is left unwatched) and
   returns them in jobs[]; else 0.  Their deadlines stay in the heap; the
   caller hands each back with park_resume. */
int park_take_loop(struct pool_loop *loop, struct pool_job **jobs, int max);
/* A job from park_take_loop: step it if its descriptor is 'ready' (as a
   poller would), else park it again; either way it completes if it must. */
void park_resume(struct pool_job *job, int ready);

/* The owner of 'loop' has nothing to run and more parked jobs than it
   takes back: it waits on the shared epoll set's descriptor too
   (park_lead_fd: the set's descriptor if this loop is the only one with
   parked jobs, else -1), and when that is readable takes what is ready
   there and steps it on its own thread, as a poller would; park_lead
   returns how many. */
int park_lead_fd(struct pool_loop *loop);
int park_lead(void);

/* Deadlines of queued jobs: add (pool_submit) and remove (completion). */
void park_heap_add(struct pool_job *job);
void park_heap_remove(struct pool_job *job);

/* The wait lane's settings and statistics, and its shutdown. */
void park_set_limits(unsigned max_pollers, size_t stack, unsigned idle_ms);
void park_get_stats(struct pool_lane_stats *st);
unsigned park_parked(enum pool_lane lane);
void park_shutdown(void);

#endif

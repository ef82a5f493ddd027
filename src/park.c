/* SPDX-License-Identifier: MIT */
/*
 * park.c -- parked jobs, the pollers that watch them, and deadlines
 * (see park.h).
 *
 * A poller's round: compute the time to the nearest deadline; epoll_wait;
 * under park_mu, take off their slots the jobs whose descriptors are
 * ready and re-arm the slots for the jobs still waiting there, and take
 * off the heap the jobs whose deadline has passed; then, without the lock,
 * run the steps, abort the expired jobs and complete what is finished.
 *
 * Pollers are started on demand: the first when a job is parked, another
 * when a poller wakes up with work and none is left waiting in
 * epoll_wait, up to the wait lane's cap.  A poller leaves after idle_ms
 * without an event, except the last one while anything is parked or has
 * a deadline.
 */
#include "park.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "poolint.h"

#define MAX_EVENTS 64
#define KICK_ID UINT64_MAX      /* epoll data of the kick eventfd */

struct slot {
    int fd;                     /* -1 while free */
    unsigned gen;               /* bumped on release: stale events differ */
    struct pool_job *in, *out;  /* parked to read, to write: lists linked
                                   through park_next (a receive and a
                                   select's readiness wait, say) */
    int next_free;
};

/* The slot table grows by pages that never move, so that it costs a
   little per descriptor parked on at once and growing it copies nothing. */
#define SLOTS_PER_PAGE 1024
#define MAX_PAGES 4096          /* 4 Mi descriptors */

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t exit_cv = PTHREAD_COND_INITIALIZER;

/* All guarded by park_mu. */
static int epfd = -1, kickfd = -1;
static struct slot *pages[MAX_PAGES];
static int nslots, free_slot = -1;
static struct pool_job **heap;
static int heap_len, heap_cap;
static unsigned parked_by_lane[POOL_NLANES];
static unsigned pollers, pollers_waiting, stepping, stopping;
static unsigned loops_parked;           /* loops with a job parked */
static unsigned max_pollers = 4, idle_ms = 10000;
static size_t poller_stack = 256 * 1024;

static int start_poller(void);

/* ------------------------------------------------------------------------
 * Setup
 * ---------------------------------------------------------------------- */

/* The epoll set and its kick eventfd (written to make a poller look at
   the heap again); park_mu held.  0 or a negated errno. */
static int ensure_epoll(void)
{
    if (epfd >= 0)
        return 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    int k = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = KICK_ID };
    if (k < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, k, &ev) < 0) {
        int e = errno;
        if (k >= 0)
            close(k);
        close(ep);
        return -e;
    }
    epfd = ep;
    kickfd = k;
    return 0;
}

void park_prepare(void)
{
    pthread_mutex_lock(&park_mu);
    ensure_epoll();             /* if it fails, the first park tries again */
    pthread_mutex_unlock(&park_mu);
}

static void kick(void)
{
    uint64_t one = 1;
    ssize_t r = write(kickfd, &one, sizeof one);
    (void)r;                    /* a full counter already kicks */
}

/* ------------------------------------------------------------------------
 * Slots
 * ---------------------------------------------------------------------- */

static struct slot *slot_at(int i)
{
    return &pages[i / SLOTS_PER_PAGE][i % SLOTS_PER_PAGE];
}

/* A free slot for fd, growing the table; -1 when out of memory. */
static int slot_new(int fd)
{
    if (free_slot < 0) {
        int p = nslots / SLOTS_PER_PAGE;
        struct slot *page = p < MAX_PAGES ? malloc(SLOTS_PER_PAGE * sizeof *page)
                                          : NULL;
        if (!page)
            return -1;
        pages[p] = page;
        for (int k = SLOTS_PER_PAGE - 1; k >= 0; k--) {
            page[k].fd = -1;
            page[k].gen = 0;
            page[k].in = page[k].out = NULL;
            page[k].next_free = free_slot;
            free_slot = nslots + k;
        }
        nslots += SLOTS_PER_PAGE;
    }
    int i = free_slot;
    struct slot *sl = slot_at(i);
    free_slot = sl->next_free;
    sl->fd = fd;
    return i;
}

/* Arm the slot's descriptor for the jobs parked on it. */
static int slot_arm(int i, int op)
{
    struct slot *sl = slot_at(i);
    struct epoll_event ev = {
        .events = EPOLLONESHOT | (sl->in ? EPOLLIN | EPOLLRDHUP : 0) |
                  (sl->out ? EPOLLOUT : 0),
        .data.u64 = (uint64_t)sl->gen << 32 | (uint32_t)i,
    };
    return epoll_ctl(epfd, op, sl->fd, &ev) < 0 ? -errno : 0;
}

void park_reg_release(struct park_reg *r)
{
    if (r->slot < 0)
        return;
    pthread_mutex_lock(&park_mu);
    struct slot *sl = slot_at(r->slot);
    epoll_ctl(epfd, EPOLL_CTL_DEL, sl->fd, NULL);
    sl->fd = -1;
    sl->gen++;
    sl->in = sl->out = NULL;
    sl->next_free = free_slot;
    free_slot = r->slot;
    pthread_mutex_unlock(&park_mu);
    r->slot = -1;
}

/* ------------------------------------------------------------------------
 * The deadline heap (park_mu held)
 * ---------------------------------------------------------------------- */

static void heap_set(int i, struct pool_job *job)
{
    heap[i] = job;
    job->heap_index = i;
}

static void heap_up(int i)
{
    struct pool_job *job = heap[i];
    while (i > 0 && heap[(i - 1) / 2]->deadline > job->deadline) {
        heap_set(i, heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, job);
}

static void heap_down(int i)
{
    struct pool_job *job = heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && heap[c + 1]->deadline < heap[c]->deadline)
            c++;
        if (heap[c]->deadline >= job->deadline)
            break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, job);
}

/* 0, or -ENOMEM. */
static int heap_insert(struct pool_job *job)
{
    if (job->heap_index >= 0)
        return 0;
    if (heap_len == heap_cap) {
        int n = heap_cap ? heap_cap * 2 : 64;
        struct pool_job **h = realloc(heap, (size_t)n * sizeof *h);
        if (!h)
            return -ENOMEM;
        heap = h;
        heap_cap = n;
    }
    heap_set(heap_len++, job);
    heap_up(job->heap_index);
    /* A new nearest deadline: a poller may sleep past it. */
    if (job->heap_index == 0 && pollers > 0)
        kick();
    return 0;
}

static void heap_delete(struct pool_job *job);

/* Insert, or move to its place after its deadline changed (a send that
   made progress under a per-wait limit). */
static int heap_update(struct pool_job *job)
{
    if (job->heap_index >= 0)
        heap_delete(job);
    return heap_insert(job);
}

static void heap_delete(struct pool_job *job)
{
    int i = job->heap_index;
    if (i < 0)
        return;
    job->heap_index = -1;
    if (--heap_len == i)
        return;
    heap_set(i, heap[heap_len]);
    heap_up(i);
    heap_down(heap[i]->heap_index);
}

void park_heap_add(struct pool_job *job)
{
    pthread_mutex_lock(&park_mu);
    /* Someone must watch the deadline while the job waits for a thread.
       Should that fail (no memory, no thread), the job keeps the limit
       its running call computes from the deadline, but could miss it
       while queued. */
    if (ensure_epoll() == 0 && (pollers > 0 || start_poller() == 0))
        heap_insert(job);
    pthread_mutex_unlock(&park_mu);
}

void park_heap_remove(struct pool_job *job)
{
    pthread_mutex_lock(&park_mu);
    heap_delete(job);
    pthread_mutex_unlock(&park_mu);
}

/* ------------------------------------------------------------------------
 * Parking
 * ---------------------------------------------------------------------- */

/* The list of the slot that job waits in. */
static struct pool_job **list_of(struct slot *sl, const struct pool_job *job)
{
    return job->events & POLLIN ? &sl->in : &sl->out;
}

/* Count the job in or out, and keep it on its loop's parked list. */
static void parked_count(struct pool_job *job, int parked)
{
    struct pool_loop *loop = job->loop;
    job->parked = (short)parked;
    if (parked) {
        parked_by_lane[job->lane]++;
        if (loop) {
            job->loop_prev = NULL;
            job->loop_next = loop->parked;
            if (loop->parked)
                loop->parked->loop_prev = job;
            loop->parked = job;
            if (loop->nparked++ == 0)
                loops_parked++;
        }
    } else {
        parked_by_lane[job->lane]--;
        if (loop) {
            if (job->loop_prev)
                job->loop_prev->loop_next = job->loop_next;
            else
                loop->parked = job->loop_next;
            if (job->loop_next)
                job->loop_next->loop_prev = job->loop_prev;
            job->loop_prev = job->loop_next = NULL;
            if (--loop->nparked == 0)
                loops_parked--;
        }
    }
}

/* Take job off its slot and re-arm the slot for what is left (disarm it,
   if 'disarm' and nothing is left: the owner will wait on it itself);
   park_mu held, job parked. */
static void unlink_job(struct pool_job *job, int disarm)
{
    int i = job->reg->slot;
    struct slot *sl = slot_at(i);
    struct pool_job **pp = list_of(sl, job);
    while (*pp != job)
        pp = &(*pp)->park_next;
    *pp = job->park_next;
    job->park_next = NULL;
    if (sl->in || sl->out || disarm)
        slot_arm(i, EPOLL_CTL_MOD);
    parked_count(job, 0);
}

static void unlink_parked(struct pool_job *job)
{
    unlink_job(job, 0);
}

int park_take_loop(struct pool_loop *loop, struct pool_job **jobs, int max)
{
    int n = 0;
    pthread_mutex_lock(&park_mu);
    if (loop->nparked > 0 && loop->nparked <= (unsigned)max) {
        while (loop->parked) {
            jobs[n] = loop->parked;
            unlink_job(jobs[n++], 1);
        }
    }
    pthread_mutex_unlock(&park_mu);
    return n;
}

int park_job(struct pool_job *job)
{
    int rc = 0, op = EPOLL_CTL_MOD;
    pthread_mutex_lock(&park_mu);
    if (atomic_load(&job->cancelled) || stopping) {
        rc = -ECANCELED;
        goto out;
    }
    if (job->deadline && pool_now_ms() >= job->deadline) {
        rc = -ETIMEDOUT;
        goto out;
    }
    if ((rc = ensure_epoll()) < 0)
        goto out;
    if (pollers == 0 && (rc = start_poller()) < 0)
        goto out;
    if (job->reg->slot < 0) {
        int i = slot_new(job->fd);
        if (i < 0) {
            rc = -ENOMEM;
            goto out;
        }
        job->reg->slot = i;
        op = EPOLL_CTL_ADD;
    }
    struct slot *sl = slot_at(job->reg->slot);
    struct pool_job **place = list_of(sl, job);
    job->park_next = *place;
    *place = job;
    rc = slot_arm(job->reg->slot, op);
    if (rc == 0 && job->deadline)
        rc = heap_update(job);
    if (rc < 0) {
        *place = job->park_next;
        job->park_next = NULL;
        if (sl->in || sl->out)
            slot_arm(job->reg->slot, EPOLL_CTL_MOD);
        goto out;
    }
    parked_count(job, 1);
out:
    pthread_mutex_unlock(&park_mu);
    return rc;
}

int park_unpark(struct pool_job *job)
{
    int was;
    pthread_mutex_lock(&park_mu);
    was = job->parked;
    if (was) {
        unlink_parked(job);
        heap_delete(job);
    }
    pthread_mutex_unlock(&park_mu);
    return was;
}

void park_cancel_reg(struct park_reg *r)
{
    /* One job at a time, each held while it is cancelled outside the
       lock.  Cancelling takes it off the slot (or a poller took it just
       before), and a cancelled job is never parked again: this ends. */
    for (;;) {
        struct pool_job *job = NULL;
        pthread_mutex_lock(&park_mu);
        if (r->slot >= 0) {
            struct slot *sl = slot_at(r->slot);
            job = sl->in ? sl->in : sl->out;
            if (job)
                pool_job_ref(job);
        }
        pthread_mutex_unlock(&park_mu);
        if (!job)
            return;
        pool_job_cancel(job);
        pool_job_unref(job);
    }
}

/* ------------------------------------------------------------------------
 * Pollers
 * ---------------------------------------------------------------------- */

/* What one round found, handled once park_mu is let go. */
struct round {
    struct pool_job *ready;                 /* linked through park_next */
    struct pool_job **ready_tail;
    int nready;
    struct pool_job *expired[MAX_EVENTS];   /* parked: unlinked already */
    int nexpired;
    struct pool_job *queued[MAX_EVENTS];    /* maybe queued: a ref each */
    int nqueued;
};

/* Move a whole list of parked jobs to the round's ready list. */
static void take_list(struct pool_job **list, struct round *r)
{
    while (*list) {
        struct pool_job *job = *list;
        *list = job->park_next;
        job->park_next = NULL;
        parked_count(job, 0);
        *r->ready_tail = job;
        r->ready_tail = &job->park_next;
        r->nready++;
    }
}

/* The jobs an event concerns, off their slot; park_mu held. */
static void take_ready(const struct epoll_event *ev, struct round *r)
{
    int i = (int)(uint32_t)ev->data.u64;
    unsigned gen = (unsigned)(ev->data.u64 >> 32);
    if (i >= nslots || slot_at(i)->fd < 0 || slot_at(i)->gen != gen)
        return;                 /* its descriptor has gone: stale */
    struct slot *sl = slot_at(i);
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        take_list(&sl->in, r);
    if (ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        take_list(&sl->out, r);
    /* A oneshot event disarmed the descriptor: arm it again for the jobs
       still waiting there. */
    if (sl->in || sl->out)
        slot_arm(i, EPOLL_CTL_MOD);
}

/* Jobs whose deadline has passed, off the heap; park_mu held.  Returns
   the ms to the next deadline (-1: none). */
static int take_expired(struct round *r)
{
    long long now = pool_now_ms();
    while (heap_len > 0 && heap[0]->deadline <= now) {
        struct pool_job *job = heap[0];
        if (job->parked) {
            if (r->nexpired == MAX_EVENTS)
                return 0;
            unlink_parked(job);
            r->expired[r->nexpired++] = job;
        } else {
            /* Queued on a lane (or running or stepping, which look after
               their own deadline): the lane's lock decides. */
            if (r->nqueued == MAX_EVENTS)
                return 0;
            pool_job_ref(job);
            r->queued[r->nqueued++] = job;
        }
        heap_delete(job);
    }
    if (heap_len == 0)
        return -1;
    long long left = heap[0]->deadline - now;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static void run_step(struct pool_job *job)
{
    int rc = job->ops->step ? job->ops->step(job) : POOL_WORK;
    if (rc == POOL_AGAIN) {
        int err = park_job(job);
        if (err == 0)
            return;
        if (job->ops->abort)
            job->ops->abort(job, err);
        rc = POOL_DONE;
    }
    if (rc == POOL_WORK)
        pool_queue_work(job);
    else
        pool_complete(job);
}

void park_resume(struct pool_job *job, int ready)
{
    if (ready) {
        run_step(job);
        return;
    }
    int err = park_job(job);
    if (err < 0) {
        if (job->ops->abort)
            job->ops->abort(job, err);
        pool_complete(job);
    }
}

static void run_round(struct round *r)
{
    while (r->ready) {
        struct pool_job *job = r->ready;
        r->ready = job->park_next;
        job->park_next = NULL;
        run_step(job);
    }
    for (int i = 0; i < r->nexpired; i++) {
        struct pool_job *job = r->expired[i];
        if (job->ops->abort)
            job->ops->abort(job, -ETIMEDOUT);
        pool_complete(job);
    }
    for (int i = 0; i < r->nqueued; i++) {
        pool_abort_queued(r->queued[i], -ETIMEDOUT);
        pool_job_unref(r->queued[i]);
    }
}

int park_lead_fd(struct pool_loop *loop)
{
    pthread_mutex_lock(&park_mu);
    /* Only the one loop with parked jobs leads: with several, every
       event would wake every owner waiting on the set, and an owner would
       step other loops' jobs, a hop for them. */
    int fd = loop->nparked > 0 && loops_parked == 1 ? epfd : -1;
    pthread_mutex_unlock(&park_mu);
    return fd;
}

int park_lead(void)
{
    struct epoll_event ev[MAX_EVENTS];
    struct round r;
    r.ready = NULL;
    r.ready_tail = &r.ready;
    r.nready = r.nexpired = r.nqueued = 0;
    pthread_mutex_lock(&park_mu);
    int n = epoll_wait(epfd, ev, MAX_EVENTS, 0);
    for (int i = 0; i < n; i++)
        if (ev[i].data.u64 != KICK_ID)  /* the kick is the pollers' */
            take_ready(&ev[i], &r);
    stepping += (unsigned)r.nready;
    pthread_mutex_unlock(&park_mu);
    if (r.nready == 0)
        return 0;
    run_round(&r);
    pthread_mutex_lock(&park_mu);
    stepping -= (unsigned)r.nready;
    pthread_mutex_unlock(&park_mu);
    return r.nready;
}

/* Whether a poller may leave after idle_ms without events; park_mu held. */
static int may_leave(void)
{
    unsigned parked = 0;
    for (int i = 0; i < POOL_NLANES; i++)
        parked += parked_by_lane[i];
    return pollers > 1 || (heap_len == 0 && parked == 0);
}

static void *poller_main(void *arg)
{
    struct epoll_event ev[MAX_EVENTS];
    struct round r;
    (void)arg;
    pthread_mutex_lock(&park_mu);
    while (!stopping) {
        r.ready = NULL;
        r.ready_tail = &r.ready;
        r.nready = r.nexpired = r.nqueued = 0;
        int timeout = take_expired(&r);
        int idle_wait = 0;
        /* Every idle_ms at least, a poller wakes to see whether it may
           leave: jobs it watched may have been taken off by their owner
           meanwhile (park_take_loop), and that owner does not kick it. */
        if (r.nexpired || r.nqueued) {
            timeout = 0;
        } else if (timeout < 0 || (unsigned)timeout > idle_ms) {
            timeout = (int)idle_ms;
            idle_wait = 1;
        }
        pollers_waiting++;
        pthread_mutex_unlock(&park_mu);
        int n = epoll_wait(epfd, ev, MAX_EVENTS, timeout);
        pthread_mutex_lock(&park_mu);
        pollers_waiting--;
        /* Decided again now: a job may have been parked meanwhile. */
        if (n == 0 && idle_wait && may_leave())
            break;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 != KICK_ID) {
                take_ready(&ev[i], &r);
            } else if (!stopping) {
                /* (Left readable while stopping: every poller sees it.) */
                uint64_t count;
                ssize_t rd = read(kickfd, &count, sizeof count);
                (void)rd;
            }
        }
        if (r.nready && pollers_waiting == 0 && pollers < max_pollers)
            start_poller();     /* nobody watches while we step */
        if (r.nready == 0 && r.nexpired == 0 && r.nqueued == 0)
            continue;
        stepping += (unsigned)r.nready;
        pthread_mutex_unlock(&park_mu);
        run_round(&r);
        pthread_mutex_lock(&park_mu);
        stepping -= (unsigned)r.nready;
    }
    if (--pollers == 0)
        pthread_cond_broadcast(&exit_cv);
    pthread_mutex_unlock(&park_mu);
    return NULL;
}

/* park_mu held.  0, or a negated errno (the poller count is unchanged). */
static int start_poller(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, poller_stack * POOL_STACK_FACTOR);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&tid, &attr, poller_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -rc;
    pollers++;
    return 0;
}

/* ------------------------------------------------------------------------
 * Settings, statistics, shutdown
 * ---------------------------------------------------------------------- */

void park_set_limits(unsigned max, size_t stack, unsigned idle)
{
    pthread_mutex_lock(&park_mu);
    max_pollers = max;
    poller_stack = stack;
    idle_ms = idle;
    if (pollers > 0)
        kick();                 /* a lowered idle time applies at once */
    pthread_mutex_unlock(&park_mu);
}

void park_get_stats(struct pool_lane_stats *st)
{
    pthread_mutex_lock(&park_mu);
    st->threads = pollers;
    st->idle = pollers_waiting;
    st->busy = stepping;
    st->queued = 0;
    pthread_mutex_unlock(&park_mu);
}

unsigned park_parked(enum pool_lane lane)
{
    pthread_mutex_lock(&park_mu);
    unsigned n = parked_by_lane[lane];
    pthread_mutex_unlock(&park_mu);
    return n;
}

void park_shutdown(void)
{
    struct pool_job *job;
    pthread_mutex_lock(&park_mu);
    stopping = 1;
    if (pollers > 0)
        kick();
    for (int i = 0; i < nslots; i++) {
        struct slot *sl = slot_at(i);
        while ((job = sl->in ? sl->in : sl->out) != NULL) {
            unlink_parked(job);
            heap_delete(job);
            pthread_mutex_unlock(&park_mu);
            if (job->ops->abort)
                job->ops->abort(job, -ECANCELED);
            pool_complete(job);
            pthread_mutex_lock(&park_mu);
        }
    }
    /* Each poller leaves at its next look at 'stopping': the kick stays
       readable, so every epoll_wait returns. */
    while (pollers > 0)
        pthread_cond_wait(&exit_cv, &park_mu);
    if (kickfd >= 0) {
        uint64_t count;         /* the set is quiet again for owners */
        ssize_t rd = read(kickfd, &count, sizeof count);
        (void)rd;
    }
    stopping = 0;
    pthread_mutex_unlock(&park_mu);
}

/* SPDX-License-Identifier: MIT */
/*
 * lplu.h -- what the Lua binding's files (l*.c) share.
 *
 * Threads: everything declared here runs on the thread that owns the
 * lua_State, except the work/cancel/destroy callbacks of jobs, which run on
 * workers and touch only what the job owns (its copy of the bytes, its
 * reference to a plu_fd).
 */
#ifndef PLUTO_LPLU_H
#define PLUTO_LPLU_H

#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

#include "chunkq.h"
#include "netaddr.h"
#include "netops.h"
#include "pool.h"
#include "tls.h"

#define PLU_SOCKET_MT   "pluto.socket.socket"
#define PLU_LISTENER_MT "pluto.socket.listener"
#define PLU_BOX_MT      "pluto.socket.jobbox"

/* A descriptor shared by a Lua handle and the jobs working on it; closed
   when the last holder lets go, so that a worker never polls a number
   that has been reused.  Wake a worker with shutdown(), never close(). */
struct plu_fd {
    atomic_int refs;
    int fd;
    /* Set by the Lua thread once a handshake has succeeded, before any
       job using them starts; freed with the last reference, so after
       every worker has returned from GnuTLS. */
    gnutls_session_t tls;
    struct tls_io *io;
    struct tls_creds *creds;
    /* A connected stream is closed by linger_close (FIN, then input
       drained); 'shut' once s:shutdown sent FIN (and close_notify). */
    unsigned stream : 1;
    unsigned shut : 1;
};

struct plu_fd *plu_fd_new(int fd);        /* NULL: fd closed, ENOMEM */
void plu_fd_ref(struct plu_fd *f);
void plu_fd_unref(struct plu_fd *f);

/* Per lua_State: the completion loop and a scratch buffer for fast-path
   receives.  A full userdata in the registry, also upvalue 1 of every C
   function of the module. */
struct plu_state {
    struct pool_loop *loop;
    char *scratch;                        /* NET_CHUNK_MAX bytes, lazily */
    unsigned long received;               /* receives that returned data;
                                             lsocket.c's retries watch it */
};

struct plu_state *plu_state(lua_State *L);     /* from upvalue 1 */
int plu_state_open(lua_State *L);              /* pushes the state */
char *plu_scratch(lua_State *L);

/* Waiting --------------------------------------------------------------- */

/* Start a job: queued on the pool when the caller can yield, else run at
   once on this thread (the caller may block).  Takes no reference. */
void plu_start(lua_State *L, struct pool_job *job);

/* Wait for 'job': if it is done, call k at once; inside a coroutine,
   record the wait and yield (k runs when resumed); outside one, block. */
int plu_await(lua_State *L, struct pool_job *job, lua_KContext ctx,
              lua_KFunction k);

/* The caller has seen 'job' done and takes its result: drop the loop's
   bookkeeping, and hand other coroutines waiting on it to the scheduler. */
void plu_finish(lua_State *L, struct pool_job *job);

/* A userdata holding one job reference (set *box after pushing), for
   calls that wait on a job no socket holds: connect, resolve, starttls.
   With 'cancel', collecting it before the job is done cancels the job
   (starttls does not: the socket may still be used elsewhere). */
struct pool_job **plu_push_box(lua_State *L, int cancel);

/* Results --------------------------------------------------------------- */

/* Push nil, message, errno name; returns 3.  err > 0 is an errno. */
int plu_fail(lua_State *L, int err);
/* Push nil, word, name ("timeout", "ETIMEDOUT"); returns 3. */
int plu_fail_word(lua_State *L, const char *word, const char *name);
/* Push nil and the text and name ("EAI_NONAME") of a resolver error. */
int plu_fail_gai(lua_State *L, int gai);
/* Push nil and the text and name of a GnuTLS error; returns 3. */
int plu_fail_tls(lua_State *L, int code);

/* Sockets and listeners ------------------------------------------------- */

struct plu_socket {
    struct plu_fd *fd;          /* NULL once closed */
    struct chunkq rq;           /* received and unrecv'd chunks */
    struct pool_job *rjob;      /* receive in flight, at most one */
    struct pool_job *wjob;      /* send in flight, at most one */
    struct pool_job *hjob;      /* TLS handshake in flight: no other I/O */
    int timeout_ms;             /* -1: none */
    int family;
    int werr;                   /* last send job's outcome (0, -errno) */
    int werr_tls;               /* ... or its GnuTLS error */
    int tls_held;               /* enum tls_held, for the next send */
    unsigned wseq;              /* numbers send jobs */
    struct netaddr peer;        /* UDP: where send goes (last sender, or
                                   setpeer); has_peer says if set */
    unsigned has_peer : 1;
    unsigned eof : 1;           /* the peer closed, or a receive failed */
    unsigned server : 1;
    unsigned udp : 1;
    unsigned tls : 1;
};

/* A new socket handle owning fd (closes fd on failure to allocate). */
struct plu_socket *plu_socket_push(lua_State *L, int fd, int server);
struct plu_socket *plu_socket_check(lua_State *L, int idx);

int plu_open_socket(lua_State *L);      /* registers the metatable */
int plu_open_listener(lua_State *L);

/* Settle a finished handshake (ltls.c): install the session, or close
   the socket.  Called by whichever call on the socket sees it done. */
void plu_tls_settle(lua_State *L, struct plu_socket *s);
int plu_starttls(lua_State *L);         /* s:starttls */
int plu_tlssession(lua_State *L);       /* s:tlssession */
void plu_close_socket(struct plu_socket *s);

int plu_connect(lua_State *L);          /* socket.connect */
int plu_listen(lua_State *L);           /* socket.listen */
/* Argument 1 as a listen address (port, "ip:port", "[ip6]:port"; a Lua
   error when it is not one), opened by open(addr, dual).  A bare port
   takes IPv6 and IPv4 (dual), or IPv4 alone where the machine has no
   IPv6.  Returns the descriptor or a negated errno. */
int plu_open_listen_spec(lua_State *L,
                         int (*open)(const struct netaddr *addr, int dual));
int plu_resolve(lua_State *L);          /* socket.resolve */
int plu_udpserver(lua_State *L);        /* socket.udpserver */
int plu_setpeer(lua_State *L);          /* s:setpeer */

/* Small helpers ---------------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
double plu_now_ms(void);
/* Check that argument 'arg' is an integer port 0..65535. */
unsigned plu_checkport(lua_State *L, int arg);

#endif

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
#include "park.h"
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
    struct park_reg reg;        /* fd's registration with the pollers */
    /* Set by the Lua thread once a handshake has succeeded, before any
       job using them starts; freed with the last reference, so after
       every worker has returned from GnuTLS. */
    gnutls_session_t tls;
    struct tls_io *io;
    struct tls_creds *creds;
    /* A connected stream is closed by linger_close (FIN, then input
       drained); 'shut' once s:shutdown sent FIN (and close_notify). */
    unsigned stream : 1;        /* closed by linger_close */
    unsigned shut : 1;
    unsigned tcp : 1;           /* a connected TCP socket */
};

/* A shared descriptor for fd, taking over its registration *reg (may be
   NULL); NULL when out of memory, fd then closed. */
struct plu_fd *plu_fd_new(int fd, struct park_reg *reg);
void plu_fd_ref(struct plu_fd *f);
void plu_fd_unref(struct plu_fd *f);

/* Per lua_State: the completion loop and a scratch buffer for fast-path
   receives.  A full userdata in the registry, also upvalue 1 of every C
   function of the module. */
struct plu_state {
    struct pool_loop *loop;
    /* Finished jobs taken off the loop and not yet handed to their
       waiters: if handing one over raises (a memory error), the rest wait
       here for the next _poll; each holds the loop's reference. */
    struct pool_job *taken;
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
/* The call that made the box at idx has its result: let go of the job now
   rather than when the box is collected (a finalizer that a memory error
   keeps from running, at lua_close, then leaks nothing). */
void plu_box_release(lua_State *L, int idx);

/* Wait until any of jobs[0..n) is done (none may be done already):
   inside a coroutine only (yields; k runs when resumed). */
int plu_await_any(lua_State *L, struct pool_job *const *jobs, int n,
                  lua_KContext ctx, lua_KFunction k);

/* Mark the running coroutine as sleeping until 'deadline' (plu_now_ms;
   < 0: not sleeping), for the scheduler. */
void plu_set_sleeping(lua_State *L, double deadline);

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
    long long timeout_ms;       /* a limit per call (settimeout "t"); -1 */
    long long block_ms;         /* ... and per wait (settimeout "b"); -1 */
    long long rdeadline;        /* of the recv / send call in progress */
    long long wdeadline;        /* (pool_now_ms; 0: none) */
    int family;
    int werr;                   /* last send job's outcome (0, -errno) */
    int werr_tls;               /* ... or its GnuTLS error */
    int stream_err;             /* errno that ended a TLS receive, or 0 */
    size_t wsent;               /* bytes the last finished send sent */
    int tls_held;               /* enum tls_held, for the next send */
    unsigned wseq;              /* numbers send jobs */

    unsigned has_peer : 1;
    unsigned eof : 1;           /* the peer closed, or a receive failed */
    unsigned server : 1;
    unsigned udp : 1;
    unsigned tls : 1;
    /* UDP only (the room is there only for a UDP handle): where send
       goes, the last sender or what setpeer chose; has_peer says if set. */
    struct netaddr peer[];
};

struct plu_listener {
    struct plu_fd *fd;          /* NULL once closed */
    struct pool_job *ajob;      /* accept in flight, at most one */
};

/* A new socket handle, closed, pushed on the stack: made before its
   descriptor, so that a memory error leaves no descriptor open.  'udp':
   a datagram socket (with room for its peer). */
struct plu_socket *plu_socket_new(lua_State *L, int udp);
/* Give that handle its descriptor (and the descriptor's registration,
   may be NULL); on a memory error fd is closed and a Lua error raised. */
void plu_socket_open(lua_State *L, struct plu_socket *s, int fd, int server,
                     struct park_reg *reg);
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
/* Argument 'arg' as a listen address (port, "ip:port", "[ip6]:port"; a Lua
   error when it is not one) and arg + 1 as its options (backlog,
   reuseport), opened by open(addr, opts).  A bare port takes IPv6 and
   IPv4 (dual), or IPv4 alone where the machine has no IPv6.  Returns the
   descriptor or a negated errno. */
int plu_open_listen_spec(lua_State *L, int arg,
                         int (*open)(const struct netaddr *addr,
                                     const struct net_bind_opts *o));
int plu_resolve(lua_State *L);          /* socket.resolve */
int plu_lookup(lua_State *L);           /* socket._lookup */
int plu_reverse(lua_State *L);          /* socket._reverse */
int plu_gethostname(lua_State *L);      /* socket._gethostname */
int plu_udpserver(lua_State *L);        /* socket.udpserver */
int plu_setpeer(lua_State *L);          /* s:setpeer */
int plu_udp_open(lua_State *L);         /* socket._udp */
int plu_udp_bind(lua_State *L);         /* s:_bind */
int plu_udp_connect(lua_State *L);      /* s:_connect */
int plu_sock_buffered(lua_State *L);    /* s:_buffered */
int plu_select(lua_State *L);           /* socket._select */
/* setoption, getoption, getfd: into the methods table at the top. */
void plu_open_sockopt(lua_State *L);

/* Socket methods of lrecv.c and lsend.c. */
int plu_sock_recv(lua_State *L);
int plu_sock_peek(lua_State *L);
int plu_sock_unrecv(lua_State *L);
int plu_sock_isopen(lua_State *L);
int plu_sock_send(lua_State *L);
int plu_sock_receive(lua_State *L);

/* Drop the handle's hold on a finished job (*slot).  plu_finish may
   raise (a memory error): the job then stays in its slot. */
void plu_release_job(lua_State *L, struct pool_job **slot);

/* nil, message, errno name for rc < 0 (errno style); -ETIMEDOUT is the
   word "timeout". */
int plu_fail_rc(lua_State *L, int rc);

/* The deadline of a socket's call that began at 'since' (0: no limit). */
static inline long long plu_deadline(const struct plu_socket *s,
                                     long long since)
{
    return s->timeout_ms < 0 ? 0 : since + s->timeout_ms;
}

/* Small helpers ---------------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
double plu_now_ms(void);
/* Argument 'arg' as a string that can become a C string: a Lua error
   naming it if it holds a NUL byte.  len may be NULL. */
const char *plu_checkcstring(lua_State *L, int arg, size_t *len);
/* luaL_checkoption, but an argument with a NUL byte is an error too (not
   taken for the name before it). */
int plu_checkoption(lua_State *L, int arg, const char *def,
                    const char *const names[]);
/* Whether the value at idx is the string 'name' exactly (a key with a NUL
   byte in it is not "alpn"). */
int plu_is_key(lua_State *L, int idx, const char *name);
/* Check that argument 'arg' is an integer port 0..65535. */
unsigned plu_checkport(lua_State *L, int arg);

#endif

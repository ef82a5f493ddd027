/* SPDX-License-Identifier: MIT */
/*
 * lresolve.c -- socket.resolve(host [, "inet" | "inet6"]): getaddrinfo on
 * a worker of the dns lane; the addresses as plain strings.
 *
 * getaddrinfo cannot be interrupted: a lookup whose caller went away
 * finishes on its worker and its result is dropped with the job.  The dns
 * lane's cap (config dns_threads) bounds how many run at once; the rest
 * wait in the lane's queue, so thousands can be in flight from one
 * scheduler without starving receives, connects or handshakes.
 */
#include "lplu.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ADDRS 64

struct resolve_job {
    struct pool_job base;
    int family;
    int reverse;                 /* getnameinfo of the address in host[] */
    int gai;                     /* getaddrinfo's (getnameinfo's) result */
    int sys_errno;               /* its errno, for EAI_SYSTEM */
    int count;
    char canon[NI_MAXHOST];      /* the canonical name (or the reverse's) */
    char addrs[MAX_ADDRS][NETADDR_IPSTRLEN];
    char host[];
};

/* The name of an address (a reverse lookup: PTR), for _reverse. */
static void reverse_work(struct resolve_job *r)
{
    struct netaddr a;
    if (netaddr_parse_ip(r->host, 0, &a) != 0) {
        r->gai = EAI_NONAME;
        return;
    }
    r->gai = getnameinfo((struct sockaddr *)&a.ss, a.len, r->canon,
                         sizeof r->canon, NULL, 0, NI_NAMEREQD);
    r->sys_errno = errno;
}

static void resolve_work(struct pool_job *job)
{
    struct resolve_job *r = (struct resolve_job *)job;
    struct addrinfo hints, *list = NULL;

    if (r->reverse) {
        reverse_work(r);
        return;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->family;
    hints.ai_socktype = SOCK_STREAM;    /* one entry per address */
    hints.ai_flags = AI_CANONNAME;
    r->gai = getaddrinfo(r->host, NULL, &hints, &list);
    r->sys_errno = errno;
    if (r->gai != 0)
        return;
    if (list && list->ai_canonname)
        snprintf(r->canon, sizeof r->canon, "%s", list->ai_canonname);
    for (struct addrinfo *ai = list; ai && r->count < MAX_ADDRS;
         ai = ai->ai_next) {
        char *text = r->addrs[r->count];
        if (netaddr_format_plain(ai->ai_addr, text) < 0)
            continue;
        int dup = 0;
        for (int i = 0; i < r->count && !dup; i++)
            dup = strcmp(r->addrs[i], text) == 0;
        if (!dup)
            r->count++;
    }
    freeaddrinfo(list);
}

static void resolve_destroy(struct pool_job *job)
{
    free(job);
}

/* No cancel: a running getaddrinfo cannot be stopped. */
static const struct pool_job_ops resolve_ops = {
    .work = resolve_work,
    .destroy = resolve_destroy,
};

#define BOX_INDEX 3   /* host, family, box */

/* ctx: 0 resolve (the addresses), 1 _lookup (and the canonical name),
   2 _reverse (the name). */
static int resolve_k(lua_State *L, int status, lua_KContext ctx)
{
    struct pool_job **box = lua_touserdata(L, BOX_INDEX);
    struct resolve_job *r = (struct resolve_job *)*box;
    (void)status;
    if (!pool_job_isdone(&r->base))
        return plu_await(L, &r->base, ctx, resolve_k);
    plu_finish(L, &r->base);
    if (r->gai != 0) {
        int n = r->gai == EAI_SYSTEM ? plu_fail(L, r->sys_errno)
                                     : plu_fail_gai(L, r->gai);
        plu_box_release(L, BOX_INDEX);
        return n;
    }
    int n;
    if (ctx == 2) {
        lua_pushstring(L, r->canon);
        n = 1;
    } else if (r->count == 0) {
        n = plu_fail_gai(L, EAI_NONAME);
    } else {
        lua_createtable(L, r->count, 0);
        for (int i = 0; i < r->count; i++) {
            lua_pushstring(L, r->addrs[i]);
            lua_rawseti(L, -2, i + 1);
        }
        n = 1;
        if (ctx == 1) {
            lua_pushstring(L, r->canon[0] ? r->canon : r->host);
            n = 2;
        }
    }
    plu_box_release(L, BOX_INDEX);      /* r is not used below */
    return n;
}

static int lookup(lua_State *L, int mode)
{
    static const char *const families[] = { "any", "inet", "inet6", NULL };
    static const int family_of[] = { AF_UNSPEC, AF_INET, AF_INET6 };
    size_t len;
    const char *host = plu_checkcstring(L, 1, &len);
    int family = mode == 2 ? AF_UNSPEC
                           : family_of[plu_checkoption(L, 2, "any", families)];
    struct netaddr addr;

    luaL_argcheck(L, len > 0, 1, "empty host name");
    int literal = netaddr_parse_ip(host, 0, &addr) == 0;
    luaL_argcheck(L, mode != 2 || literal, 1, "not an IP address");
    /* An IP literal resolves to itself, without a worker. */
    if (literal && mode != 2 &&
        (family == AF_UNSPEC || family == addr.ss.ss_family)) {
        char text[NETADDR_IPSTRLEN];
        netaddr_format_plain((struct sockaddr *)&addr.ss, text);
        lua_createtable(L, 1, 0);
        lua_pushstring(L, text);
        lua_rawseti(L, -2, 1);
        if (mode == 0)
            return 1;
        lua_pushvalue(L, 1);
        return 2;
    }
    lua_settop(L, 2);
    struct pool_job **box = plu_push_box(L, 1);
    struct resolve_job *r = calloc(1, sizeof *r + len + 1);
    if (!r)
        return luaL_error(L, "not enough memory");
    pool_job_init(&r->base, &resolve_ops, POOL_DNS, plu_state(L)->loop);
    r->family = family;
    r->reverse = mode == 2;
    memcpy(r->host, host, len + 1);
    *box = &r->base;
    plu_start(L, &r->base);
    return resolve_k(L, LUA_OK, mode);
}

int plu_resolve(lua_State *L)
{
    return lookup(L, 0);
}

/* _lookup(host [, family]): the addresses and the canonical name. */
int plu_lookup(lua_State *L)
{
    return lookup(L, 1);
}

/* _reverse(ip): the host name of an address (PTR), or nil, msg, EAI_... */
int plu_reverse(lua_State *L)
{
    return lookup(L, 2);
}

/* _gethostname(): this machine's name, as gethostname(2) gives it. */
int plu_gethostname(lua_State *L)
{
    char name[256];
    if (gethostname(name, sizeof name) < 0)
        return plu_fail(L, errno);
    name[sizeof name - 1] = '\0';
    lua_pushstring(L, name);
    return 1;
}

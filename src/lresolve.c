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

#define MAX_ADDRS 64

struct resolve_job {
    struct pool_job base;
    int family;
    int gai;                     /* getaddrinfo's result */
    int sys_errno;               /* its errno, for EAI_SYSTEM */
    int count;
    char addrs[MAX_ADDRS][NETADDR_IPSTRLEN];
    char host[];
};

static void resolve_work(struct pool_job *job)
{
    struct resolve_job *r = (struct resolve_job *)job;
    struct addrinfo hints, *list = NULL;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = r->family;
    hints.ai_socktype = SOCK_STREAM;    /* one entry per address */
    r->gai = getaddrinfo(r->host, NULL, &hints, &list);
    r->sys_errno = errno;
    if (r->gai != 0)
        return;
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
    resolve_work, NULL, resolve_destroy
};

#define BOX_INDEX 3   /* host, family, box */

static int resolve_k(lua_State *L, int status, lua_KContext ctx)
{
    struct pool_job **box = lua_touserdata(L, BOX_INDEX);
    struct resolve_job *r = (struct resolve_job *)*box;
    (void)status;
    (void)ctx;
    if (!pool_job_isdone(&r->base))
        return plu_await(L, &r->base, 0, resolve_k);
    plu_finish(L, &r->base);
    if (r->gai != 0) {
        if (r->gai == EAI_SYSTEM)
            return plu_fail(L, r->sys_errno);
        return plu_fail_gai(L, r->gai);
    }
    if (r->count == 0)
        return plu_fail_gai(L, EAI_NONAME);
    lua_createtable(L, r->count, 0);
    for (int i = 0; i < r->count; i++) {
        lua_pushstring(L, r->addrs[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

int plu_resolve(lua_State *L)
{
    static const char *const families[] = { "any", "inet", "inet6", NULL };
    static const int family_of[] = { AF_UNSPEC, AF_INET, AF_INET6 };
    size_t len;
    const char *host = luaL_checklstring(L, 1, &len);
    int family = family_of[luaL_checkoption(L, 2, "any", families)];
    struct netaddr addr;

    luaL_argcheck(L, len > 0 && strlen(host) == len, 1, "empty host name");
    /* An IP literal resolves to itself, without a worker. */
    if (netaddr_parse_ip(host, 0, &addr) == 0 &&
        (family == AF_UNSPEC || family == addr.ss.ss_family)) {
        char text[NETADDR_IPSTRLEN];
        netaddr_format_plain((struct sockaddr *)&addr.ss, text);
        lua_createtable(L, 1, 0);
        lua_pushstring(L, text);
        lua_rawseti(L, -2, 1);
        return 1;
    }
    lua_settop(L, 2);
    struct pool_job **box = plu_push_box(L, 1);
    struct resolve_job *r = calloc(1, sizeof *r + len + 1);
    if (!r)
        return luaL_error(L, "not enough memory");
    pool_job_init(&r->base, &resolve_ops, POOL_DNS, plu_state(L)->loop);
    r->family = family;
    memcpy(r->host, host, len + 1);
    *box = &r->base;
    plu_start(L, &r->base);
    return resolve_k(L, LUA_OK, 0);
}

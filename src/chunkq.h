/* SPDX-License-Identifier: MIT */
/*
 * chunkq.h -- a FIFO of byte chunks: a socket's receive buffer.
 *
 * recv() hands back whole chunks as they arrived (one TCP read, one TLS
 * record, one datagram); unrecv() pushes a chunk in front.  Owned and used
 * by one thread only (the Lua side), so there is no lock.
 */
#ifndef PLUTO_CHUNKQ_H
#define PLUTO_CHUNKQ_H

#include <stddef.h>

struct chunk {
    struct chunk *next;
    size_t len;                 /* bytes left, from data + off */
    size_t off;                 /* bytes already consumed */
    char data[];
};

/* The bytes of a chunk not consumed yet (len of them). */
static inline const char *chunk_start(const struct chunk *c)
{
    return c->data + c->off;
}

struct chunkq {
    struct chunk *head, *tail;
    size_t count, bytes;
};

void chunkq_init(struct chunkq *q);
void chunkq_clear(struct chunkq *q);

/* A chunk holding a copy of data[0..len); NULL when out of memory. */
struct chunk *chunk_new(const void *data, size_t len);

/* A chunk received into a larger buffer, cut down to its first len bytes
   (kept as it is if the smaller allocation fails); len set, unlinked. */
struct chunk *chunk_trim(struct chunk *c, size_t len);

void chunkq_push_back(struct chunkq *q, struct chunk *c);
void chunkq_push_front(struct chunkq *q, struct chunk *c);
/* The oldest chunk, removed (caller frees it with free()), or NULL. */
struct chunk *chunkq_pop(struct chunkq *q);
/* Drop the first n bytes (n <= q->bytes), freeing the chunks used up. */
void chunkq_consume(struct chunkq *q, size_t n);
/* The oldest chunk, left in place, or NULL. */
static inline const struct chunk *chunkq_peek(const struct chunkq *q)
{
    return q->head;
}

#endif

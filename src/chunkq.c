/* SPDX-License-Identifier: MIT */
/* chunkq.c -- the receive buffer's chunk FIFO (see chunkq.h). */
#include "chunkq.h"

#include <stdlib.h>
#include <string.h>

void chunkq_init(struct chunkq *q)
{
    q->head = q->tail = NULL;
    q->count = q->bytes = 0;
}

void chunkq_clear(struct chunkq *q)
{
    struct chunk *c;
    while ((c = chunkq_pop(q)) != NULL)
        free(c);
}

struct chunk *chunk_new(const void *data, size_t len)
{
    struct chunk *c = malloc(sizeof *c + len);
    if (!c)
        return NULL;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    if (len)
        memcpy(c->data, data, len);
    return c;
}

struct chunk *chunk_trim(struct chunk *c, size_t len)
{
    struct chunk *fit = realloc(c, sizeof *c + len);
    if (fit)
        c = fit;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    return c;
}

void chunkq_push_back(struct chunkq *q, struct chunk *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    q->count++;
    q->bytes += c->len;
}

void chunkq_push_front(struct chunkq *q, struct chunk *c)
{
    c->next = q->head;
    q->head = c;
    if (!q->tail)
        q->tail = c;
    q->count++;
    q->bytes += c->len;
}

struct chunk *chunkq_pop(struct chunkq *q)
{
    struct chunk *c = q->head;
    if (!c)
        return NULL;
    q->head = c->next;
    if (!q->head)
        q->tail = NULL;
    c->next = NULL;
    q->count--;
    q->bytes -= c->len;
    return c;
}

void chunkq_consume(struct chunkq *q, size_t n)
{
    while (n > 0 && q->head) {
        struct chunk *c = q->head;
        if (n < c->len) {
            c->off += n;
            c->len -= n;
            q->bytes -= n;
            return;
        }
        n -= c->len;
        free(chunkq_pop(q));
    }
}

/* SPDX-License-Identifier: MIT */
/* test_chunkq.c -- the receive buffer keeps chunks whole and in order,
   with unrecv'd chunks in front. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chunkq.h"

static void push(struct chunkq *q, const char *s, int front)
{
    struct chunk *c = chunk_new(s, strlen(s));
    ck_assert_ptr_nonnull(c);
    if (front)
        chunkq_push_front(q, c);
    else
        chunkq_push_back(q, c);
}

/* Pops the next chunk and checks its bytes. */
static void expect(struct chunkq *q, const char *s)
{
    struct chunk *c = chunkq_pop(q);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, strlen(s));
    ck_assert(memcmp(c->data, s, c->len) == 0);
    free(c);
}

START_TEST(fifo_order)
{
    struct chunkq q;
    chunkq_init(&q);
    push(&q, "a", 0);
    push(&q, "bb", 0);
    push(&q, "ccc", 0);
    ck_assert_uint_eq(q.count, 3);
    ck_assert_uint_eq(q.bytes, 6);
    expect(&q, "a");
    expect(&q, "bb");
    expect(&q, "ccc");
    ck_assert_ptr_null(chunkq_pop(&q));
    ck_assert_uint_eq(q.bytes, 0);
}
END_TEST

START_TEST(unrecv_goes_first)
{
    /* The seed's example: unrecv "World" then "Hello" gives Hello, World. */
    struct chunkq q;
    chunkq_init(&q);
    push(&q, "later", 0);
    push(&q, "World", 1);
    push(&q, "Hello", 1);
    ck_assert_uint_eq(chunkq_peek(&q)->len, 5);
    ck_assert(memcmp(chunkq_peek(&q)->data, "Hello", 5) == 0);
    expect(&q, "Hello");
    expect(&q, "World");
    expect(&q, "later");
    /* Front pushes on an empty queue keep the tail right. */
    push(&q, "x", 1);
    push(&q, "y", 0);
    expect(&q, "x");
    expect(&q, "y");
}
END_TEST

START_TEST(empty_chunk_and_clear)
{
    struct chunkq q;
    chunkq_init(&q);
    push(&q, "", 0);
    ck_assert_uint_eq(q.count, 1);
    for (int i = 0; i < 1000; i++)
        push(&q, "data", i & 1);
    chunkq_clear(&q);
    ck_assert_uint_eq(q.count, 0);
    ck_assert_uint_eq(q.bytes, 0);
    ck_assert_ptr_null(chunkq_peek(&q));
}
END_TEST

/* A receive buffer of 64 KiB cut down to what arrived: the bytes stay,
   the length is set, and the chunk goes into a queue like any other. */
START_TEST(trim_keeps_the_bytes)
{
    struct chunkq q;
    struct chunk *c = malloc(sizeof *c + 65536);
    ck_assert_ptr_nonnull(c);
    c->next = c;                       /* garbage that trim must clear */
    memcpy(c->data, "hello", 5);
    c = chunk_trim(c, 5);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, 5);
    ck_assert_ptr_null(c->next);
    ck_assert_mem_eq(c->data, "hello", 5);
    chunkq_init(&q);
    chunkq_push_back(&q, c);
    ck_assert_uint_eq(q.bytes, 5);
    chunkq_clear(&q);
}
END_TEST

/* Consuming part of the queue: whole chunks freed, the next one cut at
   its start, the counts kept; what is left reads on in order. */
START_TEST(consume_in_part)
{
    struct chunkq q;
    chunkq_init(&q);
    chunkq_push_back(&q, chunk_new("hello ", 6));
    chunkq_push_back(&q, chunk_new("wide ", 5));
    chunkq_push_back(&q, chunk_new("world", 5));
    chunkq_consume(&q, 8);                      /* "hello wi" */
    ck_assert_uint_eq(q.bytes, 8);
    ck_assert_uint_eq(q.count, 2);
    const struct chunk *c = chunkq_peek(&q);
    ck_assert_uint_eq(c->len, 3);
    ck_assert_int_eq(memcmp(chunk_start(c), "de ", 3), 0);
    chunkq_consume(&q, 3);                      /* exactly one chunk */
    ck_assert_uint_eq(q.count, 1);
    c = chunkq_peek(&q);
    ck_assert_int_eq(memcmp(chunk_start(c), "world", 5), 0);
    chunkq_push_front(&q, chunk_new(">", 1));   /* unrecv still goes first */
    ck_assert_int_eq(memcmp(chunk_start(chunkq_peek(&q)), ">", 1), 0);
    chunkq_consume(&q, 6);
    ck_assert_uint_eq(q.bytes, 0);
    ck_assert_ptr_null(chunkq_peek(&q));
    chunkq_clear(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunkq");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, fifo_order);
    tcase_add_test(tc, unrecv_goes_first);
    tcase_add_test(tc, empty_chunk_and_clear);
    tcase_add_test(tc, trim_keeps_the_bytes);
    tcase_add_test(tc, consume_in_part);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* SPDX-License-Identifier: MIT */
/* test_netaddr.c -- IP literals and listen specs parse as users write
   them, and format the way Pluto shows them. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

static int port_of(const struct netaddr *a)
{
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void roundtrip(const char *in, const char *shown, int port)
{
    struct netaddr a;
    char buf[NETADDR_IPSTRLEN];
    ck_assert_int_eq(netaddr_parse_ip(in, (unsigned)port, &a), 0);
    ck_assert_int_eq(netaddr_format((struct sockaddr *)&a.ss, buf), port);
    ck_assert_str_eq(buf, shown);
}

START_TEST(ip_literals)
{
    roundtrip("127.0.0.1", "127.0.0.1", 80);
    roundtrip("::1", "[::1]", 443);
    roundtrip("[::1]", "[::1]", 0);
    roundtrip("2001:db8::5", "[2001:db8::5]", 65535);
    /* IPv4-mapped IPv6 is shown as the IPv4 address it carries. */
    roundtrip("::ffff:10.1.2.3", "10.1.2.3", 7);
}
END_TEST

START_TEST(plain_format)
{
    struct netaddr a;
    char buf[NETADDR_IPSTRLEN];
    ck_assert_int_eq(netaddr_parse_ip("::1", 1, &a), 0);
    netaddr_format_plain((struct sockaddr *)&a.ss, buf);
    ck_assert_str_eq(buf, "::1");
}
END_TEST

START_TEST(not_ip)
{
    struct netaddr a;
    const char *bad[] = { "", "localhost", "300.1.1.1", "1.2.3", "[::1",
                          "::1]", "[]", "zz::1", "1.2.3.4.5", "::1%" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(netaddr_parse_ip(bad[i], 1, &a) == -1,
                      "'%s' parsed as an IP", bad[i]);
}
END_TEST

START_TEST(listen_specs)
{
    struct netaddr a;
    int dual;
    ck_assert_int_eq(netaddr_parse_listen("8080", &a, &dual), 0);
    ck_assert_int_eq(dual, 1);
    ck_assert_int_eq(a.ss.ss_family, AF_INET6);
    ck_assert_int_eq(port_of(&a), 8080);

    ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:0", &a, &dual), 0);
    ck_assert_int_eq(dual, 0);
    ck_assert_int_eq(a.ss.ss_family, AF_INET);
    ck_assert_int_eq(port_of(&a), 0);

    ck_assert_int_eq(netaddr_parse_listen("[::1]:65535", &a, &dual), 0);
    ck_assert_int_eq(a.ss.ss_family, AF_INET6);
    ck_assert_int_eq(port_of(&a), 65535);
}
END_TEST

START_TEST(listen_errors)
{
    struct netaddr a;
    int dual;
    /* -2: the port is the problem; -1: the address is. */
    ck_assert_int_eq(netaddr_parse_listen("70000", &a, &dual), -2);
    ck_assert_int_eq(netaddr_parse_listen("-1", &a, &dual), -2);
    ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:70000", &a, &dual), -2);
    ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:", &a, &dual), -2);
    ck_assert_int_eq(netaddr_parse_listen("abc:1", &a, &dual), -1);
    ck_assert_int_eq(netaddr_parse_listen("300.1.1.1:80", &a, &dual), -1);
    ck_assert_int_eq(netaddr_parse_listen("[zz]:1", &a, &dual), -1);
    ck_assert_int_eq(netaddr_parse_listen("::1:80", &a, &dual), -1);
    ck_assert_int_eq(netaddr_parse_listen("[::1:80", &a, &dual), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, ip_literals);
    tcase_add_test(tc, plain_format);
    tcase_add_test(tc, not_ip);
    tcase_add_test(tc, listen_specs);
    tcase_add_test(tc, listen_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

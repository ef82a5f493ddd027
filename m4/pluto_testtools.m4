# SPDX-License-Identifier: MIT
# pluto_testtools.m4 -- report the programs only the tests use.  -*- Autoconf -*-
#
# None of them is needed to build or install: a test that needs a missing
# one skips (exit 77) and says why.  configure lists them so that a
# packager sees which build dependencies make the whole suite run.

# PLUTO_TEST_TOOL(PROGRAM, DEBIAN-PACKAGE, WHAT-NEEDS-IT)
# -------------------------------------------------------
# Look PROGRAM up on PATH (AC_PATH_PROG: "checking for PROGRAM") and add
# a line to the summary that PLUTO_TEST_TOOLS_SUMMARY prints.
AC_DEFUN([PLUTO_TEST_TOOL], [
  dnl root's tools (ip, dnsmasq) live in sbin, which a user's PATH may lack.
  AC_PATH_PROG([pluto_tool_]AS_TR_SH([$1]), [$1], [],
    [$PATH$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/sbin])
  AS_IF([test -n "$pluto_tool_[]AS_TR_SH([$1])"],
    [pluto_tool_state="$pluto_tool_[]AS_TR_SH([$1])"],
    [pluto_tool_state="MISSING ($2)"
     pluto_tools_missing="$pluto_tools_missing $2"])
  pluto_tools_summary="$pluto_tools_summary
`printf '    %-12s %-22s %s' '$1' "$pluto_tool_state" '$3'`"
])

# PLUTO_TEST_TOOLS
# ----------------
# The programs the tests start, and what needs each one.
AC_DEFUN([PLUTO_TEST_TOOLS], [
  pluto_tools_summary=
  pluto_tools_missing=
  PLUTO_TEST_TOOL([bash], [bash], [every test: the watchdog of testlib])
  PLUTO_TEST_TOOL([certtool], [gnutls-bin], [t_tls_*: test certificates])
  PLUTO_TEST_TOOL([openssl], [openssl], [t_tls_*_peers, _sni, _alpn, _chain...: OpenSSL peers])
  PLUTO_TEST_TOOL([gnutls-cli], [gnutls-bin], [t_tls_server_peers, t_tls_resume])
  PLUTO_TEST_TOOL([gnutls-serv], [gnutls-bin], [t_tls_client_peers])
  PLUTO_TEST_TOOL([curl], [curl], [t_seed_bind, t_hasconnection, t_tls_server_peers])
  PLUTO_TEST_TOOL([dnsmasq], [dnsmasq-base], [t_dns_netns, t_happy_eyeballs (root only)])
  PLUTO_TEST_TOOL([ip], [iproute2], [t_dns_netns, t_happy_eyeballs (root only)])
  PLUTO_TEST_TOOL([ip6tables], [iptables], [t_happy_eyeballs (root only)])
  AS_IF([test -n "$pluto_tools_missing"], [
    AC_MSG_WARN([some programs the tests use are missing: those tests will skip (Debian packages:$pluto_tools_missing)])
  ])
])

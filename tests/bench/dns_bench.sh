#!/bin/sh
# SPDX-License-Identifier: MIT
# dns_bench.sh -- the DNS benchmark: 1,000 and 10,000 distinct lookups
# against a DNS server that takes 100 ms per query (in a network
# namespace of its own), pluto.socket against luv, cqueues and LuaSocket.
# Prints a markdown table on stdout (progress on stderr). Needs root,
# dnsmasq-base and iproute2; lua-luv, lua-cqueues and lua-socket for their
# rows. Takes about 4 minutes (luv with its default 4 threads is measured
# at 1,000 names and extrapolated to 10,000 unless DNS_BENCH_MAX_S=900:
# then about 13 minutes). Exits 77 when it cannot run here.
#
#   tests/run-lua tests/bench/dns_bench.sh    (or make bench): the module
#                       of that build tree, paths as run-lua sets them
#   tests/bench/dns_bench.sh    from a configured build tree (the current
#                       directory, or $PLUTO_TEST_BUILDDIR): through its
#                       tests/run-lua
#   LUA_CPATH=/some/dir/?.so;; sh tests/bench/dns_bench.sh
#                       elsewhere: $LUA (default lua5.4) with the caller's
#                       LUA_CPATH (pluto/socket.so under one of its
#                       directories); the sources' Lua files are added
# Settings: see the environment variables in dns_bench.lua
# (DNS_BENCH_SIZES, DNS_BENCH_REPS, DNS_BENCH_ONLY, ...).
# Do not rebuild the module while this runs: a module file rewritten in
# place under a running process crashes it.
set -e
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=${PLUTO_TEST_BUILDDIR:-$(pwd)}

# Thousands of sockets at once (cqueues: one per query in flight).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || :
# A whole benchmark outlives testlib's default 45 s watchdog.
PLUTO_TEST_WATCHDOG=${PLUTO_TEST_WATCHDOG:-3600}
export PLUTO_TEST_WATCHDOG

if test -n "${PLUTO_TEST_RUN_LUA:-}"; then
  # Already under tests/run-lua: the environment is set up.
  exec "${LUA:-lua5.4}" "$here/dns_bench.lua" "$@"
fi
if test -z "${LUA_CPATH:-}" && test -x "$builddir/tests/run-lua"; then
  exec "$builddir/tests/run-lua" "$here/dns_bench.lua" "$@"
fi

# No build tree: run with $LUA and the caller's paths, plus the sources'.
LUA=${LUA:-lua5.4}
PLUTO_TEST_SRCDIR=$srcdir
LUA_PATH="$srcdir/lua/?.lua;$srcdir/lua/?/init.lua;$srcdir/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA PLUTO_TEST_SRCDIR LUA_PATH
exec "$LUA" "$here/dns_bench.lua" "$@"

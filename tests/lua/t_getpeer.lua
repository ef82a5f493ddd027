-- SPDX-License-Identifier: MIT
-- t_getpeer.lua: s:getpeer() gives the peer's IP and port, IPv6 in
-- brackets as Pluto does ("[::1]"), an IPv4 client of a dual-stack listener
-- as plain IPv4; s:getsockname() gives the local side in the same form.
local T = require "testlib"
local socket = require "pluto.socket"

local function check_pair(host, want_ip, listen_addr, what)
  local l = assert(socket.listen(listen_addr))
  local _, port = l:getsockname()
  local c = assert(socket.connect(host, port))
  local s = assert(l:accept())

  local ip, pport = c:getpeer()
  T.eq(ip, want_ip, what .. ": client's getpeer() ip")
  T.eq(pport, port, what .. ": client's getpeer() port")
  T.eq(math.type(pport), "integer", what .. ": port is an integer")

  local lip, lport = c:getsockname()
  T.eq(lip, want_ip, what .. ": client's getsockname() ip")
  T.check(math.type(lport) == "integer" and lport > 0 and lport ~= port,
          "%s: client's local port: %s", what, T.repr(lport))

  local sip, sport = s:getpeer()
  T.eq(sip, want_ip, what .. ": server side's getpeer() ip")
  T.eq(sport, lport, what .. ": server side's getpeer() port = client's local port")

  local ssip, ssport = s:getsockname()
  T.eq(ssip, want_ip, what .. ": server side's getsockname() ip")
  T.eq(ssport, port, what .. ": server side's getsockname() port = listening port")

  c:close(); s:close(); l:close()
  T.ok("%s: getpeer/getsockname on both sides", what)
end

check_pair("127.0.0.1", "127.0.0.1", "127.0.0.1:0", "IPv4")
if socket.listen("[::1]:0") then
  check_pair("::1", "[::1]", "[::1]:0", "IPv6")
  check_pair("[::1]", "[::1]", "[::1]:0", "IPv6, host in brackets")
  -- Dual stack: the kernel reports ::ffff:127.0.0.1; shown as IPv4.
  check_pair("127.0.0.1", "127.0.0.1", 0, "IPv4 client of a dual-stack listener")
  check_pair("::1", "[::1]", 0, "IPv6 client of a dual-stack listener")
else
  T.note("no IPv6 loopback: IPv6 cases not run")
end

-- The seed: getpeer of a client is the address and port it connected to.
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local sock = assert(socket.connect("127.0.0.1", port))
  local ip, pport = sock:getpeer()
  T.eq(ip, "127.0.0.1", "seed example ip")
  T.eq(pport, port, "seed example port")
  sock:close(); l:close()
  T.ok("seed example")
end

-- A listener's getsockname: the port it listens on.
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local ip, port = l:getsockname()
  T.eq(ip, "127.0.0.1", "listener getsockname ip")
  T.check(port > 0, "listener getsockname port")
  l:close()
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_udp.lua: UDP sockets: socket.udpserver(port | "ip:port" | "[ip6]:port"),
-- socket.connect(host, port, "udp"), recv/send of whole datagrams,
-- s:setpeer(ip, port), s:isudp(). Loopback only.
--
--   * udpserver(0) picks a port (getsockname); "127.0.0.1:0" and "[::1]:0"
--     bind those addresses; getside is "server", connect's is "client";
--   * isudp() is true for both kinds of UDP socket, false for TCP;
--   * ping/pong: 20 clients from connect(..., "udp") and one udpserver, all
--     under one scheduler, over IPv4 and IPv6; send answers the last sender,
--     getpeer tells who it was;
--   * setpeer sends the server's next datagrams to a third socket (IPv4 on
--     a dual-stack server, IPv6 in both spellings), and the sender no
--     longer gets them;
--   * setpeer on a TCP socket, with "abc" or a port out of range: Lua
--     errors naming the argument;
--   * a 70,000-byte datagram: nil, message, "EMSGSIZE", socket still usable;
--   * one datagram per recv: 3 sent, 3 received with the exact contents
--     (sizes 1, 1000 and 60000), also when they queued up before the recv;
--   * an empty datagram arrives as "" (not as end of stream);
--   * send on a udpserver that has no peer yet: nil, message;
--   * a coroutine whose receive job another coroutine took over (peek +
--     recv) and that then yields plainly is resumed by pluto.scheduler.

local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function run(f)
  local sched = Scheduler.new()
  sched:add(f)
  sched:run()
end

------------------------------------------------------------------------
-- Creation, isudp, getside
------------------------------------------------------------------------

local srv = assert(socket.udpserver(0))
local _, port = srv:getsockname()
T.check(math.type(port) == "integer" and port > 0, "udpserver(0) port: %s", T.repr(port))
T.eq(srv:isudp(), true, "udpserver isudp")
T.eq(srv:getside(), "server", "udpserver getside")
T.has(tostring(srv), "udp", "tostring of a udpserver")
T.ok("udpserver(0) bound port %d", port)

local s4 = assert(socket.udpserver("127.0.0.1:0"))
local ip4, port4 = s4:getsockname()
T.eq(ip4, "127.0.0.1", "udpserver(127.0.0.1:0) address")
local s6 = socket.udpserver("[::1]:0")
local port6
if s6 then
  local ip6
  ip6, port6 = s6:getsockname()
  T.eq(ip6, "[::1]", "udpserver([::1]:0) address")
else
  T.note("no IPv6 loopback here: IPv6 parts skipped")
end

local c = assert(socket.connect("127.0.0.1", port4, "udp"))
T.eq(c:isudp(), true, "connect(..., udp) isudp")
T.eq(c:getside(), "client", "connect(..., udp) getside")

local tcp_c, tcp_s, listener = T.pair(socket)
T.eq(tcp_c:isudp(), false, "TCP client isudp")
T.eq(tcp_s:isudp(), false, "TCP server-side isudp")
T.ok("isudp: true for udpserver and connect(udp), false for TCP")

------------------------------------------------------------------------
-- Caller errors
------------------------------------------------------------------------

do
  local err = T.raises("UDP", "setpeer on a TCP socket", tcp_c.setpeer, tcp_c, "127.0.0.1", 9)
  T.check(err:find("#1", 1, true) or err:find("bad self", 1, true),
          "setpeer on TCP: the error does not name the argument: %s", err)
  err = T.raises("UDP", "setpeer on a TCP socket (method call)",
                 function() return tcp_s:setpeer("127.0.0.1", 9) end)
  T.has(err, "setpeer", "setpeer on TCP, method call")
  err = T.raises("#2", "setpeer with \"abc\"", srv.setpeer, srv, "abc", 9)
  T.has(err, "bad argument", "setpeer with abc")
  T.raises("bad argument", "setpeer with \"abc\" (method call)",
           function() return srv:setpeer("abc", 9) end)
  T.raises("#2", "setpeer with a name", srv.setpeer, srv, "localhost", 9)
  T.raises("#3", "setpeer with port 70000", srv.setpeer, srv, "127.0.0.1", 70000)
  T.raises("#3", "setpeer without a port", srv.setpeer, srv, "127.0.0.1")
  T.raises("#1", "udpserver with a bad address", socket.udpserver, "abc:1")
  T.raises("#1", "udpserver with port 70000", socket.udpserver, 70000)
  T.ok("setpeer on TCP, with \"abc\", a name or a bad port: Lua errors naming the argument")
end
tcp_c:close(); tcp_s:close(); listener:close()

------------------------------------------------------------------------
-- Ping/pong under one scheduler
------------------------------------------------------------------------

local function pingpong(server, host, sport, n)
  local sched = Scheduler.new()
  local served, answered = 0, 0
  local senders = {}
  sched:add(function()
    for _ = 1, n do
      local d = server:recv()
      if not d then break end
      local ip, p = server:getpeer()
      senders[#senders + 1] = ip .. " " .. p .. " " .. d
      assert(server:send("pong:" .. d))
      served = served + 1
    end
  end)
  local clients = {}
  for i = 1, n do
    sched:add(function()
      local cl = assert(socket.connect(host, sport, "udp"))
      clients[i] = cl
      assert(cl:send("ping " .. i))
      local r = cl:recv()
      T.eq(r, "pong:ping " .. i, "reply to client " .. i)
      answered = answered + 1
    end)
  end
  sched:run()
  T.eq(served, n, "datagrams served")
  T.eq(answered, n, "clients answered")
  -- The server saw each client's own address.
  local want = {}
  for i = 1, n do
    local ip, p = clients[i]:getsockname()
    want[ip .. " " .. p .. " ping " .. i] = true
    clients[i]:close()
  end
  for _, s in ipairs(senders) do
    T.check(want[s], "server saw an unexpected sender: %s", s)
  end
end

pingpong(srv, "127.0.0.1", port, 20)
T.ok("ping/pong: 20 UDP clients and a dual-stack udpserver under one scheduler (IPv4)")
pingpong(s4, "127.0.0.1", port4, 20)
T.ok("ping/pong with udpserver(\"127.0.0.1:0\")")
if s6 then
  pingpong(s6, "::1", port6, 20)
  pingpong(srv, "::1", port, 5)
  T.ok("ping/pong over IPv6 ([::1] server and dual-stack server)")
end

------------------------------------------------------------------------
-- setpeer redirects the server's replies
------------------------------------------------------------------------

do
  local third = assert(socket.udpserver("127.0.0.1:0"))
  local tip, tport = third:getsockname()
  run(function()
    assert(c:send("hello"))
    T.eq(s4:recv(), "hello", "datagram at the server")
    local pip, pport = s4:getpeer()
    local cip, cport = c:getsockname()
    T.eq(pip, cip, "server's peer after recv (ip)")
    T.eq(pport, cport, "server's peer after recv (port)")
    s4:setpeer(tip, tport)
    local gip, gport = s4:getpeer()
    T.eq(gip, tip, "getpeer after setpeer (ip)")
    T.eq(gport, tport, "getpeer after setpeer (port)")
    assert(s4:send("redirected"))
    T.eq(third:recv(), "redirected", "the third socket got the reply")
    -- Then aim back at the client: the first thing it gets is this, so the
    -- redirected datagram did not go to it.
    s4:setpeer(cip, cport)
    assert(s4:send("marker"))
    T.eq(c:recv(), "marker", "the client's first datagram")
  end)
  T.ok("setpeer redirected the server's reply to a third socket")

  -- A dual-stack server aimed at an IPv4 socket.
  run(function()
    srv:setpeer(tip, tport)
    assert(srv:send("from dual-stack"))
    T.eq(third:recv(), "from dual-stack", "dual-stack server -> IPv4 peer")
    local from_ip = third:getpeer()
    T.eq(from_ip, "127.0.0.1", "sender seen by the IPv4 socket")
  end)
  T.ok("setpeer with an IPv4 address on a dual-stack server")

  if s6 then
    local t6 = assert(socket.udpserver("[::1]:0"))
    local _, t6port = t6:getsockname()
    run(function()
      s6:setpeer("::1", t6port)
      assert(s6:send("plain"))
      T.eq(t6:recv(), "plain", "setpeer(\"::1\")")
      s6:setpeer("[::1]", t6port)
      assert(s6:send("brackets"))
      T.eq(t6:recv(), "brackets", "setpeer(\"[::1]\")")
      local ip6 = t6:getpeer()
      T.eq(ip6, "[::1]", "IPv6 sender as getpeer shows it")
    end)
    t6:close()
    T.ok("setpeer with an IPv6 address, plain and in brackets")
  end
  third:close()
end

------------------------------------------------------------------------
-- Too big, one datagram per recv, empty datagrams
------------------------------------------------------------------------

do
  local big = string.rep("x", 70000)
  local r, msg, name = c:send(big)
  T.eq(r, nil, "send of 70,000 bytes from connect(udp)")
  T.check(type(msg) == "string" and #msg > 0, "message: %s", T.repr(msg))
  T.eq(name, "EMSGSIZE", "error name")
  s4:setpeer(c:getsockname())
  r, msg, name = s4:send(big)
  T.eq(r, nil, "send of 70,000 bytes from udpserver")
  T.eq(name, "EMSGSIZE", "error name (server)")
  -- Inside a coroutine too, and the socket stays usable.
  run(function()
    local r2, _, name2 = c:send(big)
    T.eq(r2, nil, "send of 70,000 bytes in a coroutine")
    T.eq(name2, "EMSGSIZE", "error name in a coroutine")
    assert(c:send("still fine"))
    T.eq(s4:recv(), "still fine", "datagram after EMSGSIZE")
  end)
  T.ok("a 70,000-byte datagram: nil, %q, EMSGSIZE; the socket stays usable", msg)
end

do
  local d = { "1", string.rep("b", 1000), string.rep("c", 59999) .. "!" }
  -- Sent before anyone receives: they queue up in the kernel.
  for i = 1, 3 do assert(c:send(d[i])) end
  run(function()
    for i = 1, 3 do
      local got = s4:recv()
      T.check(got == d[i], "datagram %d: expected %d bytes, got %s", i, #d[i],
              got and (#got .. " bytes") or T.repr(got))
    end
  end)
  -- Received while they arrive: a receiver waits first, then 3 come.
  local got = {}
  local sched = Scheduler.new()
  sched:add(function()
    for i = 1, 3 do got[i] = s4:recv() end
  end)
  sched:add(function()
    for i = 3, 1, -1 do assert(c:send(d[i])) end
  end)
  sched:run()
  for i = 1, 3 do
    T.check(got[i] == d[4 - i], "datagram %d (waiting receiver): %s bytes", i,
            got[i] and #got[i] or "nil")
  end
  T.ok("one datagram per recv: 3 sent, 3 received exactly (1, 1000, 60000 bytes)")
end

do
  assert(c:send(""))
  assert(c:send("after empty"))
  run(function()
    local e = s4:recv()
    T.eq(e, "", "an empty datagram")
    T.eq(s4:recv(), "after empty", "the datagram after the empty one")
  end)
  -- Outside a coroutine (blocking recv) too.
  assert(c:send(""))
  T.eq(s4:recv(), "", "an empty datagram, blocking recv")
  T.eq(s4:isopen(), true, "isopen after an empty datagram")
  T.ok("an empty datagram arrives as \"\", and the socket stays open")
end

do
  -- A udpserver that never received anything has nobody to answer.
  local lone = assert(socket.udpserver("127.0.0.1:0"))
  local r, msg = lone:send("to nobody")
  T.eq(r, nil, "send on a udpserver without a peer")
  T.check(type(msg) == "string" and #msg > 0, "message: %s", T.repr(msg))
  lone:close()
  T.ok("send on a udpserver with no peer yet: nil, %q", msg)
end

------------------------------------------------------------------------
-- A receive taken over by another coroutine's peek
------------------------------------------------------------------------

-- Coroutine A waits in recv; B takes the datagram A's receive job got
-- (peek + recv); A then gets the next datagram at once (kernel fast path)
-- and yields plainly. pluto.scheduler must resume A on the next round
-- (SPEC section 6: "it yielded for no operation"). A delaying relay that
-- drains its socket from several coroutines ran into this and stopped.
do
  local sched = Scheduler.new()
  local state = "start"
  local A = sched:add(function()
    local d = s4:recv()
    state = "A got " .. tostring(d)
    coroutine.yield()
    state = "A resumed"
  end)
  sched:add(function()
    assert(c:send("one"))
    assert(c:send("two"))
    for _ = 1, 1000000 do
      if s4:peek() ~= nil then s4:recv(); break end
      coroutine.yield()
    end
  end)
  -- Bounded: if A is never resumed, this ends the run after 2 s.
  local guard = sched:add(function()
    for _ = 1, 200 do
      if state == "A resumed" then return end
      socket.sleep(10)
    end
    sched:remove(A)
  end)
  sched:run()
  T.check(state == "A resumed",
          "a coroutine that yielded plainly after its receive job was taken by " ..
          "another coroutine's peek was never resumed (state: %s, waitstate %s)",
          state, tostring(socket._waitstate(A)))
  T.ok("a plain yield after a receive taken over by peek is resumed")
  guard = nil
end

c:close()
srv:close()
s4:close()
if s6 then s6:close() end
T.done()

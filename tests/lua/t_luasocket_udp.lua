-- SPDX-License-Identifier: MIT
-- t_luasocket_udp.lua: pluto.luasocket's UDP objects: udp(), udp4(),
-- udp6(); classes ("udp{unconnected}", "udp{connected}") and their
-- checks; setsockname, setpeername (and "*" to undo it), sendto,
-- receivefrom, send, receive (a size cuts the datagram; the default
-- is 8192 bytes), getsockname, getpeername, settimeout (0 at once, a
-- limit), options (kept by udp() until it has a socket), dirty, getfd,
-- close.  Outside coroutines and in a scheduler.
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function body(where)
  local u = socket.udp()
  T.eq(u.class, "udp{unconnected}", "udp() class")
  T.check(tostring(u):match("^udp{unconnected}: 0x%x+$"), "tostring %s", tostring(u))
  T.eq(u:getfd(), -1, "udp() has no socket until an address is given")
  T.eq(u:setoption("broadcast", true), 1, "an option kept before the socket exists")
  T.eq(u:setsockname("127.0.0.1", 0), 1, "setsockname")
  T.check(u:getfd() >= 0, "now it has a socket")
  T.eq(u:getoption("broadcast"), true, "the kept option was applied")
  local ip, port, fam = u:getsockname()
  T.eq(ip, "127.0.0.1", "bound address"); T.eq(fam, "inet", "family")
  T.check(port > 0, "bound port")

  local c = assert(socket.udp4())
  T.check(c:getfd() >= 0, "udp4() has a socket at once")
  T.raises("udp{connected} expected", "send on an unconnected socket", c.send, c, "x")
  T.eq(c:setpeername(ip, port), 1, "setpeername")
  T.eq(c.class, "udp{connected}", "connected class")
  T.raises("udp{unconnected} expected", "sendto on a connected socket", c.sendto, c, "x", ip, port)
  T.raises("udp{unconnected} expected", "receivefrom on a connected socket", c.receivefrom, c)
  local pip, pport = c:getpeername()
  T.eq(pip, ip, "peer address"); T.eq(pport, port, "peer port")
  T.raises("udp{connected} expected", "getpeername unconnected", u.getpeername, u)

  u:settimeout(2)
  T.eq(c:send("hello"), 5, "send returns the size")
  local d, fip, fport = u:receivefrom()
  T.eq(d, "hello", "receivefrom"); T.eq(fip, "127.0.0.1", "from address")
  T.eq(fport, select(2, c:getsockname()), "from port")
  c:send("abcdefgh")
  T.eq(u:receive(3), "abc", "a size cuts the datagram")
  c:send("next")
  T.eq(u:receive(), "next", "the rest of the cut datagram is gone")
  c:send(("q"):rep(10000))
  T.eq(#u:receive(), 8192, "the default size is 8192 bytes")
  c:send(("q"):rep(10000))
  T.eq(#u:receive(20000), 10000, "a bigger size takes all")
  c:send("")
  T.eq(u:receive(), "", "an empty datagram")

  -- Answers, with sendto and on a connected socket.
  T.eq(u:sendto("back", fip, fport), 4, "sendto returns the size")
  c:settimeout(2)
  T.eq(c:receive(), "back", "the connected socket receives the answer")

  -- Time limits.
  u:settimeout(0)
  local t0 = native._now()
  local r, err = u:receive()
  T.eq(r, nil, "nothing there"); T.eq(err, "timeout", "timeout 0")
  T.check(native._now() - t0 < 50, "timeout 0 at once")
  c:send("now")
  T.wait_until(function() return native._select({ u:unwrap() }, {}, 0)[1] end, 2000, "datagram")
  T.eq(u:receive(), "now", "timeout 0 with a datagram there")
  u:settimeout(0.2)
  t0 = native._now()
  r, err = u:receive()
  local dt = native._now() - t0
  T.eq(err, "timeout", "a 0.2 s limit"); T.check(dt >= 150 and dt < 3000, "%d ms", dt)
  T.eq(u:gettimeout(), 0.2, "gettimeout")

  -- Undo setpeername.
  T.eq(c:setpeername("*"), 1, "setpeername *")
  T.eq(c.class, "udp{unconnected}", "unconnected again")
  T.eq(c:sendto("via sendto", ip, port), 10, "then sendto works")
  u:settimeout(2)
  T.eq(u:receive(), "via sendto", "received")

  -- udp6, where the machine has IPv6.
  local u6 = socket.udp6()
  if u6 and u6:setsockname("::1", 0) then
    local ip6, port6, fam6 = u6:getsockname()
    T.eq(ip6, "::1", "IPv6 without brackets"); T.eq(fam6, "inet6", "inet6")
    T.eq(u6:getoption("ipv6-v6only"), true, "udp6 is IPv6-only, as LuaSocket's")
    local c6 = assert(socket.udp6())
    c6:sendto("six", "::1", port6)
    u6:settimeout(2)
    local d6, from6 = u6:receivefrom()
    T.eq(d6, "six", "IPv6 datagram"); T.eq(from6, "::1", "IPv6 sender")
    c6:close(); u6:close()
  else
    T.note("%s: no IPv6 loopback; IPv6 part skipped", where)
  end

  -- Errors and close.
  local busy = socket.udp4()
  local r1, r2 = busy:setsockname("127.0.0.1", port)
  T.eq(r1, nil, "binding a port in use"); T.eq(r2, "address already in use", "message")
  busy:close()
  T.eq(u:close(), 1, "close")
  T.eq(u:getfd(), -1, "closed")
  r, err = u:receive()
  T.eq(r, nil, "receive after close"); T.eq(err, "closed", "closed")
  c:close()
  T.ok("%s: UDP objects", where)
end

body("outside coroutines")

do
  local sched = Scheduler.new()
  local done, ticks = false, 0
  sched:add(function() body("in a coroutine"); done = true end)
  sched:add(function()
    while not done do ticks = ticks + 1; native.sleep(20) end
  end)
  sched:run()
  T.check(done, "the coroutine finished")
  T.check(ticks >= 3, "the waits yielded (%d ticks)", ticks)
end

T.done()

-- SPDX-License-Identifier: MIT
-- h_dns_he.lua: the part of t_happy_eyeballs.lua that runs inside its
-- namespace. There, he.test is 2001:db8::dead (on-link, but nothing
-- answers: its packets vanish) and 127.0.0.1 (/etc/netns/NS/hosts).
-- Argument: the head start the module gives each attempt (ms, default 250).
-- Exits 0 when every check passed.

local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local HEAD_START = tonumber(arg[1] or 250)
local now = socket._now

local function has(list, want)
  for _, a in ipairs(list) do if a == want then return true end end
  return false
end

-- glibc puts the IPv6 address first (RFC 6724: precedence 40 for
-- 2001:db8::/32 against 10 for IPv4), so IPv6 is tried first.
local r = assert(socket.resolve("he.test"))
T.check(r[1]:match("^2001:db8:"), "resolve(he.test)[1] = %s: IPv6 is not first ({%s})",
        r[1], table.concat(r, ", "))
T.check(has(r, "127.0.0.1"), "resolve(he.test) = {%s}", table.concat(r, ", "))
T.ok("resolve(he.test) = {%s}: IPv6 first", table.concat(r, ", "))

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
collectgarbage()
local fd0 = T.fd_count()

-- The IPv6 address really drops packets: a connect to it alone is still
-- pending after 300 ms (a blackhole route would fail at once). The
-- abandoned attempt is then collected, which must close its descriptor.
do
  local sched = Scheduler.new()
  local res
  local co = sched:add(function()
    res = table.pack(socket.connect("2001:db8::dead", port))
  end)
  sched:add(function()
    socket.sleep(300)
    T.check(res == nil, "connect to [2001:db8::dead] ended within 300 ms: %s %s %s",
            tostring(res and res[1]), tostring(res and res[2]), tostring(res and res[3]))
    sched:remove(co)
  end)
  sched:run()
  co, sched = nil, nil
  T.ok("a connect to [2001:db8::dead] alone is still pending after 300 ms")
end
collectgarbage()
collectgarbage()
T.wait_until(function() return T.fd_count() == fd0 end, 5000,
             "the abandoned connect's descriptor closed after its coroutine was collected")
T.ok("the abandoned connect's descriptor was closed once its coroutine was collected")

-- Happy Eyeballs: IPv6 first, IPv4 after the head start wins.
do
  local sched = Scheduler.new()
  local c, err, code, dt, peer_ip, peer_port, server
  sched:add(function() server = l:accept() end)
  sched:add(function()
    local t0 = now()
    c, err, code = socket.connect("he.test", port)
    dt = now() - t0
    if c then peer_ip, peer_port = c:getpeer() end
  end)
  sched:run()
  T.check(c, "connect(he.test, %d): %s %s", port, tostring(err), tostring(code))
  T.eq(peer_ip, "127.0.0.1", "getpeer() of the winner")
  T.eq(peer_port, port, "peer port")
  T.check(dt >= HEAD_START - 10 and dt < 1000,
          "connect took %.0f ms; expected the IPv6 head start (%d ms) and then at once",
          dt, HEAD_START)
  T.ok("connect(he.test) won over IPv4 in %.0f ms (head start %d ms), peer %s:%d",
       dt, HEAD_START, peer_ip, peer_port)
  -- The losing IPv6 attempt is closed by the time connect returns: only
  -- the two ends of the winning connection are new.
  T.wait_until(function() return T.fd_count() == fd0 + 2 end, 3000,
               "descriptors after connect: only the two ends of the connection")
  -- The connection works.
  sched = Scheduler.new()
  local got
  sched:add(function()
    assert(c:send("over ipv4"))
    got = server:recv()
  end)
  sched:run()
  T.eq(got, "over ipv4", "data over the winning connection")
  c:close()
  server:close()
  T.wait_until(function() return T.fd_count() == fd0 end, 3000,
               "descriptors back to the count before the connect")
  T.ok("the losing IPv6 attempt was closed; descriptors back to %d", fd0)
end

-- Outside a coroutine (blocking) the same.
do
  local t0 = now()
  local c, err, code = socket.connect("he.test", port)
  local dt = now() - t0
  T.check(c, "blocking connect(he.test): %s %s", tostring(err), tostring(code))
  T.eq((c:getpeer()), "127.0.0.1", "blocking connect's peer")
  T.check(dt >= HEAD_START - 10 and dt < 1000, "blocking connect took %.0f ms", dt)
  local s = assert(l:accept())
  c:close()
  s:close()
  T.wait_until(function() return T.fd_count() == fd0 end, 3000,
               "descriptors after the blocking connect")
  T.ok("outside a coroutine: connect(he.test) in %.0f ms over IPv4", dt)
end

l:close()
T.done()

-- SPDX-License-Identifier: MIT
-- t_connect.lua: socket.connect by IPv4 literal, IPv6 literal ("::1" and
-- "[::1]") and by name; every address of a name is tried; a refused
-- connection is nil, message, "ECONNREFUSED" (a value, not an error).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Check that c (client) and s (its accepted side) talk both ways.
local function roundtrip(c, s, what)
  T.eq(c:send("ping " .. what), true, what .. ": send")
  T.eq(T.recv_n(s, #("ping " .. what), what), "ping " .. what, what .. ": server got")
  T.eq(s:send("pong"), true, what .. ": reply send")
  T.eq(T.recv_n(c, 4, what), "pong", what .. ": client got")
end

-- A port on which nothing listens (on either family): bind one, close it.
local function closed_port()
  local l = assert(socket.listen(0))
  local _, port = l:getsockname()
  l:close()
  return port
end

------------------------------------------------------------------------
-- IPv4 literal
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local c, msg = socket.connect("127.0.0.1", port)
  T.check(c, "connect 127.0.0.1: %s", tostring(msg))
  local s = assert(l:accept())
  local ip, pport = c:getpeer()
  T.eq(ip, "127.0.0.1", "peer ip of IPv4 connect")
  T.eq(pport, port, "peer port of IPv4 connect")
  roundtrip(c, s, "ipv4")
  c:close(); s:close(); l:close()
  T.ok("connect by IPv4 literal")
end

------------------------------------------------------------------------
-- IPv6 literal, plain and in brackets
do
  local l, msg = socket.listen("[::1]:0")
  if not l then
    T.note("no IPv6 loopback here (%s): IPv6 parts not run", tostring(msg))
  else
    local _, port = l:getsockname()
    for _, host in ipairs { "::1", "[::1]" } do
      local c, err = socket.connect(host, port)
      T.check(c, "connect %s: %s", host, tostring(err))
      local s = assert(l:accept())
      local ip, pport = c:getpeer()
      T.eq(ip, "[::1]", "peer ip of connect(" .. host .. ")")
      T.eq(pport, port, "peer port of connect(" .. host .. ")")
      roundtrip(c, s, host)
      c:close(); s:close()
      T.ok("connect by IPv6 literal %s", host)
    end
    l:close()
  end
end

------------------------------------------------------------------------
-- By name, to a dual-stack listener: whatever localhost resolves to works.
do
  local l = assert(socket.listen(0))
  local _, port = l:getsockname()
  local c, msg = socket.connect("localhost", port)
  T.check(c, "connect localhost (dual-stack listener): %s", tostring(msg))
  local s = assert(l:accept())
  roundtrip(c, s, "localhost")
  c:close(); s:close(); l:close()
  T.ok("connect by name localhost")
end

------------------------------------------------------------------------
-- Refused: nil, message, "ECONNREFUSED", for IPv4, IPv6 and a name; outside
-- a coroutine (blocking path) and inside one (yielding path).
local function check_refused(host, port, where)
  local r = table.pack(socket.connect(host, port))
  T.eq(r[1], nil, where .. ": connect(" .. host .. ") to a closed port, first value")
  T.check(type(r[2]) == "string" and #r[2] > 0,
          "%s: connect(%s) refused: expected a message string, got %s",
          where, host, T.repr(r[2]))
  T.eq(r[3], "ECONNREFUSED", where .. ": connect(" .. host .. ") errno name")
end

do
  local port = closed_port()
  check_refused("127.0.0.1", port, "blocking")
  check_refused("::1", port, "blocking")
  check_refused("localhost", port, "blocking")
  T.ok("refused connection outside a coroutine: nil, msg, ECONNREFUSED")

  local sched = Scheduler.new()
  local done = false
  sched:add(function()
    check_refused("127.0.0.1", port, "coroutine")
    check_refused("::1", port, "coroutine")
    done = true
  end)
  sched:run()
  T.check(done, "refused-connect coroutine did not finish")
  T.ok("refused connection inside a coroutine: nil, msg, ECONNREFUSED")
end

------------------------------------------------------------------------
-- Inside a scheduler: connect yields, the listener accepts in another
-- coroutine, both complete.
do
  local sched = Scheduler.new()
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local got
  sched:add(function()
    local s = assert(l:accept())
    got = s:recv()
    s:send("back")
    s:close()
  end)
  local reply
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:send("hello")
    reply = c:recv()
    c:close()
  end)
  sched:run()
  l:close()
  T.eq(got, "hello", "server side in scheduler received")
  T.eq(reply, "back", "client side in scheduler received")
  T.ok("connect inside a scheduler coroutine")
end

------------------------------------------------------------------------
-- Every address of a name is tried. The name must resolve to ::1 and
-- 127.0.0.1 while only one of them listens. Here localhost may resolve to
-- one address only, so the connecting side runs in a child process with its
-- own mount namespace whose /etc/hosts lists both. We run it twice, once
-- listening on each family only: whichever address the resolver returns
-- first, one of the two runs finds the first address refusing.
local function unshare_works()
  return os.execute("env -u LD_PRELOAD unshare -m true >/dev/null 2>&1")
end

if not unshare_works() then
  T.note("unshare -m not available: multi-address name test not run")
else
  local hosts = os.tmpname()
  local f = assert(io.open(hosts, "w"))
  f:write("::1 localhost pluto-test-multi\n127.0.0.1 localhost pluto-test-multi\n")
  f:close()
  for _, fam in ipairs { { "127.0.0.1:%d", "127.0.0.1", "::1" },
                         { "[::1]:%d", "[::1]", "127.0.0.1" } } do
    -- Listen on one family only, on a port that refuses on the other
    -- (checked, since that refusal is what the test is about).
    local l, port
    for _ = 1, 20 do
      local p = closed_port()
      l = socket.listen(string.format(fam[1], p))
      if l and socket.connect(fam[3], p) == nil then port = p; break end
      if l then l:close(); l = nil end
    end
    T.check(port, "could not find a port listening on %s only", fam[2])
    -- The child runs without the sanitizer runtime for unshare/mount, and
    -- gets it back (if any) for Lua.
    local cmd = "unshare -m sh -c " .. T.q(
      "mount --bind " .. T.q(hosts) .. " /etc/hosts && exec " .. T.preload_env() ..
      T.lua_cmd("h_connect", "pluto-test-multi", tostring(port)))
    local pid, h = T.spawn(cmd, { tool = true })
    local sched = Scheduler.new()
    local accepted = false
    sched:add(function()
      local s = l:accept()
      if not s then return end      -- closed by the guard below
      accepted = true
      local d = s:recv()
      T.eq(d, "ping", "server side of the name connect received")
      s:send("pong")
      s:close()
    end)
    -- Guard: if the child ends without connecting, stop waiting in accept.
    sched:add(function()
      T.wait_until(function() return accepted or T.exited(pid) end, 15000, nil, true)
      if not accepted then l:close() end
    end)
    sched:run()
    local line = T.readline(h, "h_connect")
    local ok, how, code = T.wait_exit(pid, h, 10000)
    T.check(ok and code == 0, "h_connect exited badly (%s %s)", tostring(how), tostring(code))
    T.check(line:match("^ok "), "connect to a name whose other address refuses " ..
            "(listening on %s only): %s", fam[2], line)
    T.eq(line, "ok " .. fam[2] .. " " .. port .. " pong", "child's report")
    l:close()
    T.ok("name with addresses ::1 and 127.0.0.1, listener on %s only: connects", fam[2])
  end
  os.remove(hosts)
end

T.done()

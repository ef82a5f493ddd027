-- SPDX-License-Identifier: MIT
-- t_badinput.lua: mistakes of the caller raise a Lua error that names the
-- argument, as luaL_argerror does ("bad argument #N to 'fn' (...)"):
-- wrong types, ports outside 0-65535, addresses listen cannot parse,
-- config fields of the wrong type or out of range.
--
-- Calls are written as statements inside closures, not as `return f(...)`
-- tail calls and not as pcall(f, ...), because Lua derives the function's
-- name in the message from the calling instruction.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function argerr(n, fname, what, fn)
  local ok, err = pcall(fn)
  T.check(not ok, "%s: expected an error, but the call succeeded (returned %s)",
          what, T.repr(err))
  local want = string.format("bad argument #%d to '%s'", n, fname)
  T.has(tostring(err), want, what)
end

------------------------------------------------------------------------
-- connect
argerr(1, "connect", "connect(nil, 80)", function() socket.connect(nil, 80) end)
argerr(1, "connect", "connect({}, 80)", function() socket.connect({}, 80) end)
argerr(2, "connect", "connect(ip, \"notaport\")",
       function() socket.connect("127.0.0.1", "notaport") end)
argerr(2, "connect", "connect(ip, nil)", function() socket.connect("127.0.0.1", nil) end)
argerr(2, "connect", "connect(ip, {})", function() socket.connect("127.0.0.1", {}) end)
argerr(2, "connect", "connect(ip, 70000)", function() socket.connect("127.0.0.1", 70000) end)
argerr(2, "connect", "connect(ip, -1)", function() socket.connect("127.0.0.1", -1) end)
argerr(2, "connect", "connect(ip, 65536)", function() socket.connect("127.0.0.1", 65536) end)
argerr(3, "connect", "connect(ip, port, \"sctp\")",
       function() socket.connect("127.0.0.1", 80, "sctp") end)
-- Inside a coroutine the check happens before any yield.
do
  local co = coroutine.create(function() socket.connect("127.0.0.1", 70000) end)
  local ok, err = coroutine.resume(co)
  T.check(not ok, "connect(ip, 70000) in a coroutine: expected an error")
  T.has(tostring(err), "bad argument #2 to 'connect'", "connect(ip, 70000) in a coroutine")
end
T.ok("connect: wrong types and bad ports raise, naming the argument")

------------------------------------------------------------------------
-- listen
argerr(1, "listen", "listen(70000)", function() socket.listen(70000) end)
argerr(1, "listen", "listen(-1)", function() socket.listen(-1) end)
argerr(1, "listen", "listen(nil)", function() socket.listen(nil) end)
argerr(1, "listen", "listen({})", function() socket.listen({}) end)
argerr(1, "listen", "listen(\"300.1.1.1:80\")", function() socket.listen("300.1.1.1:80") end)
argerr(1, "listen", "listen(\"[zz]:1\")", function() socket.listen("[zz]:1") end)
argerr(1, "listen", "listen(\"abc:1\")", function() socket.listen("abc:1") end)
argerr(1, "listen", "listen(\"127.0.0.1:70000\")", function() socket.listen("127.0.0.1:70000") end)
argerr(1, "listen", "listen(\"[::1]:-1\")", function() socket.listen("[::1]:-1") end)
T.ok("listen: bad ports and unparsable addresses raise, naming the argument")

------------------------------------------------------------------------
-- sleep
argerr(1, "sleep", "sleep(\"x\")", function() socket.sleep("x") end)
argerr(1, "sleep", "sleep({})", function() socket.sleep({}) end)
T.ok("sleep: wrong type raises")

------------------------------------------------------------------------
-- socket and listener methods
do
  local c, s, l = T.pair(socket)
  argerr(1, "send", "s:send({})", function() c:send({}) end)
  argerr(1, "send", "s:send(nil)", function() c:send(nil) end)
  argerr(1, "unrecv", "s:unrecv({})", function() c:unrecv({}) end)
  argerr(1, "settimeout", "s:settimeout(\"x\")", function() c:settimeout("x") end)
  -- A method called on the wrong kind of object: self is argument #1 when
  -- the method is called with a dot.
  argerr(1, "recv", "s.recv({})", function() c.recv({}) end)
  argerr(1, "accept", "l.accept(socket)", function() l.accept(c) end)
  -- Nothing was sent by the failed calls: the stream is intact.
  T.eq(c:send("ok"), true, "send after the failed calls")
  T.eq(s:recv(), "ok", "data after the failed calls")
  c:close(); s:close(); l:close()
  T.ok("methods: wrong types raise, naming the argument")
end

------------------------------------------------------------------------
-- bind: a port that cannot be bound raises (SPEC §3), and so do bad arguments.
do
  local sched = Scheduler.new()
  T.check(not pcall(function() socket.bind(sched, 70000, function() end) end),
          "bind(sched, 70000, f) should raise")
  T.check(not pcall(function() socket.bind(sched, "abc:1", function() end) end),
          "bind(sched, \"abc:1\", f) should raise")
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  T.check(not pcall(function() socket.bind(sched, "127.0.0.1:" .. port, function() end) end),
          "bind on a port in use should raise")
  l:close()
  T.check(not pcall(function() socket.bind(sched, 0, "not a function") end),
          "bind(sched, 0, \"not a function\") should raise")
  T.ok("bind: unbindable port and bad arguments raise")
end

------------------------------------------------------------------------
-- config: bad fields raise an error naming the field; the configuration is
-- left as it was.
do
  local before = socket.config()
  T.check(type(before) == "table", "config() should return a table, got %s", T.repr(before))
  argerr(1, "config", "config(\"x\")", function() socket.config("x") end)
  local cases = {
    { field = "wait_threads", value = "lots" },
    { field = "wait_threads", value = -5 },
    { field = "connect_threads", value = {} },
    { field = "dns_threads", value = -1 },
    { field = "wait_stack", value = true },
    { field = "idle_ms", value = -1 },
  }
  for _, case in ipairs(cases) do
    local ok, err = pcall(function() socket.config { [case.field] = case.value } end)
    T.check(not ok, "config{%s = %s} should raise", case.field, T.repr(case.value))
    T.has(tostring(err), case.field, "config{" .. case.field .. " = " .. T.repr(case.value) .. "}")
  end
  local after = socket.config()
  for k, v in pairs(before) do
    T.eq(after[k], v, "config field " .. tostring(k) .. " after rejected changes")
  end
  T.ok("config: bad fields raise naming the field, nothing changed")
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_hasconnection.lua: l:hasconnection() never blocks, is false with no
-- client waiting and true once one is; then l:accept() neither yields nor
-- blocks. The seed's loop
--     while not l:hasconnection() do os.sleep(1) end
-- translated with socket.sleep, once inside a scheduler (client in another
-- coroutine) and once outside any coroutine (client: a curl child process,
-- the seed's "visit http://localhost to break this loop").
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Run the seed's loop, bounded (max 10 s). Returns how many times it slept.
local function wait_for_client(l)
  local loops = 0
  while not l:hasconnection() do
    socket.sleep(10)
    loops = loops + 1
    T.check(loops < 1000, "no client seen by hasconnection() within ~10 s")
  end
  return loops
end

-- Accept in a fresh coroutine: it must finish without yielding.
local function accept_without_yield(l, what)
  local co = coroutine.create(function() return l:accept() end)
  local ok, s, err = coroutine.resume(co)
  T.check(ok, "%s: accept raised: %s", what, tostring(s))
  T.eq(coroutine.status(co), "dead", what .. ": accept after hasconnection() must not yield")
  T.check(s, "%s: accept returned %s, %s", what, T.repr(s), T.repr(err))
  return s
end

------------------------------------------------------------------------
-- In a scheduler.
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  T.eq(l:hasconnection(), false, "hasconnection() with no client")
  local sched = Scheduler.new()
  local loops, got, reply
  sched:add(function()
    loops = wait_for_client(l)
    local s = accept_without_yield(l, "scheduler")
    T.eq(l:hasconnection(), false, "hasconnection() after the only client was accepted")
    got = s:recv()
    s:send("welcome")
    s:close()
  end)
  sched:add(function()
    socket.sleep(50)   -- let the loop above go round a few times first
    local c = assert(socket.connect("127.0.0.1", port))
    c:send("hello")
    reply = c:recv()
    c:close()
  end)
  sched:run()
  l:close()
  T.check(loops >= 1, "the hasconnection() loop never slept (client too early?)")
  T.eq(got, "hello", "server received")
  T.eq(reply, "welcome", "client received")
  T.ok("seed loop in a scheduler (%d rounds), accept did not yield", loops)
end

------------------------------------------------------------------------
-- Outside any coroutine, with curl as the visitor.
if not T.have_program("curl") then
  T.note("curl not installed: the outside-coroutine case with curl not run")
else
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  T.eq(l:hasconnection(), false, "hasconnection() with no client (no coroutine)")
  local pid, h = T.spawn("curl -sS --noproxy '*' --max-time 10 http://127.0.0.1:" ..
                         port .. "/ 2>&1", { tool = true })
  local loops = wait_for_client(l)
  local s = l:accept()
  T.check(s, "accept after hasconnection() returned nil")
  local req = s:recv()
  T.check(type(req) == "string" and req:match("^GET / HTTP/1%.1\r\n"),
          "request from curl: %s", T.repr(req))
  s:send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nHello")
  s:close()
  local out = h:read("a")
  local ok, how, code = T.wait_exit(pid, h, 10000)
  T.check(ok, "curl failed (%s %s): %s", tostring(how), tostring(code), out)
  T.eq(out, "Hello", "curl's output")
  l:close()
  T.ok("seed loop outside coroutines with curl (%d rounds)", loops)
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_close_wakes.lua: closing a socket wakes a coroutine waiting on it:
-- a waiting recv returns nil, a send waiting on a full buffer returns nil
-- ("closed"), and closing a listener wakes a waiting accept with nil. All
-- promptly (well under a second), while the peer is still connected, so it
-- is the close and not the peer that ends the wait.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local PROMPT_MS = 1000

-- Run `wait(obj)` in one coroutine and close obj from another after
-- 100 ms. Returns the waiter's results (packed) and the delay between the
-- close and the waiter waking.
local function close_while_waiting(obj, wait)
  local sched = Scheduler.new()
  local res, woke_at, closed_at
  sched:add(function()
    res = table.pack(wait(obj))
    woke_at = T.now_ms()
  end)
  sched:add(function()
    socket.sleep(100)
    T.check(res == nil, "the waiter returned before the close: %s", T.repr(res and res[1]))
    closed_at = T.now_ms()
    obj:close()
  end)
  sched:run()
  T.check(res, "waiter never finished")
  return res, woke_at - closed_at
end

------------------------------------------------------------------------
-- recv
do
  local c, s, l = T.pair(socket)
  local res, delay = close_while_waiting(s, function(x) return x:recv() end)
  T.eq(res[1], nil, "recv woken by close")
  T.check(delay < PROMPT_MS, "recv woke %.0f ms after close", delay)
  T.eq(s:isopen(), false, "isopen() after close")
  T.eq(s:recv(), nil, "recv on the closed socket returns nil at once")
  -- The peer is unaffected until it reads the end of stream.
  T.eq(c:recv(), nil, "the peer sees the end of stream")
  c:close(); l:close()
  T.ok("close wakes a waiting recv with nil (after %.0f ms)", delay)
end

------------------------------------------------------------------------
-- accept
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local res, delay = close_while_waiting(l, function(x) return x:accept() end)
  T.eq(res[1], nil, "accept woken by the listener's close")
  T.check(delay < PROMPT_MS, "accept woke %.0f ms after close", delay)
  T.ok("listener close wakes a waiting accept with nil (after %.0f ms)", delay)
end

------------------------------------------------------------------------
-- send blocked on a full buffer (nobody reads the other side)
do
  local c, s, l = T.pair(socket)
  local big = string.rep("x", T.scale(32, 16) * 1024 * 1024)
  local res, delay = close_while_waiting(c, function(x) return x:send(big) end)
  T.eq(res[1], nil, "send woken by close")
  T.eq(res[2], "closed", "send woken by close: message")
  T.check(delay < PROMPT_MS, "send woke %.0f ms after close", delay)
  s:close(); l:close()
  T.ok("close wakes a send waiting on a full buffer with nil, \"closed\" (after %.0f ms)", delay)
end

------------------------------------------------------------------------
-- Several waiters on different sockets: closing one wakes only that one.
do
  local c1, s1, l1 = T.pair(socket)
  local c2, s2, l2 = T.pair(socket)
  local sched = Scheduler.new()
  local r1, r2
  sched:add(function() r1 = table.pack(s1:recv()) end)
  sched:add(function() r2 = table.pack(s2:recv()) end)
  sched:add(function()
    socket.sleep(100)
    s1:close()
    socket.sleep(100)
    T.check(r1 and r1[1] == nil, "closed socket's waiter not woken with nil")
    T.check(r2 == nil, "the other socket's waiter woke too: %s", T.repr(r2 and r2[1]))
    c2:send("still here")
  end)
  sched:run()
  T.eq(r2[1], "still here", "the other socket kept working")
  c1:close(); c2:close(); s2:close(); l1:close(); l2:close()
  T.ok("closing one socket wakes only its own waiter")
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_timeout.lua: s:settimeout(0.1) then a recv with nothing to read returns
-- nil, "timeout" (errno name "ETIMEDOUT") after about 0.1 s, and the socket
-- still works afterwards; settimeout(nil) removes the limit; a send that
-- cannot complete times out too. Outside coroutines (blocking) and inside a
-- scheduler (yielding).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function check_timeout(r, elapsed, what, limit_ms)
  T.eq(r[1], nil, what .. ": first value")
  T.eq(r[2], "timeout", what .. ": message")
  T.eq(r[3], "ETIMEDOUT", what .. ": errno name")
  T.check(elapsed >= limit_ms - 2 * T.CLOCK_RES_MS,
          "%s: returned after %.0f ms, before the %d ms limit", what, elapsed, limit_ms)
  T.check(elapsed < limit_ms + 2000, "%s: returned after %.0f ms, limit %d ms",
          what, elapsed, limit_ms)
end

------------------------------------------------------------------------
-- Outside coroutines.
do
  local c, s, l = T.pair(socket)
  c:settimeout(0.1)
  local t0 = T.now_ms()
  local r = table.pack(c:recv())
  check_timeout(r, T.now_ms() - t0, "blocking recv with settimeout(0.1)", 100)
  T.eq(c:isopen(), true, "isopen() after a recv timeout")
  -- Still usable, both ways.
  T.eq(s:send("after"), true, "peer sends after the timeout")
  T.eq(c:recv(), "after", "recv after a timeout")
  T.eq(c:send("back"), true, "send after a timeout")
  T.eq(s:recv(), "back", "peer receives after the timeout")
  -- Repeatable.
  t0 = T.now_ms()
  r = table.pack(c:recv())
  check_timeout(r, T.now_ms() - t0, "second blocking recv timeout", 100)
  c:close(); s:close(); l:close()
  T.ok("blocking recv times out, socket usable afterwards")
end

------------------------------------------------------------------------
-- In a scheduler: the timeout yields (another coroutine runs meanwhile).
do
  local c, s, l = T.pair(socket)
  local sched = Scheduler.new()
  local r, elapsed, ticks = nil, nil, 0
  sched:add(function()
    c:settimeout(0.1)
    local t0 = T.now_ms()
    r = table.pack(c:recv())
    elapsed = T.now_ms() - t0
    c:settimeout(5)             -- the data comes later than 0.1 s from now
    T.eq(c:recv(), "later", "recv after the timeout in a coroutine")
  end)
  sched:add(function()
    for _ = 1, 5 do socket.sleep(10); ticks = ticks + 1 end
    socket.sleep(200)
    s:send("later")
  end)
  sched:run()
  check_timeout(r, elapsed, "recv with settimeout(0.1) in a coroutine", 100)
  T.check(ticks == 5, "another coroutine should run during the timed recv")
  c:close(); s:close(); l:close()
  T.ok("recv timeout in a scheduler yields; socket usable afterwards")
end

------------------------------------------------------------------------
-- settimeout(nil): no limit again. The data arrives after 300 ms, well
-- past the old 0.1 s limit.
do
  local c, s, l = T.pair(socket)
  local sched = Scheduler.new()
  local got
  sched:add(function()
    c:settimeout(0.1)
    c:settimeout(nil)
    got = table.pack(c:recv())
  end)
  sched:add(function()
    socket.sleep(300)
    s:send("late")
  end)
  sched:run()
  T.eq(got[1], "late", "recv after settimeout(nil)")
  c:close(); s:close(); l:close()
  T.ok("settimeout(nil) removes the limit")
end

------------------------------------------------------------------------
-- A send that cannot finish (nobody reads) times out.
do
  local c, s, l = T.pair(socket)
  c:settimeout(0.2)
  local big = string.rep("y", T.scale(32, 16) * 1024 * 1024)
  local t0 = T.now_ms()
  local r = table.pack(c:send(big))
  check_timeout(r, T.now_ms() - t0, "blocking send to a reader that does not read", 200)
  c:close(); s:close(); l:close()
  T.ok("send times out")
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_recv_retry.lua: a receive that misses inside a coroutine first yields
-- plainly and tries again after the other coroutines had their turn; it
-- hands off to a worker when a round passes without any receive
-- delivering data, or after a bounded number of rounds.  Data that
-- arrives meanwhile is taken without a worker.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

T.watchdog(60)

local function wait_jobs() return socket.stats().wait.completed end

-- Resume co; returns its wait state afterwards ("dead" if it ended).
local function step(co)
  local ok, err = coroutine.resume(co)
  T.check(ok, "resume: %s", tostring(err))
  if coroutine.status(co) == "dead" then return "dead" end
  local w = socket._waitstate(co)
  return w == nil and "plain" or (w == true and "waiting" or "sleeping")
end

------------------------------------------------------------------------
-- Nothing else going on: one plain yield, then a real wait.
do
  local c, s, l = T.pair(socket)
  local got
  local co = coroutine.create(function() got = s:recv() end)
  T.eq(step(co), "plain", "first miss yields plainly")
  T.eq(step(co), "waiting", "a retry with no progress elsewhere hands off")
  local before = wait_jobs()
  assert(c:send("hello"))
  local ready = T.wait_until(function()
    local r = socket._poll(0)
    return r[co] and r
  end, 5000, "the receive job's completion")
  T.check(ready[co], "coroutine reported ready")
  T.eq(step(co), "dead", "resumed after the job finished")
  T.eq(got, "hello", "bytes received through the worker")
  T.check(wait_jobs() > before, "a wait-lane job completed")
  c:close(); s:close(); l:close()
  T.ok("an idle receive yields once plainly, then waits on a worker")
end

------------------------------------------------------------------------
-- Data that arrives between the miss and the retry: no worker at all.
do
  local c, s, l = T.pair(socket)
  local got
  local before = wait_jobs()
  local co = coroutine.create(function() got = s:recv() end)
  T.eq(step(co), "plain", "first miss yields plainly")
  assert(c:send("early"))  -- loopback queues it before send returns
  T.eq(step(co), "dead", "the retry found the data")
  T.eq(got, "early", "bytes taken by the retry")
  T.eq(wait_jobs(), before, "wait-lane jobs completed meanwhile")
  c:close(); s:close(); l:close()
  T.ok("data arriving before the retry is taken on the Lua thread")
end

------------------------------------------------------------------------
-- While another connection keeps delivering, an idle receive still hands
-- off after a bounded number of rounds (no spinning).
do
  local c1, s1, l1 = T.pair(socket)   -- busy
  local c2, s2, l2 = T.pair(socket)   -- idle
  local idle = coroutine.create(function() return s2:recv() end)
  local rounds, state = 0, step(idle)
  T.eq(state, "plain", "idle receive: first miss")
  while state == "plain" and rounds < 100 do
    assert(c1:send("x"))
    T.eq(s1:recv(), "x", "busy connection")    -- progress this round
    rounds = rounds + 1
    state = step(idle)
  end
  T.eq(state, "waiting", "idle receive after " .. rounds .. " busy rounds")
  T.check(rounds <= 10, "idle receive retried %d rounds (bound: 8)", rounds)
  c2:close()
  T.wait_until(function() return socket._poll(0)[idle] end, 5000,
               "the idle receive woken by close")
  T.eq(step(idle), "dead", "idle receive ended by close")
  c1:close(); s1:close(); l1:close(); s2:close(); l2:close()
  T.ok("an idle receive next to a busy one handed off after %d rounds", rounds)
end

------------------------------------------------------------------------
-- Many echo pairs in one scheduler: most receives are served by the
-- retry, not by a worker.
do
  local sched = Scheduler.new()
  local pairs_n, rounds = 20, T.scale(200, 50)
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local done = 0
  sched:add(function()
    for _ = 1, pairs_n do
      local s = assert(l:accept())
      sched:add(function()
        while true do
          local d = s:recv()
          if not d or not s:send(d) then break end
        end
        s:close()
      end)
    end
  end)
  local before = wait_jobs()
  for _ = 1, pairs_n do
    sched:add(function()
      local c = assert(socket.connect("127.0.0.1", port))
      for _ = 1, rounds do
        assert(c:send("ping"))
        T.eq(T.recv_n(c, 4, "echo"), "ping", "echo")
      end
      c:close()
      done = done + 1
    end)
  end
  sched:run()
  l:close()
  T.eq(done, pairs_n, "clients finished")
  local jobs, trips = wait_jobs() - before, pairs_n * rounds
  T.check(jobs < trips / 2, "%d wait-lane jobs for %d round trips", jobs, trips)
  T.ok("%d round trips over %d pairs used %d wait-lane jobs", trips, pairs_n, jobs)
end

T.done()

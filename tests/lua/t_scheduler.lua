-- SPDX-License-Identifier: MIT
-- t_scheduler.lua: pluto.scheduler semantics (SPEC §6) and the
-- multitasking rule (SPEC §2): add/addloop/contains/remove/run, errorfunc,
-- errors raised out of run() with their traceback, yieldfunc, the
-- Scheduler() call form, sleep ordering, and a naive busy-polling
-- scheduler (a plain loop of coroutine.resume) driving socket calls.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

------------------------------------------------------------------------
-- Construction: Scheduler.new() and Scheduler().
do
  local a = Scheduler.new()
  local b = Scheduler()
  for what, s in pairs { ["Scheduler.new()"] = a, ["Scheduler()"] = b } do
    T.check(type(s) == "table" or type(s) == "userdata", "%s gave %s", what, T.repr(s))
    T.eq(type(s.add), "function", what .. ".add")
    T.eq(type(s.run), "function", what .. ".run")
  end
  T.check(a ~= b, "two schedulers should be distinct")
  local ran = false
  b:add(function() ran = true end)
  b:run()
  T.check(ran, "Scheduler() instance did not run its coroutine")
  T.ok("Scheduler.new() and Scheduler() both make schedulers")
end

------------------------------------------------------------------------
-- add: returns the coroutine, resumes it once at once, keeps it until it
-- finishes; add(thread) works too; contains reflects that.
do
  local sched = Scheduler.new()
  local trace = {}
  local co = sched:add(function()
    trace[#trace + 1] = "start"
    coroutine.yield()
    trace[#trace + 1] = "after yield"
  end)
  T.eq(type(co), "thread", "add() return value type")
  T.eq(#trace, 1, "add() resumes the coroutine once at once")
  T.eq(trace[1], "start", "first step ran")
  T.eq(sched:contains(co), true, "contains() of a waiting coroutine")

  local th = coroutine.create(function()
    trace[#trace + 1] = "thread start"
    coroutine.yield()
    trace[#trace + 1] = "thread end"
  end)
  local back = sched:add(th)
  T.eq(back, th, "add(thread) returns that thread")
  T.eq(trace[2], "thread start", "add(thread) resumes it at once")
  T.eq(sched:contains(th), true, "contains() of an added thread")
  T.eq(sched:contains(coroutine.create(function() end)), false, "contains() of a stranger")

  sched:run()
  T.eq(table.concat(trace, ","), "start,thread start,after yield,thread end", "trace")
  T.eq(sched:contains(co), false, "contains() after the coroutine finished")
  T.eq(sched:contains(th), false, "contains() after the thread finished")
  T.ok("add resumes at once, returns the coroutine; contains")
end

------------------------------------------------------------------------
-- A coroutine may add others while run() runs.
do
  local sched = Scheduler.new()
  local order = {}
  sched:add(function()
    coroutine.yield()
    sched:add(function()
      order[#order + 1] = "child"
      socket.sleep(10)
      order[#order + 1] = "child done"
    end)
    order[#order + 1] = "parent done"
  end)
  sched:run()
  T.eq(table.concat(order, ","), "child,parent done,child done", "nested add")
  T.ok("add from inside a running coroutine")
end

------------------------------------------------------------------------
-- addloop: f called until it returns false, yielding between calls.
do
  local sched = Scheduler.new()
  local trace = {}
  local a, b = 0, 0
  sched:addloop(function()
    a = a + 1; trace[#trace + 1] = "A" .. a
    return a < 5
  end)
  sched:addloop(function()
    b = b + 1; trace[#trace + 1] = "B" .. b
    return b < 3
  end)
  sched:run()
  T.eq(a, 5, "addloop calls until false (A)")
  T.eq(b, 3, "addloop calls until false (B)")
  local s = table.concat(trace, " ")
  local ia5, ib1 = s:find("A5", 1, true), s:find("B1", 1, true)
  T.check(ib1 < ia5, "addloop should yield between calls (B ran only after A finished): %s", s)
  T.ok("addloop: %s", s)
end

------------------------------------------------------------------------
-- remove: the scheduler stops resuming the coroutine, and run() returns
-- even though it never finished (here: one yielding forever, one waiting in
-- recv on a connection nobody writes to).
do
  local sched = Scheduler.new()
  local spins = 0
  local spinner = sched:add(function()
    for _ = 1, 10000000 do spins = spins + 1; coroutine.yield() end
  end)
  local c, s, l = T.pair(socket)
  local waiter = sched:add(function() s:recv() end)
  local spins_at_removal
  sched:add(function()
    for _ = 1, 5 do coroutine.yield() end
    sched:remove(spinner)
    sched:remove(waiter)
    spins_at_removal = spins
    T.eq(sched:contains(spinner), false, "contains() after remove")
    T.eq(sched:contains(waiter), false, "contains() after remove (waiter)")
    for _ = 1, 5 do coroutine.yield() end
  end)
  sched:run()
  T.check(spins_at_removal and spins_at_removal >= 3, "spinner should have run a few rounds: %s",
          tostring(spins_at_removal))
  T.eq(spins, spins_at_removal, "spins after remove")
  T.eq(coroutine.status(spinner), "suspended", "removed coroutine left suspended")
  c:close(); s:close(); l:close()
  T.ok("remove stops resuming; run returns")
end

------------------------------------------------------------------------
-- An error in a coroutine is raised out of run(), with its traceback.
local function failing_function()
  error("boom in coroutine")
end

do
  local sched = Scheduler.new()
  local sibling_ok = false
  sched:add(function()
    socket.sleep(10)
    failing_function()
  end)
  local ok, err = pcall(sched.run, sched)
  T.check(not ok, "run() should raise the coroutine's error")
  err = tostring(err)
  T.has(err, "boom in coroutine", "error raised out of run()")
  T.has(err, "traceback", "error raised out of run() carries a traceback")
  T.has(err, "failing_function", "the traceback names the failing function")
  T.ok("error raised out of run() with traceback")
end

------------------------------------------------------------------------
-- errorfunc: called with the error; run() does not raise; the others go on.
do
  local sched = Scheduler.new()
  local caught = {}
  sched.errorfunc = function(e) caught[#caught + 1] = tostring(e) end
  local sibling = false
  sched:add(function()
    socket.sleep(10)
    error("handled boom")
  end)
  sched:add(function()
    socket.sleep(50)
    sibling = true
  end)
  local ok, err = pcall(sched.run, sched)
  T.check(ok, "run() raised although errorfunc is set: %s", tostring(err))
  T.eq(#caught, 1, "errorfunc calls")
  T.has(caught[1], "handled boom", "errorfunc's argument")
  T.check(sibling, "the other coroutine should still finish")
  T.ok("errorfunc gets the error, others continue")
end

------------------------------------------------------------------------
-- yieldfunc: called between rounds while set.
do
  local sched = Scheduler.new()
  local calls = 0
  sched.yieldfunc = function() calls = calls + 1 end
  local steps = 0
  sched:add(function()
    for _ = 1, 5 do coroutine.yield(); steps = steps + 1 end
    socket.sleep(30)
    steps = steps + 1
  end)
  sched:run()
  T.eq(steps, 6, "coroutine steps with yieldfunc set")
  T.check(calls >= 5, "yieldfunc should be called between rounds (called %d times)", calls)
  T.ok("yieldfunc called between rounds (%d calls)", calls)
end

------------------------------------------------------------------------
-- sleep: wakes in deadline order; sleeps overlap (total ~150 ms, not 300).
do
  local sched = Scheduler.new()
  local order = {}
  local t0 = T.now_ms()
  for _, ms in ipairs { 150, 50, 100, 0 } do
    sched:add(function()
      socket.sleep(ms)
      order[#order + 1] = ms
    end)
  end
  sched:run()
  local elapsed = T.now_ms() - t0
  T.eq(table.concat(order, ","), "0,50,100,150", "wake-up order")
  T.check(elapsed >= 150 - 2 * T.CLOCK_RES_MS, "sleeps ended too early: %.0f ms", elapsed)
  T.check(elapsed < 1000, "sleeps should overlap: took %.0f ms", elapsed)
  T.ok("sleep order and overlap (%.0f ms)", elapsed)
end

------------------------------------------------------------------------
-- Outside any coroutine, sleep blocks for about the time asked.
do
  local t0 = T.now_ms()
  socket.sleep(100)
  local elapsed = T.now_ms() - t0
  T.check(elapsed >= 100 - 2 * T.CLOCK_RES_MS and elapsed < 2000,
          "socket.sleep(100) outside coroutines took %.0f ms", elapsed)
  T.ok("sleep outside coroutines blocks (%.0f ms)", elapsed)
end

------------------------------------------------------------------------
-- A naive busy-polling scheduler (SPEC §2): resume every suspended
-- coroutine over and over. Socket calls yield no values and complete.
do
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local results = {}
  local cos = {
    coroutine.create(function()
      local s = assert(l:accept())
      local d = s:recv()
      s:send("echo:" .. d)
      results.server = d
      s:close()
    end),
    coroutine.create(function()
      local c = assert(socket.connect("127.0.0.1", port))
      c:send("hi")
      results.client = c:recv()
      c:close()
    end),
    coroutine.create(function()
      socket.sleep(50)
      results.slept = true
    end),
    coroutine.create(function()
      results.resolved = socket.resolve and socket.resolve("localhost") or { "n/a" }
    end),
  }
  local t0 = T.now_ms()
  local rounds = 0
  local alive = #cos
  while alive > 0 do
    rounds = rounds + 1
    T.check(rounds < 10000000 and T.now_ms() - t0 < 10000,
            "busy-polling scheduler: not done after %d rounds", rounds)
    alive = 0
    for _, co in ipairs(cos) do
      if coroutine.status(co) == "suspended" then
        local r = table.pack(coroutine.resume(co))
        T.check(r[1], "coroutine failed under the naive scheduler: %s", tostring(r[2]))
        if coroutine.status(co) == "suspended" then
          T.eq(r.n, 1, "a socket call should yield no values (values yielded)")
          alive = alive + 1
        end
      end
    end
  end
  l:close()
  T.eq(results.server, "hi", "naive scheduler: server received")
  T.eq(results.client, "echo:hi", "naive scheduler: client received")
  T.eq(results.slept, true, "naive scheduler: sleep finished")
  T.check(type(results.resolved) == "table" and #results.resolved >= 1,
          "naive scheduler: resolve gave %s", T.repr(results.resolved))
  T.ok("a busy-polling scheduler drives socket calls to completion (%d rounds)", rounds)
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_nan_and_infinity.lua: numbers that become a time or a count (SPEC §2):
-- NaN is a caller's error everywhere; infinity is an error where no
-- meaning is documented and "no limit" where one is. socket._poll(0/0)
-- used to block forever (NaN became INT_MIN, an endless poll).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local NAN, INF = 0 / 0, math.huge

local function raises(needle, what, fn)
  local ok, err = pcall(fn)
  T.check(not ok, "%s: expected an error, but it returned", what)
  T.has(tostring(err), needle, what)
end

local t0 = T.now_ms()
raises("bad argument #1 to '_poll'", "_poll(NaN)", function() socket._poll(NAN) end)
T.check(T.now_ms() - t0 < 1000, "_poll(NaN) took %.0f ms to raise", T.now_ms() - t0)
raises("bad argument #1 to 'sleep'", "sleep(NaN)", function() socket.sleep(NAN) end)
raises("bad argument #1 to 'sleep'", "sleep(inf)", function() socket.sleep(INF) end)
raises("bad argument #1 to 'sleep'", "sleep(-inf)", function() socket.sleep(-INF) end)
do
  local co = coroutine.create(function() socket.sleep(NAN) end)
  local ok, err = coroutine.resume(co)
  T.check(not ok and tostring(err):find("bad argument #1 to 'sleep'", 1, true),
          "sleep(NaN) in a coroutine: %s", tostring(err))
end
for _, f in ipairs({ "idle_ms", "spin_us", "wait_threads", "cpu_threads", "dns_stack" }) do
  raises("bad argument #1 to 'config'", "config{" .. f .. " = NaN}",
         function() socket.config{ [f] = NAN } end)
  raises("bad argument #1 to 'config'", "config{" .. f .. " = inf}",
         function() socket.config{ [f] = INF } end)
end
T.ok("_poll, sleep and config refuse NaN and infinities, naming the argument")

-- settimeout: NaN and negative values raise; math.huge means no limit.
local c, s, l = T.pair(socket)
raises("bad argument #1 to 'settimeout'", "settimeout(NaN)", function() c:settimeout(NAN) end)
raises("bad argument #1 to 'settimeout'", "settimeout(-inf)", function() c:settimeout(-INF) end)
raises("bad argument #1 to 'settimeout'", "settimeout(-1)", function() c:settimeout(-1) end)
c:settimeout(INF)
local sched = Scheduler.new()
local got
sched:add(function() got = table.pack(c:recv()) end)
sched:add(function() socket.sleep(200); s:send("late") end)
sched:run()
T.eq(got[1], "late", "recv with settimeout(math.huge) waits as without a limit")
-- An infinite timeout on _poll is "forever", as no timeout: a completion
-- ends it.
sched = Scheduler.new()
local polled
sched:add(function() socket.sleep(50); s:send("x") end)
sched:add(function() polled = c:recv() end)
sched:run()
T.eq(polled, "x", "a scheduler round after the infinite settimeout")
c:close(); s:close(); l:close()
T.ok("settimeout: NaN and negatives raise, math.huge is no limit")
T.done()

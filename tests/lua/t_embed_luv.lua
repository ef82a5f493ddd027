-- SPDX-License-Identifier: MIT
-- t_embed_luv.lua: pluto.scheduler driven from a luv (libuv) loop without
-- busy-waiting (SPEC §8, embedding): a uv poll handle watches
-- sched:pollfd(), a uv timer waits sched:timeout(), and each wakes the
-- scheduler with sched:step(0). Over about one second of mostly idle work
-- (h_embed_work.lua) the uv loop runs a handful of times, not thousands.
local T = require "testlib"
local ok, uv = pcall(require, "luv")
if not ok then T.skip("luv (Debian's lua-luv) is not installed") end
local Scheduler = require "pluto.scheduler"
local W = require "h_embed_work"

local sched = Scheduler.new()
W.start(sched)
local poll = uv.new_poll(sched:pollfd())
local timer = uv.new_timer()
local iterations = 0
local check = uv.new_check()
check:start(function() iterations = iterations + 1 end)

local function pump()
  if not sched:step(0) then
    poll:stop(); timer:stop(); check:stop()
    return
  end
  timer:stop()
  local t = sched:timeout()
  if t then timer:start(math.ceil(t * 1000), 0, pump) end
end
poll:start("r", pump)
pump()
local t0 = T.now_ms()
uv.run()
local ms = T.now_ms() - t0
poll:close(); timer:close(); check:close()
uv.run()
W.check("luv", iterations, ms)
T.ok("a luv loop drove the scheduler: %d loop iterations over %.0f ms", iterations, ms)
T.done()

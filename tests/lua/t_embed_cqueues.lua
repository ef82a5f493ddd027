-- SPDX-License-Identifier: MIT
-- t_embed_cqueues.lua: pluto.scheduler driven from a cqueues controller
-- without busy-waiting (SPEC §8, embedding). The scheduler follows
-- cqueues' polling protocol (pollfd, events, timeout), so a cqueues
-- coroutine can wait on it with cqueues.poll(sched) and then call
-- sched:step(0). Over about one second of mostly idle work
-- (h_embed_work.lua) that loop turns a handful of times, not thousands.
local T = require "testlib"
local ok, cqueues = pcall(require, "cqueues")
if not ok then T.skip("cqueues (Debian's lua-cqueues) is not installed") end
local Scheduler = require "pluto.scheduler"
local W = require "h_embed_work"

local sched = Scheduler.new()
W.start(sched)
local cq = cqueues.new()
local iterations = 0
cq:wrap(function()
  while sched:step(0) do
    iterations = iterations + 1
    cqueues.poll(sched)
  end
end)
local t0 = T.now_ms()
local done, err = cq:loop()
T.check(done, "cqueues loop: %s", tostring(err))
local ms = T.now_ms() - t0
W.check("cqueues", iterations, ms)
T.ok("a cqueues controller drove the scheduler: %d turns over %.0f ms", iterations, ms)
T.done()

-- SPDX-License-Identifier: MIT
-- t_torture_sched.lua: allocation-failure torture (tests/torture.c) of
-- pluto.scheduler itself (h_torture_sched.lua): echo pairs, sleepers,
-- yielders and lookups under one scheduler; after a memory error out of
-- run() the streams are closed and run() called again, which must resume
-- every coroutine still alive until it ends (none lost, no hang); with
-- sched.errorfunc set, every coroutine that died of an error must have
-- been reported to it. A single failure at N ("once": where Lua cannot
-- collect and retry, the error is raised) and bursts of failures, for
-- about 250 Ns each.
local T = require "testlib"
local D = require "torture_driver"

D.need_host()
T.watchdog(T.scale(600, 900))
for _, variant in ipairs({ "raise", "errorfunc" }) do
  for _, m in ipairs({ "once", "burst" }) do
    D.run("h_torture_sched", { variant }, { mode = m, runs = 250 })
  end
end
D.finish()

-- SPDX-License-Identifier: MIT
-- t_torture_dns.lua: allocation-failure torture (tests/torture.c) of name
-- lookups (h_torture_dns.lua: resolve "localhost" and IP literals, connect
-- by name), outside coroutines and under pluto.scheduler with many lookups
-- in flight at once: memory exhausted from N on, and a burst of failures
-- from N, for about 250 Ns spread over the run. Each run must end in
-- success or "not enough memory", with no descriptor left open (the
-- completion eventfd included), no crash, no hang.
local T = require "testlib"
local D = require "torture_driver"

D.need_host()
T.watchdog(T.scale(600, 900))
for _, mode in ipairs({ "plain", "sched" }) do
  for _, m in ipairs({ "from", "burst" }) do
    D.run("h_torture_dns", { mode }, { mode = m, runs = 250 })
  end
end
D.finish()

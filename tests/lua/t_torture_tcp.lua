-- SPDX-License-Identifier: MIT
-- t_torture_tcp.lua: allocation-failure torture (tests/torture.c) of a
-- TCP conversation (h_torture_tcp.lua: listen, connect, accept, peek,
-- unrecv, send/recv with every byte checked, shutdown, close), outside
-- coroutines and under pluto.scheduler, at EVERY allocation N: memory
-- exhausted from N on ("from"), and a burst of 10 failures from N, after
-- which memory is back and the script goes on (a recv that raised is
-- retried: no byte may be lost). Each run must end in success or
-- "not enough memory", with no descriptor left open, no crash, no hang;
-- LeakSanitizer checks memory in the ASan build.
local T = require "testlib"
local D = require "torture_driver"

D.need_host()
T.watchdog(T.scale(600, 900))
for _, mode in ipairs({ "plain", "sched" }) do
  D.run("h_torture_tcp", { mode }, { mode = "from" })
  D.run("h_torture_tcp", { mode }, { mode = "burst" })
end
D.finish()

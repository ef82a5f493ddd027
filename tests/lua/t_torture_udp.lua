-- SPDX-License-Identifier: MIT
-- t_torture_udp.lua: allocation-failure torture (tests/torture.c) of UDP
-- (h_torture_udp.lua: udpserver, connect "udp", datagrams of several
-- sizes checked byte by byte, peek, unrecv, setpeer), outside coroutines
-- and under pluto.scheduler: memory exhausted from N on, and a burst of
-- failures from N, for about 250 Ns spread over the run. A recv that
-- raised is retried: no datagram may be lost. Each run must end in
-- success or "not enough memory", with no descriptor left open, no crash,
-- no hang.
local T = require "testlib"
local D = require "torture_driver"

D.need_host()
T.watchdog(T.scale(600, 900))
for _, mode in ipairs({ "plain", "sched" }) do
  for _, m in ipairs({ "from", "burst" }) do
    D.run("h_torture_udp", { mode }, { mode = m, runs = 250 })
  end
end
D.finish()

-- SPDX-License-Identifier: MIT
-- t_torture_gc.lua: the allocation-failure torture (tests/torture.c) in
-- "once" mode: for every N, only the Nth allocation fails, so Lua runs an
-- emergency full collection there and retries it (where it can; where it
-- cannot, the error is raised). This puts a full garbage collection at
-- every allocation of the TCP, TLS, DNS and UDP scripts, each outside
-- coroutines and under pluto.scheduler: every run must still succeed (or
-- end in "not enough memory"), without leaking a descriptor, and with
-- every byte checked. The scheduler's own script is in t_torture_sched.
local T = require "testlib"
local D = require "torture_driver"
local C = require "tlscerts"

D.need_host()
T.watchdog(T.scale(600, 900))
local pki
if C.have("certtool") then
  pki = C.make()
else
  T.note("certtool is not installed: the TLS script is left out")
end

for _, mode in ipairs({ "plain", "sched" }) do
  D.run("h_torture_tcp", { mode }, { mode = "once" })
  if pki then
    D.run("h_torture_tls", { mode, pki.cafile, pki.ecdsa.certfile, pki.ecdsa.keyfile },
          { mode = "once" })
  end
  D.run("h_torture_dns", { mode }, { mode = "once" })
  D.run("h_torture_udp", { mode }, { mode = "once" })
end
if pki then pki:cleanup() end
D.finish()

-- SPDX-License-Identifier: MIT
-- t_torture_tls.lua: allocation-failure torture (tests/torture.c) of a
-- TLS conversation (h_torture_tls.lua: both handshakes, the client
-- verifying against the test CA, data checked by position both ways,
-- close_notify, close), outside coroutines and under pluto.scheduler:
-- memory exhausted from N on, and a burst of failures from N, for about
-- 250 Ns spread over the run (a stride). Each run must end in success or
-- "not enough memory", with no descriptor left open, no crash, no hang.
local T = require "testlib"
local D = require "torture_driver"
local C = require "tlscerts"

D.need_host()
T.watchdog(T.scale(600, 900))
local pki = C.make()
for _, mode in ipairs({ "plain", "sched" }) do
  for _, m in ipairs({ "from", "burst" }) do
    D.run("h_torture_tls", { mode, pki.cafile, pki.ecdsa.certfile, pki.ecdsa.keyfile },
          { mode = m, runs = 250 })
  end
end
pki:cleanup()
D.finish()

-- SPDX-License-Identifier: MIT
-- t_idle_cpu.lua: while every coroutine waits (a recv on a connection
-- nobody writes to, and a 5 s sleep that then closes that socket), run()
-- sleeps in the kernel: the process uses little CPU over those 5 s.
-- os.clock() is the process's CPU time (all threads).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local WAIT_MS = 5000
local MAX_CPU = T.scale(0.2, 0.5)     -- seconds; sanitizer runtimes add some

local c, s, l = T.pair(socket)
local sched = Scheduler.new()
local got = "not yet"
sched:add(function()
  got = s:recv()                       -- nobody writes: waits until the close
end)
sched:add(function()
  socket.sleep(WAIT_MS)
  s:close()
end)

local cpu0, wall0 = os.clock(), T.now_ms()
sched:run()
local cpu, wall = os.clock() - cpu0, T.now_ms() - wall0

T.eq(got, nil, "recv woken by the close")
T.check(wall >= WAIT_MS - 2 * T.CLOCK_RES_MS, "run() returned after %.0f ms, before the %d ms sleep",
        wall, WAIT_MS)
T.check(cpu < MAX_CPU, "run() used %.3f s of CPU while idle for %.1f s (limit %.2f s)",
        cpu, wall / 1000, MAX_CPU)
c:close(); l:close()
T.ok("idle %.1f s used %.3f s CPU", wall / 1000, cpu)
T.done()

-- SPDX-License-Identifier: MIT
-- h_errorfunc_oom.lua: child helper of t_scheduler_after_error, run with
-- a limited address space. Two coroutines fail with a memory error and
-- one with a plain error under a scheduler with errorfunc set; prints
-- "seen N memory M" (errorfunc's calls, and how many said "not enough
-- memory"), or "skip" if a 1 GiB string could be made after all.
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function out_of_memory() return string.rep("x", 1 << 30) end
if pcall(out_of_memory) then
  print("skip")
  os.exit(0)
end
local sched = Scheduler.new()
local seen, mem = 0, 0
sched.errorfunc = function(msg)
  seen = seen + 1
  if tostring(msg):find("not enough memory", 1, true) then mem = mem + 1 end
end
sched:add(function() socket.sleep(10); out_of_memory() end)
sched:add(function() socket.sleep(10); out_of_memory() end)
sched:add(function() socket.sleep(10); error("plain error") end)
sched:run()
print(string.format("seen %d memory %d", seen, mem))

-- SPDX-License-Identifier: MIT
-- t_scheduler_after_error.lua: an error raised out of run() loses nothing
-- (SPEC §6): the coroutines of the same round that had not run yet, and
-- its expired timers, are resumed by the next run(), which can be called
-- again; and errorfunc sees every coroutine's failure, memory errors
-- included (xpcall does not call its handler for LUA_ERRMEM, so two
-- coroutines failing that way used to reach errorfunc once).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Three coroutines wake from the same sleep in one round; the second
-- fails. run() raises; run() again resumes the other two.
do
  local sched = Scheduler.new()
  local done = {}
  for i = 1, 3 do
    sched:add(function()
      socket.sleep(30)
      if i == 2 then error("second fails") end
      done[#done + 1] = i
    end)
  end
  -- and one that waits on a socket operation finishing in that round
  local c, s, l = T.pair(socket)
  sched:add(function() local d = c:recv(); done[#done + 1] = d end)
  sched:add(function() socket.sleep(30); s:send("op") end)
  local ok, err = pcall(sched.run, sched)
  T.check(not ok and tostring(err):find("second fails", 1, true),
          "run() should raise the coroutine's error, got %s %s", tostring(ok), tostring(err))
  local t0 = T.now_ms()
  ok, err = pcall(sched.run, sched)
  T.check(ok, "run() again: %s", tostring(err))
  T.check(T.now_ms() - t0 < 2000, "run() again took %.0f ms", T.now_ms() - t0)
  table.sort(done, function(a, b) return tostring(a) < tostring(b) end)
  T.eq(#done, 3, "coroutines that finished (" .. table.concat(done, ",") .. ")")
  c:close(); s:close(); l:close()
  T.ok("an error out of run() loses no coroutine of its round; run() goes on")
end

-- errorfunc is called for each failing coroutine, memory errors too: in a
-- child process whose address space is limited (ulimit -v), so that a
-- 1 GiB string cannot be allocated (h_errorfunc_oom.lua). Not under a
-- sanitizer, whose runtime needs the address space.
if os.getenv("PLUTO_TEST_SANITIZER") ~= "" and os.getenv("PLUTO_TEST_SANITIZER") then
  T.note("errorfunc with memory errors: not run under a sanitizer (ulimit -v)")
else
  local pid, h = T.spawn("sh -c " .. T.q("ulimit -v 1000000 && exec " .. T.lua_cmd("h_errorfunc_oom")))
  local line = h:read("l")
  T.wait_exit(pid, h, 10000)
  if line == "skip" then
    T.note("errorfunc with memory errors: the limited child could allocate 1 GiB")
  else
    T.eq(line, "seen 3 memory 2", "the child's errorfunc calls")
    T.ok("errorfunc saw all 3 failures, the 2 memory errors included")
  end
end
T.done()

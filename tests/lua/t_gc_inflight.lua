-- SPDX-License-Identifier: MIT
-- t_gc_inflight.lua: sockets and listeners collected by the GC while an
-- operation is in flight (a recv, an accept, a send on a full buffer, in
-- abandoned coroutines, all parked: no thread each) cause no crash, no
-- leak (descriptors, parked jobs) and no hang; and a
-- lua_State closed with operations in flight exits promptly and cleanly
-- (child processes running h_exit_inflight.lua, exit status 0).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Let completions be delivered (a scheduler round) and collect.
local function settle()
  collectgarbage("collect")
  collectgarbage("collect")
  local sched = Scheduler.new()
  sched:add(function() socket.sleep(20) end)
  sched:run()
end

-- Start `fn` in a coroutine, check that it is waiting (yielded), abandon it.
local function abandon(fn, what)
  local co = coroutine.create(fn)
  local ok, err = coroutine.resume(co)
  T.check(ok, "%s: %s", what, tostring(err))
  T.eq(coroutine.status(co), "suspended", what .. ": should be waiting")
end

------------------------------------------------------------------------
-- In this process.
do
  local ROUNDS = T.scale(50, 10)
  -- Each round leaves up to 10 descriptors for the GC (three pairs and
  -- two listeners); the collections may come only at the end.
  T.need_fds(10 * ROUNDS + 64, ("%d rounds of sockets left to the GC"):format(ROUNDS))
  settle()
  local base = T.fd_count()
  local parked0 = socket.stats().wait.parked
  local keep_peers = {}          -- peers stay open, so only the GC ends the waits
  for _ = 1, ROUNDS do
    do
      local c, s, l = T.pair(socket)
      abandon(function() s:recv() end, "recv in flight")
      keep_peers[#keep_peers + 1] = c
      l:close()
    end
    do
      local l = assert(socket.listen("127.0.0.1:0"))
      abandon(function() l:accept() end, "accept in flight")
    end
    do
      local c, s, l = T.pair(socket)
      local big = string.rep("b", 4 * 1024 * 1024)
      abandon(function() c:send(big) end, "send in flight")
      keep_peers[#keep_peers + 1] = s   -- never reads
      l:close()
    end
    do
      -- Also inside a scheduler that stops tracking the coroutine.
      local c, s, l = T.pair(socket)
      local sched = Scheduler.new()
      local co = sched:add(function() s:recv() end)
      sched:remove(co)
      sched:run()
      keep_peers[#keep_peers + 1] = c
      l:close()
    end
    collectgarbage("collect")
  end
  settle()
  -- Every collected socket's parked job was taken off its descriptor.
  local parked = T.wait_until(function()
    settle()
    local st = socket.stats().wait
    return st.parked <= parked0 and st.parked + 1
  end, 10000, nil, true, 100)
  T.check(parked, "parked jobs: %d at start, %d after the collections", parked0,
          socket.stats().wait.parked)

  -- The process still works.
  local c, s, l = T.pair(socket)
  T.eq(c:send("alive"), true, "send after the collections")
  T.eq(s:recv(), "alive", "recv after the collections")
  c:close(); s:close(); l:close()

  -- Descriptors: all but the kept peers come back.
  local want = base + #keep_peers
  local n = T.wait_until(function()
    settle()
    local k = T.fd_count()
    if k <= want + 8 then return k end
  end, 10000, nil, true, 100)
  T.check(n, "descriptors: %d at start, %d kept peers, %d now", base, #keep_peers, T.fd_count())
  for _, p in ipairs(keep_peers) do p:close() end
  keep_peers = nil
  local m = T.wait_until(function()
    settle()
    local k = T.fd_count()
    if k <= base + 8 then return k end
  end, 10000, nil, true, 100)
  T.check(m, "descriptors after closing the peers: %d at start, %d now", base, T.fd_count())
  T.ok("%d rounds of sockets collected with work in flight; descriptors %d -> %d",
       ROUNDS, base, m)
end

------------------------------------------------------------------------
-- A lua_State closed (process exiting) with work in flight.
for _, mode in ipairs { "close", "exit", "noclose", "insched" } do
  local t0 = T.now_ms()
  local pid, h = T.spawn(T.lua_cmd("h_exit_inflight", mode) .. " 2>&1")
  local first = h:read("l")
  T.eq(first, "started", "mode " .. mode .. ": child's first line")
  local exited = T.wait_until(function() return T.exited(pid) end, 10000, nil, true)
  local elapsed = T.now_ms() - t0
  if not exited then T.kill(pid, h, "KILL") end
  T.check(exited, "mode %s: the child did not exit within 10 s (hang at exit)", mode)
  local out = first .. "\n" .. h:read("a")
  T.children[pid] = nil
  local ok, how, code = h:close()
  T.has(out, "started", "mode " .. mode .. ": child output")
  T.check(ok and how == "exit" and code == 0,
          "mode %s: child ended with %s %s; output:\n%s", mode, tostring(how), tostring(code), out)
  T.check(elapsed < 5000, "mode %s: exit took %.0f ms", mode, elapsed)
  T.ok("state closed with work in flight (%s): exit 0 in %.0f ms", mode, elapsed)
end

T.done()

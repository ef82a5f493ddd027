-- SPDX-License-Identifier: MIT
-- t_idle_18000.lua: a server holding 18,000 idle connections (2,000 under
-- PLUTO_TEST_LIGHT) keeps answering, with a handful of threads (SPEC §7:
-- waiting holds no thread of its own; no cap or number of idle waits makes
-- an operation wait for an unrelated one).
--
-- The server is a socket.bind echo server in this process, on four
-- loopback addresses (each gives the clients its own range of local
-- ports); the idle clients live in two child processes (h_idle_clients),
-- since one process may hold at most 20,000 descriptors here. Once every
-- server coroutine waits in recv:
--  * the process has at most 1 + wait_threads + 3 threads (the Lua
--    thread, the pollers, and a few lane workers still idling out);
--  * a new client's connect + 64-byte round trip is answered, 5 times in
--    a row;
--  * then with every lane capped at 2 threads (socket.config): again 5
--    round trips, a name lookup and a connect by name, and 20 receives
--    with settimeout(0.5) that all end with "timeout" on time.
-- Finally the children are killed and every idle recv sees the end.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local N = T.scale(18000, 2000)
local CHILDREN = 2
local ADDRS = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4" }

-- This process holds one end of every connection; each child its share.
T.need(N + 300, nil, string.format("%d idle connections", N))

local sched = Scheduler.new()
local waiting, ended = 0, 0
local ports = {}
local listeners = {}
for i, ip in ipairs(ADDRS) do
  local _, l = socket.bind(sched, ip .. ":0", function(s)
    waiting = waiting + 1
    while true do
      local d = s:recv()
      if not d then break end
      s:send(d)
    end
    waiting = waiting - 1
    ended = ended + 1
  end)
  listeners[i] = l
  ports[i] = select(2, l:getsockname())
end

local function probe(what)
  local times = {}
  for i = 1, 5 do
    local t0 = T.now_ms()
    local c = assert(socket.connect(ADDRS[1], ports[1]))
    c:settimeout(5)
    local msg = string.rep(string.char(64 + i), 64)
    assert(c:send(msg))
    local got, err = c:recv()
    T.eq(got, msg, what .. ": round trip " .. i .. " (" .. tostring(err) .. ")")
    times[i] = T.now_ms() - t0
    c:close()
  end
  table.sort(times)
  return times
end

local children = {}
sched:add(function()
  local args = { tostring(N // CHILDREN) }
  for i, ip in ipairs(ADDRS) do args[#args + 1] = ip; args[#args + 1] = tostring(ports[i]) end
  for k = 1, CHILDREN do
    local pid, h = T.spawn_lua("h_idle_clients", table.unpack(args))
    children[k] = { pid = pid, h = h }
  end
  local t0 = T.now_ms()
  T.wait_until(function()
    for _, c in ipairs(children) do if T.exited(c.pid) then return true end end
    return waiting == N and socket.stats().wait.parked >= N
  end, 120000, "every idle connection accepted and waiting", false, 50)
  for _, c in ipairs(children) do
    T.eq(T.readline(c.h, "h_idle_clients"), "ready " .. N // CHILDREN, "idle clients' report")
  end
  local st = socket.stats()
  local threads = T.thread_count()
  local cfg = socket.config()
  T.note("%d idle connections set up in %.0f ms: %d threads, wait lane %d pollers, %d parked",
         N, T.now_ms() - t0, threads, st.wait.threads, st.wait.parked)
  T.check(threads <= 1 + cfg.wait_threads + 3,
          "%d threads with %d idle connections (bound: 1 + wait_threads %d + 3)", threads, N,
          cfg.wait_threads)

  local times = probe("default limits")
  T.ok("with %d idle: 5 new clients answered, median %.0f ms, slowest %.0f ms", N,
       times[3], times[5])

  -- Every lane capped at 2 threads: still nothing waits for an idle peer.
  local old = socket.config()
  socket.config{ wait_threads = 2, connect_threads = 2, dns_threads = 2, cpu_threads = 2 }
  times = probe("caps of 2")
  local addrs = socket.resolve("localhost")
  T.check(type(addrs) == "table" and #addrs > 0, "resolve(localhost) with caps of 2: %s",
          T.repr(addrs))
  local byname = assert(socket.connect("localhost", ports[1]))
  byname:close()
  local results, finished, started = {}, 0, T.now_ms()
  for i = 1, 20 do
    sched:add(function()
      local c = assert(socket.connect(ADDRS[2], ports[2]))
      c:settimeout(0.5)
      local t1 = T.now_ms()
      local r = { c:recv() }
      r.ms = T.now_ms() - t1
      results[i] = r
      finished = finished + 1
      c:close()
    end)
  end
  T.wait_until(function() return finished == 20 end, 10000, "the 20 timed receives")
  for i = 1, 20 do
    T.eq(results[i][2], "timeout", "timed receive " .. i)
    T.check(results[i].ms >= 480 and results[i].ms < 3000,
            "timed receive %d ended after %.0f ms (limit 500 ms)", i, results[i].ms)
  end
  T.ok("caps of 2 with %d idle: 5 round trips (median %.0f ms), a lookup, a connect by name, "
       .. "20 deadlines fired on time (%.0f ms for all)", N, times[3], T.now_ms() - started)
  socket.config(old)

  -- The idle clients leave: every waiting recv sees the end.
  for _, c in ipairs(children) do T.kill(c.pid, c.h) end
  T.wait_until(function() return waiting == 0 and ended >= N end, 60000,
               "every idle recv woken by the peers' exit")
  for _, l in ipairs(listeners) do l:close() end
end)
sched:run()
T.eq(waiting, 0, "server coroutines still waiting")
T.done()

-- SPDX-License-Identifier: MIT
-- t_starvation.lua: with 10,000 coroutines (500 under PLUTO_TEST_LIGHT)
-- each waiting in recv on an idle connection, a new connect + accept + one
-- round trip, and a resolve, still complete at once (SPEC §7: waiting
-- operations never starve the others). The idle clients live in a child
-- process (h_idle_clients.lua) so this process holds only one end of each
-- connection. The fd limit is raised by the test wrapper, not here.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local N = T.scale(10000, 500)
local LIMIT_MS = T.scale(100, 300)    -- median of the timed round trips
local MAX_MS = 1000                   -- every one of them

-- Both processes need N descriptors (plus a few).
T.need_fds(N + 200, ("%d idle connections; their other ends in a child"):format(N))

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local l2 = assert(socket.listen("127.0.0.1:0"))
local _, port2 = l2:getsockname()

local sched = Scheduler.new()
local conns = {}
local accepted, ended, accept_error = 0, 0, nil

-- Acceptor: each idle connection gets a coroutine waiting in recv.
sched:add(function()
  for _ = 1, N do
    local s, msg = l:accept()
    if not s then accept_error = msg; break end
    accepted = accepted + 1
    conns[#conns + 1] = s
    sched:add(function()
      s:recv()                          -- nobody writes: waits until the child dies
      ended = ended + 1
    end)
  end
end)

local pid, h = T.spawn_lua("h_idle_clients", tostring(N), "127.0.0.1", tostring(port))
local timings, resolve_ms = {}, nil

sched:add(function()
  local t_setup = T.now_ms()
  T.wait_until(function() return accepted == N or accept_error or T.exited(pid) end,
               40000, "all idle connections accepted")
  T.check(not accept_error, "accept failed after %d connections: %s", accepted, tostring(accept_error))
  T.eq(accepted, N, "idle connections accepted")
  local line = T.readline(h, "h_idle_clients")
  T.eq(line, "ready " .. N, "idle clients' report")
  T.eq(ended, 0, "idle recvs that ended early")
  -- Every idle receive waits parked, not on a thread of its own.
  T.wait_until(function() return socket.stats().wait.parked >= N end, 10000,
               "every idle recv parked", false, 50)
  local st = socket.stats()
  T.note("wait lane: threads=%d busy=%d parked=%d", st.wait.threads, st.wait.busy,
         st.wait.parked)
  T.note("%d idle connections set up in %.0f ms; threads in this process: %s",
         N, T.now_ms() - t_setup, tostring(T.thread_count()))

  -- The measured operations.
  for i = 1, 3 do
    local t0 = T.now_ms()
    local c = assert(socket.connect("127.0.0.1", port2))
    local s = assert(l2:accept())
    assert(c:send("ping"))
    T.eq(s:recv(), "ping", "round trip " .. i .. ": server got")
    assert(s:send("pong"))
    T.eq(c:recv(), "pong", "round trip " .. i .. ": client got")
    timings[i] = T.now_ms() - t0
    c:close(); s:close()
  end
  if socket.resolve then
    local t0 = T.now_ms()
    local addrs = socket.resolve("localhost")
    resolve_ms = T.now_ms() - t0
    T.check(type(addrs) == "table" and #addrs > 0, "resolve(localhost) gave %s", T.repr(addrs))
  end

  -- End the idle clients: every waiting recv sees end of stream.
  T.kill(pid, h)
  T.wait_until(function() return ended == N end, 20000, "idle recvs woken by the peer's exit")
end)

sched:run()
l:close(); l2:close()

table.sort(timings)
T.note("connect+accept+round trip with %d idle waits: %.0f, %.0f, %.0f ms", N,
       timings[1], timings[2], timings[3])
T.check(timings[2] < LIMIT_MS, "median connect+accept+round trip took %.0f ms with %d " ..
        "coroutines waiting in recv (limit %d ms)", timings[2], N, LIMIT_MS)
T.check(timings[3] < MAX_MS, "slowest connect+accept+round trip took %.0f ms (limit %d ms)",
        timings[3], MAX_MS)
if resolve_ms then
  T.check(resolve_ms < LIMIT_MS, "resolve(localhost) took %.0f ms with %d idle waits",
          resolve_ms, N)
end
T.ok("no starvation with %d idle recvs: round trip median %.0f ms, resolve %s ms", N,
     timings[2], resolve_ms and string.format("%.0f", resolve_ms) or "n/a")
T.done()

-- SPDX-License-Identifier: MIT
-- dns_blast.lua: load the delaying relay directly (is it a bottleneck?).
-- Runs inside the benchmark's namespace, with pluto.socket: QUERIES raw
-- DNS queries (A and AAAA alternately, distinct names) go to the relay on
-- 127.0.0.1:53 over SOCKETS UDP sockets, at most INFLIGHT unanswered at
-- once (default: all of them, one burst), and every answer is awaited
-- (5 s without one ends a socket's wait). With the relay's 100 ms delay
-- the ideal time is 100 ms per wave of INFLIGHT queries; what comes on
-- top is the relay's (and dnsmasq's) own cost.
-- usage: dns_blast.lua QUERIES [SOCKETS [INFLIGHT]]
--          prints: queries=N answered=N ms=.. sockets=N inflight=N
--        dns_blast.lua stats     prints the relay's counters
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local W = require "h_dns_wire"

local now = socket._now

local function relay_stats()
  local s = assert(socket.connect("127.0.0.1", 53, "udp"))
  s:settimeout(2)
  s:send("STATS")
  local r = s:recv()
  s:close()
  return r or "no answer"
end

if arg[1] == "stats" then
  io.write(relay_stats(), "\n")
  return
end

local n = tonumber(arg[1] or 20000)
local m = tonumber(arg[2] or 200)
local inflight = tonumber(arg[3] or n)
local per = (n + m - 1) // m
local window = math.max(1, inflight // m)   -- unanswered queries per socket
local answered, t_end = 0, nil
local sched = Scheduler.new()
local t0 = now()
for k = 1, m do
  local first, last = (k - 1) * per + 1, math.min(n, k * per)
  if first <= last then
    sched:add(function()
      local s = assert(socket.connect("127.0.0.1", 53, "udp"))
      s:settimeout(5)
      local nexq, got = first, 0
      local function send_upto(limit)
        while nexq <= last and nexq - first - got < limit do
          assert(s:send(W.query(nexq, "b" .. nexq .. ".blast.test.pluto",
                                nexq % 2 == 0 and W.AAAA or W.A)))
          nexq = nexq + 1
        end
      end
      send_upto(window)
      for _ = first, last do
        local r = s:recv()
        if not r then break end
        got = got + 1
        answered = answered + 1
        if answered == n then t_end = now() end
        send_upto(window)
      end
      s:close()
    end)
  end
end
sched:run()
io.write(string.format("queries=%d answered=%d ms=%.1f sockets=%d inflight=%d\n", n, answered,
                       (t_end or now()) - t0, m, math.min(n, window * m)))
io.write(relay_stats(), "\n")

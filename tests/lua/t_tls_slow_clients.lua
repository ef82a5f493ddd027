-- SPDX-License-Identifier: MIT
-- t_tls_slow_clients.lua: clients that connect to a TLS server and never
-- send their ClientHello must not keep other clients' handshakes from
-- running (SPEC §7: waiting operations never starve the others).
-- Many silent TCP clients connect to our server, whose coroutines all wait
-- in starttls: the pool's cpu_threads limit + 16 of them (more than the
-- lane that runs handshakes may have threads) when that limit is small,
-- else 300 (with the limit at 64, as it once was, 80 silent clients
-- stalled every later handshake). Then a real TLS client must complete
-- its handshake and an exchange within 5 s (its own settimeout(5) must
-- hold too: a handshake queued behind the others may not take longer).
-- Finally the silent clients close and every server coroutine ends.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local cap = socket.config().cpu_threads
local NSILENT = math.min(cap + 16, 300)
local LIMIT_S = 5
T.need_fds(2 * (NSILENT + 1) + 64,
           ("%d silent clients and a real one, with both ends here"):format(NSILENT))

local sched = Scheduler.new()
local entered, server_ok, server_fail = 0, 0, 0
local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
  entered = entered + 1
  s:settimeout(10)                 -- only so that a broken run ends
  local ok = s:starttls({ pki.localhost })
  if not ok then server_fail = server_fail + 1; return end
  server_ok = server_ok + 1
  local d = s:recv()
  if d then s:send("echo:" .. d) end
end)
local _, port = l:getsockname()

local result, ms, stats_then
sched:add(function()
  local silent = {}
  for i = 1, NSILENT do
    silent[i] = assert(socket.connect("127.0.0.1", port))
  end
  T.wait_until(function() return entered == NSILENT end, 10000, "server coroutines for the silent clients")
  -- They are all in starttls now (entered, then starttls without yielding
  -- before the job starts).
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(LIMIT_S)
  local t0 = T.now_ms()
  result = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
  if result[1] then
    c:send("real")
    result.echo = c:recv()
  end
  ms = math.floor(T.now_ms() - t0 + 0.5)
  stats_then = socket.stats().cpu
  c:close()
  for i = 1, NSILENT do silent[i]:close() end
  T.wait_until(function() return server_ok + server_fail == NSILENT + 1 end, 15000,
               "every server coroutine to end")
  l:close()
end)
sched:run()

T.check(result[1] == true and result.echo == "echo:real" and ms < LIMIT_S * 1000,
        "a real client behind %d silent ones: starttls %s %s %s after %d ms (cpu lane: %d threads, "
        .. "%d busy, %d queued; limit %d): handshakes waiting on silent peers hold every "
        .. "thread that could run the others", NSILENT, tostring(result[1]), tostring(result[2]),
        tostring(result[3]), ms, stats_then.threads, stats_then.busy, stats_then.queued, cap)
T.eq(server_ok, 1, "server handshakes that succeeded")
T.eq(server_fail, NSILENT, "server handshakes that failed when the silent clients left")
T.ok("a real client completed its handshake in %d ms behind %d silent clients", ms, NSILENT)
pki:cleanup()
T.done()

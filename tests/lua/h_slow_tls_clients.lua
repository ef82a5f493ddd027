-- SPDX-License-Identifier: MIT
-- h_slow_tls_clients.lua HOST PORT NSILENT NPARTIAL: child helper, the
-- attackers of t_tls_slowloris. Opens NSILENT connections that send
-- nothing and NPARTIAL that send the first 10 bytes of a ClientHello and
-- stall. Prints "ready" once all are open, then waits for the server to
-- drop each partial one and prints "dropped K MIN_MS MAX_MS" (times since
-- "ready") when all were dropped or 60 s passed, then holds the silent
-- ones open until killed (it gives up by itself after two minutes).
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local host, port = arg[1], tonumber(arg[2])
local nsilent, npartial = tonumber(arg[3]), tonumber(arg[4])
-- A TLS record header (handshake, 256 bytes to come) and the start of a
-- ClientHello: the server's TLS stack reads these, then waits for more.
local HELLO_START = "\22\3\1\1\0\1\0\0\252\3"

local function now() return socket._now() end
local silent, partial = {}, {}
for i = 1, nsilent + npartial do
  local c, msg = socket.connect(host, port)
  if not c then
    io.stdout:write("fail ", i, " ", tostring(msg), "\n")
    io.stdout:flush()
    os.exit(1)
  end
  if i <= nsilent then
    silent[#silent + 1] = c
  else
    assert(c:send(HELLO_START))
    partial[#partial + 1] = c
  end
end
local t0 = now()
io.stdout:write("ready\n")
io.stdout:flush()

local sched = Scheduler.new()
local dropped, min_ms, max_ms = { 0, 0 }, math.huge, 0
local function watch(c, kind)
  sched:add(function()
    c:settimeout(60)
    local d, err = c:recv()
    if d == nil and err ~= "timeout" then
      local ms = now() - t0
      dropped[kind] = dropped[kind] + 1
      if ms < min_ms then min_ms = ms end
      if ms > max_ms then max_ms = ms end
    end
    c:close()
  end)
end
for _, c in ipairs(partial) do watch(c, 1) end
for _, c in ipairs(silent) do watch(c, 2) end
sched:run()
io.stdout:write(string.format("dropped %d %d %.0f %.0f\n", dropped[1], dropped[2],
                              math.min(min_ms, max_ms), max_ms))
io.stdout:flush()
for _ = 1, 120 do socket.sleep(1000) end

-- SPDX-License-Identifier: MIT
-- bench_pluto.lua: the benchmark's workloads with pluto.socket, every
-- peer a coroutine under pluto.scheduler.  Modes (as in cpeer.c):
--   echo-server PORTFILE NCONN SIZE      exits after NCONN closes (0: never)
--   pp-client PORT NCONN ROUNDS SIZE     prints RESULT <round trips/s>
--   bulk-sink PORTFILE TOTAL [CERT KEY]  prints RESULT <MiB/s>
--   bulk-source PORT TOTAL CHUNK [CAFILE]
--   tls-server PORTFILE CERT KEY IDLE    handshake, send "k", close; exits
--                                        IDLE s after the last connection
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local B = require "bench_common"

local now = socket._now          -- milliseconds, monotonic
local mode = arg[1]
local sched = Scheduler.new()

if mode == "echo-server" then
  local nconn, closed = tonumber(arg[3]), 0
  local l
  _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    while true do
      local d = s:recv()
      if not d then break end
      if not s:send(d) then break end
    end
    closed = closed + 1
    if nconn > 0 and closed >= nconn then l:close() end
  end)
  B.writeport(arg[2], select(2, l:getsockname()))
  sched:run()

elseif mode == "pp-client" then
  local port, nconn, rounds, size = tonumber(arg[2]), tonumber(arg[3]),
                                    tonumber(arg[4]), tonumber(arg[5])
  local msg = string.rep("x", size)
  local t0, finished = now(), 0
  for _ = 1, nconn do
    sched:add(function()
      local c = assert(socket.connect("127.0.0.1", port))
      for _ = 1, rounds do
        assert(c:send(msg))
        local got = 0
        while got < size do got = got + #assert(c:recv()) end
      end
      c:close()
      finished = finished + 1
    end)
  end
  sched:run()
  assert(finished == nconn)
  io.write(string.format("RESULT %.0f\n", nconn * rounds / (now() - t0) * 1000))

elseif mode == "bulk-sink" then
  local total = tonumber(arg[3])
  local certs = arg[4] and { { chain = B.readfile(arg[4]),
                               private_key = B.readfile(arg[5]) } }
  local l
  _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    l:close()
    if certs then assert(s:starttls(certs)) end
    local v = B.verifier()
    local t0
    while v.bytes < total do
      local d = s:recv()
      if not d then break end
      t0 = t0 or now()
      v.feed(d)
    end
    B.bulk_result(v, total, (now() - t0) / 1000)
  end)
  B.writeport(arg[2], select(2, l:getsockname()))
  sched:run()

elseif mode == "bulk-source" then
  local port, total, chunk, cafile = tonumber(arg[2]), tonumber(arg[3]),
                                     tonumber(arg[4]), arg[5]
  assert(chunk == B.BLOCK, "CHUNK must be 65536")
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    if cafile then assert(c:starttls("localhost", { cafile = cafile })) end
    for k = 0, total // chunk - 1 do
      assert(c:send(B.block(k)))
    end
    -- Wait for the sink to close (reading what TLS may still send).
    while c:recv() do end
    c:close()
  end)
  sched:run()

elseif mode == "tls-server" then
  local certs = { { chain = B.readfile(arg[3]), private_key = B.readfile(arg[4]) } }
  local idle = tonumber(arg[5]) * 1000
  local last, served, failed, maxthreads = nil, 0, 0, 0
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    last = now()
    if s:starttls(certs) then
      s:send("k")
      served = served + 1
    else
      failed = failed + 1
    end
  end)
  B.writeport(arg[2], select(2, l:getsockname()))
  local start = now()
  sched:add(function()
    while true do
      socket.sleep(100)
      local cpu = socket.stats().cpu
      if cpu.threads > maxthreads then maxthreads = cpu.threads end
      local t = now()
      if (last and t - last > idle) or t - start > 600000 then break end
    end
    io.write(string.format("served=%d failed=%d threads=%d (most cpu-lane threads seen)\n",
                           served, failed, maxthreads))
    io.stdout:flush()
    os.exit(0)
  end)
  sched:run()

else
  io.stderr:write("usage: see the header of bench_pluto.lua\n")
  os.exit(2)
end

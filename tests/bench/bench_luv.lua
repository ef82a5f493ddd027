-- SPDX-License-Identifier: MIT
-- bench_luv.lua: the benchmark's workloads with luv (lua-luv, libuv's
-- binding): callbacks on one uv loop, no coroutines (luv has none of its
-- own).  luv has no TLS, so the TLS workloads are not run with it.
-- Modes (as in cpeer.c):
--   echo-server PORTFILE NCONN SIZE      exits after NCONN closes (0: never)
--   pp-client PORT NCONN ROUNDS SIZE     prints RESULT <round trips/s>
--   bulk-sink PORTFILE TOTAL             prints RESULT <MiB/s>
--   bulk-source PORT TOTAL CHUNK
local uv = require "luv"
local B = require "bench_common"

local mode = arg[1]
local function now() return uv.hrtime() / 1e9 end

local function listen(portfile, onconn)
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(4096, function(err)
    assert(not err, err)
    local c = uv.new_tcp()
    server:accept(c)
    c:nodelay(true)
    onconn(c)
  end))
  B.writeport(portfile, server:getsockname().port)
  return server
end

local function connect(port, onconnect)
  local c = uv.new_tcp()
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    c:nodelay(true)
    onconnect(c)
  end)
  return c
end

if mode == "echo-server" then
  local nconn, closed = tonumber(arg[3]), 0
  local server
  server = listen(arg[2], function(c)
    c:read_start(function(err, d)
      if d then
        c:write(d)
      else
        c:close()
        closed = closed + 1
        if nconn > 0 and closed >= nconn then server:close() end
      end
    end)
  end)
  uv.run()

elseif mode == "pp-client" then
  local port, nconn, rounds, size = tonumber(arg[2]), tonumber(arg[3]),
                                    tonumber(arg[4]), tonumber(arg[5])
  local msg = string.rep("x", size)
  local t0, finished = now(), 0
  for _ = 1, nconn do
    connect(port, function(c)
      local got, done = 0, 0
      c:read_start(function(err, d)
        assert(d, err or "connection closed early")
        got = got + #d
        while got >= size do
          got, done = got - size, done + 1
          if done < rounds then
            c:write(msg)
          else
            c:read_stop()
            c:close()
            finished = finished + 1
          end
        end
      end)
      c:write(msg)
    end)
  end
  uv.run()
  assert(finished == nconn)
  io.write(string.format("RESULT %.0f\n", nconn * rounds / (now() - t0)))

elseif mode == "bulk-sink" then
  local total = tonumber(arg[3])
  assert(not arg[4], "luv has no TLS")
  local server
  server = listen(arg[2], function(c)
    server:close()
    local v = B.verifier()
    local t0
    c:read_start(function(err, d)
      if d then
        t0 = t0 or now()
        v.feed(d)
      end
      if not d or v.bytes >= total then
        B.bulk_result(v, total, now() - t0)
        c:read_stop()
        c:close()
      end
    end)
  end)
  uv.run()

elseif mode == "bulk-source" then
  local port, total, chunk = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  assert(chunk == B.BLOCK, "CHUNK must be 65536")
  assert(not arg[5], "luv has no TLS")
  local blocks = total // chunk
  connect(port, function(c)
    -- Keep a few writes queued (libuv would otherwise queue all 256 MiB):
    -- each finished write queues the next block.
    local k, inflight = 0, 0
    local function fill()
      while inflight < 4 and k < blocks do
        inflight = inflight + 1
        local blk = B.block(k)
        k = k + 1
        c:write(blk, function(err)
          assert(not err, err)
          inflight = inflight - 1
          if k < blocks then
            fill()
          elseif inflight == 0 then
            c:read_start(function(_, d)       -- until the sink closes
              if not d then c:close() end
            end)
          end
        end)
      end
    end
    fill()
  end)
  uv.run()

else
  io.stderr:write("usage: see the header of bench_luv.lua\n")
  os.exit(2)
end

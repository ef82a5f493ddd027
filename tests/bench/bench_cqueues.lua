-- SPDX-License-Identifier: MIT
-- bench_cqueues.lua: the benchmark's workloads with cqueues (lua-cqueues),
-- and luaossl (lua-luaossl) contexts for TLS; one coroutine per connection
-- in one controller.  Sockets in binary mode without output buffering
-- ("b", "bn"): each write goes out at once, read(-n) returns what is there
-- (up to n bytes).
-- Modes (as in cpeer.c):
--   echo-server PORTFILE NCONN SIZE      exits after NCONN closes (0: never)
--   pp-client PORT NCONN ROUNDS SIZE     prints RESULT <round trips/s>
--   bulk-sink PORTFILE TOTAL [CERT KEY]  prints RESULT <MiB/s>
--   bulk-source PORT TOTAL CHUNK [CAFILE]
--   tls-server PORTFILE CERT KEY IDLE    handshake, send "k", close
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local B = require "bench_common"

local mode = arg[1]
local now = cqueues.monotime
local cq = cqueues.new()

local function listen(portfile)
  local l = assert(csocket.listen{ host = "127.0.0.1", port = 0, nodelay = true,
                                   backlog = 4096 })
  assert(l:listen())
  local _, _, port = l:localname()
  B.writeport(portfile, port)
  return l
end

local function connect(port)
  local c = assert(csocket.connect{ host = "127.0.0.1", port = port, nodelay = true })
  assert(c:connect())
  c:setmode("b", "bn")
  return c
end

local function server_ctx(cert, key)
  local context = require "openssl.ssl.context"
  local x509, pkey = require "openssl.x509", require "openssl.pkey"
  local ctx = context.new("TLS", true)
  assert(ctx:setCertificate(x509.new(B.readfile(cert))))
  assert(ctx:setPrivateKey(pkey.new(B.readfile(key))))
  return ctx
end

local function client_ctx(cafile)
  local context = require "openssl.ssl.context"
  local store = require "openssl.x509.store"
  local ctx = context.new("TLS", false)
  local st = store.new()
  st:add(cafile)
  ctx:setStore(st)
  ctx:setVerify(context.VERIFY_PEER)
  return ctx
end

local function run()
  local ok, err = cq:loop()
  if not ok then error(err) end
end

if mode == "echo-server" then
  local nconn, closed = tonumber(arg[3]), 0
  local l = listen(arg[2])
  cq:wrap(function()
    for s in l:clients{ nodelay = true } do
      cq:wrap(function()
        s:setmode("b", "bn")
        pcall(function()         -- a reset raises (cqueues' default onerror)
          while true do
            local d = s:read(-65536)
            if not d then break end
            s:write(d)
          end
        end)
        s:close()
        closed = closed + 1
        if nconn > 0 and closed >= nconn then os.exit(0) end
      end)
    end
  end)
  run()

elseif mode == "pp-client" then
  local port, nconn, rounds, size = tonumber(arg[2]), tonumber(arg[3]),
                                    tonumber(arg[4]), tonumber(arg[5])
  local msg = string.rep("x", size)
  local t0, finished = now(), 0
  for _ = 1, nconn do
    cq:wrap(function()
      local c = connect(port)
      for _ = 1, rounds do
        assert(c:write(msg))
        local got = 0
        while got < size do got = got + #assert(c:read(-65536)) end
      end
      c:close()
      finished = finished + 1
    end)
  end
  run()
  assert(finished == nconn)
  io.write(string.format("RESULT %.0f\n", nconn * rounds / (now() - t0)))

elseif mode == "bulk-sink" then
  local total = tonumber(arg[3])
  local ctx = arg[4] and server_ctx(arg[4], arg[5])
  local l = listen(arg[2])
  cq:wrap(function()
    local s = assert(l:accept{ nodelay = true })
    l:close()
    s:setmode("b", "bn")
    if ctx then assert(s:starttls(ctx)) end
    local v = B.verifier()
    local t0
    while v.bytes < total do
      local d = s:read(-65536)
      if not d then break end
      t0 = t0 or now()
      v.feed(d)
    end
    B.bulk_result(v, total, now() - t0)
    s:close()
  end)
  run()

elseif mode == "bulk-source" then
  local port, total, chunk, cafile = tonumber(arg[2]), tonumber(arg[3]),
                                     tonumber(arg[4]), arg[5]
  assert(chunk == B.BLOCK, "CHUNK must be 65536")
  cq:wrap(function()
    local c = connect(port)
    if cafile then assert(c:starttls(client_ctx(cafile))) end
    for k = 0, total // chunk - 1 do
      assert(c:write(B.block(k)))
    end
    while c:read(-65536) do end        -- until the sink closes
    c:close()
  end)
  run()

elseif mode == "tls-server" then
  local ctx = server_ctx(arg[3], arg[4])
  local idle = tonumber(arg[5])
  local l = listen(arg[2])
  local last, served, failed, start = nil, 0, 0, now()
  cq:wrap(function()
    while true do
      local s = l:accept({ nodelay = true }, 0.1)
      if s then
        last = now()
        cq:wrap(function()
          s:setmode("b", "bn")
          if pcall(s.starttls, s, ctx) then   -- failures raise
            s:write("k")
            served = served + 1
          else
            failed = failed + 1
          end
          s:close()
        end)
      end
      local t = now()
      if (last and t - last > idle) or t - start > 600 then break end
    end
    io.write(string.format("served=%d failed=%d threads=1\n", served, failed))
    io.stdout:flush()
    os.exit(0)
  end)
  run()

else
  io.stderr:write("usage: see the header of bench_cqueues.lua\n")
  os.exit(2)
end

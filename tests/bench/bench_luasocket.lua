-- SPDX-License-Identifier: MIT
-- bench_luasocket.lua: the benchmark's workloads with LuaSocket (lua-socket),
-- and LuaSec (lua-sec) for TLS.  One connection: plain blocking calls, the
-- fastest LuaSocket way.  Several connections: non-blocking sockets
-- (settimeout(0)) driven by socket.select, LuaSocket's only way to serve
-- many peers from one Lua state (select is limited to FD_SETSIZE, 1024
-- descriptors, so the 10,000-connection idle test cannot run with it).
-- Modes (as in cpeer.c):
--   echo-server PORTFILE NCONN SIZE      exits after NCONN closes
--   pp-client PORT NCONN ROUNDS SIZE     prints RESULT <round trips/s>
--   bulk-sink PORTFILE TOTAL [CERT KEY]  prints RESULT <MiB/s>
--   bulk-source PORT TOTAL CHUNK [CAFILE]
--   tls-server PORTFILE CERT KEY IDLE    non-blocking LuaSec handshakes
--                                        under select; send "k", close
local socket = require "socket"
local B = require "bench_common"

local mode = arg[1]
local now = socket.gettime

local function listen(portfile, backlog)
  local l = assert(socket.bind("127.0.0.1", 0, backlog or 1024))
  B.writeport(portfile, select(2, l:getsockname()))
  return l
end

local function connect(port)
  local c = assert(socket.connect("127.0.0.1", port))
  c:setoption("tcp-nodelay", true)
  return c
end

-- Send all of data on a non-blocking socket (64-byte messages always fit
-- at once; the loop is for completeness).
local function sendall(c, data)
  local i = 1
  while i <= #data do
    local last, err, partial = c:send(data, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = partial + 1
    socket.select(nil, { c }, 1)
  end
  return true
end

local function remove(list, x)
  for i = 1, #list do
    if list[i] == x then table.remove(list, i) return end
  end
end

local function tls_params(modename, cert, key, cafile)
  if modename == "server" then
    return { mode = "server", protocol = "any", certificate = cert, key = key,
             options = "all" }
  end
  return { mode = "client", protocol = "any", cafile = cafile, verify = "peer",
           options = "all" }
end

if mode == "echo-server" then
  local nconn, size = tonumber(arg[3]), tonumber(arg[4])
  local l = listen(arg[2])
  if nconn == 1 then
    local s = assert(l:accept())
    s:setoption("tcp-nodelay", true)
    while true do
      local d = s:receive(size)
      if not d then break end
      s:send(d)
    end
    s:close()
    return
  end
  l:settimeout(0)
  local recvt, closed = { l }, 0
  while nconn == 0 or closed < nconn do
    local r = socket.select(recvt, nil, 600)
    for _, s in ipairs(r) do
      if s == l then
        local c = l:accept()
        if c then
          c:setoption("tcp-nodelay", true)
          c:settimeout(0)
          recvt[#recvt + 1] = c
        end
      else
        local d, err, partial = s:receive(65536)
        d = d or partial
        if d and #d > 0 then sendall(s, d) end
        if err and err ~= "timeout" then
          remove(recvt, s)
          s:close()
          closed = closed + 1
        end
      end
    end
  end

elseif mode == "pp-client" then
  local port, nconn, rounds, size = tonumber(arg[2]), tonumber(arg[3]),
                                    tonumber(arg[4]), tonumber(arg[5])
  local msg = string.rep("x", size)
  local t0 = now()
  if nconn == 1 then
    local c = connect(port)
    for _ = 1, rounds do
      c:send(msg)
      assert(c:receive(size))
    end
    c:close()
  else
    local recvt, got, done, live = {}, {}, {}, nconn
    for i = 1, nconn do
      local c = connect(port)
      c:settimeout(0)
      recvt[i], got[c], done[c] = c, 0, 0
    end
    for i = 1, nconn do assert(sendall(recvt[i], msg)) end
    while live > 0 do
      local r = socket.select(recvt, nil, 10)
      assert(#r > 0, "no answer for 10 s")
      for _, c in ipairs(r) do
        local d, err, partial = c:receive(size - got[c])
        if not d and err ~= "timeout" then error("receive: " .. err) end
        got[c] = got[c] + #(d or partial)
        if got[c] == size then
          got[c], done[c] = 0, done[c] + 1
          if done[c] < rounds then
            assert(sendall(c, msg))
          else
            remove(recvt, c)
            c:close()
            live = live - 1
          end
        end
      end
    end
  end
  io.write(string.format("RESULT %.0f\n", nconn * rounds / (now() - t0)))

elseif mode == "bulk-sink" then
  local total = tonumber(arg[3])
  local l = listen(arg[2])
  local s = assert(l:accept())
  l:close()
  s:setoption("tcp-nodelay", true)
  if arg[4] then
    local ssl = require "ssl"
    s = assert(ssl.wrap(s, tls_params("server", arg[4], arg[5])))
    assert(s:dohandshake())
  end
  local v = B.verifier()
  local t0
  -- receive(n) returns exactly n bytes: 64 KiB at a time, as written.
  while v.bytes < total do
    local d, _, partial = s:receive(B.BLOCK)
    d = d or partial
    if not d or #d == 0 then break end
    t0 = t0 or now()
    v.feed(d)
  end
  B.bulk_result(v, total, now() - t0)
  s:close()

elseif mode == "bulk-source" then
  local port, total, chunk, cafile = tonumber(arg[2]), tonumber(arg[3]),
                                     tonumber(arg[4]), arg[5]
  assert(chunk == B.BLOCK, "CHUNK must be 65536")
  local c = connect(port)
  if cafile then
    local ssl = require "ssl"
    c = assert(ssl.wrap(c, tls_params("client", nil, nil, cafile)))
    c:sni("localhost")
    assert(c:dohandshake())
  end
  for k = 0, total // chunk - 1 do
    assert(c:send(B.block(k)))
  end
  c:receive("*a")              -- until the sink closes
  c:close()

elseif mode == "tls-server" then
  local ssl = require "ssl"
  local ctx = assert(ssl.newcontext(tls_params("server", arg[3], arg[4])))
  local idle = tonumber(arg[5])
  local l = listen(arg[2])
  l:settimeout(0)
  local recvt, sendt = { l }, {}
  local last, served, failed, start = nil, 0, 0, now()
  -- One handshake step; the socket goes to the set its next step waits on.
  local function step(c)
    local ok, err = c:dohandshake()
    if ok then
      c:send("k")
      c:close()
      served = served + 1
    elseif err == "wantread" then
      recvt[#recvt + 1] = c
    elseif err == "wantwrite" then
      sendt[#sendt + 1] = c
    else
      c:close()
      failed = failed + 1
    end
  end
  while true do
    local t = now()
    if (last and t - last > idle) or t - start > 600 then break end
    local r, w = socket.select(recvt, sendt, 0.1)
    for _, c in ipairs(w) do
      remove(sendt, c)
      step(c)
    end
    for _, c in ipairs(r) do
      if c == l then
        while true do
          local s = l:accept()
          if not s then break end
          last = now()
          s:setoption("tcp-nodelay", true)
          local t = assert(ssl.wrap(s, ctx))
          t:settimeout(0)
          step(t)
        end
      else
        remove(recvt, c)
        step(c)
      end
    end
  end
  io.write(string.format("served=%d failed=%d threads=1\n", served, failed))

else
  io.stderr:write("usage: see the header of bench_luasocket.lua\n")
  os.exit(2)
end

-- SPDX-License-Identifier: MIT
-- t_tls_gc.lua: TLS sockets dropped or a process ended while TLS work is in
-- flight (SPEC §7): no crash, no leak, no hang.
--  * in this process: a coroutine in a client handshake (silent server), one
--    in a server handshake (silent client), and one in recv on an
--    established session are abandoned with their sockets; after a
--    garbage collection each raw peer sees its connection end within 3 s,
--    and the number of open descriptors comes back to what it was (once a
--    scheduler has polled).
--  * child processes (h_tls_exit_inflight.lua) with handshakes, a recv and
--    a blocked send in flight end by falling off the script, by
--    os.exit(0, true) and by os.exit(0): each exits with status 0 within
--    10 s.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

-- Does the raw peer see the end of its connection (recv nil, not timeout)?
local function sees_end(raw, what)
  raw:settimeout(3)
  for _ = 1, 100 do
    local d, err = raw:recv()
    if not d then
      T.check(err ~= "timeout", "%s: the peer still connected 3 s after the collection "
              .. "(the dropped socket's descriptor stayed open)", what)
      return
    end
  end
  error("FAIL: " .. what .. ": endless data")
end

local base = T.fd_count()

-- Client handshake, silent server.
do
  local c, raw, l = T.pair(socket)
  l:close()
  local co = coroutine.create(function() return c:starttls("localhost", { cafile = pki.cafile }) end)
  assert(coroutine.resume(co))
  T.eq(coroutine.status(co), "suspended", "client handshake in flight")
  local hello = raw:recv()
  T.check(hello and hello:byte(1) == 0x16, "no ClientHello")
  c, co = nil, nil
  collectgarbage()
  collectgarbage()
  sees_end(raw, "client handshake dropped")
  raw:close()
  T.ok("client socket collected during its handshake: the peer saw the end")
end

-- Server handshake, silent client.
do
  local raw, s, l = T.pair(socket)
  l:close()
  local co = coroutine.create(function() return s:starttls({ pki.localhost }) end)
  assert(coroutine.resume(co))
  T.eq(coroutine.status(co), "suspended", "server handshake in flight")
  s, co = nil, nil
  collectgarbage()
  collectgarbage()
  sees_end(raw, "server handshake dropped")
  raw:close()
  T.ok("server socket collected during its handshake: the peer saw the end")
end

-- recv in flight on an established session.
do
  local sched = Scheduler.new()
  local c, s, l = T.pair(socket)
  l:close()
  local ok1, ok2
  sched:add(function() ok1 = s:starttls({ pki.localhost }) end)
  sched:add(function() ok2 = c:starttls("localhost", { cafile = pki.cafile }) end)
  sched:run()
  T.check(ok1 and ok2, "TLS pair")
  local co = coroutine.create(function() return c:recv() end)
  assert(coroutine.resume(co))
  T.eq(coroutine.status(co), "suspended", "recv in flight")
  c, co = nil, nil
  collectgarbage()
  collectgarbage()
  sees_end(s, "TLS socket dropped with a recv in flight")
  s:close()
  T.ok("TLS socket collected with a recv in flight: the peer saw the end")
end

-- Count inside a scheduler: the completions of the abandoned jobs are
-- taken (and their descriptors let go) when a scheduler polls, as in any
-- program that goes on running one.
collectgarbage()
collectgarbage()
local now_fds
do
  local sched = Scheduler.new()
  sched:add(function()
    now_fds = T.wait_until(function()
      collectgarbage()
      local n = T.fd_count()
      return n <= base and n
    end, 5000, nil, true)
  end)
  sched:run()
end
T.check(now_fds, "descriptors: %d before, %d after everything was closed and collected",
        base, T.fd_count())
T.ok("descriptors back to %d", base)

-- Processes ending with TLS work in flight.
for _, mode in ipairs({ "close", "exit", "noclose" }) do
  local pid, h = T.spawn(T.lua_cmd("h_tls_exit_inflight", mode, pki.localhost.certfile,
                                   pki.localhost.keyfile, pki.cafile) .. " 2>&1")
  local first = h:read("l")
  T.eq(first, "started", mode .. ": the child's first line")
  local ok, how, code = T.wait_exit(pid, h, 10000)
  T.check(ok ~= nil or how ~= nil, "%s: the child did not exit within 10 s", mode)
  T.check(how == "exit" and code == 0, "%s: child ended with %s %s", mode, tostring(how),
          tostring(code))
  T.ok("%s: the child exited with status 0", mode)
end

pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_tls_200.lua: 200 TLS clients (50 under PLUTO_TEST_LIGHT) connect at
-- once to our TLS server, all in one scheduler with the default pool
-- limits; each client verifies the server (cafile), sends its own message
-- and gets it back echoed by the server. Every handshake and every
-- exchange must succeed within the time limit: a handshake waiting on its
-- peer must never keep the peer's handshake from running (client and
-- server handshakes share the pool's cpu lane here).
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local N = T.scale(200, 50)
T.need_fds(2 * N + 64, ("%d TLS connections with both ends here"):format(N))

C.need("certtool")
local pki = C.make()

local LIMIT_MS = 20000      -- each socket operation (settimeout)
local DEADLINE_MS = 15000   -- the whole exchange

local sched = Scheduler.new()
local server_ok, server_fail = 0, {}
local client_ok, client_fail = 0, {}
local in_hs, max_in_hs = 0, 0

local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
  s:settimeout(LIMIT_MS / 1000)
  local ok, msg, errname = s:starttls({ pki.localhost })
  if not ok then
    server_fail[#server_fail + 1] = "starttls: " .. tostring(msg) .. " " .. tostring(errname)
    return
  end
  local d, err = s:recv()
  if not d then
    server_fail[#server_fail + 1] = "recv: " .. tostring(err)
    return
  end
  local sent, err2 = s:send("echo:" .. d)
  if not sent then
    server_fail[#server_fail + 1] = "send: " .. tostring(err2)
    return
  end
  server_ok = server_ok + 1
end)
local _, port = l:getsockname()

local t0 = T.now_ms()
local finished = 0
for i = 1, N do
  sched:add(function()
    local function fail(fmt, ...)
      client_fail[#client_fail + 1] = string.format("client %d: " .. fmt, i, ...)
    end
    local c, err = socket.connect("127.0.0.1", port)
    if not c then fail("connect: %s", tostring(err)); return end
    c:settimeout(LIMIT_MS / 1000)
    in_hs = in_hs + 1
    if in_hs > max_in_hs then max_in_hs = in_hs end
    local ok, msg, errname = c:starttls("localhost", { cafile = pki.cafile })
    in_hs = in_hs - 1
    if not ok then
      fail("starttls: %s %s", tostring(msg), tostring(errname))
    else
      local m = string.format("message %d from client %d %s", i, i, string.rep("x", i))
      local sent, e = c:send(m)
      if not sent then
        fail("send: %s", tostring(e))
      else
        local got, e2 = c:recv()
        if got ~= "echo:" .. m then
          fail("expected the echo, got %s %s", T.repr(got), tostring(e2))
        else
          client_ok = client_ok + 1
        end
      end
    end
    c:close()
    finished = finished + 1
    if finished == N then l:close() end
  end)
end
-- If the clients are not all done by the deadline, fail with the pool's
-- state (a stall shows as busy cpu threads, queued jobs, none completing).
sched:add(function()
  local ok = T.wait_until(function() return finished == N end, DEADLINE_MS, nil, true, 50)
  if not ok then
    local st = socket.stats()
    local lanes = {}
    for name, v in pairs(st) do
      lanes[#lanes + 1] = string.format("%s: threads %d busy %d queued %d completed %d",
                                        name, v.threads, v.busy, v.queued, v.completed)
    end
    table.sort(lanes)
    error(string.format("FAIL: after %d ms only %d of %d clients finished (%d got their "
      .. "echo, %d still in starttls); pool: %s", DEADLINE_MS, finished, N, client_ok, in_hs,
      table.concat(lanes, "; ")), 0)
  end
end)
sched:run()
local ms = math.floor(T.now_ms() - t0 + 0.5)

T.check(#client_fail == 0, "%d client(s) failed, first: %s", #client_fail,
        tostring(client_fail[1]))
T.check(#server_fail == 0, "%d server side(s) failed, first: %s", #server_fail,
        tostring(server_fail[1]))
T.eq(client_ok, N, "clients that got their echo")
T.eq(server_ok, N, "server sides that echoed")
T.check(max_in_hs > 1, "handshakes never overlapped (max %d at once)", max_in_hs)
T.check(ms < DEADLINE_MS + 1000, "took %d ms", ms)
T.ok("%d TLS clients served in %.1f s (up to %d handshakes at once)", N, ms / 1000,
     max_in_hs)
pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_tls_close_wakes.lua: on a TLS socket, close() from another coroutine
-- wakes a coroutine waiting on it (SPEC §4):
--  * waiting in recv (the peer sends nothing): recv returns nil within 3 s;
--    the peer then sees the end of the stream;
--  * blocked in send of 32 MiB to a peer that does not read: send returns
--    nil (and a message) within 3 s.
-- Afterwards isopen() is false.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local PROMPT_MS = 3000

-- A TLS pair inside sched: calls body(c, s) in a coroutine once both
-- handshakes are done.
local function tls_pair(sched, body)
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local s, sok
  sched:add(function()
    s = assert(l:accept())
    l:close()
    s:settimeout(20)
    sok = s:starttls({ pki.localhost })
  end)
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(20)
    local ok, msg = c:starttls("localhost", { cafile = pki.cafile })
    T.check(ok, "client starttls: %s", tostring(msg))
    T.wait_until(function() return sok ~= nil end, 10000, "server handshake")
    T.check(sok, "server starttls failed")
    body(c, s)
  end)
end

local function now() return math.floor(T.now_ms() + 0.5) end

-- recv
do
  local sched = Scheduler.new()
  local res, returned_at, closed_at, peer_end
  local waiting = false
  tls_pair(sched, function(c, s)
    sched:add(function()
      waiting = true
      res = table.pack(c:recv())
      returned_at = now()
    end)
    -- The recv is in flight once its coroutine yielded (waiting set, no result).
    T.wait_until(function() return waiting end, 5000, "recv started")
    T.check(res == nil, "recv returned before the close: %s", T.repr(res and res[1]))
    closed_at = now()
    c:close()
    T.eq(c:isopen(), false, "isopen() after close")
    peer_end = table.pack(s:recv())
    s:close()
  end)
  sched:run()
  T.check(res, "recv never returned")
  T.eq(res[1], nil, "recv woken by close")
  T.check(returned_at - closed_at < PROMPT_MS, "recv returned %d ms after close",
          returned_at - closed_at)
  T.check(peer_end[1] == nil and peer_end[2] ~= "timeout",
          "the peer should see the end of the stream, got %s %s", tostring(peer_end[1]),
          tostring(peer_end[2]))
  T.ok("TLS recv woken by close after %d ms", returned_at - closed_at)
end

-- send
do
  local sched = Scheduler.new()
  local res, returned_at, closed_at
  local big = string.rep("0123456789abcdef", 2 * 1024 * 1024)   -- 32 MiB
  tls_pair(sched, function(c, s)
    local parked0 = socket.stats().wait.parked
    sched:add(function()
      res = table.pack(c:send(big))
      returned_at = now()
    end)
    -- The send fills the kernel buffers and then waits for room, parked.
    T.wait_until(function() return res == nil and socket.stats().wait.parked > parked0 end, 10000,
                 "send waiting on a full buffer")
    T.check(res == nil, "send of 32 MiB to a peer that does not read returned: %s %s",
            tostring(res and res[1]), tostring(res and res[2]))
    closed_at = now()
    c:close()
    T.eq(c:isopen(), false, "isopen() after close")
    s:close()
  end)
  sched:run()
  T.check(res, "send never returned")
  T.eq(res[1], nil, "send woken by close")
  T.check(type(res[2]) == "string", "send woken by close: a message")
  T.check(returned_at - closed_at < PROMPT_MS, "send returned %d ms after close",
          returned_at - closed_at)
  T.ok("TLS send woken by close after %d ms: %s", returned_at - closed_at, res[2])
end

pki:cleanup()
T.done()

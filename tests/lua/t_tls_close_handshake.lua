-- SPDX-License-Identifier: MIT
-- t_tls_close_handshake.lua: s:close() from another coroutine while s is
-- in the middle of starttls ends that starttls at once with false (the
-- worker blocked in the handshake is woken), and the socket is closed.
--  * server side: a raw TCP client connects and sends nothing; our server
--    waits in starttls(certs); another coroutine closes the socket.
--  * client side: a raw TCP server accepts, reads our ClientHello and never
--    answers; another coroutine closes our client socket.
-- In both cases: starttls returns false with a message within 3 s of the
-- close, isopen() is false, the raw peer then sees the connection end, and
-- a later starttls, recv and send on the socket fail without blocking.
--  * last: the close comes after the handshake finished on its worker but
--    before the waiting coroutine was resumed: starttls still returns
--    false (the socket is closed), not true.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local PROMPT_MS = 3000
local GUARD_S = 20          -- settimeout: a broken run ends instead of hanging

-- Cpu-lane jobs running now (handshakes), from the pool's stats.
local function cpu_busy() return socket.stats().cpu.busy end

local function after_close_checks(s, what)
  T.eq(s:isopen(), false, what .. ": isopen() after close")
  local r = table.pack(s:starttls("localhost", { verify = false }))
  T.check(r[1] == false or r[1] == nil, "%s: starttls after close: %s", what, tostring(r[1]))
  T.eq(s:recv(), nil, what .. ": recv after close")
  T.eq(s:send("x"), nil, what .. ": send after close")
end

-- Server side: the client never sends its ClientHello.
do
  local sched = Scheduler.new()
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local raw                       -- the silent client
  local s                         -- our server's socket
  local res, closed_at, returned_at, busy_before
  local peer_end
  sched:add(function()
    raw = assert(socket.connect("127.0.0.1", port))
    raw:settimeout(GUARD_S)
    s = assert(l:accept())
    s:settimeout(GUARD_S)
    busy_before = cpu_busy()
    res = table.pack(s:starttls({ pki.localhost }))
    returned_at = math.floor(T.now_ms() + 0.5)
  end)
  sched:add(function()
    -- Wait until the handshake was started: running on a worker, or (a
    -- server whose client has not spoken) parked until the client does.
    T.wait_until(function()
      return s and busy_before and (cpu_busy() > busy_before or socket.stats().cpu.parked > 0)
    end, 10000, "the server's handshake started")
    T.check(not res, "starttls returned before the close: %s %s", tostring(res and res[1]),
            tostring(res and res[2]))
    closed_at = math.floor(T.now_ms() + 0.5)
    s:close()
    -- The silent client sees the connection end.
    peer_end = table.pack(raw:recv())
    raw:close()
    l:close()
  end)
  sched:run()
  T.check(res, "starttls never returned")
  T.eq(res[1], false, "server starttls after close (" .. tostring(res[2]) .. ")")
  T.check(type(res[2]) == "string" and #res[2] > 0, "server starttls: a message")
  T.check(returned_at - closed_at < PROMPT_MS, "server starttls returned %d ms after close",
          returned_at - closed_at)
  T.check(peer_end[1] == nil and peer_end[2] ~= "timeout",
          "the raw client should see the end of the connection, got %s %s",
          tostring(peer_end[1]), tostring(peer_end[2]))
  after_close_checks(s, "server")
  T.ok("server: close during starttls -> false (%s) after %d ms", res[2],
       returned_at - closed_at)
end

-- Client side: the server reads the ClientHello and never answers.
do
  local sched = Scheduler.new()
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local c, raw
  local res, closed_at, returned_at, hello
  local peer_end
  sched:add(function()
    c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(GUARD_S)
    res = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    returned_at = math.floor(T.now_ms() + 0.5)
  end)
  sched:add(function()
    raw = assert(l:accept())
    raw:settimeout(GUARD_S)
    -- The ClientHello arrives: the client's handshake now waits for us.
    hello = raw:recv()
    T.check(hello and #hello > 5 and hello:byte(1) == 22,
            "expected a TLS handshake record from the client, got %s", T.repr(hello))
    T.check(not res, "starttls returned before the close: %s %s", tostring(res and res[1]),
            tostring(res and res[2]))
    closed_at = math.floor(T.now_ms() + 0.5)
    c:close()
    -- Everything the client sent, then the end of the stream.
    for _ = 1, 100 do
      peer_end = table.pack(raw:recv())
      if peer_end[1] == nil then break end
    end
    raw:close()
    l:close()
  end)
  sched:run()
  T.check(res, "starttls never returned")
  T.eq(res[1], false, "client starttls after close (" .. tostring(res[2]) .. ")")
  T.check(type(res[2]) == "string" and #res[2] > 0, "client starttls: a message")
  T.check(returned_at - closed_at < PROMPT_MS, "client starttls returned %d ms after close",
          returned_at - closed_at)
  T.check(peer_end[1] == nil and peer_end[2] ~= "timeout",
          "the raw server should see the end of the connection, got %s %s",
          tostring(peer_end[1]), tostring(peer_end[2]))
  after_close_checks(c, "client")
  T.ok("client: close during starttls -> false (%s) after %d ms", res[2],
       returned_at - closed_at)
end

-- The handshake has finished on its worker, but the coroutine waiting in
-- starttls has not been resumed yet when the socket is closed: it must
-- still get false (SPEC §4: close wakes waiting coroutines with false),
-- not true for a socket that is no longer open.
do
  local c, s, l = T.pair(socket)
  l:close()
  local co = coroutine.create(function()
    return c:starttls("localhost", { cafile = pki.cafile })
  end)
  local ok, first = coroutine.resume(co)
  T.check(ok and first == nil and coroutine.status(co) == "suspended",
          "client starttls should yield in a coroutine")
  -- The server side, blocking (outside any coroutine): it ends when the
  -- client's last handshake message arrived.
  local sok, smsg = s:starttls({ pki.localhost })
  T.check(sok, "server starttls: %s", tostring(smsg))
  -- Wait for the client's handshake worker to be done too.
  T.wait_until(function()
    local st = socket.stats().cpu
    return st.busy == 0 and st.queued == 0
  end, 5000, "the client's handshake to finish on its worker")
  c:close()
  local r = table.pack(coroutine.resume(co))
  T.check(r[1], "the coroutine raised: %s", tostring(r[2]))
  T.eq(coroutine.status(co), "dead", "starttls returned after close")
  T.eq(c:isopen(), false, "isopen() after close")
  T.eq(c:istls(), false, "istls() after close")
  T.check(r[2] == false, "starttls on a socket closed while it waited returned %s %s "
          .. "(the handshake had finished, but the socket was closed before the waiting "
          .. "coroutine took the result): expected false, \"closed\"",
          tostring(r[2]), tostring(r[3]))
  s:close()
  T.ok("closed after the handshake finished but before starttls returned: false (%s)",
       tostring(r[3]))
end

pki:cleanup()
T.done()

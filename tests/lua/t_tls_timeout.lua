-- SPDX-License-Identifier: MIT
-- t_tls_timeout.lua: s:settimeout applies to TLS (SPEC §4).
--  * client starttls against a raw server that reads the ClientHello and
--    never answers, with settimeout(0.5): false, "timeout", in about 0.5 s
--    (not before 0.4 s, well before 5 s); the socket is closed.
--  * server starttls with a client that connects and sends nothing, same.
--  * on an established TLS session, recv with settimeout(0.3) and nothing
--    sent: nil, "timeout", "ETIMEDOUT"; the socket stays open and TLS, and
--    data sent later still arrives, in order; send still works.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local function check_timed_out(r, ms, what)
  T.eq(r[1], false, what .. ": first result (" .. tostring(r[2]) .. ")")
  T.eq(r[2], "timeout", what .. ": message")
  T.check(ms >= 400, "%s: returned after %d ms, before the 500 ms limit", what, ms)
  T.check(ms < 5000, "%s: returned only after %d ms", what, ms)
end

-- Client side.
do
  local sched = Scheduler.new()
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local r, ms, open_after, hello, peer_end
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(0.5)
    local t0 = T.now_ms()
    r = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    ms = math.floor(T.now_ms() - t0 + 0.5)
    open_after = c:isopen()
  end)
  sched:add(function()
    local raw = assert(l:accept())
    raw:settimeout(10)
    hello = raw:recv()
    -- never answer; the client gives up and closes
    for _ = 1, 100 do
      peer_end = table.pack(raw:recv())
      if peer_end[1] == nil then break end
    end
    raw:close()
    l:close()
  end)
  sched:run()
  T.check(hello and hello:byte(1) == 0x16, "the raw server got no ClientHello: %s", T.repr(hello))
  check_timed_out(r, ms, "client starttls, silent server")
  T.eq(open_after, false, "client isopen() after the timed-out handshake")
  T.check(peer_end[1] == nil and peer_end[2] ~= "timeout",
          "the raw server should see the connection end, got %s %s",
          tostring(peer_end[1]), tostring(peer_end[2]))
  T.ok("client starttls timed out after %d ms: %s, %s", ms, r[2], tostring(r[3]))
end

-- Server side.
do
  local sched = Scheduler.new()
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local r, ms, open_after, peer_end
  sched:add(function()
    local raw = assert(socket.connect("127.0.0.1", port))
    raw:settimeout(10)
    peer_end = table.pack(raw:recv())     -- nothing sent; the server gives up
    raw:close()
  end)
  sched:add(function()
    local s = assert(l:accept())
    s:settimeout(0.5)
    local t0 = T.now_ms()
    r = table.pack(s:starttls({ pki.localhost }))
    ms = math.floor(T.now_ms() - t0 + 0.5)
    open_after = s:isopen()
    l:close()
  end)
  sched:run()
  check_timed_out(r, ms, "server starttls, silent client")
  T.eq(open_after, false, "server isopen() after the timed-out handshake")
  T.check(peer_end[1] == nil and peer_end[2] ~= "timeout",
          "the silent client should see the connection end, got %s %s",
          tostring(peer_end[1]), tostring(peer_end[2]))
  T.ok("server starttls timed out after %d ms: %s, %s", ms, r[2], tostring(r[3]))
end

-- recv timeout on an established session.
do
  local sched = Scheduler.new()
  local r1, ms, still_open, still_tls, later, after_send, go = nil, nil, nil, nil, nil, nil, false
  local server_got
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    if not s:starttls({ pki.localhost }) then return end
    T.wait_until(function() return go end, 10000, "the client's timed-out recv")
    s:send("late data")
    s:send(" and more")
    server_got = s:recv()
    s:recv()
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    local ok, msg = c:starttls("localhost", { cafile = pki.cafile })
    T.check(ok, "starttls: %s", tostring(msg))
    c:settimeout(0.3)
    local t0 = T.now_ms()
    r1 = table.pack(c:recv())
    ms = math.floor(T.now_ms() - t0 + 0.5)
    still_open, still_tls = c:isopen(), c:istls()
    go = true
    c:settimeout(10)
    later = ""
    for _ = 1, 10 do
      if #later >= #"late data and more" then break end
      local d = c:recv()
      if not d then break end
      later = later .. d
    end
    after_send = c:send("thanks")
    c:close()
    l:close()
  end)
  sched:run()
  T.eq(r1[1], nil, "recv with nothing sent")
  T.eq(r1[2], "timeout", "recv timeout message")
  T.eq(r1[3], "ETIMEDOUT", "recv timeout errno name")
  T.check(ms >= 250 and ms < 5000, "recv timed out after %d ms (limit 300)", ms)
  T.eq(still_open, true, "isopen() after the recv timeout")
  T.eq(still_tls, true, "istls() after the recv timeout")
  T.eq(later, "late data and more", "data sent after the timeout")
  T.eq(after_send, true, "send after the timeout")
  T.eq(server_got, "thanks", "the server got it")
  T.ok("TLS recv timed out after %d ms, and the session went on", ms)
end

pki:cleanup()
T.done()

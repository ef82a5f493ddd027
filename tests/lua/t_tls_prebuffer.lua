-- SPDX-License-Identifier: MIT
-- t_tls_prebuffer.lua: a server may look at the client's first bytes (the
-- ClientHello) before deciding to call starttls; bytes already taken off
-- the socket by peek/recv must reach the handshake (SPEC §4).
--  1. recv() the ClientHello, unrecv() it whole, starttls;
--  2. recv() it, unrecv() it back in two pieces (last piece first);
--  3. peek() (polled until the data is there; never consumes), starttls;
--  4. only part of the ClientHello has arrived when the server peeks and
--     calls starttls (a relay forwards 7 bytes, waits until the server has
--     peeked them, then the rest): the handshake must read the buffered
--     part and then the socket, in order.
-- Each case: handshakes succeed on both sides (the client verifies with
-- cafile), the bytes seen before starttls look like a TLS handshake record
-- (0x16 0x03), and data flows both ways afterwards.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local function looks_like_hello(d)
  return type(d) == "string" and #d >= 5 and d:byte(1) == 0x16 and d:byte(2) == 0x03
end

-- Wait (bounded) until s:peek() returns something; returns it.
local function peek_wait(s)
  return T.wait_until(function() return s:peek() end, 10000, "data to peek at", false, 5)
end

local prepare = {
  ["recv + unrecv"] = function(s)
    local d = s:recv()
    T.check(looks_like_hello(d), "recv before starttls: %s", T.repr(d and d:sub(1, 8)))
    s:unrecv(d)
    return d
  end,
  ["recv + unrecv in two pieces"] = function(s)
    local d = s:recv()
    T.check(looks_like_hello(d) and #d > 10, "recv before starttls: %s", T.repr(d and d:sub(1, 8)))
    s:unrecv(d:sub(11))
    s:unrecv(d:sub(1, 10))
    T.eq(s:peek(), d:sub(1, 10), "peek after the two unrecvs")
    return d
  end,
  ["peek"] = function(s)
    local d = peek_wait(s)
    T.check(looks_like_hello(d), "peek before starttls: %s", T.repr(d and d:sub(1, 8)))
    T.eq(s:peek(), d, "a second peek")
    return d
  end,
}

for _, name in ipairs({ "recv + unrecv", "recv + unrecv in two pieces", "peek" }) do
  local sched = Scheduler.new()
  local sres, cres, seen, echoed, reply
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    s:settimeout(15)
    seen = prepare[name](s)
    sres = table.pack(s:starttls({ pki.localhost }))
    if sres[1] then
      local d = s:recv()
      if d then s:send("echo:" .. d) end
      reply = s:recv()
    end
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(15)
    cres = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    if cres[1] then
      c:send("hello " .. name)
      echoed = c:recv()
      c:send("bye")
    end
    c:close()
    l:close()
  end)
  sched:run()
  T.eq(cres[1], true, name .. ": client starttls (" .. tostring(cres[2]) .. ")")
  T.eq(sres[1], true, name .. ": server starttls (" .. tostring(sres[2]) .. ")")
  T.eq(echoed, "echo:hello " .. name, name .. ": client -> server -> client")
  T.eq(reply, "bye", name .. ": second message")
  T.ok("%s: %d bytes seen before starttls, handshake and data OK", name, #seen)
end

-- 4. Only 7 bytes of the ClientHello are there when starttls starts.
do
  local sched = Scheduler.new()
  local PART = 7
  local sres, cres, seen, echoed
  local peeked, in_starttls = false, false
  local _, ls = socket.bind(sched, "127.0.0.1:0", function(s)
    s:settimeout(15)
    seen = peek_wait(s)
    peeked = true
    in_starttls = true
    sres = table.pack(s:starttls({ pki.localhost }))
    if sres[1] then
      local d = s:recv()
      if d then s:send("echo:" .. d) end
      s:recv()
    end
  end)
  local _, sport = ls:getsockname()

  local relay_err
  local function pump(src, dst)
    for _ = 1, 100000 do
      local d = src:recv()
      if not d then break end
      if not dst:send(d) then break end
    end
    dst:shutdown()
  end
  local _, lr = socket.bind(sched, "127.0.0.1:0", function(a)
    a:settimeout(15)
    local b = assert(socket.connect("127.0.0.1", sport))
    -- The client's first bytes: forward PART of them, then wait.
    local hello = a:recv()
    if not looks_like_hello(hello) or #hello <= PART then
      relay_err = "relay: unexpected first bytes " .. T.repr(hello)
      b:close()
      return
    end
    b:send(hello:sub(1, PART))
    T.wait_until(function() return peeked and in_starttls end, 10000, "server peeked")
    b:send(hello:sub(PART + 1))
    local up_done = false
    sched:add(function() pump(a, b); up_done = true end)
    pump(b, a)
    T.wait_until(function() return up_done end, 15000, "relay: client -> server")
    b:close()
  end)
  local _, rport = lr:getsockname()

  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", rport))
    c:settimeout(15)
    cres = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    if cres[1] then
      c:send("partial")
      echoed = c:recv()
    end
    c:close()
    ls:close()
    lr:close()
  end)
  sched:run()
  T.check(not relay_err, "%s", tostring(relay_err))
  T.eq(seen and #seen, PART, "bytes the server peeked at before starttls")
  T.check(looks_like_hello(seen), "peeked bytes: %s", T.repr(seen))
  T.eq(cres[1], true, "partial hello: client starttls (" .. tostring(cres[2]) .. ")")
  T.eq(sres[1], true, "partial hello: server starttls (" .. tostring(sres[2]) .. ")")
  T.eq(echoed, "echo:partial", "partial hello: data after the handshake")
  T.ok("partial ClientHello: %d bytes buffered, the rest read by the handshake", PART)
end

pki:cleanup()
T.done()

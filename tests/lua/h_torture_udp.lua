-- SPDX-License-Identifier: MIT
-- h_torture_udp.lua MODE: UDP for tests/torture (rules in torturelib.lua).
--
-- A udpserver on 127.0.0.1 port 0 and a client from connect(..., "udp").
-- The client sends numbered datagrams of several sizes (an empty one
-- too); the server receives each one (peek first, for some; unrecv and
-- recv again, for one), checks it byte by byte, and answers it, one by
-- one; then a reply by setpeer. Loopback does not drop datagrams, so one
-- that does not come is a lost one.
-- MODE "plain": one after the other, blocking; "sched": server and client
-- in two coroutines of one pluto.scheduler.
local mode = ...
local socket = require "pluto.socket"
local L = require "torturelib"

local SIZES = { 5, 0, 1, 1400, 9000, 60000, 33 }

-- Datagram i: its number in a header, then bytes of the pattern.
local function datagram(i)
  local n = SIZES[i]
  if n == 0 then return "" end
  local head = string.format("%05d", i)
  return (head .. L.bytes(i * 1000, n)):sub(1, n)
end

local function check(i, d, what)
  if d ~= datagram(i) then
    error(string.format("FAIL: %s: datagram %d wrong: %d bytes (%s), want %d",
                        what, i, type(d) == "string" and #d or -1,
                        type(d) == "string" and d:sub(1, 5) or tostring(d),
                        SIZES[i]), 0)
  end
end

-- Receive datagram i on u and check it; the odd ones peeked at first,
-- number 4 given back with unrecv and received again.
local function take(u, i, what)
  if i % 2 == 1 then
    local p = L.retry(u.peek, u)
    if p ~= nil then check(i, p, what .. " peek") end
  end
  local d, err = L.retry(u.recv, u)
  if d == nil then
    error(string.format("FAIL: %s: datagram %d did not come (%s)", what, i,
                        tostring(err)), 0)
  end
  check(i, d, what)
  if i == 4 then
    u:unrecv(d)
    d = L.retry(u.recv, u)
    check(i, d, what .. " after unrecv")
  end
end

local server = L.need(socket.udpserver("127.0.0.1:0"))
local ip, port = server:getsockname()
local client = L.need(socket.connect(ip, port, "udp"), "connect failed", "connect")
server:settimeout(3)
client:settimeout(3)

local function serve()
  for i = 1, #SIZES do
    take(server, i, "server")
    L.need(server:send(datagram(i)), "send failed", "server send")
  end
  -- Aim the answer ourselves.
  local cip, cport = client:getsockname()
  server:setpeer(cip, cport)
  L.need(server:send(datagram(1)), "send failed", "server send after setpeer")
  return true
end

local function talk(k)
  L.need(client:send(datagram(k)), "send failed", "client send")
  take(client, k, "client")
end

if mode == "plain" then
  for i = 1, #SIZES do
    L.need(client:send(datagram(i)), "send failed", "client send")
    take(server, i, "server")
    L.need(server:send(datagram(i)), "send failed", "server send")
    take(client, i, "client")
  end
  local cip, cport = client:getsockname()
  server:setpeer(cip, cport)
  L.need(server:send(datagram(1)), "send failed", "server send after setpeer")
  take(client, 1, "client after setpeer")
elseif mode == "sched" then
  local Scheduler = require "pluto.scheduler"
  local sched = Scheduler.new()
  local served, talked = false, false
  sched:add(function() served = serve() end)
  sched:add(function()
    for i = 1, #SIZES do talk(i) end
    take(client, 1, "client after setpeer")
    talked = true
  end)
  sched:run()
  if not (served and talked) then
    error("FAIL: run() returned before the exchange ended", 0)
  end
else
  error("usage: h_torture_udp.lua plain|sched", 0)
end
server:close()
client:close()

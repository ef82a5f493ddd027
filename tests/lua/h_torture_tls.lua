-- SPDX-License-Identifier: MIT
-- h_torture_tls.lua MODE CAFILE CERTFILE KEYFILE: a TLS conversation for
-- tests/torture (rules in torturelib.lua). The certificates are made once
-- by the driver (tlscerts.lua) and passed as file names.
--
-- MODE "plain": the client's handshake and all the data calls block,
-- outside any coroutine; the server's handshake runs in one coroutine
-- resumed by hand (its worker answers while the client blocks).
-- MODE "sched": client and server (socket.bind) under pluto.scheduler.
--
-- The conversation: handshake (the client verifies the server against
-- CAFILE and the name "localhost"), the client sends messages of several
-- sizes that the server checks by position, the client shuts down (close
-- notify), the server sees a clean end, answers, closes; the client checks
-- the answer and sees a clean end too.
local mode, cafile, certfile, keyfile = ...
local socket = require "pluto.socket"
local L = require "torturelib"

local function readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local certs = { { chain = readfile(certfile), private_key = readfile(keyfile) } }

local UP = { 1, 5000, 16384 + 5, 70000 }
local UP_TOTAL = 0
for _, n in ipairs(UP) do UP_TOTAL = UP_TOTAL + n end
local DOWN = 2000

local function server_handshake(s)
  s:settimeout(3)
  local ok, msg = s:starttls(certs)
  if not ok then error("FAIL: server handshake: " .. tostring(msg), 0) end
end

local function client_handshake(c)
  c:settimeout(3)
  local ok, msg = c:starttls("localhost", { cafile = cafile })
  if not ok then error("FAIL: client handshake: " .. tostring(msg), 0) end
end

local function serve(s)
  local off = L.recv_check(s, 0, UP_TOTAL, "server")
  L.expect_end(s, "server")
  L.need(s:send(L.bytes(0, DOWN)), "send failed", "server send")
  s:close()
  return off
end

local function talk(c)
  local off = 0
  for _, n in ipairs(UP) do
    L.need(c:send(L.bytes(off, n)), "send failed", "client send")
    off = off + n
  end
  L.need(c:shutdown(), "shutdown failed", "client shutdown")
  L.recv_check(c, 0, DOWN, "client")
  L.expect_end(c, "client")
  c:close()
end

if mode == "plain" then
  local l = L.need(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local c = L.need(socket.connect("127.0.0.1", port), "connect failed", "connect")
  local s = L.need(l:accept(), "accept failed", "accept")
  l:close()
  -- The server's handshake waits on a worker; the client's blocks here.
  local co = coroutine.create(server_handshake)
  local ok, err = coroutine.resume(co, s)
  if not ok then error(err, 0) end
  client_handshake(c)
  for _ = 1, 1000 do
    if coroutine.status(co) == "dead" then break end
    ok, err = coroutine.resume(co)
    if not ok then error(err, 0) end
    if coroutine.status(co) ~= "dead" then socket.sleep(1) end
  end
  if coroutine.status(co) ~= "dead" then error("FAIL: server handshake never ended", 0) end
  -- Each message is received before the next is sent: each must fit in
  -- the kernel's buffers.
  local off = 0
  for _, n in ipairs({ 1, 5000, 16384 + 5, 20000 }) do
    L.need(c:send(L.bytes(off, n)), "send failed", "client send")
    off = L.recv_check(s, off, n, "server")
  end
  L.need(c:shutdown(), "shutdown failed", "client shutdown")
  L.expect_end(s, "server")
  L.need(s:send(L.bytes(0, DOWN)), "send failed", "server send")
  s:close()
  L.recv_check(c, 0, DOWN, "client")
  L.expect_end(c, "client")
  c:close()
elseif mode == "sched" then
  local Scheduler = require "pluto.scheduler"
  local sched = Scheduler.new()
  local served, talked = false, false
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    server_handshake(s)
    served = serve(s) == UP_TOTAL
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = L.need(socket.connect("127.0.0.1", port), "connect failed", "connect")
    client_handshake(c)
    talk(c)
    talked = true
    l:close()
  end)
  sched:run()
  if not (served and talked) then
    error(string.format("FAIL: run() returned with the server %s and the client %s",
                        served and "done" or "not done", talked and "done" or "not done"), 0)
  end
else
  error("usage: h_torture_tls.lua plain|sched CAFILE CERTFILE KEYFILE", 0)
end

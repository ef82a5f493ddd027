-- SPDX-License-Identifier: MIT
-- h_torture_tcp.lua MODE: a TCP conversation for tests/torture, which runs
-- it in a fresh lua_State per allocation to fail (see torturelib.lua for
-- the rules). MODE "plain": every call outside coroutines (blocking);
-- "sched": a client and a server (socket.bind) under one pluto.scheduler.
--
-- The conversation: listen on 127.0.0.1 port 0, connect, accept; the
-- client sends messages of several sizes (under the scheduler one of
-- 200 KiB, which the kernel does not take at once, so that a worker sends
-- the rest), the server checks every byte by position, using
-- peek and unrecv on the way, and answers with a shorter stream that the
-- client checks; the client shuts its side down, the server sees a clean
-- end, closes, and the client sees a clean end too.
local mode = ...
local socket = require "pluto.socket"
local L = require "torturelib"

local UP = { 1, 700, 4096, 65536 + 3, 200 * 1024, 17 }   -- client -> server
local DOWN = 3000                                          -- server -> client
local UP_TOTAL                                             -- set below

-- The server's side of the conversation on socket s.
local function serve(s)
  s:settimeout(3)
  local off = 0
  -- peek shows what recv will return, without taking it.
  local first = L.retry(s.peek, s)
  if first then
    local d = L.need(L.retry(s.recv, s), "nothing after peek", "server recv")
    if d:sub(1, #first) ~= first then error("FAIL: peek and recv differ", 0) end
    -- Give back all but the first byte, to be received again.
    off = L.check(d:sub(1, 1), off, "server first byte")
    if #d > 1 then s:unrecv(d:sub(2)) end
  end
  off = L.recv_check(s, off, UP_TOTAL - off, "server")
  L.expect_end(s, "server")
  L.need(s:send(L.bytes(0, DOWN)), "send failed", "server send")
  s:close()
  return off
end

-- The client's side, on socket c.
local function talk(c)
  c:settimeout(3)
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
  -- One thread, blocking calls: each message is received before the next
  -- is sent, so each must fit in the kernel's buffers (no 200 KiB one).
  UP = { 1, 700, 4096, 32768 + 3, 17 }
  local l = L.need(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local c = L.need(socket.connect("127.0.0.1", port), "connect failed", "connect")
  local s = L.need(l:accept(), "accept failed", "accept")
  l:close()
  c:settimeout(3)
  s:settimeout(3)
  local off = 0
  for i, n in ipairs(UP) do
    L.need(c:send(L.bytes(off, n)), "send failed", "client send")
    local stop = off + n
    if i == 3 then
      -- peek, recv, and unrecv all but the first byte of what came.
      local p = L.retry(s.peek, s)
      if p then L.check(p, off, "server peek") end
      local d = L.need(L.retry(s.recv, s), "nothing after peek", "server recv")
      off = L.check(d:sub(1, 1), off, "server first byte")
      if #d > 1 then s:unrecv(d:sub(2)) end
    end
    off = L.recv_check(s, off, stop - off, "server")
  end
  L.need(c:shutdown(), "shutdown failed", "client shutdown")
  L.expect_end(s, "server")
  L.need(s:send(L.bytes(0, DOWN)), "send failed", "server send")
  s:close()
  L.recv_check(c, 0, DOWN, "client")
  L.expect_end(c, "client")
  c:close()
elseif mode == "sched" then
  UP_TOTAL = 0
  for _, n in ipairs(UP) do UP_TOTAL = UP_TOTAL + n end
  local Scheduler = require "pluto.scheduler"
  local sched = Scheduler.new()
  local served, talked = false, false
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    served = serve(s) == UP_TOTAL
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = L.need(socket.connect("127.0.0.1", port), "connect failed", "connect")
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
  error("usage: h_torture_tcp.lua plain|sched", 0)
end

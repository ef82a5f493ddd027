-- SPDX-License-Identifier: MIT
-- h_torture_dns.lua MODE: name lookups for tests/torture (rules in
-- torturelib.lua). Only "localhost" and IP literals: nothing leaves the
-- machine.
--
-- resolve("localhost") in both families and in "inet", resolve of IP
-- literals (answered without a worker), and connect("localhost", port) to
-- a listener of ours, which resolves on a worker and races the addresses.
-- MODE "plain": one after the other, blocking; "sched": every lookup in
-- its own coroutine of one pluto.scheduler, all in flight at once (their
-- completions come back together, in one _poll).
local mode = ...
local socket = require "pluto.socket"
local L = require "torturelib"

local function has(list, addr)
  for _, a in ipairs(list) do
    if a == addr then return true end
  end
  return false
end

-- name, family, an address the answer must hold
local LOOKUPS = {
  { "localhost", nil, "127.0.0.1" },
  { "localhost", "inet", "127.0.0.1" },
  { "127.0.0.1", nil, "127.0.0.1" },
  { "[::1]", "inet6", "::1" },
  { "LOCALHOST", "inet", "127.0.0.1" },
}

local function lookup(i)
  local q = LOOKUPS[i]
  local addrs, msg = socket.resolve(q[1], q[2])
  if not addrs then
    error(string.format("FAIL: resolve(%q): %s", q[1], tostring(msg)), 0)
  end
  if not has(addrs, q[3]) then
    error(string.format("FAIL: resolve(%q) gave no %s", q[1], q[3]), 0)
  end
  return true
end

-- connect by name to our listener, one byte each way.
local function by_name(l, port)
  local c = L.need(socket.connect("localhost", port), "connect failed", "connect")
  c:settimeout(3)
  local s = L.need(l:accept(), "accept failed", "accept")
  s:settimeout(3)
  L.need(c:send("x"), "send failed", "send")
  local d = L.retry(s.recv, s)
  if d ~= "x" then error("FAIL: by name: got " .. tostring(d), 0) end
  c:close()
  s:close()
  return true
end

local l = L.need(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()

if mode == "plain" then
  for i = 1, #LOOKUPS do lookup(i) end
  by_name(l, port)
elseif mode == "sched" then
  local Scheduler = require "pluto.scheduler"
  local sched = Scheduler.new()
  local done = 0
  for i = 1, #LOOKUPS do
    for _ = 1, 3 do
      sched:add(function()
        lookup(i)
        done = done + 1
      end)
    end
  end
  sched:add(function()
    by_name(l, port)
    done = done + 1
  end)
  sched:run()
  if done ~= 3 * #LOOKUPS + 1 then
    error(string.format("FAIL: run() returned after %d of %d lookups",
                        done, 3 * #LOOKUPS + 1), 0)
  end
else
  error("usage: h_torture_dns.lua plain|sched", 0)
end
l:close()

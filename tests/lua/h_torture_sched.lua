-- SPDX-License-Identifier: MIT
-- h_torture_sched.lua VARIANT: pluto.scheduler itself under memory errors,
-- for tests/torture (rules in torturelib.lua).
--
-- Several kinds of coroutines run under one scheduler: echo clients and
-- servers over three TCP pairs, sleepers, plain yielders, lookups of
-- "localhost", and one that adds another coroutine. A memory error may
-- hit any of them, or the scheduler's own code (run, _poll). The contract
-- (SPEC §6, §7): the error comes out of run(), or goes to errorfunc, and
-- nothing else is lost, so after it the program can close its streams
-- and call run() again, which returns once the coroutines still alive
-- have ended.
--
-- VARIANT "raise": no errorfunc; every error out of run() is caught, the
-- streams are closed (every waiting coroutine wakes up and ends), and
-- run() is called again, a bounded number of times.
-- VARIANT "errorfunc": sched.errorfunc counts the errors and closes the
-- streams; a coroutine that ends with its work undone must have been
-- reported to errorfunc (xpcall does not call its handler for a memory
-- error, so the scheduler has to).
--
-- In both, a watchdog coroutine (added after the first error, and from
-- the start with errorfunc) gives the others 2 s to end; those still
-- waiting then were lost by the scheduler: it removes them, so that run()
-- returns, and the run fails.
local variant = ...
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local L = require "torturelib"

if variant ~= "raise" and variant ~= "errorfunc" then
  error("usage: h_torture_sched.lua raise|errorfunc", 0)
end

local sched = Scheduler.new()
local streams = {}        -- every socket, to close after an error
local tasks = {}          -- every coroutine of ours (the watchdog aside)
local finished = 0        -- tasks that did all their work
local aborted = 0         -- tasks that found their stream closed
local reported = 0        -- errors given to errorfunc
local lost = 0            -- tasks the watchdog found still waiting

local function closeall()
  for i = 1, #streams do streams[i]:close() end
end

if variant == "errorfunc" then
  -- Counting needs no memory; closing neither.
  sched.errorfunc = function()
    reported = reported + 1
    closeall()
  end
end

-- f returns true when it did all its work, false when a closed stream
-- stopped it; an error is the scheduler's to report.
local function task(f)
  local co = sched:add(function()
    if f() then
      finished = finished + 1
    else
      aborted = aborted + 1
    end
  end)
  tasks[#tasks + 1] = co
  return co
end

-- Echo over one pair: the client sends messages and checks each echo;
-- the server echoes until the end of the stream.
local function echo_pair(k)
  local l = L.need(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local c = L.need(socket.connect("127.0.0.1", port), "connect failed", "connect")
  local s = L.need(l:accept(), "accept failed", "accept")
  l:close()
  streams[#streams + 1] = c
  streams[#streams + 1] = s
  c:settimeout(3)
  s:settimeout(3)
  task(function()
    local off = 0
    for i = 1, 4 do
      local n = k * 1000 + i * 7
      if not c:send(L.bytes(off, n)) then return false end
      local got = 0
      while got < n do
        local d = c:recv()
        if not d then return false end
        L.check(d, off + got, "echo client")
        got = got + #d
      end
      off = off + n
    end
    c:close()
    return true
  end)
  task(function()
    while true do
      local d = s:recv()
      if not d then break end
      if not s:send(d) then return false end
    end
    s:close()
    return true
  end)
end

for k = 1, 3 do echo_pair(k) end
for _ = 1, 2 do
  task(function()
    for _ = 1, 3 do socket.sleep(1) end
    return true
  end)
end
task(function()
  for _ = 1, 5 do coroutine.yield() end
  return true
end)
for _ = 1, 2 do
  task(function()
    if not socket.resolve("localhost") then error("FAIL: no localhost", 0) end
    return true
  end)
end
task(function()
  -- A coroutine that adds another one while running.
  local inner = task(function() socket.sleep(1) return true end)
  if not sched:contains(inner) and coroutine.status(inner) ~= "dead" then
    error("FAIL: an added coroutine is not in the scheduler", 0)
  end
  return true
end)

local function pending()
  local n = 0
  for i = 1, #tasks do
    if coroutine.status(tasks[i]) ~= "dead" then n = n + 1 end
  end
  return n
end

-- A thread, not a function: errorfunc does not wrap it. A new one after
-- every error: an earlier one may itself have been lost by the scheduler
-- (then it is removed like a lost task, so that run() can return).
local watchdogs = {}
local function watchdog()
  local me = coroutine.running()
  for _ = 1, 200 do
    if pending() == 0 then break end
    socket.sleep(10)
  end
  for i = 1, #tasks do
    if coroutine.status(tasks[i]) ~= "dead" then
      lost = lost + 1
      sched:remove(tasks[i])
    end
  end
  for i = 1, #watchdogs do
    local w = watchdogs[i]
    if w ~= me and coroutine.status(w) == "suspended" and sched:contains(w) then
      sched:remove(w)
    end
  end
end

local function add_watchdog()
  for _ = 1, 20 do
    local ok, co = pcall(coroutine.create, watchdog)
    if ok then
      watchdogs[#watchdogs + 1] = co
      if pcall(sched.add, sched, co) then return end
    end
  end
end

local raised, first = 0, nil
if variant == "errorfunc" then add_watchdog() end
local done = false
for _ = 1, 50 do
  local ok, err = pcall(sched.run, sched)
  if ok then
    done = true
    break
  end
  if not L.ismem(err) then error(err, 0) end
  raised = raised + 1
  first = first or err
  pcall(closeall)
  add_watchdog()
end
if not done then error(first, 0) end        -- memory never came back
local died = #tasks - finished - aborted - lost
if variant == "errorfunc" and died > reported + raised then
  error(string.format("FAIL: %d coroutine(s) died of an error, but errorfunc "
                      .. "was called %d time(s) and run() raised %d error(s)",
                      died, reported, raised), 0)
end
if lost > 0 then
  error(string.format("FAIL: after a memory error, %d coroutine(s) were never "
                      .. "resumed again (the scheduler lost them)", lost), 0)
end
if raised > 0 or reported > 0 then
  error(first or "not enough memory (reported to errorfunc)", 0)
end
if finished ~= #tasks then
  error(string.format("FAIL: run() returned with %d of %d coroutines done",
                      finished, #tasks), 0)
end

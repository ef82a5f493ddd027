-- SPDX-License-Identifier: MIT
-- t_threads.lua: a modestly threaded mix meant for ThreadSanitizer runs
-- (well under 300 worker threads): concurrent connects, echoes with sleeps
-- in between, resolves, closes racing with waiting recvs, sockets dropped
-- with work in flight. Every operation's result is checked.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local CLIENTS = 60          -- each: one client recv + one server recv thread at most
local RACERS = 20           -- close vs recv
local RESOLVERS = 10
local ROUNDS = 4

local sched = Scheduler.new()
local failures = {}
local acceptor, l = socket.bind(sched, "127.0.0.1:0", function(s)
  -- Bounded: a client socket dropped below must be closed by the GC, and
  -- then this side sees the end; if not, report it instead of hanging.
  s:settimeout(15)
  for _ = 1, 100 do
    local d, err = s:recv()
    if err == "timeout" then
      failures[#failures + 1] = "server side: no end of stream within 15 s " ..
        "(a dropped client socket was not closed by the GC?)"
    end
    if not d then break end
    if not s:send(d) then break end
  end
end)
local _, port = l:getsockname()

local counts = { echo = 0, race = 0, resolve = 0, dropped = 0 }
local pending = CLIENTS + RACERS + RESOLVERS + 1

local function finished()
  pending = pending - 1
  if pending == 0 then sched:remove(acceptor); l:close() end
end

local function guarded(name, fn)
  return function()
    local ok, err = pcall(fn)
    if ok then counts[name] = counts[name] + 1
    else failures[#failures + 1] = name .. ": " .. tostring(err) end
    finished()
  end
end

-- Echo clients with small sleeps between messages.
for i = 1, CLIENTS do
  sched:add(guarded("echo", function()
    local c = assert(socket.connect("127.0.0.1", port))
    for r = 1, ROUNDS do
      local m = ("c%d r%d "):format(i, r) .. string.rep("e", (i * 37 + r) % 2000)
      T.eq(c:send(m), true, "send")
      T.eq(T.recv_n(c, #m, "echo"), m, "echo")
      socket.sleep((i + r) % 7)
    end
    c:close()
  end))
end

-- Close racing a waiting recv: one coroutine waits, another closes soon
-- after (at varying delays, sometimes 0).
for i = 1, RACERS do
  sched:add(guarded("race", function()
    local c = assert(socket.connect("127.0.0.1", port))
    local got = "none"
    sched:add(function() got = c:recv() end)
    socket.sleep(i % 5)
    c:close()
    T.wait_until(function() return got ~= "none" end, 5000, "recv woken by close")
    T.eq(got, nil, "recv result after close")
  end))
end

-- Resolves running alongside.
for _ = 1, RESOLVERS do
  sched:add(guarded("resolve", function()
    if not socket.resolve then return end
    local addrs = socket.resolve("localhost")
    T.check(type(addrs) == "table" and #addrs > 0, "resolve gave %s", T.repr(addrs))
  end))
end

-- Sockets dropped with a recv in flight, then collected.
sched:add(guarded("dropped", function()
  for _ = 1, 20 do
    local c = assert(socket.connect("127.0.0.1", port))
    local co = coroutine.create(function() c:recv() end)
    coroutine.resume(co)
  end
  collectgarbage("collect")
  socket.sleep(20)
  collectgarbage("collect")
end))

sched:run()

T.check(#failures == 0, "%d failures; first: %s", #failures, tostring(failures[1]))
T.eq(counts.echo, CLIENTS, "echo clients done")
T.eq(counts.race, RACERS, "close/recv races done")
T.eq(counts.resolve, RESOLVERS, "resolves done")
T.eq(counts.dropped, 1, "dropped-sockets coroutine done")
T.note("threads in this process at the end: %s", tostring(T.thread_count()))
T.ok("threaded mix: %d echo clients, %d close races, %d resolves", CLIENTS, RACERS, RESOLVERS)
T.done()

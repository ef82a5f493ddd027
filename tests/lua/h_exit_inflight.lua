-- SPDX-License-Identifier: MIT
-- h_exit_inflight.lua MODE: child helper. Starts operations that stay in
-- flight (recv and accept on idle sockets, a send on a full buffer, a long
-- sleep, a resolve), prints "started", then ends the process while they are
-- still pending. It must exit promptly and cleanly (status 0).
-- MODE:
--   close     fall off the end of the script: lua.c closes the state
--   exit      os.exit(0, true): close the state, then exit
--   noclose   os.exit(0): exit without closing the state
--   insched   os.exit(0, true) from inside a running scheduler coroutine
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local mode = arg[1] or "close"

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local c = assert(socket.connect("127.0.0.1", port))
local s = assert(l:accept())
local c2 = assert(socket.connect("127.0.0.1", port))
local s2 = assert(l:accept())
local big = string.rep("z", 16 * 1024 * 1024)

local sched = Scheduler.new()
sched:add(function() s:recv() end)              -- peer never writes
sched:add(function() c:recv() end)
sched:add(function() l:accept() end)            -- nobody else connects
sched:add(function() c2:send(big) end)          -- s2 never reads
sched:add(function() socket.sleep(60000) end)
if socket.resolve then sched:add(function() socket.resolve("localhost") end) end

-- Coroutines outside the scheduler, resumed once and abandoned.
local co = coroutine.create(function() s2:recv() end)
assert(coroutine.resume(co))

io.stdout:write("started\n")
io.stdout:flush()

if mode == "exit" then
  os.exit(0, true)
elseif mode == "noclose" then
  os.exit(0)
elseif mode == "insched" then
  sched:add(function()
    socket.sleep(10)
    io.stdout:write("exiting from a coroutine\n")
    io.stdout:flush()
    os.exit(0, true)
  end)
  sched:run()
  error("unreachable: run() returned")
end
-- "close": the script ends here with everything in flight.

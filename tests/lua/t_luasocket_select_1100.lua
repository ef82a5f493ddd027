-- SPDX-License-Identifier: MIT
-- t_luasocket_select_1100.lua: pluto.luasocket's select is not bound by
-- FD_SETSIZE (LuaSocket's stops at 1,024 descriptors).  1,100 connected
-- pairs (2,200 descriptors, most numbered above 1,024); one coroutine
-- selects over the 1,100 accepted sockets and waits until another
-- coroutine makes number 1,070 readable, then over all of them for
-- writing; outside coroutines once more (poll).
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local N = 1100
T.need(2 * N + 100, nil, "1,100 connected pairs")

local srv = assert(socket.bind("127.0.0.1", 0, 2048))
local ip, port = srv:getsockname()
local clients, served = {}, {}
for i = 1, N do
  clients[i] = assert(socket.connect(ip, port))
  served[i] = assert(srv:accept())
end
srv:close()
local high = 0
for i = 1, N do high = math.max(high, served[i]:getfd()) end
T.check(high > 1024, "descriptors above FD_SETSIZE (highest %d)", high)

local sched = Scheduler.new()
local result = {}
sched:add(function()
  local t0 = native._now()
  local r, w, err = socket.select(served, nil, 10)
  result.dt = native._now() - t0
  result.r, result.err = r, err
  local w2
  r, w2 = socket.select(nil, served, 5)
  result.writable = #w2
end)
sched:add(function()
  native.sleep(100)
  clients[1070]:send("ping\n")
end)
sched:run()
T.eq(result.err, nil, "select found a ready socket")
T.eq(#result.r, 1, "exactly one readable")
T.eq(result.r[1], served[1070], "the one that was sent to")
T.eq(result.r[served[1070]], 1, "mapped to its index")
T.check(result.dt >= 80 and result.dt < 5000, "waited %d ms for it", math.floor(result.dt))
T.eq(result.writable, N, "all 1,100 writable")
T.eq(served[1070]:receive(), "ping", "and it reads")
T.ok("one coroutine selected over %d sockets (descriptors up to %d)", N, high)

-- Outside coroutines: poll(2) on all of them.
clients[3]:send("x")
local r = socket.select(served, nil, 5)
T.eq(r[1], served[3], "outside a coroutine too")
T.ok("select over %d sockets outside coroutines", N)

for i = 1, N do clients[i]:close(); served[i]:close() end
T.done()

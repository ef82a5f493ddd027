-- SPDX-License-Identifier: MIT
-- t_luasocket_ltn12.lua: LTN12 pumps (Debian's ltn12.lua) through
-- pluto.luasocket's socket.sink and socket.source: "keep-open" and
-- "close-when-done" sinks, "by-length" (exactly that many bytes, the rest
-- left in the buffer) and "until-closed" sources (closes the socket at the
-- end), the defaults, pump.step and pump.all, 1 MiB through a pump in a
-- scheduler with both ends as coroutines, and the sinks' and sources'
-- getfd and dirty.
local T = require "testlib"
local luasocket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local okl, ltn12 = pcall(require, "ltn12")
if not okl then T.skip("ltn12 (lua-socket) is not installed: %s", tostring(ltn12)) end

local srv = assert(luasocket.bind("127.0.0.1", 0))
local ip, port = srv:getsockname()
local function pair()
  local c = assert(luasocket.connect(ip, port))
  return c, assert(srv:accept())
end

-- Outside coroutines.
do
  local c, a = pair()
  local sink = luasocket.sink("keep-open", c)
  T.eq(sink:getfd(), c:getfd(), "a sink's getfd")
  T.eq(ltn12.pump.all(ltn12.source.string("first part;"), sink), 1, "pump.all into keep-open")
  T.check(c:getfd() >= 0, "keep-open left the socket open")
  T.eq(ltn12.pump.all(ltn12.source.string("second"), luasocket.sink("close-when-done", c)), 1,
       "pump.all into close-when-done")
  T.eq(c:getfd(), -1, "close-when-done closed it")
  local src = luasocket.source("by-length", a, 5)
  T.eq(src:dirty(), false, "nothing buffered yet")
  local t = {}
  T.eq(ltn12.pump.all(src, (ltn12.sink.table(t))), 1, "by-length pumped")
  T.eq(table.concat(t), "first", "exactly 5 bytes")
  T.eq(a:dirty(), true, "the rest stays in the buffer")
  local t2 = {}
  local src2 = luasocket.source(a)                   -- default: until-closed
  T.eq(ltn12.pump.step(src2, (ltn12.sink.table(t2))), 1, "pump.step")
  ltn12.pump.all(src2, (ltn12.sink.table(t2)))
  T.eq(table.concat(t2), " part;second", "until-closed to the end")
  T.eq(a:getfd(), -1, "until-closed closed the socket at the end")
  T.eq(src2(), nil, "and then ends")
  T.ok("sinks and sources outside coroutines")
end

-- A short stream for by-length: nil, "closed".
do
  local c, a = pair()
  c:send("abc")
  c:close()
  local src = luasocket.source("by-length", a, 10)
  local chunk, err = src()
  T.eq(chunk, nil, "by-length on a short stream"); T.eq(err, "closed", "closed")
  a:close()
end

-- 1 MiB through a pump, both ends coroutines of one scheduler; the
-- default sink is keep-open.
do
  local sched = Scheduler.new()
  local c, a = pair()
  local block = ("0123456789abcdef"):rep(64)         -- 1 KiB
  local sent, got = 0, nil
  sched:add(function()
    local n = 0
    local function src()
      n = n + 1
      if n > 1024 then return nil end
      sent = sent + #block
      return block
    end
    ltn12.pump.all(src, luasocket.sink(c))
    c:close()
  end)
  sched:add(function()
    local t = {}
    ltn12.pump.all(luasocket.source("until-closed", a), (ltn12.sink.table(t)))
    got = table.concat(t)
  end)
  sched:run()
  T.eq(sent, 1024 * 1024, "sent 1 MiB")
  T.eq(#got, 1024 * 1024, "received 1 MiB")
  T.check(got == block:rep(1024), "the bytes, in order")
  T.ok("1 MiB through ltn12 pumps in a scheduler")
end

srv:close()
T.done()

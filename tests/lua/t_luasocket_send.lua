-- SPDX-License-Identifier: MIT
-- t_luasocket_send.lua: pluto.luasocket's client:send(data [, i [, j]]):
-- the bytes i..j as string.sub cuts them (negative indexes from the end,
-- out-of-range ones clipped), the index of the last byte sent as the
-- result, the index before i for an empty range; at a timeout nil,
-- "timeout" and the last index that went, which is exactly what the peer
-- then receives; on a closed connection nil, "closed".  Outside
-- coroutines and in a scheduler.
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function pair()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local ip, port = srv:getsockname()
  local c = assert(socket.connect(ip, port))
  local a = assert(srv:accept())
  srv:close()
  return c, a
end

local function body(where)
  local c, a = pair()
  local data = "0123456789"
  local cases = {
    { nil, nil, "0123456789", 10 },
    { 3, nil, "23456789", 10 },
    { 3, 5, "234", 5 },
    { -3, nil, "789", 10 },
    { 2, -2, "12345678", 9 },
    { -100, 2, "01", 2 },
    { 8, 100, "789", 10 },
    { 0, 0, "", 0 },
    { 6, 5, "", 5 },
    { 2.7, 4.2, "123", 4 },
  }
  for _, k in ipairs(cases) do
    local i, j, want, last = k[1], k[2], k[3], k[4]
    local what = ("send(data, %s, %s)"):format(tostring(i), tostring(j))
    T.eq(c:send(data, i, j), last, what .. " returns the last index")
    if #want > 0 then
      c:send("|")
      T.eq(a:receive(#want + 1), want .. "|", what .. " sent")
    end
  end
  T.eq(c:send(12345), 5, "a number is sent as its text")
  T.eq(a:receive(5), "12345", "the number's text")
  T.raises("string expected", "send(nil)", c.send, c, nil)
  T.ok("%s: send with i and j", where)

  -- A timeout in the middle: nil, "timeout", the last index sent; the
  -- peer gets exactly those bytes.  i = 11 shifts every index by 10.
  local big = ("x"):rep(10) .. ("y"):rep(24 * 1024 * 1024 - 10)
  c:settimeout(0.3)
  local _, tx0 = c:getstats()
  local r1, r2, last = c:send(big, 11)
  T.eq(r1, nil, "a send the peer does not read"); T.eq(r2, "timeout", "times out")
  T.check(last > 10 and last < #big, "last index %s", tostring(last))
  local _, tx = c:getstats()
  T.eq(tx - tx0, last - 10, "getstats counts what went")
  c:close()
  local got = a:receive("*a")
  T.eq(#got, last - 10, "the peer received up to the last index")
  T.check(not got:find("x", 1, true), "from index 11 on")
  a:close()
  T.ok("%s: send timed out after %d bytes, all of them received", where, last - 10)

  -- The peer gone: nil, "closed" (a reset is "closed" too).
  local c2, a2 = pair()
  a2:setoption("linger", { on = true, timeout = 0 })
  c2:send("unread")                       -- so that a2's close resets
  native.sleep(50)
  a2:close()
  local ok, err
  for _ = 1, 100 do
    ok, err = c2:send(("z"):rep(65536))
    if not ok then break end
    native.sleep(10)
  end
  T.eq(ok, nil, "send to a reset connection fails")
  T.eq(err, "closed", "a reset is 'closed'")
  local d, rerr, _, detail = c2:receive()
  T.eq(d, nil, "receive after the reset"); T.eq(rerr, "closed", "receive: closed")
  T.check(detail == nil or detail:find("reset", 1, true),
          "the system's text comes fourth: %s", tostring(detail))
  c2:close()
  T.ok("%s: a reset peer is 'closed'", where)
end

body("outside coroutines")

do
  local sched = Scheduler.new()
  local done = false
  sched:add(function() body("in a coroutine"); done = true end)
  sched:run()
  T.check(done, "the coroutine finished")
end

T.done()

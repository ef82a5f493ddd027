-- SPDX-License-Identifier: MIT
-- t_unrecv.lua: s:unrecv pushes data to the front of the receive buffer
-- (the seed: unrecv "World", unrecv "Hello", then recv gives Hello, World);
-- s:peek shows what recv would return next without consuming it, returns
-- nothing when nothing is buffered, and never yields or blocks.
local T = require "testlib"
local socket = require "pluto.socket"

local c, s, l = T.pair(socket)

------------------------------------------------------------------------
-- The seed's example.
c:unrecv("World")
c:unrecv("Hello")
T.eq(c:recv(), "Hello", "first recv after unrecv World, unrecv Hello")
T.eq(c:recv(), "World", "second recv")
T.ok("seed example: Hello then World")

------------------------------------------------------------------------
-- peek with nothing buffered: nothing (or nil), at once, also inside a
-- coroutine where it must not yield.
T.eq(c:peek(), nil, "peek with nothing buffered")
do
  local co = coroutine.create(function() return "peeked", c:peek() end)
  local r = table.pack(coroutine.resume(co))
  T.check(r[1], "peek in a coroutine raised: %s", tostring(r[2]))
  T.eq(coroutine.status(co), "dead", "peek in a coroutine must not yield; coroutine status")
  T.eq(r[2], "peeked", "coroutine ran to its end")
  T.eq(r[3], nil, "peek in a coroutine with nothing buffered")
end
T.ok("peek with nothing buffered returns nothing, without yielding")

------------------------------------------------------------------------
-- peek after unrecv: shows the chunk, twice, without consuming.
c:unrecv("abc")
T.eq(c:peek(), "abc", "peek after unrecv")
T.eq(c:peek(), "abc", "peek again")
T.eq(c:recv(), "abc", "recv after peek")
T.eq(c:peek(), nil, "peek after the chunk was consumed")
T.ok("peek shows the unrecv'd chunk without consuming it")

------------------------------------------------------------------------
-- Network data: peek sees it (once it has arrived), recv returns the same.
T.eq(s:send("net-data"), true, "server send")
local p = T.wait_until(function() return c:peek() end, 5000, "peek to see data sent by the peer")
T.eq(p, "net-data", "peek of network data")
T.eq(c:recv(), "net-data", "recv after peek of network data")
T.ok("peek shows received data, recv returns it")

------------------------------------------------------------------------
-- unrecv'd data comes before data already received from the network.
T.eq(s:send("tail"), true, "server send tail")
T.wait_until(function() return c:peek() end, 5000, "peek to see the tail")
c:unrecv("head")
T.eq(c:peek(), "head", "peek after unrecv over buffered network data")
T.eq(c:recv(), "head", "unrecv'd chunk first")
T.eq(c:recv(), "tail", "then the network data")
T.ok("unrecv'd data comes before buffered network data")

------------------------------------------------------------------------
-- A received chunk pushed back is received again intact (the usual parser
-- pattern: read, take what you need, unrecv the rest).
T.eq(s:send("line1\nline2"), true, "server send two lines")
local got = T.recv_n(c, #"line1\nline2", "two lines")
local first, rest = got:match("^(.-\n)(.*)$")
c:unrecv(rest)
T.eq(first, "line1\n", "first line")
T.eq(c:recv(), "line2", "the rest, pushed back")
T.ok("unrecv of the unparsed rest")

------------------------------------------------------------------------
-- After the peer closed: buffered and unrecv'd data are still delivered,
-- then nil.
T.eq(s:send("last"), true, "server send last")
s:close()
T.eq(T.recv_n(c, 4, "last"), "last", "data sent before the peer closed")
c:unrecv("again")
T.eq(c:recv(), "again", "unrecv'd data after the peer closed")
T.eq(c:recv(), nil, "recv at end of stream")
T.eq(c:peek(), nil, "peek at end of stream")
T.ok("after the peer closed: buffered data, then nil")

c:close(); l:close()
T.done()

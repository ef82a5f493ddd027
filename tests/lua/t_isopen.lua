-- SPDX-License-Identifier: MIT
-- t_isopen.lua: s:isopen() is true after connect and accept, false after
-- close, false after the peer closed and the buffer was drained;
-- istls() and isudp() are false for plain TCP sockets.
local T = require "testlib"
local socket = require "pluto.socket"

-- The seed's example.
do
  local c, s, l = T.pair(socket)
  T.eq(c:isopen(), true, "isopen() after connect")
  T.eq(s:isopen(), true, "isopen() of an accepted socket")
  T.eq(c:istls(), false, "istls() of a plain TCP client")
  T.eq(s:istls(), false, "istls() of a plain TCP server side")
  T.eq(c:isudp(), false, "isudp() of a TCP client")
  T.eq(s:isudp(), false, "isudp() of a TCP server side")
  c:close()
  T.eq(c:isopen(), false, "isopen() after close")
  local ok, err = pcall(c.close, c)
  T.check(ok, "closing twice raised: %s", tostring(err))
  T.eq(c:isopen(), false, "isopen() after a second close")
  s:close(); l:close()
  T.ok("true after connect, false after close; close twice is harmless")
end

-- Peer closed with data still buffered: open until drained, then false.
do
  local c, s, l = T.pair(socket)
  T.eq(c:send("bye"), true, "send before closing")
  c:close()
  T.eq(T.recv_n(s, 3, "bye"), "bye", "data sent before the peer closed")
  T.eq(s:recv(), nil, "recv at end of stream")
  T.eq(s:isopen(), false, "isopen() after the peer closed and the buffer is drained")
  s:close(); l:close()
  T.ok("false after the peer closed and the buffer was drained")
end

-- Peer closed, nothing sent: once recv has seen the end, isopen is false.
do
  local c, s, l = T.pair(socket)
  s:close()
  T.eq(c:recv(), nil, "recv after the peer closed")
  T.eq(c:isopen(), false, "isopen() after recv returned nil")
  c:close(); l:close()
  T.ok("false once recv saw the end of stream")
end

-- __tostring reflects the state (lead's API decision: "socket (closed)").
do
  local c, s, l = T.pair(socket)
  T.check(tostring(c):match("^socket"), "tostring(socket): %s", tostring(c))
  c:close()
  T.has(tostring(c), "closed", "tostring of a closed socket")
  T.check(tostring(l):match("^listener"), "tostring(listener): %s", tostring(l))
  s:close(); l:close()
  T.ok("tostring shows the state")
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_luasocket_native.lua: a pluto.socket socket becomes a pluto.luasocket
-- object (luasocket.wrap) and back (obj:unwrap()) without copying or
-- reordering what is buffered: bytes pushed back with unrecv, a chunk
-- looked at with peek, and what the kernel still holds come out of the
-- object's receive in order; what a receive pattern left in the buffer is
-- there for the native recv.  Also listeners (tcp{server}), UDP sockets
-- (udpserver: unconnected, connect(..., "udp"): connected), LuaSocket's
-- default limits set by wrap, and wrong arguments.
local T = require "testlib"
local luasocket = require "pluto.luasocket"
local native = require "pluto.socket"

local c, s, l = T.pair(native)

-- Buffered data of three kinds, then the LuaSocket object.
c:send("line1\nline2\n")
T.wait_until(function() return s:peek() end, 2000, "the first chunk")
T.eq(s:peek(), "line1\nline2\n", "peeked (it stays in the buffer)")
s:unrecv("UNRECV\n")
s:settimeout(5)
local obj = luasocket.wrap(s)
T.eq(obj.class, "tcp{client}", "a native socket wraps as a client")
T.eq(select(2, obj:gettimeout()), -1, "LuaSocket's default: no limit")
T.eq(obj:dirty(), true, "the object sees the buffer")
T.eq(obj:receive(), "UNRECV", "the unrecv'd bytes first")
T.eq(obj:receive(), "line1", "then the peeked chunk")
c:send("tail")
T.eq(obj:receive(), "line2", "in order")
T.eq(obj:receive(2), "ta", "then what came later")
T.ok("native buffer read through the LuaSocket object, in order")

-- Back: the native socket is the same, with the rest still buffered.
local back = obj:unwrap()
T.eq(back, s, "unwrap gives the same native socket")
T.eq(back:recv(), "il", "what the pattern left is there for recv")
back:unrecv("again\n")
T.eq(obj:receive(), "again", "and the two views share one buffer")
T.eq(obj:getfd(), s:getfd(), "one descriptor")
obj:close()
T.eq(s:isopen(), false, "closing the object closes the native socket")
c:close()
T.ok("unwrap shares the socket and its buffer")

-- A listener becomes a server object.
local so = luasocket.wrap(l)
T.eq(so.class, "tcp{server}", "a listener wraps as a server")
local _, port = l:getsockname()
local c2 = assert(native.connect("127.0.0.1", port))
local a2 = assert(so:accept())
T.eq(a2.class, "tcp{client}", "accept gives client objects")
c2:send("hi\n")
T.eq(a2:receive(), "hi", "and they receive")
c2:close(); a2:close(); so:close()
T.eq(l:getfd(), -1, "closing the server closed the listener")

-- UDP.
local us = assert(native.udpserver("127.0.0.1:0"))
local uo = luasocket.wrap(us)
T.eq(uo.class, "udp{unconnected}", "a udpserver wraps unconnected")
local _, uport = us:getsockname()
local uc = assert(native.connect("127.0.0.1", uport, "udp"))
local uco = luasocket.wrap(uc)
T.eq(uco.class, "udp{connected}", "a connected UDP socket wraps connected")
T.eq(uco:send("dgram"), 5, "send through the object")
uo:settimeout(2)
local d, ip = uo:receivefrom()
T.eq(d, "dgram", "receivefrom"); T.eq(ip, "127.0.0.1", "sender")
uo:close(); uco:close()

T.raises("pluto.socket socket or listener expected", "wrap of something else",
         luasocket.wrap, {})
T.ok("listeners and UDP sockets wrap too")
T.done()

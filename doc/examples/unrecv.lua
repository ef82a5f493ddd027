-- SPDX-License-Identifier: MIT
-- unrecv.lua -- the receive buffer: recv, peek and unrecv.
--
--   lua5.4 doc/examples/unrecv.lua
--
-- Everything here runs outside any coroutine, so calls that wait simply
-- block.  A listener and a client in one script work because the kernel
-- completes a loopback connection before anyone calls accept.

local socket = require "pluto.socket"

local l = assert(socket.listen("127.0.0.1:0"))   -- port 0: any free port
local ip, port = l:getsockname()
local c = assert(socket.connect(ip, port))
print(l:hasconnection())        --> true
local srv = assert(l:accept())  -- returns at once: a client is waiting
print(c:getside(), srv:getside())   --> client  server

-- unrecv pushes a chunk in front of the buffer: the last one pushed comes
-- out first.
c:unrecv("World")
c:unrecv("Hello")
print(c:recv())                 --> Hello
print(c:recv())                 --> World

-- peek shows the next chunk without taking it; it never waits.
assert(srv:send("ping"))
local chunk = c:recv()          --> "ping" (blocks until it is there)
c:unrecv(chunk)                 -- put it back...
print(c:peek())                 --> ping
print(c:recv())                 --> ping
print(select("#", c:peek()))    --> 0   (nothing buffered: no value at all)

-- A typical use: read up to a delimiter, give back what follows it.
assert(srv:send("first line\nsecond"))
local data = ""
while not data:find("\n", 1, true) do
    data = data .. assert(c:recv())
end
local nl = data:find("\n", 1, true)
if nl < #data then
    c:unrecv(data:sub(nl + 1))
end
print(data:sub(1, nl - 1))      --> first line
print(c:recv())                 --> second

c:close()
srv:close()
l:close()

-- SPDX-License-Identifier: MIT
-- timeout.lua -- settimeout, shutdown and close, seen from the receiver.
--
--   lua5.4 doc/examples/timeout.lua

local socket = require "pluto.socket"

local l = assert(socket.listen("127.0.0.1:0"))
local c = assert(socket.connect(l:getsockname()))
local srv = assert(l:accept())

-- No data is coming: with a limit, recv gives up and says why.
c:settimeout(0.2)
print(c:recv())                 --> nil  timeout  ETIMEDOUT
-- A timed-out recv loses nothing; the socket is still usable.
print(c:isopen())               --> true
assert(srv:send("late but fine"))
print(c:recv())                 --> late but fine
c:settimeout(nil)               -- back to no limit (the default)

-- shutdown is a half-close: the peer sees the end of the stream, and the
-- socket that shut down can still receive.
srv:shutdown()
assert(c:send("still heard"))
print(srv:recv())               --> still heard
print(c:recv())                 --> nil      (end of stream, no error)

-- close: both ends are done.  Closing twice is harmless.
c:close()
c:close()
print(c:isopen(), tostring(c))  --> false  socket (closed)
print(srv:recv())               --> nil      (the client closed)
print(srv:isopen())             --> false    (peer closed, buffer drained)
srv:close()
l:close()

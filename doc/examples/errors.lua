-- SPDX-License-Identifier: MIT
-- errors.lua -- the two kinds of failure.
--
--   lua5.4 doc/examples/errors.lua
--
-- A failure of the network is returned as values: nil, a message, and the
-- errno name.  A mistake in the call itself raises a Lua error.

local socket = require "pluto.socket"

-- Find a port where nothing listens: take a free one, then let it go.
local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
l:close()

local s, msg, errno = socket.connect("127.0.0.1", port)
print(s, msg, errno)            --> nil  Connection refused  ECONNREFUSED

-- Usual pattern: check the first value, report the others.
local ok = socket.connect("127.0.0.1", port)
if not ok then
    print("could not connect, carrying on without it")
end

-- Caller mistakes raise; use pcall if you must survive them.  (Through
-- pcall, the function is named with its module: 'pluto.socket.connect'.)
print(pcall(socket.connect, "127.0.0.1", 70000))
--> false  bad argument #2 to '...connect' (port out of range)
print(pcall(socket.listen, "not-an-ip:80"))
--> false  bad argument #1 to '...listen' (not an IP address with a port)

-- A name that does not resolve is a failure of the network, not a mistake.
print(socket.connect("no-such-host.invalid", 80))
--> nil  Name or service not known  EAI_NONAME

-- Two listeners on one address: the second one fails as a value.
local a = assert(socket.listen("127.0.0.1:0"))
local ip, p = a:getsockname()
print(socket.listen(ip .. ":" .. p))   --> nil  Address already in use  EADDRINUSE
a:close()

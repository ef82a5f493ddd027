-- SPDX-License-Identifier: MIT
-- hasconnection.lua -- wait for a client without blocking in accept, as in
-- Pluto's documentation of listener:hasconnection().
--
--   lua5.4 doc/examples/hasconnection.lua [port]     (default: 8080)
--   curl http://127.0.0.1:8080/                      (from another terminal)

local socket = require "pluto.socket"

local port = tonumber(arg[1]) or 8080
local l = socket.listen("127.0.0.1:" .. port)
    or error("failed to listen on TCP/" .. port)

print(("waiting for a client on %s:%d ..."):format(l:getsockname()))
while not l:hasconnection() do
    socket.sleep(1000)                  -- blocks 1 s: we are in no coroutine
    io.write("."); io.flush()
end
print()
local s = l:accept()                    -- guaranteed not to wait now
print("from", s:getpeer())
print(s:recv())                         -- the start of the request
s:send("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
s:close()
l:close()

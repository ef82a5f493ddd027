-- SPDX-License-Identifier: MIT
-- hello_server.lua -- the "Hello, world!" HTTP server from Pluto's socket
-- documentation, in Lua 5.4.
--
--   lua5.4 doc/examples/hello_server.lua [port]      (default port: 8080)
--   curl http://127.0.0.1:8080/                      (from another terminal)
--
-- Stop it with Ctrl-C.  It listens on the loopback address only.

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local port = tonumber(arg[1]) or 8080

local sched = Scheduler.new()

-- socket.bind raises an error if the port cannot be bound (in use, or
-- below 1024 without the privilege), so there is nothing to check here.
local _, listener = socket.bind(sched, "127.0.0.1:" .. port, function(s)
    -- Read the request head first.  Pluto's version answers at once; but
    -- closing a TCP socket with unread bytes makes Linux send a reset,
    -- which can reach the client before it has read the answer.
    s:settimeout(10)
    local head = ""
    while not head:find("\r\n\r\n", 1, true) do
        local data = s:recv()
        if not data or #head > 65536 then
            return          -- gone, timed out, or not HTTP: bind closes s
        end
        head = head .. data
    end

    local content = "Hello, world!"
    s:send("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: "
           .. #content .. "\r\n\r\n" .. content)
    -- Returning closes the socket.
end)

print(("Listening on http://%s:%d/"):format(listener:getsockname()))
sched:run()

-- SPDX-License-Identifier: MIT
-- h_hello_server.lua [ADDR]: child helper. The seed's socket.bind example
-- translated to Lua 5.4: an HTTP server answering "Hello, world!" under a
-- pluto.scheduler. Listens on ADDR (default 0: any free port, dual stack),
-- prints the port on its first line, then serves until killed.
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local sched = Scheduler.new()
local _, l = socket.bind(sched, tonumber(arg[1]) or arg[1] or 0, function(s)
  local content = "Hello, world!"
  s:send("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: " .. #content ..
         "\r\n\r\n" .. content)
end)
local _, port = l:getsockname()
io.stdout:write(port, "\n")
io.stdout:flush()
sched:run()

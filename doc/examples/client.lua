-- SPDX-License-Identifier: MIT
-- client.lua -- a plain blocking client: no scheduler, no coroutine.
--
--   lua5.4 doc/examples/hello_server.lua 8080 &     (or any HTTP server)
--   lua5.4 doc/examples/client.lua [port] [host]   (defaults: 8080 127.0.0.1)
--
-- Outside a coroutine every call that has to wait blocks the calling thread
-- (without using CPU) until it is done, so the code reads top to bottom.

local socket = require "pluto.socket"

local port = tonumber(arg[1]) or 8080
local host = arg[2] or "127.0.0.1"

local s, err, errno = socket.connect(host, port)
if not s then
    -- e.g. "Connection refused"  ECONNREFUSED, when nothing listens there
    io.stderr:write(("connect to %s:%d failed: %s (%s)\n")
                    :format(host, port, err, tostring(errno)))
    os.exit(1)
end
print("connected: " .. tostring(s))
print("peer:", s:getpeer())
print("local:", s:getsockname())

s:settimeout(10)         -- give up on any single recv or send after 10 s

local ok, serr = s:send("GET / HTTP/1.1\r\nHost: " .. host
                        .. "\r\nConnection: close\r\n\r\n")
if not ok then
    io.stderr:write("send failed: " .. tostring(serr) .. "\n")
    os.exit(1)
end

-- recv returns the chunks in the order they arrived, then nil once the
-- server has closed the connection and everything was read.
local total = 0
while true do
    local data, rerr, rerrno = s:recv()
    if not data then
        if rerr then     -- a failure, not the end of the stream
            io.stderr:write(("recv failed: %s (%s)\n"):format(rerr, tostring(rerrno)))
            os.exit(1)
        end
        break
    end
    total = total + #data
    io.write(data)
end
io.write("\n")
print(("%d bytes received; isopen: %s"):format(total, tostring(s:isopen())))
s:close()

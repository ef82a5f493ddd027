-- SPDX-License-Identifier: MIT
-- udp_echo.lua -- a UDP echo server and its clients in one process, under
-- one scheduler.
--
--   lua5.4 doc/examples/udp_echo.lua [port]      (default 0: any free port)
--
-- The server is a socket.udpserver: each recv returns one datagram, and
-- send answers whoever sent the last one.  Five clients, made with
-- socket.connect(ip, port, "udp"), send a few datagrams each and wait for
-- the echoes, sending again when an answer does not come in time (UDP may
-- lose datagrams; on loopback it does not, but a client must not hang if
-- it does).  At the end the server uses setpeer to send a datagram to a
-- socket that never wrote to it, and a "stop" datagram ends its loop.
-- Loopback only; while it runs, `nc -u 127.0.0.1 PORT` can talk to it too.

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local port = tonumber(arg[1]) or 0
local NCLIENTS, NMESSAGES = 5, 3

local server = assert(socket.udpserver("127.0.0.1:" .. port))
local ip
ip, port = server:getsockname()
print(("UDP echo server on %s:%d  (%s)"):format(ip, port, tostring(server)))

local sched = Scheduler.new()

-- The server: one coroutine, one datagram at a time.
sched:add(function()
    while true do
        local data, err, errno = server:recv()
        if not data then
            if err then               -- a failure; the socket stays usable
                print("server recv:", err, errno)
            else
                break                 -- nil alone: the socket was closed
            end
        elseif data == "stop" then
            server:send("stopping")
            break
        elseif data == "" then
            server:send("(empty datagram)")
        else
            server:send(data:upper()) -- to the sender of this datagram
        end
    end
    server:close()
    print("server: closed")
end)

-- Send `msg` and wait for the answer, trying up to three times.
local function ask(c, msg)
    for _ = 1, 3 do
        local ok, err = c:send(msg)
        if not ok then return nil, err end
        local answer, rerr = c:recv()
        if answer then return answer end
        if rerr ~= "timeout" then return nil, rerr end
        -- lost (or slow): send again
    end
    return nil, "no answer"
end

local done = 0
for i = 1, NCLIENTS do
    sched:add(function()
        local c = assert(socket.connect(ip, port, "udp"))
        c:settimeout(1)               -- each recv waits at most 1 s
        for j = 1, NMESSAGES do
            local msg = ("client %d, datagram %d"):format(i, j)
            local answer, err = ask(c, msg)
            if answer ~= msg:upper() then
                print(("client %d: bad answer %q (%s)")
                      :format(i, tostring(answer), tostring(err)))
            end
        end
        print(("client %d done; isudp: %s, side: %s, peer: %s:%d")
              :format(i, tostring(c:isudp()), c:getside(), c:getpeer()))
        c:close()
        done = done + 1
    end)
end

-- When the clients are done: setpeer, an empty datagram, then "stop".
sched:add(function()
    while done < NCLIENTS do socket.sleep(10) end

    -- A socket that never sent anything to the server.
    local listener = assert(socket.udpserver("127.0.0.1:0"))
    listener:settimeout(1)
    server:setpeer(listener:getsockname())   -- ip, port: aim the next send
    server:send("unsolicited hello")
    print("listener got:", listener:recv(), "from", listener:getpeer())

    -- An empty datagram is a datagram too ("" on the server side).
    local c = assert(socket.connect(ip, port, "udp"))
    c:settimeout(1)
    c:send("")
    print("empty datagram answered with:", c:recv())
    c:send("stop")
    print("stop answered with:", c:recv())
    c:close()
    listener:close()
end)

sched:run()

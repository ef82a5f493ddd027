-- SPDX-License-Identifier: MIT
-- t_getside.lua: s:getside() is "client" for a socket from connect and
-- "server" for one from a listener (accept, or the socket.bind callback).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

do
  local c, s, l = T.pair(socket)
  T.eq(c:getside(), "client", "getside() of a connected socket")
  T.eq(s:getside(), "server", "getside() of an accepted socket")
  c:close(); s:close()
  -- The side does not change when closed (it is a property of the origin);
  -- if a closed socket raises instead, that is fine too.
  local ok, side = pcall(c.getside, c)
  T.check(not ok or side == "client", "getside() of a closed client: %s", T.repr(side))
  l:close()
  T.ok("connect -> client, accept -> server")
end

if socket.listen("[::1]:0") then
  local c, s, l = T.pair(socket, "::1")
  T.eq(c:getside(), "client", "getside() of an IPv6 connected socket")
  T.eq(s:getside(), "server", "getside() of an IPv6 accepted socket")
  c:close(); s:close(); l:close()
  T.ok("IPv6: client and server")
end

do
  local sched = Scheduler.new()
  local side_in_callback, side_of_client
  local acceptor, l = socket.bind(sched, "127.0.0.1:0", function(s)
    side_in_callback = s:getside()
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    side_of_client = c:getside()
    c:settimeout(5)              -- bounded even if the server never closes
    c:recv()                     -- ends when the server side closes
    c:close()
    sched:remove(acceptor)
    l:close()
  end)
  sched:run()
  T.eq(side_in_callback, "server", "getside() in a bind callback")
  T.eq(side_of_client, "client", "getside() of a connect in a coroutine")
  T.ok("bind callback -> server")
end

T.done()

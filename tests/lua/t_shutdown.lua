-- SPDX-License-Identifier: MIT
-- t_shutdown.lua: s:shutdown() half-closes: the peer reads our data then
-- end of stream (nil), while we can still receive the peer's reply; a send
-- after shutdown fails with nil, message (a value, not an error).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Outside coroutines.
do
  local c, s, l = T.pair(socket)
  T.eq(c:send("request"), true, "send before shutdown")
  c:shutdown()
  T.eq(T.recv_all(s, 1024), "request", "peer reads the data, then end of stream")
  T.eq(s:recv(), nil, "peer's recv after end of stream")
  T.eq(s:send("reply"), true, "peer's reply")
  s:close()
  T.eq(T.recv_n(c, 5, "reply"), "reply", "reply received after our shutdown")
  T.eq(c:recv(), nil, "end of stream after the reply")
  local r = table.pack(c:send("more"))
  T.eq(r[1], nil, "send after shutdown: first value")
  T.check(type(r[2]) == "string", "send after shutdown: message, got %s", T.repr(r[2]))
  c:close(); l:close()
  T.ok("half close outside coroutines")
end

-- In a scheduler, the reply produced only after the server saw the end:
-- the usual "request, shutdown, read the response" client.
do
  local sched = Scheduler.new()
  local acceptor, l = socket.bind(sched, "127.0.0.1:0", function(s)
    local req = T.recv_all(s, 1 << 20)      -- everything until the client's shutdown
    s:send("got " .. #req .. " bytes")
  end)
  local _, port = l:getsockname()
  local reply
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:send(string.rep("q", 100000))
    c:shutdown()
    c:settimeout(10)                       -- bounded even if the end never arrives
    reply = T.recv_all(c, 1024)
    c:close()
    sched:remove(acceptor)
    l:close()
  end)
  sched:run()
  T.eq(reply, "got 100000 bytes", "reply after shutdown")
  T.ok("half close in a scheduler: server saw the end, client got the reply")
end

T.done()

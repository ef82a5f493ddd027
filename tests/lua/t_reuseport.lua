-- SPDX-License-Identifier: MIT
-- t_reuseport.lua: listen and bind take { reuseport = true, backlog = n }
-- (SPEC §8): two processes listen on one port and the kernel shares the
-- clients out between them; without reuseport the second bind is refused.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local sched = Scheduler.new()
local _, l = socket.bind(sched, "127.0.0.1:0", function(s) s:send("parent") end,
                         { reuseport = true, backlog = 64 })
local _, port = l:getsockname()
T.eq(l:getoption("reuseport"), true, "the listener's SO_REUSEPORT")

local busy = socket.listen("127.0.0.1:" .. port)
T.check(not busy, "a second listener without reuseport should be refused")
T.raises("backlog", "a backlog of 0", function() socket.listen("127.0.0.1:0", { backlog = 0 }) end)
T.raises("unknown option", "a misspelt option",
         function() socket.listen("127.0.0.1:0", { reuse_port = true }) end)

local pid, h = T.spawn_lua("h_reuseport_server", tostring(port))
T.eq(T.readline(h, "h_reuseport_server"), "listening", "the child's report")
local who = {}
sched:add(function()
  for _ = 1, 40 do
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(5)
    local answer = c:recv()
    who[answer or "nothing"] = (who[answer or "nothing"] or 0) + 1
    c:close()
  end
  l:close()
end)
sched:run()
T.kill(pid, h)
T.check((who.parent or 0) > 0 and (who.child or 0) > 0 and not who.nothing,
        "40 clients: %d answered by this process, %d by the child, %d unanswered",
        who.parent or 0, who.child or 0, who.nothing or 0)
T.ok("two processes on port %d: %d and %d of 40 clients", port, who.parent, who.child)
T.done()

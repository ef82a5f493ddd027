-- SPDX-License-Identifier: MIT
-- h_reuseport_server.lua PORT: child helper of t_reuseport. Listens on
-- 127.0.0.1:PORT with reuseport set, prints "listening", then answers
-- each client with "child" until killed (or for 60 s at most).
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local sched = Scheduler.new()
local _, l = socket.bind(sched, "127.0.0.1:" .. arg[1], function(s)
  s:send("child")
end, { reuseport = true })
print("listening")
io.stdout:flush()
sched:add(function() socket.sleep(60000); l:close() end)
sched:run()

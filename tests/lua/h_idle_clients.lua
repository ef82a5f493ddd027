-- SPDX-License-Identifier: MIT
-- h_idle_clients.lua HOST PORT N: child helper. Opens N connections to
-- HOST:PORT and keeps them open and silent. Prints "ready N" once all are
-- connected (or "fail I message" and exits 1), then waits until killed.
-- It gives up by itself after two minutes, so it never outlives a test
-- that failed to kill it.
local socket = require "pluto.socket"
local host, port, n = arg[1], tonumber(arg[2]), tonumber(arg[3])
local conns = {}
for i = 1, n do
  local c, msg = socket.connect(host, port)
  if not c then
    io.stdout:write("fail ", i, " ", tostring(msg), "\n")
    io.stdout:flush()
    os.exit(1)
  end
  conns[i] = c
end
io.stdout:write("ready ", n, "\n")
io.stdout:flush()
for _ = 1, 120 do socket.sleep(1000) end

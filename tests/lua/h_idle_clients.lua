-- SPDX-License-Identifier: MIT
-- h_idle_clients.lua N HOST PORT [HOST PORT ...]: child helper. Opens N
-- connections, spread round-robin over the HOST:PORT pairs given (several
-- loopback addresses give each its own range of local ports), and keeps
-- them open and silent. Prints "ready N" once all are connected (or
-- "fail I message" and exits 1), then waits until killed. It gives up by
-- itself after two minutes, so it never outlives a test that failed to
-- kill it.
local socket = require "pluto.socket"
local n = tonumber(arg[1])
local targets = {}
for i = 2, #arg, 2 do targets[#targets + 1] = { arg[i], tonumber(arg[i + 1]) } end
local conns = {}
for i = 1, n do
  local t = targets[(i - 1) % #targets + 1]
  local c, msg = socket.connect(t[1], t[2])
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

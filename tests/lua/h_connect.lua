-- SPDX-License-Identifier: MIT
-- h_connect.lua HOST PORT: child helper. Connects once with
-- socket.connect(HOST, PORT) and prints one line:
--   "ok <peer ip> <peer port> <reply>"  after a round trip ("ping" -> reply), or
--   "fail <message> <errno name>"
-- then exits 0. Used where the connecting process needs a different view of
-- the system than the test (e.g. its own /etc/hosts in a mount namespace).
local socket = require "pluto.socket"
local host, port = arg[1], tonumber(arg[2])
local s, msg, errno = socket.connect(host, port)
if not s then
  print("fail " .. tostring(msg) .. " " .. tostring(errno))
  os.exit(0)
end
local ip, pport = s:getpeer()
assert(s:send("ping"))
local reply = s:recv()
print("ok " .. tostring(ip) .. " " .. tostring(pport) .. " " .. tostring(reply))
s:close()

-- SPDX-License-Identifier: MIT
-- h_send_close.lua PORT SIZE [CAFILE]: child helper of t_close_linger.
-- Connects to 127.0.0.1:PORT (TLS when CAFILE is given, verifying the
-- server as "localhost"), sends SIZE bytes of t_close_linger's pattern,
-- closes and exits at once: nothing of this process waits for the peer.
local socket = require "pluto.socket"
local port, size, cafile = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local parts = {}
for i = 0, size // 1024 - 1 do
  parts[#parts + 1] = string.format("%08d", i) .. string.rep(string.char(65 + i % 26), 1016)
end
local c = assert(socket.connect("127.0.0.1", port))
if cafile then
  assert(c:starttls("localhost", { cafile = cafile }))
else
  socket.sleep(20)           -- the server's unread reply is here by now
end
assert(c:send(table.concat(parts)))
c:close()
os.exit(0)

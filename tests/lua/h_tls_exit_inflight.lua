-- SPDX-License-Identifier: MIT
-- h_tls_exit_inflight.lua MODE CHAIN KEY CAFILE: child helper for
-- t_tls_gc.lua. Leaves TLS work in flight and ends the process:
--   a server handshake waiting for a ClientHello that never comes,
--   a client handshake waiting for a server that never answers,
--   an established session with a recv waiting and a 16 MiB send blocked
--   (the peer does not read),
-- prints "started", then ends. It must exit promptly with status 0.
-- MODE:
--   close     fall off the end of the script: lua.c closes the state
--   exit      os.exit(0, true): close the state, then exit
--   noclose   os.exit(0): exit without closing the state
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local mode, chainfile, keyfile, cafile = arg[1], arg[2], arg[3], arg[4]

local function readfile(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local certs = { { chain = readfile(chainfile), private_key = readfile(keyfile) } }

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local sched = Scheduler.new()

-- Server handshake, silent client.
local silent = assert(socket.connect("127.0.0.1", port))
local s1 = assert(l:accept())
sched:add(function() s1:starttls(certs) end)

-- Client handshake, silent server.
local c2 = assert(socket.connect("127.0.0.1", port))
local raw2 = assert(l:accept())
sched:add(function() c2:starttls("localhost", { cafile = cafile }) end)

-- An established session.
local c3 = assert(socket.connect("127.0.0.1", port))
local s3 = assert(l:accept())
local ready = 0
local setup = Scheduler.new()
setup:add(function() assert(s3:starttls(certs)); ready = ready + 1 end)
setup:add(function() assert(c3:starttls("localhost", { cafile = cafile })); ready = ready + 1 end)
setup:run()
assert(ready == 2, "the TLS pair did not come up")
sched:add(function() c3:recv() end)                         -- s3 never sends
sched:add(function() s3:send(string.rep("y", 16 * 1024 * 1024)) end)  -- c3 never reads it

-- The client handshake is running once its ClientHello arrives.
assert(raw2:recv(), "no ClientHello")

io.stdout:write("started\n")
io.stdout:flush()

if mode == "exit" then
  os.exit(0, true)
elseif mode == "noclose" then
  os.exit(0)
end
-- "close": the script ends here with everything in flight.
local keep = { silent, raw2, l }
assert(#keep == 3)

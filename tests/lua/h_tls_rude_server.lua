-- SPDX-License-Identifier: MIT
-- h_tls_rude_server.lua MODE CERTFILE KEYFILE: child helper of
-- t_tls_errors, a TLS server (LuaSocket + LuaSec, not ours) that ends its
-- connection rudely. Prints the port it listens on (127.0.0.1), accepts
-- one client, completes the handshake, sends "hello", reads one byte from
-- the client, then exits without closing anything:
--   reset     with SO_LINGER 0 set, so the kernel resets the connection;
--   truncate  plainly, so the kernel sends FIN but no TLS close_notify.
-- It gives up by itself after 20 s.
local socket = require "socket"
local ssl = require "ssl"
local mode, certfile, keyfile = arg[1], arg[2], arg[3]
local l = assert(socket.bind("127.0.0.1", 0))
local _, port = l:getsockname()
print(port)
io.stdout:flush()
l:settimeout(20)
local c = assert(l:accept())
c:settimeout(20)
if mode == "reset" then assert(c:setoption("linger", { on = true, timeout = 0 })) end
local ctx = assert(ssl.newcontext({ mode = "server", protocol = "any",
                                    certificate = certfile, key = keyfile }))
c = assert(ssl.wrap(c, ctx))
assert(c:dohandshake())
assert(c:send("hello"))
c:receive(1)
os.exit(0)                  -- no close, no close_notify: the kernel ends it

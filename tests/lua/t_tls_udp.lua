-- SPDX-License-Identifier: MIT
-- t_tls_udp.lua: starttls on a UDP socket is a caller error (TLS needs a
-- stream; SPEC §2 makes the similar misuse, setpeer on a TCP socket, a Lua
-- error): s:starttls(hostname) on a UDP client socket and
-- s:starttls(certs) on a udpserver raise a Lua error naming starttls, send
-- nothing (no ClientHello datagram reaches the peer), and leave the socket
-- usable for datagrams. A settimeout(2) bounds a broken run.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"

C.need("certtool")
local pki = C.make()

local u = assert(socket.udpserver("127.0.0.1:0"))
local _, uport = u:getsockname()
local c = assert(socket.connect("127.0.0.1", uport, "udp"))
T.eq(c:isudp(), true, "UDP client socket")
c:settimeout(2)
u:settimeout(2)

-- Client side.
local ok, err = pcall(function() return c:starttls("localhost", { cafile = pki.cafile }) end)
T.check(not ok, "starttls on a UDP socket should raise an error; it returned %s (%s)",
        tostring(err), "a TLS handshake was attempted over datagrams")
T.has(tostring(err), "starttls", "the error names starttls")
T.ok("starttls(hostname) on a UDP socket: %s", tostring(err))
T.eq(u:peek(), nil, "datagram waiting at the UDP server (a ClientHello was sent)")
T.eq(c:isopen(), true, "the UDP socket stays open")
T.eq(c:send("plain datagram"), true, "a datagram after the error")
T.eq(u:recv(), "plain datagram", "the UDP server receives it")

-- Server side (udpserver), with certs.
ok, err = pcall(function() return u:starttls({ pki.localhost }) end)
T.check(not ok, "starttls(certs) on a udpserver should raise an error; it returned %s",
        tostring(err))
T.has(tostring(err), "starttls", "the error names starttls")
T.eq(u:isopen(), true, "the udpserver stays open")
T.ok("starttls(certs) on a udpserver: %s", tostring(err))

c:close()
u:close()
pki:cleanup()
T.done()

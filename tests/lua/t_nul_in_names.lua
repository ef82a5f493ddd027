-- SPDX-License-Identifier: MIT
-- t_nul_in_names.lua: a string that becomes a C string and holds a NUL
-- byte is a caller's error naming the argument (SPEC §2), never cut short
-- at the NUL: connect("127.0.0.1\0.example.org", p) used to connect to
-- 127.0.0.1, starttls("localhost\0.example.org") to succeed against a
-- certificate for localhost. Hosts, listen addresses, IPs, option names,
-- ALPN names, a cafile path, config fields.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"

local function argerr(n, fname, what, fn)
  local ok, err = pcall(fn)
  T.check(not ok, "%s: expected an error, but the call succeeded (returned %s)",
          what, T.repr(err))
  T.has(tostring(err), string.format("bad argument #%d to '%s'", n, fname), what)
  return tostring(err)
end

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()

local e = argerr(1, "connect", "connect(ip\\0name)",
                 function() socket.connect("127.0.0.1\0.example.org", port) end)
T.has(e, "NUL", "connect's message")
T.check(not l:hasconnection(), "connect with a NUL in the host must not connect")
argerr(3, "connect", "connect kind \"tcp\\0x\"",
       function() socket.connect("127.0.0.1", port, "tcp\0x") end)
argerr(1, "listen", "listen(\"127.0.0.1\\0:80\")",
       function() socket.listen("127.0.0.1\0junk:0") end)
argerr(1, "udpserver", "udpserver(\"127.0.0.1:0\\0x\")",
       function() socket.udpserver("127.0.0.1:0\0x") end)
e = argerr(1, "resolve", "resolve(\"local\\0host\")",
           function() socket.resolve("local\0host") end)
T.has(e, "NUL", "resolve's message (not \"empty host name\")")
argerr(2, "resolve", "resolve family \"inet\\0\"",
       function() socket.resolve("localhost", "inet\0") end)
do
  local u = assert(socket.udpserver("127.0.0.1:0"))
  argerr(1, "setpeer", "setpeer(\"127.0.0.1\\0junk\")",
         function() u:setpeer("127.0.0.1\0junk", 9) end)
  u:close()
end
argerr(1, "config", "config{ [\"idle_ms\\0\"] = 5 }",
       function() socket.config{ ["idle_ms\0"] = 5 } end)
T.ok("hosts, addresses, kinds, families, IPs and config fields with a NUL byte raise")

if C.have("certtool") then
  local pki = C.make()
  local function fresh()
    local c = assert(socket.connect("127.0.0.1", port))
    local s = assert(l:accept())
    return c, s
  end
  local c, s = fresh()
  e = argerr(1, "starttls", "starttls(\"localhost\\0.example.org\")",
             function() c:starttls("localhost\0.example.org", { cafile = pki.cafile }) end)
  T.check(c:isopen() and not c:istls(), "the socket is untouched after the refused starttls")
  argerr(2, "starttls", "starttls alpn {\"h2\\0x\"}",
         function() c:starttls("localhost", { alpn = { "h2\0x" } }) end)
  argerr(2, "starttls", "starttls option \"alpn\\0\"",
         function() c:starttls("localhost", { ["alpn\0"] = { "h2" } }) end)
  argerr(2, "starttls", "starttls cafile with a NUL",
         function() c:starttls("localhost", { cafile = pki.cafile .. "\0junk" }) end)
  c:close(); s:close()
  pki:cleanup()
  T.ok("starttls: a host name, an ALPN name, an option name or a cafile with a NUL byte raise")
else
  T.note("certtool missing: the starttls cases were not run")
end
l:close()
T.done()

-- SPDX-License-Identifier: MIT
-- t_luasocket_tls.lua: TLS on pluto.luasocket objects.  A client object
-- does starttls with pluto.socket's options, then receive patterns and
-- send work over TLS; the same on the accepted side (server starttls with
-- certificates).  Debian's socket.http fetches https:// URLs through a
-- `create` of a few lines (the one of doc/luasocket.md): the chain and the
-- host name are verified by default, so a certificate for another name,
-- or from a CA not trusted, fails the request, and the right one passes.
-- The servers are pluto.socket's, in the same scheduler; certificates are
-- made by certtool (tlscerts.lua) for this run.
local T = require "testlib"
local C = require "tlscerts"
local luasocket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
package.loaded.socket = luasocket
local ok, http = pcall(require, "socket.http")
if not ok then T.skip("Debian's socket.http (lua-socket) cannot be loaded: %s", tostring(http)) end
local ltn12 = require "ltn12"
local pki = C.make()

-- The create function of doc/luasocket.md, with the test CA.
local function https_create(tls_opts)
  return function()
    local c = luasocket.tcp()
    local connect = c.connect
    function c:connect(host, port)
      local ok1, err = connect(self, host, port)
      if not ok1 then return nil, err end
      return self:starttls(host, tls_opts)      -- verifies chain and name
    end
    return c
  end
end

local function https_server(sched, certs, body)
  local _, l = native.bind(sched, "127.0.0.1:0", function(s)
    if not s:starttls(certs) then return end
    while true do
      local line = s:receive("*l")
      if not line or line == "" then break end
    end
    s:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
  end)
  return l, select(2, l:getsockname())
end

local sched = Scheduler.new()
local out = {}
local good, good_port = https_server(sched, { pki.localhost }, "secret page")
local wrong, wrong_port = https_server(sched, { pki.wrong }, "nope")
local untrusted, untrusted_port = https_server(sched, { pki.untrusted }, "nope")

sched:add(function()
  local create = https_create({ cafile = pki.cafile })
  local t = {}
  out.good = table.pack(http.request{ url = "https://localhost:" .. good_port .. "/",
                                      create = create, sink = ltn12.sink.table(t) })
  out.good_body = table.concat(t)
  out.wrong = table.pack(http.request{ url = "https://localhost:" .. wrong_port .. "/",
                                       create = create })
  out.untrusted = table.pack(http.request{ url = "https://localhost:" .. untrusted_port .. "/",
                                           create = create })
  -- No cafile: the system's store, which does not know the test CA.
  out.system = table.pack(http.request{ url = "https://localhost:" .. good_port .. "/",
                                        create = https_create() })
  good:close(); wrong:close(); untrusted:close()
end)

-- A client object and an accepted object, both over TLS: patterns.
local lsrv = assert(luasocket.bind("127.0.0.1", 0))
local _, lport = lsrv:getsockname()
sched:add(function()
  local a = assert(lsrv:accept())
  lsrv:close()
  local tok, terr = a:starttls({ pki.localhost })
  out.server_tls = { tok, terr }
  a:send("line one\r\nline two\n12345")
  out.server_got = a:receive("*l")
  a:close()
end)
sched:add(function()
  local c = assert(luasocket.connect("127.0.0.1", lport))
  local tok, proto = c:starttls("localhost", { cafile = pki.cafile, alpn = { "x-test" } })
  out.client_tls = { tok, proto }
  out.lines = { c:receive(), c:receive("l"), c:receive(5) }
  c:send("from the client\n")
  out.unwrapped_tls = c:unwrap():istls()
  c:settimeout(5)
  out.after = table.pack(c:receive())
  c:close()
end)
sched:run()

T.eq(out.good[1], 1, "https: result"); T.eq(out.good[2], 200, "https: status")
T.eq(out.good_body, "secret page", "https: body")
T.eq(out.wrong[1], nil, "a certificate for another name fails")
T.has(out.wrong[2], "verif", "with a verification message")
T.eq(out.untrusted[1], nil, "a certificate from an untrusted CA fails")
T.has(out.untrusted[2], "verif", "with a verification message")
T.eq(out.system[1], nil, "without cafile the test CA is not trusted")
T.ok("socket.http over TLS through create: verified by default (%s)", out.wrong[2])

T.eq(out.server_tls[1], true, "server starttls on an accepted object")
T.eq(out.client_tls[1], true, "client starttls on a client object")
T.eq(out.lines[1], "line one", "receive *l over TLS")
T.eq(out.lines[2], "line two", "receive l over TLS")
T.eq(out.lines[3], "12345", "receive a count over TLS")
T.eq(out.server_got, "from the client", "send over TLS")
T.eq(out.unwrapped_tls, true, "the native socket is the TLS one")
T.eq(out.after[1], nil, "after the peer closed"); T.eq(out.after[2], "closed", "closed")
T.ok("client and server objects over TLS: patterns and send")

pki:cleanup()
T.done()

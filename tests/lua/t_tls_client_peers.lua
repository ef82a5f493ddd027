-- SPDX-License-Identifier: MIT
-- t_tls_client_peers.lua: our TLS client (s:starttls(hostname, {cafile}))
-- against two independent TLS servers, verifying their certificate with
-- our test CA and exchanging data:
--   openssl s_server -www   (answers GET / with a status page)
--   gnutls-serv --http      (answers GET / with a page about the session)
-- For each: the handshake returns true, istls() is true, the HTTP response
-- is complete (up to the peer's close), and the same server refuses to
-- verify when we trust another CA (so the success above is a real check).
-- cafile is given once as a path and once as PEM text.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"

C.need("certtool", "openssl", "gnutls-serv")
local pki = C.make()

-- One HTTP/1.0 GET over TLS to 127.0.0.1:port; returns the whole response.
local function fetch(port, opts, what)
  local c, err = socket.connect("127.0.0.1", port)
  T.check(c, "%s: connect: %s", what, tostring(err))
  c:settimeout(15)
  local ok, msg, errname = c:starttls("localhost", opts)
  T.check(ok == true, "%s: starttls: %s %s %s", what, tostring(ok), tostring(msg),
          tostring(errname))
  T.check(c:istls(), "%s: istls() false after a successful starttls", what)
  T.check(c:isopen(), "%s: isopen() false after a successful starttls", what)
  T.eq(c:send("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"), true, what .. ": send")
  local resp = C.recv_until_close(c)
  c:close()
  T.check(not c:isopen(), "%s: isopen() after close", what)
  return resp
end

local function refused(port, what)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(15)
  local ok, msg, errname = c:starttls("localhost", { cafile = pki.untrusted_cafile })
  T.eq(ok, false, what .. ": starttls trusting another CA")
  T.check(type(msg) == "string" and #msg > 0, "%s: no message", what)
  T.check(type(errname) == "string", "%s: no error name", what)
  T.check(not c:isopen(), "%s: socket open after a failed starttls", what)
  T.ok("%s: trusting another CA fails: %s (%s)", what, msg, errname)
end

-- openssl s_server
do
  local out = pki:path("s_server.log")
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www",
                         port, T.q(pki.localhost.certfile), T.q(pki.localhost.keyfile))
  end, out)
  local resp = fetch(port, { cafile = pki.cafile }, "openssl s_server")
  T.has(resp, "HTTP/1.0 200 ok", "openssl s_server: status line")
  T.has(resp, "</BODY></HTML>", "openssl s_server: end of the page")
  T.has(resp, "New, TLSv1.", "openssl s_server: session report")
  T.ok("openssl s_server: verified with cafile (path), got %d bytes", #resp)
  resp = fetch(port, { cafile = pki.ca }, "openssl s_server (cafile as PEM text)")
  T.has(resp, "HTTP/1.0 200 ok", "openssl s_server (PEM text): status line")
  T.ok("openssl s_server: verified with cafile (PEM text)")
  refused(port, "openssl s_server")
  T.kill(pid, h)
end

-- gnutls-serv
do
  local out = pki:path("gnutls-serv.log")
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("gnutls-serv --x509certfile %s --x509keyfile %s -p %d --http",
                         T.q(pki.localhost.certfile), T.q(pki.localhost.keyfile), port)
  end, out)
  local resp = fetch(port, { cafile = pki.cafile }, "gnutls-serv")
  T.check(resp:match("^HTTP/1%.[01] 200 OK"), "gnutls-serv: status line, got %s",
          T.repr(resp:sub(1, 200)))
  T.has(resp, "</HTML>", "gnutls-serv: end of the page")
  T.ok("gnutls-serv: verified with cafile, got %d bytes", #resp)
  refused(port, "gnutls-serv")
  T.kill(pid, h)
end

pki:cleanup()
T.done()

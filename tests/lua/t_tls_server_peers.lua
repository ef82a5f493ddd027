-- SPDX-License-Identifier: MIT
-- t_tls_server_peers.lua: our TLS server (socket.bind + s:starttls(certs),
-- answering one HTTP/1.1 request per connection) is reached and verified by
-- three independent TLS clients:
--   curl --cacert CA https://localhost:PORT/   (and https://127.0.0.1:PORT/,
--                                               and [::1] where IPv6 works)
--   gnutls-cli --x509cafile CA -p PORT localhost (request on stdin)
--   openssl s_client -verify_return_error -CAfile CA -servername localhost
--                                              ("Verify return code: 0")
-- s_client also sees our close() end the stream with close_notify.
-- Each must get the exact body, which carries a token unique to this run
-- and to the request, so an answer from anything but our server fails. The
-- tools run as child processes writing to files, while our server runs in
-- this process's scheduler (waiting for a tool yields).
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool", "curl", "gnutls-cli", "openssl")
local pki = C.make()

local token = string.format("%d-%d", T.self_pid(), math.floor(T.now_ms()))
local served, server_fail = 0, nil
local hs_failures = {}
local paths = {}

local sched = Scheduler.new()
-- A bare port: dual stack, so both 127.0.0.1 and ::1 reach it.
local _, l = socket.bind(sched, 0, function(s)
  local ok, msg, errname = s:starttls({ pki.localhost })
  if not ok then
    -- Expected once: the curl that trusts another CA aborts the handshake.
    hs_failures[#hs_failures + 1] = string.format("%s %s %s", tostring(ok),
                                                  tostring(msg), tostring(errname))
    T.check(not s:isopen(), "socket still open after a failed starttls")
    return
  end
  if not s:istls() then server_fail = "istls() false after starttls"; return end
  local req, err = C.read_header(s)
  if not req then server_fail = "reading the request: " .. tostring(err); return end
  local path = req:match("^GET (%S+) HTTP/1%.[01]\r?\n") or "?"
  paths[#paths + 1] = path
  local ok2, err2 = s:send(C.http_response("pluto says hello " .. token .. " " .. path .. "\n"))
  if not ok2 then server_fail = "send: " .. tostring(err2); return end
  served = served + 1
end)
local _, port = l:getsockname()
T.check(type(port) == "number" and port > 0, "listener port")

local function expect_body(out, path, what)
  T.has(out, "pluto says hello " .. token .. " " .. path, what .. ": body")
end

-- Is ::1 usable here?
local has_ipv6 = false
do
  local l6 = socket.listen("[::1]:0")
  if l6 then has_ipv6 = true; l6:close() end
end

sched:add(function()
  local out = pki:path("out.txt")

  -- curl, by name (checks the DNS SAN) and by IPv4 address (IP SAN).
  local text, how, code = C.run_tool(string.format(
    "curl -sS --max-time 15 --cacert %s --resolve localhost:%d:127.0.0.1 https://localhost:%d/curl-name",
    T.q(pki.cafile), port, port), out)
  T.check(how == "exit" and code == 0, "curl https://localhost failed (%s %s): %s",
          tostring(how), tostring(code), text)
  expect_body(text, "/curl-name", "curl by name")
  T.ok("curl https://localhost:%d/ verified our certificate and got the body", port)

  text, how, code = C.run_tool(string.format(
    "curl -sS --max-time 15 --cacert %s https://127.0.0.1:%d/curl-ip",
    T.q(pki.cafile), port), out)
  T.check(how == "exit" and code == 0, "curl https://127.0.0.1 failed (%s %s): %s",
          tostring(how), tostring(code), text)
  expect_body(text, "/curl-ip", "curl by IPv4 address")
  T.ok("curl https://127.0.0.1:%d/ (IP SAN) verified and got the body", port)

  if has_ipv6 then
    text, how, code = C.run_tool(string.format(
      "curl -sS --max-time 15 --cacert %s https://[::1]:%d/curl-ip6",
      T.q(pki.cafile), port), out)
    T.check(how == "exit" and code == 0, "curl https://[::1] failed (%s %s): %s",
            tostring(how), tostring(code), text)
    expect_body(text, "/curl-ip6", "curl by IPv6 address")
    T.ok("curl https://[::1]:%d/ verified and got the body", port)
  end

  -- curl must refuse when it trusts another CA: proves verification is real.
  text, how, code = C.run_tool(string.format(
    "curl -sS --max-time 15 --cacert %s https://127.0.0.1:%d/refused",
    T.q(pki.untrusted_cafile), port), out)
  T.check(how == "exit" and code ~= 0, "curl trusting another CA should fail, got %s %s: %s",
          tostring(how), tostring(code), text)
  T.ok("curl trusting another CA is refused (exit %s)", tostring(code))

  -- gnutls-cli: the request comes from stdin; the server answers and closes.
  local req = pki:path("req.txt")
  C.writefile(req, "GET /gnutls-cli HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  text, how, code = C.run_tool(string.format(
    "gnutls-cli --x509cafile %s -p %d localhost", T.q(pki.cafile), port), out, req)
  T.has(text, "HTTP/1.1 200 OK", "gnutls-cli: status line")
  expect_body(text, "/gnutls-cli", "gnutls-cli")
  T.check(not text:find("Verify failed", 1, true) and
          not text:find("certificate is NOT trusted", 1, true),
          "gnutls-cli did not trust our chain: %s", text)
  T.check(how == "exit" and code == 0, "gnutls-cli exit %s %s: %s", tostring(how),
          tostring(code), text)
  T.ok("gnutls-cli verified our certificate and got the response")

  -- openssl s_client: -ign_eof keeps it reading after stdin ends, until our
  -- server closes.
  C.writefile(req, "GET /openssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  text, how, code = C.run_tool(string.format(
    "openssl s_client -verify_return_error -CAfile %s -connect 127.0.0.1:%d"
      .. " -servername localhost -verify_hostname localhost -ign_eof",
    T.q(pki.cafile), port), out, req)
  T.has(text, "Verify return code: 0 (ok)", "openssl s_client: verification")
  T.has(text, "HTTP/1.1 200 OK", "openssl s_client: status line")
  expect_body(text, "/openssl", "openssl s_client")
  -- s_client prints "closed" when the stream ends with close_notify (an
  -- end without it is reported as an error): our close sends it.
  T.check(text:find("\nclosed\r?\n"), "openssl s_client: our server's close should send "
          .. "close_notify (s_client prints \"closed\"); output ends: %s", T.repr(text:sub(-300)))
  T.ok("openssl s_client: Verify return code: 0, got the response, then close_notify")

  l:close()
end)

sched:run()
T.check(not server_fail, "%s", tostring(server_fail))
local want = has_ipv6 and 5 or 4
T.eq(served, want, "requests served by our server")
T.ok("our server served %d requests: %s", served, table.concat(paths, " "))
T.eq(#hs_failures, 1, "server handshakes that failed (only the refusing curl's): "
     .. table.concat(hs_failures, "; "))
T.ok("the refusing curl's handshake failed on our side too: %s", hs_failures[1])
pki:cleanup()
T.done()

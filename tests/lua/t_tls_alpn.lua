-- SPDX-License-Identifier: MIT
-- t_tls_alpn.lua: ALPN, both ways.
--  * our client <-> our server: the server picks the first protocol of ITS
--    list that the client offers (server precedence), and both sides'
--    starttls return it as the second value; no common protocol, or ALPN
--    on one side only: the handshake still succeeds and no second value.
--  * our client <-> openssl s_server -alpn: we get the protocol it chose.
--  * our server <-> openssl s_client -alpn: s_client prints
--    "ALPN protocol: <ours>" and our starttls returned the same.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool", "openssl")
local pki = C.make()

-- our client <-> our server, in one scheduler. Each case: server alpn,
-- client alpn, expected protocol (nil: none).
local cases = {
  { { "h2", "http/1.1" }, { "http/1.1", "h2" }, "h2" },
  { { "h2", "http/1.1" }, { "spdy/3", "http/1.1" }, "http/1.1" },
  { { "x-pluto/1" }, { "x-pluto/1" }, "x-pluto/1" },
  { { "h2" }, { "imap" }, nil },
  { nil, { "h2", "http/1.1" }, nil },
  { { "h2" }, nil, nil },
}

for i, case in ipairs(cases) do
  local salpn, calpn, want = case[1], case[2], case[3]
  local sched = Scheduler.new()
  local sres, cres
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    sres = table.pack(s:starttls({ pki.localhost }, { alpn = salpn }))
    if sres[1] then
      local d = s:recv()
      if d then s:send("echo:" .. d) end
    end
  end)
  local _, port = l:getsockname()
  local echoed
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    cres = table.pack(c:starttls("localhost", { cafile = pki.cafile, alpn = calpn }))
    if cres[1] then
      c:send("case" .. i)
      echoed = c:recv()
    end
    c:close()
    l:close()
  end)
  sched:run()
  local what = string.format("case %d (server %s, client %s)", i,
    salpn and table.concat(salpn, ",") or "none", calpn and table.concat(calpn, ",") or "none")
  T.eq(cres[1], true, what .. ": client starttls (" .. tostring(cres[2]) .. ")")
  T.eq(sres[1], true, what .. ": server starttls (" .. tostring(sres[2]) .. ")")
  T.eq(cres[2], want, what .. ": protocol returned to the client")
  T.eq(sres[2], want, what .. ": protocol returned to the server")
  T.eq(echoed, "echo:case" .. i, what .. ": data after the handshake")
  T.ok("%s -> %s", what, tostring(want))
end

-- our client <-> openssl s_server -alpn
do
  local out = pki:path("s_server.log")
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s"
      .. " -alpn x-other,http/1.1 -www",
      port, T.q(pki.localhost.certfile), T.q(pki.localhost.keyfile))
  end, out)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(15)
  local ok, proto, errname = c:starttls("localhost",
    { cafile = pki.cafile, alpn = { "h2", "http/1.1" } })
  T.eq(ok, true, "starttls to openssl s_server (" .. tostring(proto) .. " "
       .. tostring(errname) .. ")")
  T.eq(proto, "http/1.1", "ALPN protocol chosen by openssl s_server")
  T.eq(c:send("GET / HTTP/1.0\r\n\r\n"), true, "send to openssl s_server")
  local resp = C.recv_until_close(c)
  c:close()
  T.has(resp, "HTTP/1.0 200 ok", "openssl s_server response")
  T.ok("our client <-> openssl s_server -alpn: %s", proto)
  T.kill(pid, h)
end

-- our server <-> openssl s_client -alpn
do
  local sched = Scheduler.new()
  local sres, got
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    sres = table.pack(s:starttls({ pki.localhost }, { alpn = { "h2", "http/1.1" } }))
    if not sres[1] then return end
    got = C.read_header(s)
    s:send(C.http_response("alpn=" .. tostring(sres[2]) .. "\n"))
  end)
  local _, port = l:getsockname()
  local text
  sched:add(function()
    local req = pki:path("req.txt")
    C.writefile(req, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    text = C.run_tool(string.format(
      "openssl s_client -connect 127.0.0.1:%d -servername localhost -CAfile %s"
        .. " -verify_return_error -alpn http/1.1,h2 -ign_eof",
      port, T.q(pki.cafile)), pki:path("s_client.log"), req)
    l:close()
  end)
  sched:run()
  T.eq(sres and sres[1], true, "our server's starttls with openssl s_client ("
       .. tostring(sres and sres[2]) .. ")")
  T.eq(sres[2], "h2", "protocol returned to our server")
  T.has(text, "ALPN protocol: h2", "openssl s_client's report")
  T.has(text, "Verify return code: 0 (ok)", "openssl s_client's verification")
  T.has(got, "GET / HTTP/1.1", "request received by our server")
  T.has(text, "alpn=h2", "response received by openssl s_client")
  T.ok("our server <-> openssl s_client -alpn: h2 on both sides")
end

pki:cleanup()
T.done()

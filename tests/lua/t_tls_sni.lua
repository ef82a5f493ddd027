-- SPDX-License-Identifier: MIT
-- t_tls_sni.lua: a server given two certificates (localhost and other.test)
-- picks the one named by the client's SNI.
--  * our client with hostname "other.test" and with "localhost" (cafile =
--    our CA) both verify: the client checks the name on the certificate,
--    so each success proves the server sent the matching one. Done with
--    both orders of the certs array, so "the first entry" cannot pass.
--  * control: a server with only the localhost certificate fails a client
--    asking for other.test (the check above is a real one).
--  * no SNI (the client connects by IP literal, which sends no SNI): the
--    server falls back to its first certificate, valid for 127.0.0.1 and
--    ::1; "[::1]" (the bracketed form getpeer() returns) works like "::1".
--  * openssl s_client -servername other.test / localhost shows the subject
--    CN of the certificate our server chose, and verifies it.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

-- Run a server with `certs` and, for each hostname in `names`, a client;
-- returns { [name] = { ok, msg, errname, echoed } } and the server results.
-- ip: the address to listen on and connect to (default 127.0.0.1).
local function session(certs, names, ip)
  ip = ip or "127.0.0.1"
  local sched = Scheduler.new()
  local results, server_results = {}, {}
  local listen_at = ip:find(":", 1, true) and ("[" .. ip .. "]:0") or (ip .. ":0")
  local _, l = socket.bind(sched, listen_at, function(s)
    s:settimeout(10)
    local r = table.pack(s:starttls(certs))
    server_results[#server_results + 1] = r
    if r[1] then
      local d = s:recv()
      if d then s:send("hello " .. d) end
    end
  end)
  local _, port = l:getsockname()
  sched:add(function()
    for _, name in ipairs(names) do
      local c = assert(socket.connect(ip, port))
      c:settimeout(10)
      local r = table.pack(c:starttls(name, { cafile = pki.cafile }))
      if r[1] then
        c:send(name)
        r.echoed = c:recv()
      end
      r.open_after = c:isopen()
      c:close()
      results[name] = r
    end
    l:close()
  end)
  sched:run()
  return results, server_results
end

local function expect_ok(r, name, what)
  T.check(r[1] == true, "%s: client starttls(%q): %s %s %s", what, name,
          tostring(r[1]), tostring(r[2]), tostring(r[3]))
  T.eq(r.echoed, "hello " .. name, what .. ": data exchanged with " .. name)
end

for _, order in ipairs({ { pki.localhost, pki.other }, { pki.other, pki.localhost } }) do
  local what = "certs {" .. order[1].cn .. ", " .. order[2].cn .. "}"
  local res, sres = session(order, { "other.test", "localhost" })
  expect_ok(res["other.test"], "other.test", what)
  expect_ok(res["localhost"], "localhost", what)
  T.eq(#sres, 2, what .. ": server handshakes")
  for i = 1, 2 do T.eq(sres[i][1], true, what .. ": server starttls " .. i) end
  T.ok("%s: other.test and localhost both verified", what)
end

-- Control: one certificate only; other.test must then fail verification.
do
  local res = session({ pki.localhost }, { "other.test", "localhost" })
  local r = res["other.test"]
  T.eq(r[1], false, "other.test against a localhost-only server")
  T.check(type(r[2]) == "string" and #r[2] > 0, "failure message")
  T.eq(r.open_after, false, "isopen() after the failed starttls")
  expect_ok(res["localhost"], "localhost", "localhost-only server")
  T.ok("control: with only the localhost certificate, other.test fails: %s", r[2])
end

-- No SNI: an IP literal sends none; the first certificate (localhost, with
-- IP SANs 127.0.0.1 and ::1) is used, and the address is what is checked.
-- (IPv6 at the end of the file.)
do
  local res = session({ pki.localhost, pki.other }, { "127.0.0.1" })
  expect_ok(res["127.0.0.1"], "127.0.0.1", "no SNI")
  T.ok("no SNI: the first certificate is used and verifies for 127.0.0.1")
end

-- openssl s_client shows which certificate our server chose.
if C.have("openssl") then
  local sched = Scheduler.new()
  local failures = {}
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    local ok, msg = s:starttls({ pki.localhost, pki.other })
    if not ok then failures[#failures + 1] = tostring(msg); return end
    local req = C.read_header(s)
    if req then s:send(C.http_response("sni ok\n")) end
  end)
  local _, port = l:getsockname()
  local outs = {}
  sched:add(function()
    local req = pki:path("req.txt")
    C.writefile(req, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for _, name in ipairs({ "other.test", "localhost" }) do
      outs[name] = C.run_tool(string.format(
        "openssl s_client -connect 127.0.0.1:%d -servername %s -verify_hostname %s"
          .. " -CAfile %s -verify_return_error -ign_eof",
        port, name, name, T.q(pki.cafile)), pki:path("s_client.log"), req)
    end
    l:close()
  end)
  sched:run()
  T.eq(#failures, 0, "server handshakes failed: " .. table.concat(failures, "; "))
  for name, text in pairs(outs) do
    local subject = text:match("subject=([^\n]*)")
    T.check(subject and subject:find("CN%s*=%s*" .. name:gsub("%.", "%%.")),
            "openssl s_client -servername %s: subject %s", name, tostring(subject))
    T.has(text, "Verify return code: 0 (ok)", "openssl s_client -servername " .. name)
    T.has(text, "sni ok", "response to openssl s_client -servername " .. name)
    T.ok("openssl s_client -servername %s: subject %s", name, subject)
  end
else
  T.note("openssl not installed: s_client part skipped")
end

-- No SNI over IPv6: "::1", and "[::1]" as getpeer() gives it, which is
-- the same address (SPEC §2: both forms are accepted wherever an IP is).
do
  local l6 = socket.listen("[::1]:0")
  if l6 then
    l6:close()
    local res = session({ pki.localhost, pki.other }, { "::1", "[::1]" }, "::1")
    expect_ok(res["::1"], "::1", "no SNI, IPv6")
    expect_ok(res["[::1]"], "[::1]", "no SNI, IPv6 in brackets")
    T.ok("no SNI: ::1 and [::1] verify against the IP SAN ::1")
  else
    T.note("no IPv6 on loopback: ::1 part skipped")
  end
end

pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_tls_ecdhe.lua: opts.require_ecdhe (client) offers only forward-secret
-- elliptic-curve key exchange. Against openssl s_server limited to TLS 1.2
-- and one cipher suite:
--   AES128-GCM-SHA256 (RSA key transport)      plain: OK   require_ecdhe: false
--   DHE-RSA-AES128-GCM-SHA256 (finite-field)   plain: OK   require_ecdhe: false
--   ECDHE-RSA-AES128-GCM-SHA256                plain: OK   require_ecdhe: OK
-- The "plain: OK" column shows the refusals come from the option, not from
-- the system's defaults. Against our own server (TLS 1.3), require_ecdhe
-- works too.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool", "openssl")
local pki = C.make()

local function attempt(port, opts)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(15)
  local r = table.pack(c:starttls("localhost", opts))
  if r[1] then
    c:send("GET / HTTP/1.0\r\n\r\n")
    r.page = C.recv_until_close(c)
  end
  r.open = c:isopen()
  c:close()
  return r
end

for _, case in ipairs({
  { "AES128-GCM-SHA256", false },
  { "DHE-RSA-AES128-GCM-SHA256", false },
  { "ECDHE-RSA-AES128-GCM-SHA256", true },
}) do
  local suite, ecdhe_ok = case[1], case[2]
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www"
      .. " -tls1_2 -cipher %s", port, T.q(pki.localhost.certfile),
      T.q(pki.localhost.keyfile), suite)
  end, pki:path("s_server.log"))
  local plain = attempt(port, { cafile = pki.cafile })
  T.eq(plain[1], true, suite .. " without require_ecdhe (" .. tostring(plain[2]) .. ")")
  T.has(plain.page, "Cipher is " .. suite, suite .. ": the suite in use, per openssl's page")
  local r = attempt(port, { cafile = pki.cafile, require_ecdhe = true })
  if ecdhe_ok then
    T.eq(r[1], true, suite .. " with require_ecdhe (" .. tostring(r[2]) .. ")")
    T.has(r.page, "Cipher is " .. suite, suite .. " with require_ecdhe: the suite in use")
    T.ok("%s: accepted with and without require_ecdhe", suite)
  else
    T.eq(r[1], false, suite .. " with require_ecdhe")
    T.check(type(r[2]) == "string" and #r[2] > 0, "%s: a message", suite)
    T.eq(r.open, false, suite .. ": isopen() after the refusal")
    T.ok("%s: refused with require_ecdhe (%s)", suite, r[2])
  end
  T.kill(pid, h)
end

do
  local sched = Scheduler.new()
  local sres, cres, echo
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    sres = s:starttls({ pki.localhost })
    if sres then
      local d = s:recv()
      if d then s:send("re:" .. d) end
    end
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    cres = table.pack(c:starttls("localhost", { cafile = pki.cafile, require_ecdhe = true }))
    if cres[1] then c:send("x"); echo = c:recv() end
    c:close()
    l:close()
  end)
  sched:run()
  T.eq(cres[1], true, "require_ecdhe against our server (" .. tostring(cres[2]) .. ")")
  T.eq(echo, "re:x", "data")
  T.ok("require_ecdhe against our own server: OK")
end

pki:cleanup()
T.done()

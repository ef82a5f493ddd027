-- SPDX-License-Identifier: MIT
-- t_tls_failures.lua: what goes wrong with starttls, and how it is told.
--  * network-side failures return false, message, error name, and leave
--    the socket closed (isopen() false, recv nil, send nil):
--      wrong name on the certificate (the message says so), expired
--      certificate (says so), untrusted issuer with the system store,
--      a cafile that cannot be read;
--  * verify = false accepts all three bad certificates and data flows;
--  * starttls on a socket that is already TLS returns exactly nil (client
--    and server side), and the session keeps working;
--  * caller errors raise Lua errors naming the culprit: certs {{chain=1}},
--    {{chain=PEM}} (no key), {}, {1}, opts.alpn = "x", {""}, cafile = 5,
--    verify = "no", a non-table opts, certs on a client socket; the socket
--    is untouched and a correct starttls afterwards still works;
--  * unparsable PEM (and a key that does not match its certificate): false
--    and a message, socket closed, no crash;
--  * ECDSA P-256 and Ed25519 server keys work, alone and chosen among
--    several; require_ecdhe = true works against an RSA server.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

-- One connection: our server with `certs` (and sopts), our client with
-- hostname and copts. Returns client results (with .echoed, .open_after,
-- .recv_after, .send_after) and server results.
local function try(certs, sopts, hostname, copts)
  local sched = Scheduler.new()
  local cr, sr
  local accepted = false
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    -- The limit only keeps a broken run short: when the client gives up,
    -- the server must see it at once (checked with sr.ms).
    s:settimeout(10)
    accepted = true
    local t0 = T.now_ms()
    sr = table.pack(s:starttls(certs, sopts))
    sr.ms = math.floor(T.now_ms() - t0 + 0.5)
    sr.open_after = s:isopen()
    if sr[1] then
      local d = s:recv()
      if d then s:send("re:" .. d) end
    end
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    cr = table.pack(c:starttls(hostname, copts))
    cr.open_after = c:isopen()
    cr.tls_after = c:istls()
    if cr[1] then
      c:send("ping")
      cr.echoed = c:recv()
    else
      cr.recv_after = table.pack(c:recv())
      cr.send_after = table.pack(c:send("x"))
    end
    c:close()
    -- A client that fails before sending anything may be done before the
    -- server accepted it: close the listener only after that.
    T.wait_until(function() return accepted end, 10000, "server accepted the client")
    l:close()
  end)
  sched:run()
  return cr, sr
end

local function expect_fail(cr, what, needle, sr)
  T.eq(cr[1], false, what .. ": first result")
  T.check(type(cr[2]) == "string" and #cr[2] > 0, "%s: message, got %s", what,
          T.repr(cr[2]))
  T.check(type(cr[3]) == "string" and #cr[3] > 0, "%s: error name, got %s", what,
          T.repr(cr[3]))
  if needle then
    T.check(cr[2]:lower():find(needle, 1, true), "%s: message should mention %q: %s",
            what, needle, cr[2])
  end
  T.eq(cr.open_after, false, what .. ": isopen() after the failure")
  T.eq(cr.tls_after, false, what .. ": istls() after the failure")
  T.eq(cr.recv_after[1], nil, what .. ": recv after the failure")
  T.eq(cr.send_after[1], nil, what .. ": send after the failure")
  -- The client's socket is really closed: the server's handshake ends at
  -- once, it does not wait for its timeout (or a garbage collection).
  T.check(sr and sr[1] == false, "%s: server starttls should fail, got %s %s", what,
          tostring(sr and sr[1]), tostring(sr and sr[2]))
  T.check(sr.ms < 5000, "%s: the server's handshake ended only after %d ms (%s): "
          .. "the client's descriptor stayed open after its failed starttls",
          what, sr.ms, tostring(sr[2]))
  T.eq(sr.open_after, false, what .. ": server isopen() after the failed handshake")
  T.ok("%s: false, %q, %s; socket closed", what, cr[2], cr[3])
end

local function expect_ok(cr, sr, what)
  T.check(cr[1] == true, "%s: client starttls: %s %s %s", what, tostring(cr[1]),
          tostring(cr[2]), tostring(cr[3]))
  T.check(sr and sr[1] == true, "%s: server starttls: %s %s", what,
          tostring(sr and sr[1]), tostring(sr and sr[2]))
  T.eq(cr.open_after, true, what .. ": isopen()")
  T.eq(cr.tls_after, true, what .. ": istls()")
  T.eq(cr.echoed, "re:ping", what .. ": data exchanged")
  T.ok("%s: handshake and data OK", what)
end

local ca = { cafile = pki.cafile }

-- Verification failures.
local cr, sr = try({ pki.wrong }, nil, "localhost", ca)
expect_fail(cr, "certificate for wrong.example, client wants localhost", "name", sr)

cr, sr = try({ pki.expired }, nil, "localhost", ca)
expect_fail(cr, "expired certificate", "expired", sr)

cr, sr = try({ pki.localhost }, nil, "localhost", nil)
expect_fail(cr, "our CA, client with the system store", nil, sr)

cr, sr = try({ pki.untrusted }, nil, "localhost", ca)
expect_fail(cr, "certificate from another CA", "not trusted", sr)

-- Fails before any byte is sent (the CA file cannot be read).
cr, sr = try({ pki.localhost }, nil, "localhost", { cafile = pki:path("no-such-file.pem") })
expect_fail(cr, "cafile that does not exist", "cafile", sr)

-- verify = false: explicit opt-out.
for _, k in ipairs({ "wrong", "expired", "untrusted" }) do
  local a, b = try({ pki[k] }, nil, "localhost", { verify = false })
  expect_ok(a, b, "verify = false with the " .. k .. " certificate")
end
local a, b = try({ pki.localhost }, nil, "localhost", { verify = true, cafile = pki.ca })
expect_ok(a, b, "verify = true, cafile as PEM text")

-- Key types, and several at once (GnuTLS picks one the client supports).
a, b = try({ pki.ecdsa }, nil, "localhost", ca)
expect_ok(a, b, "ECDSA P-256 server key")
a, b = try({ pki.ed25519 }, nil, "localhost", ca)
expect_ok(a, b, "Ed25519 server key")
a, b = try({ pki.ed25519, pki.ecdsa, pki.localhost }, nil, "localhost", ca)
expect_ok(a, b, "Ed25519 + ECDSA + RSA keys for one name")
a, b = try({ pki.localhost }, nil, "localhost", { cafile = pki.cafile, require_ecdhe = true })
expect_ok(a, b, "require_ecdhe = true against an RSA server")

-- Unparsable PEM and mismatched keys: false, message, socket closed.
for _, bad in ipairs({
  { "garbage chain and key", { chain = "not a certificate", private_key = "nor a key" } },
  { "truncated PEM", { chain = pki.localhost.chain:sub(1, 200), private_key = pki.localhost.private_key } },
  { "key not matching the certificate", { chain = pki.localhost.chain, private_key = pki.ecdsa.private_key } },
}) do
  local c, s = T.pair(socket)
  local r = table.pack(s:starttls({ bad[2] }))
  T.eq(r[1], false, bad[1] .. ": server starttls")
  T.check(type(r[2]) == "string" and #r[2] > 0, "%s: message", bad[1])
  T.eq(s:isopen(), false, bad[1] .. ": isopen() after the failure")
  -- The peer sees the connection closed at once.
  c:settimeout(5)
  local e = table.pack(c:recv())
  T.check(e[1] == nil and e[2] ~= "timeout", "%s: the peer should see the connection "
          .. "closed, got %s %s (the descriptor stayed open)", bad[1], tostring(e[1]), tostring(e[2]))
  T.ok("%s: false, %q, %s", bad[1], r[2], tostring(r[3]))
  c:close()
end

-- Caller errors: Lua errors naming the argument; the socket stays usable.
do
  local sched = Scheduler.new()
  local c, s, l = T.pair(socket)
  l:close()

  -- Called as a method (sock:starttls(...)) so the message can name it.
  local function raises(needle, what, sock, ...)
    local args = table.pack(...)
    local msg = T.raises(needle, what, function()
      return sock:starttls(table.unpack(args, 1, args.n))
    end)
    T.check(msg:find("starttls", 1, true), "%s: the error should name starttls: %s", what, msg)
    T.ok("%s: %s", what, msg)
  end
  raises("certs[1].chain", "certs = {{chain = 1}}", s, { { chain = 1 } })
  raises("certs[1].private_key", "certs = {{chain = PEM}}", s,
         { { chain = pki.localhost.chain } })
  raises("certs", "certs = {}", s, {})
  raises("certs[1]", "certs = {1}", s, { 1 })
  raises("certs[2]", "certs = {good, 'x'}", s, { pki.localhost, "x" })
  raises("alpn", "opts.alpn = 'x'", s, { pki.localhost }, { alpn = "x" })
  raises("alpn", "opts.alpn = {''}", s, { pki.localhost }, { alpn = { "" } })
  raises("alpn", "opts.alpn = {1}", s, { pki.localhost }, { alpn = { {} } })
  raises("table expected", "opts = 'x'", s, { pki.localhost }, "x")
  raises("hostname or certs", "certs = 42", s, 42)
  raises("cafile", "opts.cafile = 5", c, "localhost", { cafile = 5 })
  raises("verify", "opts.verify = 'no'", c, "localhost", { verify = "no" })
  raises("session", "opts.session = {}", c, "localhost", { session = {} })
  raises("early_data", "opts.early_data = 1", c, "localhost", { early_data = 1 })
  raises("listener", "certs on a client socket", c, { pki.localhost })
  T.eq(s:isopen(), true, "server socket open after the caller errors")
  T.eq(c:isopen(), true, "client socket open after the caller errors")
  T.eq(s:istls(), false, "server socket not TLS after the caller errors")

  -- A correct starttls on the same pair still works; a second one is nil.
  local sres, sres2, cres, cres2, echoed, echoed2
  sched:add(function()
    sres = table.pack(s:starttls({ pki.localhost }))
    sres2 = table.pack(s:starttls({ pki.localhost }))
    local d = s:recv()
    if d then s:send("re:" .. d) end
    d = s:recv()
    if d then s:send("re:" .. d) end
    s:close()
  end)
  sched:add(function()
    cres = table.pack(c:starttls("localhost", ca))
    cres2 = table.pack(c:starttls("localhost", ca))
    c:send("one")
    echoed = c:recv()
    -- Still nil after data flowed.
    local again = table.pack(c:starttls("localhost", ca))
    T.eq(again.n, 1, "third starttls: number of results")
    T.eq(again[1], nil, "third starttls")
    c:send("two")
    echoed2 = c:recv()
    c:close()
  end)
  sched:run()
  T.eq(cres[1], true, "client starttls after the caller errors (" .. tostring(cres[2]) .. ")")
  T.eq(sres[1], true, "server starttls after the caller errors (" .. tostring(sres[2]) .. ")")
  T.eq(cres2.n, 1, "second client starttls: number of results")
  T.eq(cres2[1], nil, "second client starttls")
  T.eq(sres2.n, 1, "second server starttls: number of results")
  T.eq(sres2[1], nil, "second server starttls")
  T.eq(echoed, "re:one", "data after the second starttls")
  T.eq(echoed2, "re:two", "data after the third starttls")
  T.ok("starttls on a TLS socket returns nil on both sides; the session goes on")
end

pki:cleanup()
T.done()

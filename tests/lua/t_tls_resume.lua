-- SPDX-License-Identifier: MIT
-- t_tls_resume.lua: TLS session resumption, with s:tlssession() and
-- opts.session.
--  * our client <-> our server: first connection (full handshake), read
--    the echo, sess = c:tlssession() (a non-empty string); second
--    connection with opts.session = sess succeeds and exchanges data. It
--    really resumed: both connections go through a byte-counting TCP relay,
--    and the server sends at least 800 bytes less in the second (no
--    certificate and no signature over it).
--  * a session is only an offer: given to a server with other certificates
--    (another ticket key), the handshake still succeeds (in full).
--  * our client <-> openssl s_server -www: its status page says "New, ..."
--    the first time and "Reused, ..." with the session; also when the
--    session was taken right after starttls, before anything was read.
--  * our server <-> gnutls-cli --resume ("This is a resumed session") and
--    openssl s_client -sess_out/-sess_in ("Reused, ...").
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

------------------------------------------------------------------------
-- our client <-> our server, through a counting relay
------------------------------------------------------------------------
do
  local sched = Scheduler.new()
  local server_res = {}
  local _, ls = socket.bind(sched, "127.0.0.1:0", function(s)
    local r = table.pack(s:starttls({ pki.localhost }))
    server_res[#server_res + 1] = r
    if not r[1] then return end
    local d = s:recv()
    if d then s:send("echo:" .. d) end
    for _ = 1, 100 do if not s:recv() then break end end   -- until the client closes
  end)
  local _, sport = ls:getsockname()

  -- Relay: for each client, a connection to the server; bytes from the
  -- server to the client are counted per connection.
  local down = {}            -- down[i]: bytes server -> client, connection i
  local nconn = 0
  local function pump(src, dst, count)
    for _ = 1, 100000 do
      local d = src:recv()
      if not d then break end
      if count then count(#d) end
      if not dst:send(d) then break end
    end
    dst:shutdown()
  end
  local _, lr = socket.bind(sched, "127.0.0.1:0", function(a)
    nconn = nconn + 1
    local i = nconn
    down[i] = 0
    local b = assert(socket.connect("127.0.0.1", sport))
    local up_done = false
    sched:add(function() pump(a, b); up_done = true end)
    pump(b, a, function(n) down[i] = down[i] + n end)
    T.wait_until(function() return up_done end, 20000, "relay: client -> server side")
    b:close()
  end)
  local _, rport = lr:getsockname()

  local results = {}
  local function connect_once(opts, msg)
    local c = assert(socket.connect("127.0.0.1", rport))
    c:settimeout(20)
    local r = table.pack(c:starttls("localhost", opts))
    if r[1] then
      c:send(msg)
      r.echo = c:recv()
      r.session = c:tlssession()
    end
    c:close()
    return r
  end
  sched:add(function()
    results[1] = connect_once({ cafile = pki.cafile }, "first")
    local sess = results[1].session
    if type(sess) == "string" and #sess > 0 then
      results[2] = connect_once({ cafile = pki.cafile, session = sess }, "second")
    end
    -- Let the relay finish counting the second connection.
    T.wait_until(function() return #server_res >= 2 end, 10000, "second server handshake")
    ls:close()
    lr:close()
  end)
  sched:run()

  local r1, r2 = results[1], results[2]
  T.eq(r1[1], true, "first handshake (" .. tostring(r1[2]) .. ")")
  T.eq(r1.echo, "echo:first", "first exchange")
  T.check(type(r1.session) == "string" and #r1.session > 0,
          "tlssession() after reading data: expected a non-empty string, got %s", T.repr(r1.session))
  T.ok("first connection: full handshake, tlssession() gave %d bytes", #r1.session)
  T.check(r2, "no second connection")
  T.eq(r2[1], true, "second handshake with opts.session (" .. tostring(r2[2]) .. ")")
  T.eq(r2.echo, "echo:second", "second exchange")
  T.eq(server_res[2] and server_res[2][1], true, "server side of the second handshake")
  local cert_der = #pki.localhost.chain * 3 // 4 - 100     -- rough DER size
  T.check(down[1] and down[2], "relay counts missing")
  T.check(down[2] + 800 < down[1],
          "the second connection did not resume: server sent %d bytes, %d the first time "
          .. "(a resumed handshake sends no certificate, about %d bytes)", down[2], down[1], cert_der)
  T.ok("second connection resumed: the server sent %d bytes instead of %d", down[2], down[1])
end

------------------------------------------------------------------------
-- A session offered to a server that cannot resume it: full handshake.
------------------------------------------------------------------------
do
  local sched = Scheduler.new()
  local certsets = { { pki.localhost }, { pki.localhost, pki.other } }
  local which = 0
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    which = which + 1
    if not s:starttls(certsets[which]) then return end
    local d = s:recv()
    if d then s:send("echo:" .. d) end
  end)
  local _, port = l:getsockname()
  local r1, r2
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    r1 = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    c:send("a")
    r1.echo = c:recv()
    r1.session = c:tlssession()
    c:close()
    c = assert(socket.connect("127.0.0.1", port))
    r2 = table.pack(c:starttls("localhost", { cafile = pki.cafile, session = r1.session }))
    c:send("b")
    r2.echo = c:recv()
    c:close()
    l:close()
  end)
  sched:run()
  T.eq(r1[1], true, "first handshake")
  T.check(type(r1.session) == "string", "tlssession()")
  T.eq(r2[1], true, "handshake offering a session the server cannot resume ("
       .. tostring(r2[2]) .. ")")
  T.eq(r2.echo, "echo:b", "data after it")
  T.ok("a session the server cannot resume: full handshake, OK")
end

------------------------------------------------------------------------
-- our client <-> openssl s_server -www ("New" / "Reused")
------------------------------------------------------------------------
if C.have("openssl") then
  local out = pki:path("s_server.log")
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www",
                         port, T.q(pki.localhost.certfile), T.q(pki.localhost.keyfile))
  end, out)
  -- early: take the session right after the handshake, before reading.
  local function get(sess, early)
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(15)
    local ok, msg = c:starttls("localhost", { cafile = pki.cafile, session = sess })
    T.eq(ok, true, "starttls to openssl s_server (" .. tostring(msg) .. ")")
    local s2 = early and c:tlssession()
    T.eq(c:send("GET / HTTP/1.0\r\n\r\n"), true, "send")
    -- The ticket comes before the page: after the first chunk it is in.
    local first = c:recv()
    if not early then s2 = c:tlssession() end
    local page = (first or "") .. C.recv_until_close(c)
    c:close()      -- s_server serves one connection at a time
    return page, s2
  end
  local page1, sess = get(nil)
  T.has(page1, "HTTP/1.0 200 ok", "first page")
  T.check(page1:find("\nNew, TLS", 1, true), "first connection: expected \"New, TLS...\" in %s",
          page1:match("\n%w+, TLS[^\n]*") or page1:sub(1, 300))
  T.check(type(sess) == "string" and #sess > 0, "tlssession() from the openssl connection")
  local page2 = get(sess)
  T.check(page2:find("\nReused, TLS", 1, true),
          "second connection with the session: expected \"Reused, TLS...\", got %s",
          page2:match("\n%w+, TLS[^\n]*") or page2:sub(1, 300))
  T.ok("openssl s_server: %s then %s", page1:match("\n(New, TLS[^\n]*)"),
       page2:match("\n(Reused, TLS[^\n]*)"))
  -- tlssession() called at once after starttls (nothing read yet) also
  -- gives a session that resumes.
  local page3, sess3 = get(nil, true)
  T.check(page3:find("\nNew, TLS", 1, true), "third connection: expected New")
  T.check(type(sess3) == "string" and #sess3 > 0, "tlssession() right after starttls")
  local page4 = get(sess3)
  T.check(page4:find("\nReused, TLS", 1, true),
          "with a session taken right after starttls: expected \"Reused, TLS...\", got %s",
          page4:match("\n%w+, TLS[^\n]*") or page4:sub(1, 300))
  T.ok("openssl s_server: a session taken right after starttls resumes too")
  T.kill(pid, h)
else
  T.note("openssl not installed: s_server part skipped")
end

------------------------------------------------------------------------
-- our server <-> gnutls-cli --resume, openssl s_client -sess_out/-sess_in
------------------------------------------------------------------------
do
  local sched = Scheduler.new()
  local served, fails = 0, {}
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    local ok, msg = s:starttls({ pki.localhost })
    if not ok then fails[#fails + 1] = tostring(msg); return end
    local d = s:recv()
    if d then s:send("echo:" .. d); served = served + 1 end
  end)
  local _, port = l:getsockname()
  local outs = {}
  sched:add(function()
    local req = pki:path("req.txt")
    C.writefile(req, "hello\n")
    if C.have("gnutls-cli") then
      outs.gnutls = C.run_tool(string.format("gnutls-cli --x509cafile %s -p %d localhost --resume",
        T.q(pki.cafile), port), pki:path("gnutls-cli.log"), req)
    end
    if C.have("openssl") then
      local sess = pki:path("s_client.sess")
      outs.ossl1 = C.run_tool(string.format("openssl s_client -connect 127.0.0.1:%d"
        .. " -servername localhost -CAfile %s -verify_return_error -sess_out %s -ign_eof",
        port, T.q(pki.cafile), T.q(sess)), pki:path("s_client.log"), req)
      outs.ossl2 = C.run_tool(string.format("openssl s_client -connect 127.0.0.1:%d"
        .. " -servername localhost -CAfile %s -verify_return_error -sess_in %s -ign_eof",
        port, T.q(pki.cafile), T.q(sess)), pki:path("s_client.log"), req)
    end
    l:close()
  end)
  sched:run()
  T.eq(#fails, 0, "server handshakes failed: " .. table.concat(fails, "; "))
  if outs.gnutls then
    T.has(outs.gnutls, "This is a resumed session", "gnutls-cli --resume against our server")
    T.has(outs.gnutls, "echo:hello", "gnutls-cli: data on the resumed session")
    T.ok("gnutls-cli --resume: our server resumed the session")
  end
  if outs.ossl1 then
    T.check(outs.ossl1:find("\nNew, TLS", 1, true), "openssl s_client -sess_out: New, got %s",
            outs.ossl1:match("\n%w+, TLS[^\n]*") or outs.ossl1:sub(1, 300))
    T.check(outs.ossl2:find("\nReused, TLS", 1, true), "openssl s_client -sess_in: Reused, got %s",
            outs.ossl2:match("\n%w+, TLS[^\n]*") or outs.ossl2:sub(1, 300))
    T.has(outs.ossl2, "echo:hello", "openssl s_client: data on the resumed session")
    T.ok("openssl s_client -sess_in: Reused against our server")
  end
end

pki:cleanup()
T.done()

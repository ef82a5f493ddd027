-- SPDX-License-Identifier: MIT
-- t_tls_early_data.lua: opts.early_data (client): bytes sent as soon as the
-- handshake allows, without a separate send, before anything sent later.
--  * our client -> our server: the server receives the early data first,
--    then what the client sends afterwards, in order; starttls returns
--    true (and the ALPN protocol when alpn is given too);
--  * 200 KiB of early data arrive whole;
--  * our client -> openssl s_server -www: early_data is the HTTP request,
--    and the client only reads the page.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local function run(early, later, alpn)
  local sched = Scheduler.new()
  local want = early .. (later or "")
  local got, cres
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    if not s:starttls({ pki.localhost }, { alpn = alpn }) then return end
    s:settimeout(15)
    local parts, n = {}, 0
    for _ = 1, 100000 do
      if n >= #want then break end
      local d = s:recv()
      if not d then break end
      parts[#parts + 1] = d
      n = n + #d
    end
    got = table.concat(parts)
    s:send("done " .. #got)
  end)
  local _, port = l:getsockname()
  local reply
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(15)
    cres = table.pack(c:starttls("localhost", { cafile = pki.cafile, early_data = early, alpn = alpn }))
    if cres[1] then
      if later then c:send(later) end
      reply = c:recv()
    end
    c:close()
    l:close()
  end)
  sched:run()
  return cres, got, reply
end

do
  local cres, got, reply = run("early words;", nil)
  T.eq(cres[1], true, "starttls with early_data (" .. tostring(cres[2]) .. ")")
  T.eq(got, "early words;", "bytes the server received")
  T.eq(reply, "done 12", "server's answer")
  T.ok("early_data alone reaches the server")
end

do
  local cres, got = run("first;", "second;", { "x-test" })
  T.eq(cres[1], true, "starttls with early_data and alpn")
  T.eq(cres[2], "x-test", "ALPN protocol with early_data")
  T.eq(got, "first;second;", "early data, then the later send, in order")
  T.ok("early_data then send: in order; ALPN still returned")
end

do
  local big = {}
  for i = 1, 200 * 1024 // 16 do big[#big + 1] = string.format("%015d\n", i) end
  big = table.concat(big)
  local cres, got, reply = run(big, "tail")
  T.eq(cres[1], true, "starttls with 200 KiB of early data")
  T.eq(got and #got, #big + 4, "bytes received")
  T.check(got == big .. "tail", "200 KiB of early data arrived changed")
  T.eq(reply, "done " .. (#big + 4), "server's answer")
  T.ok("200 KiB of early_data arrived whole and in order")
end

if C.have("openssl") then
  local pid, h, port = C.start_server(socket, function(port)
    return string.format("openssl s_server -accept 127.0.0.1:%d -cert %s -key %s -www",
                         port, T.q(pki.localhost.certfile), T.q(pki.localhost.keyfile))
  end, pki:path("s_server.log"))
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(15)
  local ok, msg = c:starttls("localhost", { cafile = pki.cafile,
                                            early_data = "GET / HTTP/1.0\r\n\r\n" })
  T.eq(ok, true, "starttls with early_data to openssl s_server (" .. tostring(msg) .. ")")
  local page = C.recv_until_close(c)
  c:close()
  T.has(page, "HTTP/1.0 200 ok", "openssl s_server answered the early request")
  T.ok("openssl s_server answered the request sent as early_data")
  T.kill(pid, h)
end

pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_tls_chain.lua: certs[i].chain is a chain: a leaf followed by the
-- intermediate CA that signed it, all sent to the client.
--  * server chain = leaf + intermediate, client trusting only the root CA
--    (cafile): verifies; data flows. openssl s_client sees a chain of 2
--    and verifies too.
--  * control: the same leaf without the intermediate: the client cannot
--    build the path and fails (so the success above needs the chain).
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local function try(certs)
  local sched = Scheduler.new()
  local cr, echo
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    s:settimeout(10)
    if s:starttls(certs) then
      local d = s:recv()
      if d then s:send("re:" .. d) end
    end
  end)
  local _, port = l:getsockname()
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(10)
    cr = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
    if cr[1] then c:send("chain"); echo = c:recv() end
    c:close()
    l:close()
  end)
  sched:run()
  return cr, echo
end

local cr, echo = try({ pki.chained })
T.eq(cr[1], true, "leaf + intermediate, client trusting the root (" .. tostring(cr[2]) .. ")")
T.eq(echo, "re:chain", "data")
T.ok("chain leaf + intermediate verifies against the root")

cr = try({ pki.chained_leaf_only })
T.eq(cr[1], false, "the leaf alone, client trusting the root")
T.ok("control: the leaf alone fails: %s", tostring(cr[2]))

if C.have("openssl") then
  local sched = Scheduler.new()
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    s:settimeout(10)
    if s:starttls({ pki.chained }) and C.read_header(s) then
      s:send(C.http_response("chained ok\n"))
    end
  end)
  local _, port = l:getsockname()
  local text
  sched:add(function()
    local req = pki:path("req.txt")
    C.writefile(req, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    text = C.run_tool(string.format("openssl s_client -connect 127.0.0.1:%d -servername localhost"
      .. " -CAfile %s -verify_return_error -showcerts -ign_eof", port, T.q(pki.cafile)),
      pki:path("s_client.log"), req)
    l:close()
  end)
  sched:run()
  T.has(text, "Verify return code: 0 (ok)", "openssl s_client verification")
  T.has(text, " 1 s:", "openssl s_client: second certificate of the chain")
  T.has(text, "Pluto Test Intermediate", "openssl s_client: the intermediate")
  T.has(text, "chained ok", "openssl s_client: response")
  T.ok("openssl s_client received leaf + intermediate and verified them")
end

pki:cleanup()
T.done()

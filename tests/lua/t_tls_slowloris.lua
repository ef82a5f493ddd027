-- SPDX-License-Identifier: MIT
-- t_tls_slowloris.lua: silent and stalling clients cannot stop a TLS
-- server (SPEC §4 starttls, §7: a server handshake whose client has not
-- spoken costs no thread; handshakes have a default deadline).
--
-- Our server is in the seed's shape (socket.bind + s:starttls(certs) +
-- answer one HTTP request). A child process (h_slow_tls_clients) opens
-- 6,000 connections that say nothing and 1,000 that send 10 bytes of a
-- ClientHello and stall (600 and 100 under PLUTO_TEST_LIGHT). Meanwhile:
--  * curl and gnutls-cli each complete a verified handshake and get the
--    answer;
--  * a plain recv with settimeout(1) returns nil, "timeout" after ~1 s;
--  * every attacker's handshake ends at the default handshake deadline
--    (10 s) with "timeout", and the child sees each connection dropped;
--  * meanwhile no attacker holds a thread: the stalling ones wait parked
--    until their first record is whole.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool", "curl", "gnutls-cli")
local NSILENT = T.scale(6000, 600)
local NPARTIAL = T.scale(1000, 100)
local DEADLINE_MS = 10000          -- doc/tls.md: the default handshake deadline

T.need(NSILENT + NPARTIAL + 300, 100, "7,000 attackers")

local pki = C.make()
local sched = Scheduler.new()
local entered, served, timeouts, other_fail, ended = 0, 0, 0, {}, 0
local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
  entered = entered + 1
  local ok, msg = s:starttls({ pki.localhost })
  if ok then
    local req = C.read_header(s)
    local path = req and req:match("^GET (%S+)") or "?"
    s:send(C.http_response("still serving " .. path .. "\n"))
    served = served + 1
  elseif msg == "timeout" then
    timeouts = timeouts + 1
  else
    other_fail[#other_fail + 1] = msg
  end
  ended = ended + 1
end)
local _, port = l:getsockname()

local pid, h = T.spawn_lua("h_slow_tls_clients", "127.0.0.1", tostring(port),
                           tostring(NSILENT), tostring(NPARTIAL))
local report
sched:add(function()
  local t0 = T.now_ms()
  T.wait_until(function() return entered >= NSILENT + NPARTIAL or T.exited(pid) end, 60000,
               "every attacker connected")
  T.eq(T.readline(h, "h_slow_tls_clients"), "ready", "the attackers' report")
  -- A poller hands a batch of ready connections (a stalling client's 10
  -- bytes) back to the park after a step; wait for the count to settle.
  local st
  T.wait_until(function()
    st = socket.stats()
    return st.cpu.parked >= NSILENT + NPARTIAL
  end, 5000, nil, true)
  T.note("%d silent + %d stalling clients in %.0f ms: %d threads; cpu lane %d threads, "
         .. "%d parked; wait lane %d pollers, %d parked", NSILENT, NPARTIAL, T.now_ms() - t0,
         T.thread_count(), st.cpu.threads, st.cpu.parked, st.wait.threads, st.wait.parked)
  T.check(st.cpu.parked >= NSILENT + NPARTIAL, "%d server handshakes parked (want %d)",
          st.cpu.parked, NSILENT + NPARTIAL)
  T.check(T.thread_count() <= 1 + socket.config().wait_threads + 4,
          "%d threads with %d attackers", T.thread_count(), NSILENT + NPARTIAL)

  local out = pki:path("out.txt")
  local c0 = T.now_ms()
  local text, how, code = C.run_tool(string.format(
    "curl -sS --max-time 8 --cacert %s --resolve localhost:%d:127.0.0.1 https://localhost:%d/curl",
    T.q(pki.cafile), port, port), out)
  T.check(how == "exit" and code == 0, "curl under attack failed (%s %s): %s", tostring(how),
          tostring(code), text)
  T.has(text, "still serving /curl", "curl's answer")
  T.ok("curl under attack: verified handshake and answer in %.0f ms", T.now_ms() - c0)

  local req = pki:path("req.txt")
  C.writefile(req, "GET /gnutls-cli HTTP/1.1\r\nHost: localhost\r\n\r\n")
  c0 = T.now_ms()
  text, how, code = C.run_tool(string.format(
    "timeout 8 gnutls-cli --x509cafile %s -p %d localhost", T.q(pki.cafile), port), out, req)
  T.has(text, "still serving /gnutls-cli", "gnutls-cli's answer")
  T.ok("gnutls-cli under attack: verified handshake and answer in %.0f ms", T.now_ms() - c0)

  local a, b, pl = T.pair(socket)
  a:settimeout(1)
  local r0 = T.now_ms()
  local r = table.pack(a:recv())
  local ms = T.now_ms() - r0
  T.eq(r[2], "timeout", "recv with settimeout(1) under attack")
  T.check(ms >= 980 and ms < 3000, "recv with settimeout(1) returned after %.0f ms", ms)
  a:close(); b:close(); pl:close()
  T.ok("recv with settimeout(1) under attack: timeout after %.0f ms", ms)

  -- Every attacker is dropped at the deadline; the child sees them go.
  T.wait_until(function() return ended == entered end, DEADLINE_MS + 20000,
               "every attacker's handshake to end")
  report = T.readline(h, "h_slow_tls_clients")
  T.kill(pid, h)
  l:close()
end)
sched:run()

local kp, ks, min_ms, max_ms = report:match("^dropped (%d+) (%d+) (%d+) (%d+)$")
T.eq(tonumber(kp), NPARTIAL, "stalling clients dropped by the server (" .. report .. ")")
T.eq(tonumber(ks), NSILENT, "silent clients dropped by the server (" .. report .. ")")
T.check(tonumber(max_ms) < DEADLINE_MS + 6000, "the last attacker was dropped after "
        .. "%s ms (deadline %d ms)", max_ms, DEADLINE_MS)
-- (Every attacker; and, now and then, a stray connection of a tool.)
T.check(timeouts >= NSILENT + NPARTIAL and timeouts <= NSILENT + NPARTIAL + 2,
        "%d server handshakes ended by the deadline, of %d attackers (%d connections in all)",
        timeouts, NSILENT + NPARTIAL, entered)
T.eq(#other_fail, 0, "server handshakes that failed otherwise: " .. table.concat(other_fail, "; "))
T.eq(served, 2, "clients served under attack")
T.eq(served + timeouts, entered, "server handshakes that neither succeeded nor timed out")
T.ok("%d stalling and %d silent clients dropped by the %d ms deadline (after %s to %s ms)",
     NPARTIAL, NSILENT, DEADLINE_MS, min_ms, max_ms)
pki:cleanup()
T.done()

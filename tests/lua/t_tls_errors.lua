-- SPDX-License-Identifier: MIT
-- t_tls_errors.lua: a TLS stream's failures keep the system's error and
-- tell a truncated stream from a clean end (SPEC §4, doc/tls.md):
--  * the peer resets the connection: recv gives nil, msg, "ECONNRESET"
--    (it used to be GNUTLS_E_PULL_ERROR), and a later send "EPIPE" or
--    "ECONNRESET" (not GNUTLS_E_PREMATURE_TERMINATION);
--  * the peer closes without close_notify: recv gives nil, "truncated"
--    (nil first, so loops end as before), then plain nil;
--  * a clean end (our own server closing, close_notify first): plain nil.
-- The rude peer is LuaSocket + LuaSec in a child (h_tls_rude_server.lua).
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
do
  local h = io.popen(T.LUA .. " -e 'require \"ssl\"' 2>&1 && echo yes")
  local out = h:read("a"); h:close()
  if not out:find("yes", 1, true) then T.skip("LuaSec (Debian's lua-sec) is not installed") end
end
local pki = C.make()

local function rude(mode)
  local pid, h = T.spawn(T.LUA .. " " .. T.q(T.DIR .. "/h_tls_rude_server.lua") .. " " ..
                         mode .. " " .. T.q(pki.localhost.certfile) .. " " ..
                         T.q(pki.localhost.keyfile), { tool = true })
  local port = tonumber(T.readline(h, "h_tls_rude_server"))
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(10)
  assert(c:starttls("localhost", { cafile = pki.cafile }))
  T.eq(c:recv(), "hello", mode .. ": first record")
  assert(c:send("g"))
  local r = table.pack(c:recv())
  local after = table.pack(c:recv())
  T.wait_exit(pid, h, 5000)
  return c, r, after
end

do
  local c, r = rude("reset")
  T.eq(r[1], nil, "reset: first value")
  T.eq(r[3], "ECONNRESET", "reset: errno name (message " .. tostring(r[2]) .. ")")
  local w = table.pack(c:send("more"))
  T.eq(w[1], nil, "send after the reset")
  T.check(w[3] == "EPIPE" or w[3] == "ECONNRESET" or w[3] == "EBADF",
          "send after the reset: %s %s", tostring(w[2]), tostring(w[3]))
  c:close()
  T.ok("a reset under TLS: recv nil, %q, ECONNRESET; send %s", r[2], w[3])
end

do
  local c, r, after = rude("truncate")
  T.eq(r[1], nil, "truncated: first value")
  T.eq(r[2], "truncated", "truncated: second value")
  T.eq(after[1], nil, "recv after the truncated end")
  T.eq(after.n, 1, "recv after the truncated end: plain nil")
  c:close()
  T.ok("an end without close_notify: nil, \"truncated\", then nil")
end

-- A clean end: our own server's close sends close_notify first.
do
  local sched = Scheduler.new()
  local r
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    assert(s:starttls({ pki.localhost }))
    s:send("bye")
  end)
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", select(2, l:getsockname())))
    assert(c:starttls("localhost", { cafile = pki.cafile }))
    T.eq(c:recv(), "bye", "clean: data")
    r = table.pack(c:recv())
    c:close()
    l:close()
  end)
  sched:run()
  T.eq(r[1], nil, "clean end: first value")
  T.eq(r.n, 1, "clean end: nothing after nil (" .. tostring(r[2]) .. ")")
  T.ok("a clean end with close_notify: plain nil")
end
pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_close_linger.lua: close() right after the last send loses nothing,
-- even when the peer sent us bytes we never read (SPEC §4, s:close: a
-- lingering close). Linux answers close(2) on a socket with unread input
-- with a RST, and the peer's kernel then throws away whatever its reader
-- had not taken yet. A TLS 1.3 client that only sends has such input: the
-- server's session tickets.
--
-- Each round: our client sends SIZE bytes and closes at once; our server
-- (same scheduler) reads to the end of the stream and must get every byte,
-- in order, and a clean end (nil, no error). Over TLS (tickets unread) and
-- over plain TCP (the server first sends a "pipelined" reply the client
-- never reads). The server reads slowly until the client has closed, so
-- that its receive window stays small and, when the last send returns,
-- megabytes still wait in the client's send queue: what a reset throws
-- away. Then the same with the client in a child process that exits right
-- after its close (h_send_close.lua): what close did before returning must
-- be enough, since nothing of that process lingers on.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local ROUNDS = 2
local SIZE = 8 * 1024 * 1024
local payload = {}
for i = 0, SIZE // 1024 - 1 do
  payload[#payload + 1] = string.format("%08d", i) .. string.rep(string.char(65 + i % 26), 1016)
end
payload = table.concat(payload)

local have_tls = C.have("certtool")
local pki = have_tls and C.make()

-- One round: returns bytes received, whether they matched, the end's values.
local function round(tls, child)
  local sched = Scheduler.new()
  local got, ok, ending, closed = 0, true, nil, false
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    if tls then
      assert(s:starttls({ pki.localhost }))
    else
      assert(s:send(string.rep("x", 100)))   -- a reply the client never reads
    end
    local off = 1
    for _ = 1, SIZE + 10 do
      if not closed then socket.sleep(5) end
      local d, err, name = s:recv()
      if not d then ending = { err, name }; break end
      if payload:sub(off, off + #d - 1) ~= d then ok = false end
      off = off + #d
      got = got + #d
    end
  end)
  local _, port = l:getsockname()
  if child then
    local args = { tostring(port), tostring(SIZE), tls and pki.cafile or nil }
    local pid, h = T.spawn_lua("h_send_close", table.unpack(args))
    sched:add(function()
      T.wait_until(function() return T.exited(pid) end, 20000, "the client's exit")
      closed = true
      T.wait_exit(pid, h, 1000)
    end)
  else sched:add(function()
    local c = assert(socket.connect("127.0.0.1", port))
    if tls then
      assert(c:starttls("localhost", { cafile = pki.cafile }))
    else
      socket.sleep(20)                      -- the reply is in our buffer now
    end
    assert(c:send(payload))
    c:close()
    closed = true
  end) end
  sched:add(function()
    T.wait_until(function() return ending end, 20000, "the server's end of stream")
    l:close()
  end)
  sched:run()
  return got, ok, ending
end

for _, case in ipairs({ { false, false }, { true, false }, { false, true }, { true, true } }) do
  local tls, child = case[1], case[2]
  local what = (tls and "TLS" or "TCP") .. (child and ", client in an exiting process" or "")
  local rounds = (tls and not have_tls) and 0 or ROUNDS
  for r = 1, rounds do
    local got, same, ending = round(tls, child)
    T.check(got == SIZE and same, "%s round %d: the server got %d of %d bytes (%s), ended with %s %s",
            what, r, got, SIZE, same and "in order" or "corrupted",
            tostring(ending[1]), tostring(ending[2]))
    T.eq(ending[1], nil, what .. " round " .. r .. ": end of stream message")
  end
  if rounds > 0 then
    T.ok("%s: %d rounds of %d bytes sent then closed at once, all delivered", what, rounds, SIZE)
  end
end
if not have_tls then T.note("certtool missing: TLS rounds not run") end
if pki then pki:cleanup() end
T.done()

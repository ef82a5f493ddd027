-- SPDX-License-Identifier: MIT
-- t_tls_big.lua: 64 MiB (8 MiB under PLUTO_TEST_LIGHT) each way over one
-- TLS connection between our client and our server, in one scheduler, both
-- directions at the same time (a receiving worker and a sending worker on
-- one session, as GnuTLS allows). Each direction is one s:send of the
-- whole buffer; the receiver checks every 1 KiB block (index + a letter
-- depending on it, and a tag naming the direction), so a lost, repeated,
-- reordered or crossed byte fails; plus the total length and a rolling
-- checksum over the block indexes. No recv returns more than 64 KiB.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local MiB = 1024 * 1024
local TOTAL = T.scale(64, 8) * MiB
local BLOCK = 1024
local NBLOCKS = TOTAL // BLOCK

local function block(tag, i)
  return tag .. string.format("%08d", i) .. string.rep(string.char(65 + i % 26), BLOCK - 9)
end

local function build(tag)
  local parts = {}
  for i = 0, NBLOCKS - 1 do parts[#parts + 1] = block(tag, i) end
  return table.concat(parts)
end

-- A verifier fed the chunks of one direction.
local function verifier(tag)
  local v = { tag = tag, got = 0, nexti = 0, pending = "", bad = nil, biggest = 0,
              sum = 0, recvs = 0 }
  function v.feed(d)
    v.recvs = v.recvs + 1
    v.got = v.got + #d
    if #d > v.biggest then v.biggest = #d end
    local p = v.pending .. d
    local off = 1
    while #p - off + 1 >= BLOCK do
      local b = p:sub(off, off + BLOCK - 1)
      if not v.bad and b ~= block(tag, v.nexti) then
        v.bad = string.format("%s: block %d (offset %d) differs: starts %q", tag,
                              v.nexti, v.nexti * BLOCK, b:sub(1, 16))
      end
      local idx = tonumber(b:sub(2, 9)) or -1
      v.sum = (v.sum * 31 + idx + 1) % 4294967291
      v.nexti = v.nexti + 1
      off = off + BLOCK
    end
    v.pending = p:sub(off)
  end
  -- Receive exactly TOTAL bytes from s (bounded).
  function v.run(s)
    for _ = 1, TOTAL + 10 do
      if v.got >= TOTAL then break end
      local d, err = s:recv()
      if not d then v.ended = tostring(err); break end
      v.feed(d)
    end
  end
  return v
end

local function expected_sum()
  local sum = 0
  for i = 0, NBLOCKS - 1 do sum = (sum * 31 + i + 1) % 4294967291 end
  return sum
end

local c2s, s2c = build("c"), build("s")
T.eq(#c2s, TOTAL, "size of the client's data")

local sched = Scheduler.new()
local vs, vc = verifier("c"), verifier("s")
local server_send, client_send, server_hs, client_hs
local server_sent = false

local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
  server_hs = table.pack(s:starttls({ pki.localhost }))
  if not server_hs[1] then return end
  sched:add(function()
    server_send = table.pack(s:send(s2c))
    server_sent = true
  end)
  vs.run(s)
  -- bind closes s when this returns: let the sender finish first.
  T.wait_until(function() return server_sent end, 40000, "server's send")
  -- The client closes once it has everything: then recv ends.
  vs.after = s:recv()
end)
local _, port = l:getsockname()

local t0 = T.now_ms()
sched:add(function()
  local c = assert(socket.connect("127.0.0.1", port))
  client_hs = table.pack(c:starttls("localhost", { cafile = pki.cafile }))
  if not client_hs[1] then l:close(); return end
  local sent = false
  sched:add(function()
    client_send = table.pack(c:send(c2s))
    sent = true
  end)
  vc.run(c)
  T.wait_until(function() return sent end, 40000, "client's send")
  c:close()
  l:close()
end)
sched:run()
local ms = T.now_ms() - t0

T.eq(client_hs[1], true, "client starttls (" .. tostring(client_hs[2]) .. ")")
T.eq(server_hs[1], true, "server starttls (" .. tostring(server_hs[2]) .. ")")
T.eq(client_send[1], true, "client's send of " .. TOTAL .. " bytes (" .. tostring(client_send[2]) .. ")")
T.eq(server_send[1], true, "server's send of " .. TOTAL .. " bytes (" .. tostring(server_send[2]) .. ")")
local want = expected_sum()
for _, v in ipairs({ vs, vc }) do
  local who = v.tag == "c" and "server" or "client"
  T.check(not v.bad, "%s", tostring(v.bad))
  T.eq(v.got, TOTAL, who .. ": bytes received" .. (v.ended and (" (ended: " .. v.ended .. ")") or ""))
  T.eq(v.nexti, NBLOCKS, who .. ": blocks received")
  T.eq(v.pending, "", who .. ": partial block left")
  T.eq(v.sum, want, who .. ": checksum over the block indexes")
  T.check(v.biggest <= 65536, "%s: a recv returned %d bytes (> 64 KiB)", who, v.biggest)
end
T.eq(vs.after, nil, "server's recv after the client closed")
T.ok("%d MiB each way arrived whole and in order in %.1f s (%d and %d recvs)",
     TOTAL // MiB, ms / 1000, vs.recvs, vc.recvs)
pki:cleanup()
T.done()

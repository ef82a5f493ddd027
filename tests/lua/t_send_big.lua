-- SPDX-License-Identifier: MIT
-- t_send_big.lua: one s:send of 64 MiB (8 MiB under PLUTO_TEST_LIGHT) to a
-- slow reader in the same scheduler arrives whole and in order: the send
-- yields while the kernel buffer is full (other coroutines keep running),
-- partial writes are finished, nothing is dropped, reordered or duplicated.
-- Also: no recv returns more than 64 KiB (SPEC §7).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local MiB = 1024 * 1024
local TOTAL = T.scale(64, 8) * MiB
local BLOCK = 1024
local NBLOCKS = TOTAL // BLOCK

-- Block i: 8-digit index then 1016 copies of a letter that depends on i, so
-- a lost, repeated or swapped block (or byte) shows up as a mismatch.
local function block(i)
  return string.format("%08d", i) .. string.rep(string.char(65 + i % 26), BLOCK - 8)
end

local data
do
  local parts = {}
  for i = 0, NBLOCKS - 1 do parts[#parts + 1] = block(i) end
  data = table.concat(parts)
  parts = nil
end
T.eq(#data, TOTAL, "size of the data built")
local TAIL = "--END--"

local c, s, l = T.pair(socket)
local sched = Scheduler.new()

local send_ok, send_done, tail_ok = nil, false, nil
local send_pending_while_reader_slept = nil
local recvs, biggest, received = 0, 0, 0
local bad = nil                   -- first mismatch, as text

-- Writer: one big send, then a small one (order across sends).
sched:add(function()
  send_ok = table.pack(c:send(data))
  send_done = true
  tail_ok = c:send(TAIL)
  c:close()
end)

-- Slow reader: waits first (the kernel buffers fill, the send must be in
-- flight), then reads, pausing now and then, verifying block by block.
sched:add(function()
  socket.sleep(200)
  send_pending_while_reader_slept = not send_done
  local pending = ""
  local nexti = 0
  local tail = ""
  for _ = 1, TOTAL + 100 do
    local d = s:recv()
    if not d then break end
    recvs = recvs + 1
    if #d > biggest then biggest = #d end
    received = received + #d
    if nexti >= NBLOCKS then
      tail = tail .. d
    else
      pending = pending .. d
      local off = 1
      while #pending - off + 1 >= BLOCK and nexti < NBLOCKS do
        if not bad and pending:sub(off, off + BLOCK - 1) ~= block(nexti) then
          bad = string.format("block %d (stream offset %d) differs: starts %q",
                              nexti, nexti * BLOCK, pending:sub(off, off + 15))
        end
        nexti = nexti + 1
        off = off + BLOCK
      end
      pending = pending:sub(off)
      if nexti >= NBLOCKS then tail, pending = pending, "" end
    end
    if recvs % 32 == 0 then socket.sleep(2) end   -- be slow
  end
  T.eq(nexti, NBLOCKS, "blocks received")
  T.eq(tail, TAIL, "bytes after the big send (the second send)")
  s:close()
end)

sched:run()
l:close()

T.check(send_ok and send_ok[1] == true, "send of %d bytes returned %s, %s, %s", TOTAL,
        T.repr(send_ok and send_ok[1]), T.repr(send_ok and send_ok[2]),
        T.repr(send_ok and send_ok[3]))
T.eq(tail_ok, true, "second send")
T.check(not bad, "data corrupted: %s", tostring(bad))
T.eq(received, TOTAL + #TAIL, "bytes received")
T.check(biggest <= 65536, "a recv returned %d bytes (more than 64 KiB)", biggest)
T.check(send_pending_while_reader_slept,
        "the 64 MiB send had returned before anyone read: it should wait (yield) " ..
        "while the kernel buffer is full")
T.ok("%d bytes in one send arrived intact in %d recvs (largest %d bytes)",
     TOTAL, recvs, biggest)
T.done()

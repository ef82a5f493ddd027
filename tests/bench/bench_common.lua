-- SPDX-License-Identifier: MIT
-- bench_common.lua: what every Lua implementation of the benchmark shares,
-- so that each does exactly the same work.
--
-- The bulk pattern (the same as cpeer.c): the stream is made of 64 KiB
-- blocks; block k starts with k as a 4-byte big-endian number, and byte j
-- (0-based) of a block, for j >= 4, is (j*131 + 7) % 256.  The sender
-- writes block k as string.pack(">I4", k) .. REST (one 64 KiB string per
-- write).  The receiver checks, for every chunk it gets, its first and last
-- byte and the low byte of each block number that starts inside it: a few
-- string.byte calls per chunk, however the stream was cut, enough to catch
-- lost, repeated or reordered blocks; plus the exact byte count.
local M = {}

local byte, pack, char, concat = string.byte, string.pack, string.char, table.concat

M.BLOCK = 65536

local rest
local function get_rest()
  if not rest then
    local t = {}
    for j = 4, M.BLOCK - 1 do t[#t + 1] = char((j * 131 + 7) & 0xFF) end
    rest = concat(t)
  end
  return rest
end

-- Block k of the stream, as the sender writes it.
function M.block(k)
  return pack(">I4", k) .. (rest or get_rest())
end

local function expect(o)
  local j = o & 0xFFFF
  if j < 4 then return ((o >> 16) >> (8 * (3 - j))) & 0xFF end
  return (j * 131 + 7) & 0xFF
end

-- A receiver: v:feed(chunk) for each chunk; v.bytes, v.ok.
function M.verifier()
  local v = { bytes = 0, ok = true }
  function v.feed(c)
    local off, n = v.bytes, #c
    if n == 0 then return end
    if byte(c, 1) ~= expect(off) or byte(c, n) ~= expect(off + n - 1) then
      v.ok = false
    end
    local b = (off + 0xFFFF) & ~0xFFFF
    while b + 3 < off + n do
      if byte(c, b + 3 - off + 1) ~= expect(b + 3) then v.ok = false end
      b = b + M.BLOCK
    end
    v.bytes = off + n
  end
  return v
end

-- The result line of a bulk receiver.
function M.bulk_result(v, total, seconds)
  if v.bytes ~= total or not v.ok then
    io.write(string.format("FAIL bytes=%d expected=%d pattern=%s\n", v.bytes, total,
                           v.ok and "ok" or "bad"))
    io.stdout:flush()
    os.exit(1)
  end
  io.write(string.format("RESULT %.1f\n", total / 1048576 / seconds))
  io.stdout:flush()
end

-- Tell the runner the port, atomically (write then rename).
function M.writeport(file, port)
  local f = assert(io.open(file .. ".tmp", "w"))
  f:write(tostring(port), "\n")
  f:close()
  assert(os.rename(file .. ".tmp", file))
end

function M.readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

return M

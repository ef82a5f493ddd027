-- SPDX-License-Identifier: MIT
-- h_dns_wire.lua: just enough of the DNS wire format (RFC 1035) for the
-- DNS tests and benchmarks: build a query, read a reply's header and its
-- A/AAAA answers. A helper module (require "h_dns_wire"), not a test.

local W = {}

W.A, W.AAAA = 1, 28

-- A query for `name` of type `qtype` (W.A, W.AAAA) with transaction id `id`,
-- recursion desired.
function W.query(id, name, qtype)
  local parts = { string.pack(">I2I2I2I2I2I2", id & 0xffff, 0x0100, 1, 0, 0, 0) }
  for label in name:gmatch("[^.]+") do
    assert(#label < 64, "label too long")
    parts[#parts + 1] = string.pack("s1", label)
  end
  parts[#parts + 1] = "\0" .. string.pack(">I2I2", qtype or W.A, 1)
  return table.concat(parts)
end

-- id, flags, rcode, qdcount, ancount of a message, or nil if too short.
function W.header(msg)
  if #msg < 12 then return nil end
  local id, flags, qd, an = string.unpack(">I2I2I2I2", msg)
  return id, flags, flags & 0x0f, qd, an
end

-- Skip a (possibly compressed) name starting at pos; returns the position
-- after it, or nil if malformed.
local function skip_name(msg, pos)
  for _ = 1, 128 do
    local len = msg:byte(pos)
    if not len then return nil end
    if len == 0 then return pos + 1 end
    if len & 0xc0 == 0xc0 then return pos + 2 end
    pos = pos + 1 + len
  end
  return nil
end

-- The addresses (text) of the A and AAAA records in a reply's answer
-- section, in order; nil if the message is malformed.
function W.answers(msg)
  local id, _, _, qd, an = W.header(msg)
  if not id then return nil end
  local pos = 13
  for _ = 1, qd do
    pos = skip_name(msg, pos)
    if not pos then return nil end
    pos = pos + 4
  end
  local out = {}
  for _ = 1, an do
    pos = skip_name(msg, pos)
    if not pos or pos + 10 > #msg + 1 then return nil end
    local rtype, _, _, rdlen = string.unpack(">I2I2I4I2", msg, pos)
    pos = pos + 10
    local rdata = msg:sub(pos, pos + rdlen - 1)
    if rtype == W.A and rdlen == 4 then
      out[#out + 1] = string.format("%d.%d.%d.%d", rdata:byte(1, 4))
    elseif rtype == W.AAAA and rdlen == 16 then
      local g = {}
      for i = 1, 16, 2 do
        g[#g + 1] = string.format("%x", string.unpack(">I2", rdata, i))
      end
      out[#out + 1] = table.concat(g, ":")   -- uncompressed form
    end
    pos = pos + rdlen
  end
  return out
end

return W

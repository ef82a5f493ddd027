-- SPDX-License-Identifier: MIT
-- torturelib.lua: what the allocation-failure torture scripts
-- (h_torture_*.lua, run by tests/torture in a fresh lua_State per run)
-- share. It must not require testlib: no watchdog, no child processes in
-- there, and as few allocations of its own as it can.
--
-- The rules of those scripts: end normally only after every byte sent has
-- been received and checked by position; let any "not enough memory"
-- error propagate (the host counts it as a good end); raise anything else
-- ("FAIL: ...") for a broken promise. A recv that raised a memory error
-- is retried, because the contract says that no byte may be lost; other
-- calls are not, since it is not defined whether a send that raised had
-- handed its bytes over.
local L = {}

function L.ismem(e)
  return type(e) == "string" and e:find("not enough memory", 1, true) ~= nil
end

-- Call f(...) again while it raises a memory error (bounded: a burst of
-- failures ends). In "from" mode memory never comes back: no retry. Other
-- errors propagate at once.
local TRIES = (TORTURE and TORTURE.mode == "from") and 1 or 40
function L.retry(f, ...)
  local last
  for _ = 1, TRIES do
    local ok, a, b, c = pcall(f, ...)
    if ok then return a, b, c end
    if not L.ismem(a) then error(a, 0) end
    last = a
  end
  error(last, 0)
end

-- The byte at stream position p (from 0) is PAT:byte(p % 251 + 1): a
-- pattern that changes from byte to byte, so a lost, repeated or moved
-- byte shows at once (and the total length catches the rest).
local PERIOD = 251
local base = {}
for i = 0, PERIOD - 1 do base[#base + 1] = string.char((i * 37 + 11) % 256) end
local PAT1 = table.concat(base)

-- A pattern string covering offsets [o, o + maxlen) for any o: built once
-- per size class.
local pats = {}
local function pattern(maxlen)
  local reps = (maxlen + PERIOD) // PERIOD + 1
  local p = pats[reps]
  if not p then
    p = PAT1:rep(reps)
    pats[reps] = p
  end
  return p
end

-- The n bytes of the stream at offset off.
function L.bytes(off, n)
  local o = off % PERIOD
  return pattern(n):sub(o + 1, o + n)
end

-- Check that `data` is what the stream holds at offset off.
function L.check(data, off, what)
  if data ~= L.bytes(off, #data) then
    local want = L.bytes(off, #data)
    local i = 1
    while data:byte(i) == want:byte(i) do i = i + 1 end
    error(string.format("FAIL: %s: wrong byte at stream offset %d (chunk of %d "
                        .. "bytes at %d)", what, off + i - 1, #data, off), 0)
  end
  return off + #data
end

-- Receive exactly n bytes of the stream from offset off on socket s,
-- checking each chunk, retrying receives that raised a memory error.
-- Returns the new offset.
function L.recv_check(s, off, n, what)
  local stop = off + n
  while off < stop do
    local d, err = L.retry(s.recv, s)
    if not d then
      error(string.format("FAIL: %s: stream ended at offset %d of %d (%s)",
                          what, off, stop, tostring(err)), 0)
    end
    if off + #d > stop then
      error(string.format("FAIL: %s: %d bytes more than sent", what,
                          off + #d - stop), 0)
    end
    off = L.check(d, off, what)
  end
  return off
end

-- The peer must have ended the stream cleanly: recv gives nil, and no
-- message.
function L.expect_end(s, what)
  local d, err = L.retry(s.recv, s)
  if d ~= nil or err ~= nil then
    error(string.format("FAIL: %s: expected the end of the stream, got %s, %s",
                        what, type(d) == "string" and (#d .. " bytes") or tostring(d),
                        tostring(err)), 0)
  end
end

-- assert() for network results: a memory error cannot come back as a
-- value, so nil, msg is a failure.
function L.need(v, msg, what)
  if not v then
    error(string.format("FAIL: %s: %s", what, tostring(msg)), 0)
  end
  return v
end

return L

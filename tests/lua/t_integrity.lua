-- SPDX-License-Identifier: MIT
-- t_integrity.lua: nothing lost, nothing reordered, nothing duplicated.
-- 8 TCP and 4 TLS streams of 128 MiB each (16 MiB under PLUTO_TEST_LIGHT,
-- i.e. sanitizers) run at once through ONE pluto.scheduler. Each sender
-- writes sizes drawn from 1 byte to 200 KiB (a seeded generator per
-- stream, most of them small, some near the top); each receiver checks
-- every byte against the stream's position (a position-derived pattern,
-- shifted per stream so that crossed streams show too) and the total.
-- Half the streams send from the client side, half from the server side.
--
-- Two rounds: "graceful", where the receiver confirms the count and the
-- sender then shuts down and closes (the receiver must see a clean end);
-- and "abrupt", where the sender closes right after its last send
-- returned (lingering close: the receiver must still get every byte and a
-- clean end of stream, for TLS a close_notify, not "truncated").
--
-- PLUTO_TEST_SEED picks another seed; PLUTO_INTEGRITY_MIB another size.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

T.watchdog(T.scale(300, 600))
local SEED = tonumber(os.getenv("PLUTO_TEST_SEED")) or 20240607
local MIB = tonumber(os.getenv("PLUTO_INTEGRITY_MIB")) or T.scale(128, 16)
local SIZE = MIB * 1024 * 1024
local NTCP, NTLS = 8, 4
local MAXW = 200 * 1024
local TIMEOUT = 60                  -- seconds per call: a bound, never reached

C.need("certtool")
local pki = C.make()
local certs = { pki.ecdsa }
T.note("seed %d, %d TCP + %d TLS streams of %d MiB", SEED, NTCP, NTLS, MIB)

------------------------------------------------------------------------
-- The pattern: the byte at position p of stream k is PAT[(p + k*SHIFT) %
-- PERIOD], with PAT made of 4-byte words that differ from one another. A
-- period that is prime and not near a power of two: a loss or repeat of
-- a chunk, a record, a page cannot line up with it.
local PERIOD = 1048573
local SHIFT = 100003
local PAT
do
  local words, n = {}, (PERIOD + 3) // 4
  for i = 0, n - 1 do
    words[i + 1] = string.pack("<I4", (i * 2654435761 + 0x9e3779b9) & 0xffffffff)
  end
  local one = table.concat(words):sub(1, PERIOD)
  -- Any window of up to 256 KiB starting in [0, PERIOD) lies inside PAT.
  PAT = one .. one:sub(1, 256 * 1024)
end

local function window(k, off, n)
  local o = (off + k * SHIFT) % PERIOD
  return PAT:sub(o + 1, o + n)
end

-- A small generator per stream (xorshift64*), so that each stream's
-- sizes do not depend on how the coroutines interleave.
local function rng(seed)
  local x = seed ~ 0x2545F4914F6CDD1D
  if x == 0 then x = 1 end
  return function(n)               -- 1..n
    x = x ~ (x >> 12)
    x = x ~ (x << 25)
    x = x ~ (x >> 27)
    local v = (x * 0x2545F4914F6CDD1D) >> 11
    return v % n + 1
  end
end

-- Write sizes from 1 to MAXW: a quarter spread evenly, the rest on a
-- log scale (many small writes, a few large ones).
local function next_size(r)
  if r(4) == 1 then return r(MAXW) end
  local bits = r(17)                  -- 2^1 .. 2^17 (128 KiB)
  return math.min(MAXW, r(1 << bits))
end

------------------------------------------------------------------------
-- Senders and receivers

local function fail_stream(st, fmt, ...)
  error(string.format("FAIL: stream %d (%s, %s sends): ", st.k, st.kind, st.sender)
        .. string.format(fmt, ...), 0)
end

local function send_all(st, s, ending)
  local r = rng(SEED * 31 + st.k)
  local off = 0
  st.writes = 0
  while off < SIZE do
    local n = math.min(next_size(r), SIZE - off)
    local ok, err = s:send(window(st.k, off, n))
    if not ok then fail_stream(st, "send at offset %d failed: %s", off, tostring(err)) end
    off = off + n
    st.writes = st.writes + 1
  end
  if ending == "graceful" then
    -- Wait for the receiver's count, then end our side.
    local msg, err = s:recv()
    if msg ~= "OK " .. SIZE then
      fail_stream(st, "expected the receiver's confirmation, got %s (%s)",
                  T.repr(msg), tostring(err))
    end
    local ok, serr = s:shutdown()
    if not ok then fail_stream(st, "shutdown failed: %s", tostring(serr)) end
    local rest, rerr = s:recv()
    if rest ~= nil or rerr ~= nil then
      fail_stream(st, "sender expected the end after the confirmation, got %s, %s",
                  T.repr(rest), tostring(rerr))
    end
  end
  s:close()
end

local function recv_all(st, s, ending)
  local off, chunks = 0, 0
  while true do
    if ending == "graceful" and off == SIZE then break end
    local d, err = s:recv()
    if d == nil then
      if err ~= nil then
        fail_stream(st, "stream ended with an error at offset %d of %d: %s",
                    off, SIZE, tostring(err))
      end
      break
    end
    if off + #d > SIZE then
      fail_stream(st, "%d bytes more than were sent", off + #d - SIZE)
    end
    local want = window(st.k, off, #d)
    if d ~= want then
      local i = 1
      while d:byte(i) == want:byte(i) do i = i + 1 end
      fail_stream(st, "wrong byte at offset %d (chunk of %d bytes at %d)",
                  off + i - 1, #d, off)
    end
    off = off + #d
    chunks = chunks + 1
  end
  if off ~= SIZE then
    fail_stream(st, "the stream ended after %d of %d bytes", off, SIZE)
  end
  if ending == "graceful" then
    local ok, err = s:send("OK " .. SIZE)
    if not ok then fail_stream(st, "confirmation failed: %s", tostring(err)) end
    local d, derr = s:recv()
    if d ~= nil or derr ~= nil then
      fail_stream(st, "expected a clean end after the confirmation, got %s, %s",
                  T.repr(d), tostring(derr))
    end
  end
  s:close()
  st.checked = off
  st.chunks = chunks
end

------------------------------------------------------------------------
-- One round: every stream at once under one scheduler.

local function round(ending)
  local sched = Scheduler.new()
  local streams = {}
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  local t0 = T.now_ms()

  -- Stream k: TCP for k <= NTCP, else TLS; the client sends when k is odd.
  local function run_side(st, s, side)
    s:settimeout(TIMEOUT)
    if st.kind == "tls" then
      local ok, err
      if side == "client" then
        ok, err = s:starttls("localhost", { cafile = pki.cafile })
      else
        ok, err = s:starttls(certs)
      end
      if not ok then fail_stream(st, "%s handshake failed: %s", side, tostring(err)) end
    end
    if st.sender == side then
      send_all(st, s, ending)
    else
      recv_all(st, s, ending)
    end
    st.sides_done = st.sides_done + 1
  end

  for k = 1, NTCP + NTLS do
    local st = { k = k, kind = k <= NTCP and "tcp" or "tls",
                 sender = k % 2 == 1 and "client" or "server", sides_done = 0 }
    streams[k] = st
    sched:add(function()
      local c = assert(socket.connect("127.0.0.1", port))
      -- Tell the server which stream this is: one byte, before any TLS.
      assert(c:send(string.char(k)))
      run_side(st, c, "client")
    end)
  end
  -- The acceptor: the first byte names the stream.
  sched:add(function()
    for _ = 1, NTCP + NTLS do
      local s = assert(l:accept())
      sched:add(function()
        s:settimeout(TIMEOUT)
        local b = s:recv()
        T.check(b and #b >= 1, "server: no stream number")
        local k = b:byte(1)
        if #b > 1 then s:unrecv(b:sub(2)) end   -- a ClientHello, already
        run_side(streams[k], s, "server")
      end)
    end
    l:close()
  end)
  sched:run()

  local secs = (T.now_ms() - t0) / 1000
  local total, chunks, writes = 0, 0, 0
  for k, st in ipairs(streams) do
    T.eq(st.sides_done, 2, "stream " .. k .. " sides done")
    T.eq(st.checked, SIZE, "stream " .. k .. " bytes checked")
    total = total + st.checked
    chunks = chunks + st.chunks
    writes = writes + st.writes
  end
  T.ok("%s: %d streams, %d bytes checked by position (%d writes, %d chunks "
       .. "received) in %.1f s (%.0f MB/s)", ending, #streams, total, writes,
       chunks, secs, total / secs / 1e6)
  return total
end

collectgarbage("generational")
local checked = round("graceful") + round("abrupt")
T.note("%d bytes checked in all", checked)
pki:cleanup()
T.done()

-- SPDX-License-Identifier: MIT
-- t_tls_stream.lua: many sends of varied sizes (1 byte to 200 KiB, 24 MiB
-- in all; 4 MiB under PLUTO_TEST_LIGHT) over TLS to a reader that pauses
-- now and then, so that sends often find the kernel buffer full part way
-- (GnuTLS then holds a record that the next attempt must flush first).
-- Both directions at once. The receiver compares every chunk with the
-- expected stream: no byte lost, repeated or reordered across sends.
local T = require "testlib"
local C = require "tlscerts"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

C.need("certtool")
local pki = C.make()

local TOTAL = T.scale(24, 4) * 1024 * 1024

-- Deterministic message sizes and contents (a small LCG).
local function messages(seed, tag)
  local x = seed
  local function rnd(n)
    x = (x * 1103515245 + 12345) % 2147483648
    return x % n
  end
  local list, sum, i = {}, 0, 0
  while sum < TOTAL do
    i = i + 1
    local size
    local k = rnd(10)
    if k < 4 then size = 1 + rnd(100)
    elseif k < 8 then size = 1 + rnd(20000)
    else size = 1 + rnd(200 * 1024) end
    if sum + size > TOTAL then size = TOTAL - sum end
    local head = string.format("<%s%d>", tag, i)
    local body = string.rep(string.char(97 + i % 26), math.max(0, size - #head))
    local m = (head .. body):sub(1, size)
    list[#list + 1] = m
    sum = sum + #m
  end
  return list, table.concat(list)
end

local up_msgs, up_all = messages(12345, "u")
local down_msgs, down_all = messages(54321, "d")

-- Receive exactly #expected bytes from s, comparing as we go; pauses every
-- few chunks. Returns nil or a description of the first difference.
local function reader(s, expected, rnd_seed)
  local pos, n = 1, 0
  local x = rnd_seed
  -- A long first pause, so that the sender surely meets a full buffer.
  socket.sleep(100)
  for _ = 1, #expected + 10 do
    if pos > #expected then return nil end
    local d, err = s:recv()
    if not d then
      return string.format("stream ended at byte %d of %d (%s)", pos - 1, #expected, tostring(err))
    end
    if d ~= expected:sub(pos, pos + #d - 1) then
      return string.format("bytes %d..%d differ: got %q, want %q", pos, pos + #d - 1,
                           d:sub(1, 24), expected:sub(pos, pos + 23))
    end
    pos = pos + #d
    n = n + 1
    x = (x * 1103515245 + 12345) % 2147483648
    if x % 64 == 0 then socket.sleep(5 + x % 20) end
  end
  return "too many chunks"
end

local sched = Scheduler.new()
local up_err, down_err = "not run", "not run"
-- A ticker coroutine: a send that did not return at once let it run.
local tick, ticking, waited_sends = 0, true, 0
sched:add(function()
  while ticking do tick = tick + 1; socket.sleep(1) end
end)
local function send_counted(sock, m)
  local t = tick
  local ok, err = sock:send(m)
  if tick ~= t then waited_sends = waited_sends + 1 end
  return ok, err
end
local up_send_fail, down_send_fail
local server_sent = false
local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
  s:settimeout(30)
  if not s:starttls({ pki.localhost }) then up_err = "server starttls failed"; return end
  sched:add(function()
    for i, m in ipairs(down_msgs) do
      local ok, err = send_counted(s, m)
      if not ok then down_send_fail = string.format("send %d: %s", i, tostring(err)); break end
    end
    server_sent = true
  end)
  up_err = reader(s, up_all, 7)
  T.wait_until(function() return server_sent end, 30000, "server sends")
  s:recv()          -- until the client closes
end)
local _, port = l:getsockname()

local t0 = T.now_ms()
sched:add(function()
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(30)
  local ok, msg = c:starttls("localhost", { cafile = pki.cafile })
  if not ok then down_err = "client starttls: " .. tostring(msg); l:close(); return end
  local sent = false
  sched:add(function()
    for i, m in ipairs(up_msgs) do
      local ok2, err = send_counted(c, m)
      if not ok2 then up_send_fail = string.format("send %d: %s", i, tostring(err)); break end
    end
    sent = true
  end)
  down_err = reader(c, down_all, 11)
  T.wait_until(function() return sent end, 30000, "client sends")
  c:close()
  l:close()
  T.wait_until(function() return server_sent end, 30000, "server done")
  ticking = false
end)
sched:run()

T.check(not up_send_fail, "client: %s", tostring(up_send_fail))
T.check(not down_send_fail, "server: %s", tostring(down_send_fail))
T.check(up_err == nil, "client -> server: %s", tostring(up_err))
T.check(down_err == nil, "server -> client: %s", tostring(down_err))
-- Whether a send had to wait depends on the kernel's buffer sizes and
-- the reader's speed; with the light (sanitizer) sizes all of it may fit
-- in loopback's buffers, so there it is only noted.
if os.getenv("PLUTO_TEST_LIGHT") == "1" and waited_sends == 0 then
  T.note("no send waited (light sizes fit in the kernel's buffers)")
else
  T.check(waited_sends > 0, "no send ever waited: the test did not fill the buffers")
end
T.ok("%d and %d sends (%d bytes each way, %d of them waited) arrived intact in %.1f s",
     #up_msgs, #down_msgs, TOTAL, waited_sends, (T.now_ms() - t0) / 1000)
pki:cleanup()
T.done()

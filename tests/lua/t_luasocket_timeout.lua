-- SPDX-License-Identifier: MIT
-- t_luasocket_timeout.lua: LuaSocket's time limits on pluto.luasocket
-- objects.  "b" limits each wait inside a call, "t" the whole call; both
-- can be set; 0 never waits (receive returns "timeout" at once, without
-- yielding, and still returns what was buffered); nil or a negative
-- value is no limit.  A peer trickles one byte every 100 ms: a count of
-- 8 then takes about 0.8 s, which a 0.5 s block limit allows and a
-- 0.35 s total limit does not.  In a scheduler (the peer is another
-- coroutine) and outside one (the peer is another process).
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function pair()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local ip, port = srv:getsockname()
  local c = assert(socket.connect(ip, port))
  local a = assert(srv:accept())
  srv:close()
  return c, a
end

local function elapsed(t0) return math.floor(native._now() - t0) end

-- Wait for 8 bytes with the limits set, against a peer trickling them.
local function trickled(a, block, total)
  a:settimeout(block, "b")
  a:settimeout(total, "t")
  local t0 = native._now()
  local d, err, partial = a:receive(8)
  return d, err, partial, elapsed(t0)
end

local function trickle(c, n)
  for i = 1, n do
    native.sleep(100)
    if not c:send(tostring(i % 10)) then return end
  end
end

-- In a scheduler: the trickling peer is a coroutine.
do
  local sched = Scheduler.new()
  local results = {}
  sched:add(function()
    local c, a = pair()
    sched:add(trickle, c, 30)
    -- Block limit: every byte comes within 0.5 s, so the count completes.
    local d, err, _, dt = trickled(a, 0.5, nil)
    results.block = { d, err, dt }
    -- Total limit: 0.35 s is not enough for 8 more bytes.
    d, err, _, dt = trickled(a, nil, 0.35)
    results.total = { d, err, dt }
    -- Both: the smaller one decides.
    d, err, _, dt = trickled(a, 2, 0.35)
    results.both = { d, err, dt }
    -- No limit again (a negative value).
    a:settimeout(-1, "t"); a:settimeout(nil)
    T.eq(select(2, a:gettimeout()), -1, "negative total is none")
    d = a:receive(3)
    results.none = d
    c:close()
    a:close()
  end)
  sched:run()
  local b = results.block
  T.eq(#b[1], 8, "block limit: the count completed")
  T.check(b[3] >= 600 and b[3] < 3000, "block limit: took %d ms", b[3])
  local t = results.total
  T.eq(t[1], nil, "total limit: no result"); T.eq(t[2], "timeout", "total limit: timeout")
  T.check(t[3] >= 300 and t[3] < 1500, "total limit: %d ms", t[3])
  T.eq(results.both[2], "timeout", "both limits: the total decides")
  T.check(results.both[3] < 1500, "both limits: %d ms", results.both[3])
  T.eq(#results.none, 3, "no limit: waited for the bytes")
  T.ok("block and total limits in a scheduler (block %d ms, total %d ms)", b[3], t[3])
end

-- Outside coroutines: the peer is another process (a Lua child sending a
-- byte every 100 ms), so the blocking waits are real.
do
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write([[
local s = require "pluto.socket"
local c = assert(s.connect("127.0.0.1", ]] .. port .. [[))
for i = 1, 40 do s.sleep(100); if not c:send(tostring(i % 10)) then break end end
c:close()
]])
  f:close()
  local pid, h = T.spawn(T.LUA .. " " .. T.q(script))
  srv:settimeout(10)
  local a = assert(srv:accept(), "the child connected")
  srv:close()
  local d, err, _, dt = trickled(a, 0.5, nil)
  T.eq(d and #d, 8, "blocking, block limit: completed")
  T.check(dt >= 600, "blocking, block limit: %d ms", dt)
  d, err, _, dt = trickled(a, nil, 0.35)
  T.eq(err, "timeout", "blocking, total limit: timeout")
  T.check(dt >= 300 and dt < 1500, "blocking, total limit: %d ms", dt)
  a:close()
  T.kill(pid, h)
  os.remove(script)
  T.ok("block and total limits outside coroutines")
end

-- Zero: never waits, in a coroutine without yielding; buffered data is
-- still returned.
do
  local c, a = pair()
  a:settimeout(0)
  local co = coroutine.create(function()
    local t0 = native._now()
    local r = table.pack(a:receive())
    return elapsed(t0), table.unpack(r, 1, r.n)
  end)
  local ok, dt, d, err, partial = coroutine.resume(co)
  T.check(ok, "resume: %s", tostring(dt))
  T.eq(coroutine.status(co), "dead", "receive with timeout 0 did not yield")
  T.eq(d, nil, "nothing there"); T.eq(err, "timeout", "timeout at once")
  T.eq(partial, "", "no partial")
  T.check(dt < 50, "at once: %d ms", dt)
  c:send("ab")
  T.wait_until(function() return native._select({ a:unwrap() }, {}, 0)[1] end, 2000,
               "the bytes to arrive")
  local r = table.pack(a:receive(5))
  T.eq(r[2], "timeout", "a count not there yet"); T.eq(r[3], "ab", "what was there")
  c:send("cde")
  T.wait_until(function() return a:dirty() or native._select({ a:unwrap() }, {}, 0)[1] end,
               2000, "more bytes")
  T.eq(a:receive(5, "ab"), "abcde", "completed at once with timeout 0")
  -- settimeout(0, "t") is the same.
  a:settimeout(nil); a:settimeout(0, "t")
  local t0 = native._now()
  r = table.pack(a:receive())
  T.eq(r[2], "timeout", "total limit 0"); T.check(elapsed(t0) < 50, "at once")
  -- send with timeout 0 sends what the kernel takes, and says how much.
  c:settimeout(0)
  local data = string.rep("z", 32 * 1024 * 1024)
  t0 = native._now()
  local s1, s2, last = c:send(data)
  T.eq(s1, nil, "a send bigger than the kernel's buffers")
  T.eq(s2, "timeout", "send with timeout 0")
  T.check(last > 0 and last < #data, "sent part: %s", tostring(last))
  T.check(elapsed(t0) < 1000, "send(0) came back at once (%d ms)", elapsed(t0))
  c:close(); a:close()
  T.ok("timeout 0: receive at once without yielding, send what fits (%d bytes)", last)
end

T.done()

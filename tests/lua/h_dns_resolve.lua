-- SPDX-License-Identifier: MIT
-- h_dns_resolve.lua: the part of t_resolve.lua that needs a DNS server.
-- Runs inside the namespace set up by netns.start_dns (names under
-- test.pluto answer 192.0.2.1 and 2001:db8::1 after 100 ms; names under
-- .invalid answer NXDOMAIN). Exits 0 when every check passed.

local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local now = socket._now
local DELAY = tonumber(arg[1] or 100)

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Outside a coroutine: blocks, answers both families.
do
  local t0 = now()
  local r, msg, name = socket.resolve("www.test.pluto")
  local ms = now() - t0
  T.check(r, "resolve(www.test.pluto) outside a coroutine: %s %s", tostring(msg), tostring(name))
  local s = set(r)
  T.check(s["192.0.2.1"] and s["2001:db8::1"] and #r == 2,
          "www.test.pluto gave %s", table.concat(r, ","))
  T.check(ms >= DELAY - 1, "the lookup took %.1f ms, the server delays %d", ms, DELAY)
  T.ok("outside a coroutine: www.test.pluto -> %s in %.0f ms", table.concat(r, ","), ms)
end

-- Families.
do
  local r4 = assert(socket.resolve("v4.test.pluto", "inet"))
  T.eq(#r4, 1, "inet answers"); T.eq(r4[1], "192.0.2.1", "inet answer")
  local r6 = assert(socket.resolve("v6.test.pluto", "inet6"))
  T.eq(#r6, 1, "inet6 answers"); T.eq(r6[1], "2001:db8::1", "inet6 answer")
  T.ok("\"inet\" gives only the A record, \"inet6\" only the AAAA record")
end

-- An unknown name (NXDOMAIN from the server).
do
  local r, msg, name = socket.resolve("nosuch.invalid")
  T.eq(r, nil, "resolve(nosuch.invalid)")
  T.check(type(msg) == "string" and #msg > 0, "message: %s", T.repr(msg))
  T.eq(name, "EAI_NONAME", "error name for NXDOMAIN")
  T.ok("nosuch.invalid -> nil, %q, %s", msg, name)
end

-- A naive scheduler (Pluto's busy polling): resume until dead. The lookup
-- takes 100 ms, so the coroutine yields many times and must then return.
do
  local result
  local co = coroutine.create(function()
    result = table.pack(socket.resolve("naive.test.pluto"))
  end)
  local yields, t0 = 0, now()
  for _ = 1, 10000000 do
    local ok, err = coroutine.resume(co)
    T.check(ok, "naive loop: %s", tostring(err))
    if coroutine.status(co) == "dead" then break end
    yields = yields + 1
    if now() - t0 > 10000 then break end
  end
  T.eq(coroutine.status(co), "dead", "coroutine after 10 s of resuming")
  T.check(result and result[1], "naive loop: resolve gave %s %s",
          tostring(result and result[2]), tostring(result and result[3]))
  T.check(yields >= 1, "resolve of a delayed name did not yield")
  T.ok("under a busy-polling loop: %d yields, then %s", yields,
       table.concat(result[1], ","))
end

-- Under pluto.scheduler: 50 lookups and one failure, in parallel.
do
  local sched = Scheduler.new()
  local good, nx, t0 = 0, nil, now()
  for i = 1, 50 do
    sched:add(function()
      local r = socket.resolve("p" .. i .. ".test.pluto")
      if r and set(r)["192.0.2.1"] then good = good + 1 end
    end)
  end
  sched:add(function()
    nx = table.pack(socket.resolve("p0.invalid"))
  end)
  sched:run()
  local ms = now() - t0
  T.eq(good, 50, "lookups that succeeded under the scheduler")
  T.check(nx[1] == nil and nx[3] == "EAI_NONAME", "p0.invalid gave %s %s %s",
          tostring(nx[1]), tostring(nx[2]), tostring(nx[3]))
  T.check(ms < 10 * DELAY, "51 lookups of %d ms each took %.0f ms: not in parallel",
          DELAY, ms)
  T.ok("under pluto.scheduler: 50 names and 1 NXDOMAIN in %.0f ms", ms)
end

T.done()

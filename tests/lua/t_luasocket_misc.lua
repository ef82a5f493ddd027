-- SPDX-License-Identifier: MIT
-- t_luasocket_misc.lua: the rest of pluto.luasocket's module: gettime
-- (the system clock, as LuaSocket's reads it), sleep (seconds; in a
-- scheduler two sleeps overlap), try/newtry/protect (the finalizer runs,
-- try's errors become nil, message, other errors go on, a protected
-- function may wait), skip, choose, the constants, and dns: toip,
-- tohostname, gethostname, getaddrinfo, getnameinfo on names this machine
-- knows without asking a DNS server (/etc/hosts: localhost, 127.0.0.1),
-- and failures with a name glibc refuses before sending any query (a
-- 64-byte label); a lookup of a name yields (it runs on the dns lane).
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

-- Constants.
T.check(socket._VERSION:find("^LuaSocket 3"), "_VERSION %s", socket._VERSION)
T.check(socket._SETSIZE > 1024, "_SETSIZE %s", tostring(socket._SETSIZE))
T.eq(socket._SOCKETINVALID, -1, "_SOCKETINVALID")
T.eq(socket.BLOCKSIZE, 2048, "BLOCKSIZE")
T.eq(socket._DATAGRAMSIZE, 8192, "_DATAGRAMSIZE")

-- gettime and sleep, outside coroutines.
do
  local t = socket.gettime()
  T.check(math.abs(t - os.time()) <= 1.5, "gettime %f vs os.time %d", t, os.time())
  T.check(t ~= math.floor(t) or socket.gettime() ~= t, "fractions of a second")
  -- The system's clock, as Debian's LuaSocket reads it.
  local ok, real = pcall(require, "socket.core")
  if ok and type(real) == "table" and real.gettime then
    local a, b, c = real.gettime(), socket.gettime(), real.gettime()
    T.check(b >= a - 0.001 and b <= c + 0.001, "gettime %f between LuaSocket's %f and %f", b, a, c)
  end
  local t0 = socket.gettime()
  socket.sleep(0.2)
  local dt = socket.gettime() - t0
  T.check(dt >= 0.19 and dt < 2, "sleep(0.2) took %.3f s by gettime", dt)
  t0 = socket.gettime()
  socket.sleep(-1)
  socket.sleep(0)
  T.check(socket.gettime() - t0 < 0.05, "negative and zero sleeps return at once")
  T.raises("number expected", "sleep of a string", socket.sleep, "soon")
  T.ok("gettime and sleep outside coroutines")
end

-- sleep yields in a coroutine: two 0.3 s sleeps take 0.3 s, not 0.6.
do
  local sched = Scheduler.new()
  local t0 = socket.gettime()
  for _ = 1, 2 do sched:add(function() socket.sleep(0.3) end) end
  sched:run()
  local dt = socket.gettime() - t0
  T.check(dt >= 0.29 and dt < 0.55, "two sleeps of 0.3 s in %.3f s", dt)
  T.ok("sleep yields in a coroutine (%.3f s)", dt)
end

-- try, newtry, protect, skip, choose.
do
  T.eq(select("#", socket.try(1, 2, 3)), 3, "try passes every value")
  local finalized = 0
  local try = socket.newtry(function() finalized = finalized + 1 end)
  local f = socket.protect(function(x)
    try(x, "failed on purpose")
    return "fine", x
  end)
  local a, b = f(7)
  T.eq(a, "fine", "protect: result"); T.eq(b, 7, "protect: arguments passed")
  a, b = f(nil)
  T.eq(a, nil, "a try error: nil"); T.eq(b, "failed on purpose", "its message")
  T.eq(finalized, 1, "the finalizer ran once")
  a, b = f(false)
  T.eq(b, "failed on purpose", "false fails too")
  local ok, e = pcall(socket.protect(function() error("a real error") end))
  T.eq(ok, false, "other errors go on"); T.has(e, "a real error", "with their message")
  local ok2, e2 = pcall(socket.try, nil, "raw")
  T.eq(ok2, false, "try raises"); T.eq(type(e2), "table", "a table")
  T.eq(tostring(e2), "raw", "that prints as its message")
  -- A protected function may wait (yield) inside a coroutine.
  local sched = Scheduler.new()
  local r1, r2
  sched:add(function()
    r1, r2 = socket.protect(function() socket.sleep(0.05); socket.try(nil, "late") end)()
  end)
  sched:run()
  T.eq(r1, nil, "protected yielding function"); T.eq(r2, "late", "its try error")
  T.eq(select("#", socket.skip(1, "a", "b", "c")), 2, "skip 1")
  T.eq(socket.skip(2, "a", "b", "c"), "c", "skip 2")
  T.eq(select("#", socket.skip(5, "a")), 0, "skip more than given")
  local pick = socket.choose({ default = function(x) return "d" .. x end,
                               other = function(x) return "o" .. x end })
  T.eq(pick("other", 1), "o1", "choose by name")
  T.eq(pick(2), "d2", "choose the default")
  T.raises("unknown key", "choose an unknown name", pick, "nope", 1)
  T.raises("unknown key", "socket.sink with an unknown mode", socket.sink, "nope", {})
  T.ok("try, newtry, protect, skip, choose")
end

-- dns.
do
  local dns = socket.dns
  local bad = ("a"):rep(64) .. ".invalid"          -- refused without a query
  local ip, info = dns.toip("localhost")
  T.eq(ip, "127.0.0.1", "toip(localhost)")
  T.eq(type(info.ip), "table", "resolved.ip"); T.eq(info.ip[1], "127.0.0.1", "resolved.ip[1]")
  T.eq(type(info.alias), "table", "resolved.alias")
  T.check(type(info.name) == "string", "resolved.name")
  local ip2, info2 = dns.toip("127.0.0.1")
  T.eq(ip2, "127.0.0.1", "toip of an address"); T.eq(info2.name, "localhost", "its name")
  local r, err = dns.toip(bad)
  T.eq(r, nil, "toip of a bad name"); T.eq(err, "host not found", "message")
  local name, info3 = dns.tohostname("127.0.0.1")
  T.eq(name, "localhost", "tohostname(127.0.0.1)"); T.eq(info3.ip[1], "127.0.0.1", "its ip")
  T.eq(dns.tohostname("localhost"), "localhost", "tohostname of a name")
  r, err = dns.tohostname(bad)
  T.eq(r, nil, "tohostname of a bad name"); T.eq(err, "host not found", "message")
  local hn = dns.gethostname()
  T.check(type(hn) == "string" and #hn > 0, "gethostname %s", tostring(hn))
  T.eq(hn, native._gethostname(), "gethostname")
  local list = assert(dns.getaddrinfo("localhost"))
  local found
  for _, e in ipairs(list) do
    T.check(e.family == "inet" or e.family == "inet6", "family %s", tostring(e.family))
    if e.addr == "127.0.0.1" then found = e.family end
  end
  T.eq(found, "inet", "getaddrinfo(localhost) has 127.0.0.1, inet")
  r, err = dns.getaddrinfo(bad)
  T.eq(r, nil, "getaddrinfo of a bad name")
  T.eq(err, "host or service not provided, or not known", "LuaSocket's message")
  local names, service = dns.getnameinfo("127.0.0.1", 80)
  T.eq(names[1], "localhost", "getnameinfo's name")
  local has_services = io.open("/etc/services") ~= nil
  T.eq(service, has_services and "http" or "80", "getnameinfo's service")
  names, service = dns.getnameinfo(nil, 443)
  T.eq(#names, 0, "no host: no names"); T.eq(service, has_services and "https" or "443", "service")
  T.ok("dns functions")

  -- A lookup of a name yields (runs on the dns lane); a literal does not.
  local before = native.stats().dns.completed
  local co = coroutine.create(function() return dns.toip("localhost") end)
  local yields, ok, res = 0, nil, nil
  for _ = 1, 100000 do
    ok, res = coroutine.resume(co)
    T.check(ok, "resume: %s", tostring(res))
    if coroutine.status(co) == "dead" then break end
    yields = yields + 1
    native.sleep(1)
  end
  T.eq(res, "127.0.0.1", "toip in a coroutine")
  T.check(yields >= 1, "the lookup yielded (%d times)", yields)
  T.check(native.stats().dns.completed > before, "on the dns lane")
  co = coroutine.create(function() return dns.getaddrinfo("127.0.0.1") end)
  ok, res = coroutine.resume(co)
  T.eq(coroutine.status(co), "dead", "a literal needs no lookup")
  T.eq(res[1].addr, "127.0.0.1", "and gives itself")
  T.ok("a dns lookup yields in a coroutine (%d yields)", yields)
end

T.done()

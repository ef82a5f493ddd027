-- SPDX-License-Identifier: MIT
-- t_luasocket_receive.lua: pluto.luasocket's client:receive, every
-- pattern ("*l" and "l", "*a" and "a", a byte count), with a prefix, and
-- the partial results: at a timeout (what came is returned third and
-- consumed; passed back as the prefix it completes the result) and at the
-- peer's close.  LuaSocket's count includes the prefix.  Run outside
-- coroutines and inside a pluto.scheduler coroutine.
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

-- r must be nil, err, partial.
local function fails(what, err, partial, ...)
  local r = table.pack(...)
  T.eq(r[1], nil, what .. ": result")
  T.eq(r[2], err, what .. ": error")
  T.eq(r[3], partial, what .. ": partial")
end

local function body(where)
  -- Lines: LF ends them, every CR is dropped; "l" as "*l"; the default.
  local c, a = pair()
  c:send("one\r\ntwo\nth\rree\r\n\nlast")
  T.eq(a:receive("*l"), "one", "*l with CRLF")
  T.eq(a:receive("l"), "two", "l with LF")
  T.eq(a:receive(), "three", "default pattern, CR inside dropped")
  T.eq(a:receive(), "", "an empty line")
  a:settimeout(0.1)
  fails("line at a timeout", "timeout", "last", a:receive())
  c:send("ing\n")
  T.eq(a:receive("*l", "last"), "lasting", "the partial passed back as prefix")
  T.eq(a:receive("*l", "pre-"), nil, "a prefix alone is no line (timeout)")
  c:send("x\n")
  T.eq(a:receive("*l", ">"), ">x", "a prefix goes in front")
  T.ok("%s: line patterns", where)

  -- Counts: exact, zero, prefix included in the count.
  c:send("0123456789abcdef")
  T.eq(a:receive(4), "0123", "a count")
  T.eq(a:receive(0), "", "a count of 0")
  T.eq(a:receive(6, "xy"), "xy4567", "the count includes the prefix")
  T.eq(a:receive(2, "xyz"), "xyz", "a prefix as long as the count: nothing read")
  T.eq(a:receive("3"), "89a", "a numeric string is a count")
  fails("count at a timeout", "timeout", "bcdef", a:receive(10))
  c:send("ghijk")
  T.eq(a:receive(10, "bcdef"), "bcdefghijk", "partial passed back: 10 in all")
  T.raises("invalid receive pattern", "a negative count", a.receive, a, -1)
  T.raises("invalid receive pattern", "a bad pattern", a.receive, a, "*x")
  T.ok("%s: counts and prefixes", where)

  -- All: at a timeout, and to the end.
  c:send("part")
  fails("*a at a timeout", "timeout", "part", a:receive("*a"))
  c:send("ial rest")
  c:close()
  T.eq(a:receive("a", "part"), "partial rest", "a to the end")
  fails("*a once more at the end", "closed", "", a:receive("*a"))
  fails("a line at the end", "closed", "", a:receive())
  a:close()
  T.ok("%s: all", where)

  -- Partial results at close, for each pattern.
  for _, p in ipairs({ "*l", "l", 10 }) do
    local c2, a2 = pair()
    c2:send("xyz")
    c2:close()
    fails("pattern " .. tostring(p) .. " at close", "closed", "xyz", a2:receive(p))
    fails("pattern " .. tostring(p) .. " at close, with a prefix", "closed", "p",
          a2:receive(p, "p"))
    a2:close()
  end
  local c3, a3 = pair()
  c3:send("xyz")
  c3:close()
  T.eq(a3:receive("*a", "<"), "<xyz", "*a at close returns what came")
  a3:close()
  T.ok("%s: partial results at close", where)

  -- Bigger than one chunk: a 200 KiB line and a 300 KiB count.
  local c4, a4 = pair()
  local big = string.rep("b", 200 * 1024)
  c4:send(big .. "\n" .. string.rep("c", 300 * 1024))
  T.eq(a4:receive(), big, "a 200 KiB line")
  T.eq(#a4:receive(300 * 1024), 300 * 1024, "a 300 KiB count")
  c4:close(); a4:close()
  T.ok("%s: results across many chunks", where)
end

body("outside coroutines")

do
  local sched = Scheduler.new()
  local done = false
  sched:add(function() body("in a coroutine"); done = true end)
  sched:run()
  T.check(done, "the coroutine finished")
end

T.done()

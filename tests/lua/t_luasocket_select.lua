-- SPDX-License-Identifier: MIT
-- t_luasocket_select.lua: pluto.luasocket's select(recvt, sendt [,
-- timeout]): the ready objects as arrays that also map each object to its
-- index; "timeout" as the third value when none is ready (after the
-- limit; at once with 0); buffered data (dirty) makes a socket readable;
-- a server with a client waiting is readable; LTN12 sources from
-- socket.source can be watched; masters and closed objects are left out;
-- an object of another library raises.  In a coroutine select yields
-- until a socket is ready (another coroutine makes it so), outside one it
-- blocks.
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local srv = assert(socket.bind("127.0.0.1", 0))
local ip, port = srv:getsockname()
local function pair()
  local c = assert(socket.connect(ip, port))
  return c, assert(srv:accept())
end

-- Outside coroutines.
do
  local c, a = pair()
  local r, w, err = socket.select({ a }, { c }, 0)
  T.eq(#r, 0, "nothing to read"); T.eq(#w, 1, "the client can send")
  T.eq(w[1], c, "writable[1]"); T.eq(w[c], 1, "writable maps the object to its index")
  T.eq(err, nil, "no error when something is ready")
  local t0 = native._now()
  r, w, err = socket.select({ a }, nil, 0.15)
  local dt = native._now() - t0
  T.eq(#r, 0, "timeout: nothing"); T.eq(err, "timeout", "timeout")
  T.check(dt >= 100 and dt < 3000, "waited %d ms", dt)
  c:send("ab")
  r = socket.select({ a, c }, nil, 2)
  T.eq(r[1], a, "readable once data came"); T.eq(r[a], 1, "index"); T.eq(r[c], nil, "c is not")
  T.eq(a:receive(1), "a", "take one byte")
  T.eq(a:dirty(), true, "the other is buffered")
  r = socket.select({ a }, nil, 0)
  T.eq(r[1], a, "buffered data counts as readable")
  a:receive(1)
  -- A server is readable when a client waits.
  r, w, err = socket.select({ srv }, nil, 0)
  T.eq(err, "timeout", "no client waiting")
  local c2 = assert(socket.connect(ip, port))
  r = socket.select({ srv }, nil, 2)
  T.eq(r[1], srv, "a client waits: the server is readable")
  local a2 = assert(srv:accept())
  -- Sources: watched through their socket.
  local src = socket.source("by-length", a2, 3)
  c2:send("xyz")
  r = socket.select({ src }, nil, 2)
  T.eq(r[1], src, "a source is returned as itself")
  T.eq(src(), "xyz", "and reads")
  -- Left out: masters and closed objects; nil tables.
  local m = socket.tcp()
  c2:close()
  a2:close()
  r, w, err = socket.select({ m, a2 }, { m, c2 }, 0)
  T.eq(#r + #w, 0, "masters and closed objects are left out"); T.eq(err, "timeout", "timeout")
  r, w, err = socket.select(nil, nil, 0)
  T.eq(err, "timeout", "two nil tables")
  -- A foreign object with a descriptor.
  T.raises("not a pluto.socket socket", "a foreign descriptor",
           socket.select, { { getfd = function() return 0 end } }, nil, 0)
  -- Native objects may be given as they are.
  c:send("n")
  r = socket.select({ a:unwrap() }, nil, 2)
  T.eq(r[1], a:unwrap(), "a native socket")
  a:receive(1)
  c:close(); a:close()
  T.ok("select outside coroutines")
end

-- In a coroutine: select yields until another coroutine sends.
do
  local sched = Scheduler.new()
  local c, a = pair()
  local got, waited, ticks = nil, nil, 0
  sched:add(function()
    local t0 = native._now()
    local r, _, err = socket.select({ a }, {}, 5)
    waited = native._now() - t0
    got = r[1] == a and not err
  end)
  sched:add(function()
    for _ = 1, 10 do ticks = ticks + 1; native.sleep(10) end
    c:send("wake")
  end)
  sched:run()
  T.check(got, "select returned the socket")
  T.eq(ticks, 10, "the other coroutine ran while select waited")
  T.check(waited >= 80 and waited < 3000, "select waited %d ms", waited)
  c:close(); a:close()
  T.ok("select yields in a coroutine (%d ms)", math.floor(waited))
end

-- Closed while select waits on it (in a coroutine, parked): the select
-- wakes at once and reports the object, and the call on it says "closed".
do
  local sched = Scheduler.new()
  local server = assert(socket.bind("127.0.0.1", 0))
  local c, a = pair()
  local r, err, waited, accepted, aerr, got, gerr
  sched:add(function()
    local t0 = native._now()
    r, _, err = socket.select({ server, a }, nil, 10)
    waited = native._now() - t0
    accepted, aerr = server:accept()
  end)
  sched:add(function()
    native.sleep(50)
    server:close()
  end)
  sched:run()
  T.check(r and r[1] == server and r[server] == 1 and #r == 1,
          "the closed server comes back ready (%s)", tostring(r and #r))
  T.eq(err, nil, "no timeout")
  T.check(waited < 2000, "select woke %d ms after it began (the close came at 50)", waited)
  T.eq(accepted, nil, "accept on it"); T.eq(aerr, "closed", "accept's error")
  -- A client socket closed by another coroutine, likewise.
  sched:add(function()
    r, _, err = socket.select({ a }, nil, 10)
    got, gerr = a:receive()
  end)
  sched:add(function() a:close() end)
  sched:run()
  T.check(r and r[1] == a, "the closed client comes back ready")
  T.eq(got, nil, "receive on it"); T.eq(gerr, "closed", "receive's error")
  c:close()
  T.ok("an object closed during select wakes it (%d ms)", math.floor(waited))
end

srv:close()
T.done()

-- SPDX-License-Identifier: MIT
-- t_luasocket_tcp.lua: pluto.luasocket's TCP objects, each method once,
-- outside coroutines (blocking) and again inside a pluto.scheduler
-- coroutine (yielding): classes and __tostring, class checks, bind,
-- listen, connect (method and module function, with a local address,
-- refused, "already connected"), accept (and its time limit),
-- getpeername, getsockname, getfamily, getstats/setstats, setoption/
-- getoption on masters (kept, then applied) and on sockets, dirty,
-- getfd/setfd, gettimeout, shutdown modes, close, <close>.
local T = require "testlib"
local socket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local function class_is(obj, cls, what)
  T.eq(obj.class, cls, what .. ": class")
  T.check(tostring(obj):match("^" .. cls:gsub("[{}]", "%%%0") .. ": 0x%x+$"),
          "%s: tostring gave %s", what, tostring(obj))
end

-- A server, a client connected to it and the accepted end.
local function pair()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local ip, port = srv:getsockname()
  local c = assert(socket.connect(ip, port))
  local a = assert(srv:accept())
  return c, a, srv, port
end

local function body(where)
  -- Masters.
  local m, m4, m6 = socket.tcp(), socket.tcp4(), socket.tcp6()
  class_is(m, "tcp{master}", "tcp()")
  class_is(m4, "tcp{master}", "tcp4()")
  T.eq(m:getfd(), -1, "a master has no descriptor")
  T.eq(m:getfamily(), "inet4", "tcp() family")
  T.eq(m6:getfamily(), "inet6", "tcp6() family")
  T.eq(m6:getoption("ipv6-v6only"), true, "tcp6 is IPv6-only by default")
  local b, t = m:gettimeout()
  T.eq(b, -1, "default block timeout"); T.eq(t, -1, "default total timeout")
  T.eq(m:settimeout(2, "t"), 1, "settimeout returns 1")
  T.eq(m:settimeout(3), 1, "settimeout (block)")
  b, t = m:gettimeout()
  T.eq(b, 3, "block timeout"); T.eq(t, 2, "total timeout")
  T.raises("invalid timeout mode", "bad mode", m.settimeout, m, 1, "x")
  T.raises("tcp{client} expected", "send on a master", m.send, m, "x")
  T.raises("tcp{server} expected", "accept on a master", m.accept, m)
  T.eq(m:getoption("keepalive"), false, "master keepalive default")
  T.eq(m:setoption("keepalive", true), 1, "master setoption")
  T.eq(m:getoption("keepalive"), true, "master keeps the option")
  T.eq(m:setoption("linger", { on = true, timeout = 3 }), 1, "master linger")
  T.eq(m:getoption("linger").timeout, 3, "master linger kept")
  T.raises("unsupported option", "unknown option", m.setoption, m, "no-such", 1)
  T.eq(m:getpeername(), nil, "a master has no peer")
  T.ok("%s: masters", where)

  -- bind, listen, connect on masters.
  local srv = socket.tcp()
  T.eq(srv:setoption("reuseport", true), 1, "reuseport before listen")
  T.eq(srv:bind("127.0.0.1", 0), 1, "bind")
  T.eq(srv:listen(16), 1, "listen")
  class_is(srv, "tcp{server}", "listening master")
  local ip, port, fam = srv:getsockname()
  T.eq(ip, "127.0.0.1", "server address"); T.eq(fam, "inet", "server family")
  T.check(port > 0, "server port %s", tostring(port))
  T.eq(srv:getoption("reuseport"), true, "reuseport applied at listen")
  T.raises("tcp{master} expected", "listen twice", srv.listen, srv)
  local c = socket.tcp()
  c:setoption("keepalive", true)
  T.eq(c:connect(ip, port), 1, "connect")
  class_is(c, "tcp{client}", "connected master")
  T.eq(c:getoption("keepalive"), true, "keepalive applied at connect")
  local r1, r2 = c:connect(ip, port)
  T.eq(r1, nil, "connect twice"); T.eq(r2, "already connected", "connect twice: message")
  local a = assert(srv:accept())
  class_is(a, "tcp{client}", "accepted")
  local pip, pport, pfam = c:getpeername()
  T.eq(pip, "127.0.0.1", "peer ip"); T.eq(pport, port, "peer port"); T.eq(pfam, "inet", "peer family")
  local lip, lport = c:getsockname()
  local aip, aport = a:getpeername()
  T.eq(aip, lip, "accepted peer = client's address"); T.eq(aport, lport, "ports match")
  T.eq(a:getfamily(), "inet4", "accepted family")
  T.ok("%s: bind, listen, connect, accept, names", where)

  -- Sending, stats, dirty.
  T.eq(c:send("hello\nworld"), 11, "send returns the last index")
  T.eq(a:receive(), "hello", "receive a line")
  T.eq(a:dirty(), true, "the rest is buffered: dirty")
  T.eq(a:receive(5), "world", "receive a count")
  T.eq(a:dirty(), false, "nothing buffered")
  local rx, tx, age = c:getstats()
  T.eq(rx, 0, "client received nothing"); T.eq(tx, 11, "client sent 11")
  T.check(age >= 0 and age < 30, "age %s", tostring(age))
  rx, tx = a:getstats()
  T.eq(rx, 11, "server side consumed 11 (the LF counted)"); T.eq(tx, 0, "sent nothing")
  T.eq(c:setstats(10, 20, 30), 1, "setstats")
  rx, tx, age = c:getstats()
  T.eq(rx, 10, "setstats received"); T.eq(tx, 20, "setstats sent")
  T.check(age >= 30 and age < 40, "setstats age: %s", tostring(age))
  T.raises("tcp{client} expected", "getstats on a server", srv.getstats, srv)
  T.ok("%s: send, receive, getstats/setstats, dirty", where)

  -- Options on real sockets.
  T.eq(c:setoption("tcp-nodelay", false), 1, "client setoption")
  T.eq(c:getoption("tcp-nodelay"), false, "client getoption")
  T.eq(c:setoption("tcp-keepidle", 30), 1, "tcp-keepidle")
  T.eq(c:getoption("tcp-keepidle"), 30, "tcp-keepidle read back")
  T.eq(srv:getoption("reuseaddr"), true, "a server reuses its address")
  T.raises("unknown option", "unknown option on a socket", c.setoption, c, "no-such", 1)

  -- Descriptors.
  local fd = c:getfd()
  T.check(fd >= 0, "client descriptor %s", tostring(fd))
  c:setfd(fd)
  T.raises("cannot give", "setfd to another number", c.setfd, c, fd + 1000)
  T.check(srv:getfd() >= 0, "server descriptor")

  -- shutdown modes.
  T.raises("invalid option", "bad shutdown mode", c.shutdown, c, "sideways")
  T.eq(c:shutdown("send"), 1, "shutdown send")
  T.eq(a:receive("*a"), nil, "peer: *a at once at the end: nil")
  T.eq(a:send("reply"), 5, "the peer can still send")
  T.eq(c:receive(5), "reply", "and we still receive")
  T.eq(a:shutdown(), 1, "shutdown both (the default)")
  local d, err = c:receive()
  T.eq(d, nil, "after the peer's shutdown"); T.eq(err, "closed", "closed")
  T.ok("%s: options, descriptors, shutdown", where)

  -- close.
  T.eq(c:close(), 1, "close returns 1")
  class_is(c, "tcp{client}", "a closed client keeps its class")
  T.eq(c:getfd(), -1, "closed: no descriptor")
  local s1, s2, s3 = c:send("x")
  T.eq(s1, nil, "send after close"); T.eq(s2, "closed", "send after close: closed")
  T.eq(s3, 0, "nothing sent")
  s1, s2 = c:receive()
  T.eq(s1, nil, "receive after close"); T.eq(s2, "closed", "receive after close: closed")
  T.eq(c:getpeername(), nil, "getpeername after close")
  T.eq(c:close(), 1, "close twice")
  a:close()

  -- Module functions: connect with a local address, refused, bind "*".
  local c2 = assert(socket.connect("127.0.0.1", port, "127.0.0.1", 0))
  T.eq((c2:getsockname()), "127.0.0.1", "connect from a local address")
  local a2 = assert(srv:accept())
  c2:close(); a2:close()
  local lp = native.listen("127.0.0.1:0")
  local _, free = lp:getsockname()
  lp:close()
  local r, e = socket.connect("127.0.0.1", free)
  T.eq(r, nil, "connect refused"); T.eq(e, "connection refused", "refused: message")
  local any = assert(socket.bind("*", 0))
  local _, anyport = any:getsockname()
  T.eq((any:getsockname()), "0.0.0.0", "bind * is every IPv4 address")
  local c3 = assert(socket.connect4("127.0.0.1", anyport))
  local a3 = assert(any:accept())
  T.eq(c3:send("x"), 1, "through bind *"); T.eq(a3:receive(1), "x", "received")
  c3:close(); a3:close(); any:close()
  T.ok("%s: close, module connect/bind, refused", where)

  -- accept's time limit: 0 (never waits) and a short one.
  srv:settimeout(0)
  local t0 = native._now()
  r, e = srv:accept()
  T.eq(r, nil, "accept with timeout 0"); T.eq(e, "timeout", "timeout")
  T.check(native._now() - t0 < 50, "accept(0) returned at once")
  srv:settimeout(0.2)
  t0 = native._now()
  r, e = srv:accept()
  local dt = native._now() - t0
  T.eq(e, "timeout", "accept with 0.2 s"); T.check(dt >= 150 and dt < 3000, "waited %d ms", dt)
  local c4 = assert(socket.connect("127.0.0.1", port))
  local a4 = assert(srv:accept())
  T.check(a4 and a4.class == "tcp{client}", "accept within the limit")
  c4:close(); a4:close()
  srv:close()
  T.eq(srv:getfd(), -1, "closed server")
  T.ok("%s: accept time limits", where)

  -- <close>, and IPv6 where the machine has it.
  local held
  do
    local cc <close>, aa, ss = pair()
    held = cc
    aa:close(); ss:close()
  end
  T.eq(held:getfd(), -1, "<close> closed the client")
  local s6 = socket.tcp6()
  if s6:bind("::1", 0) and s6:listen() then
    local ip6, port6, fam6 = s6:getsockname()
    T.eq(ip6, "::1", "IPv6 address without brackets"); T.eq(fam6, "inet6", "inet6")
    T.eq(s6:getoption("ipv6-v6only"), true, "tcp6 listener is IPv6-only")
    local c6 = assert(socket.connect6("::1", port6))
    T.eq(c6:getfamily(), "inet6", "IPv6 client family")
    T.eq(select(3, c6:getpeername()), "inet6", "IPv6 peer family")
    c6:close()
    s6:close()
    T.ok("%s: IPv6", where)
  else
    T.note("%s: no IPv6 loopback here; IPv6 part skipped", where)
  end
end

body("outside coroutines")

do
  local sched = Scheduler.new()
  local ticks, finished = 0, false
  sched:add(function() body("in a coroutine"); finished = true end)
  sched:add(function()
    while not finished do ticks = ticks + 1; native.sleep(20) end
  end)
  sched:run()
  T.check(finished, "the coroutine finished")
  T.check(ticks >= 5, "another coroutine ran meanwhile (%d ticks)", ticks)
  T.ok("in a scheduler: the waits yielded (%d ticks of the other coroutine)", ticks)
end

T.done()

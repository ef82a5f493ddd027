-- SPDX-License-Identifier: MIT
-- t_listen.lua: socket.listen by port number, "127.0.0.1:port",
-- "[::1]:port" and port 0; a bare port is dual stack; a port in use gives
-- nil, message, "EADDRINUSE" (a value, not an error).
local T = require "testlib"
local socket = require "pluto.socket"

-- A port free on both families at the time of the call.
local function free_port()
  local l = assert(socket.listen(0))
  local _, port = l:getsockname()
  l:close()
  return port
end

-- Connect to host:port, accept on l, check one byte each way; returns the
-- accepted side's view of the peer (ip, port) and the client's local port.
local function accept_from(l, host, port, what)
  local c, msg = socket.connect(host, port)
  T.check(c, "%s: connect %s port %d: %s", what, host, port, tostring(msg))
  local s, err = l:accept()
  T.check(s, "%s: accept: %s", what, tostring(err))
  T.eq(c:send("x"), true, what .. ": send")
  T.eq(s:recv(), "x", what .. ": server received")
  T.eq(s:send("y"), true, what .. ": reply")
  T.eq(c:recv(), "y", what .. ": client received")
  local pip, pport = s:getpeer()
  local _, cport = c:getsockname()
  c:close(); s:close()
  return pip, pport, cport
end

------------------------------------------------------------------------
-- Port 0: the kernel picks; getsockname tells which.
do
  local l = assert(socket.listen(0))
  local ip, port = l:getsockname()
  T.check(math.type(port) == "integer" and port > 0 and port < 65536,
          "listen(0):getsockname() port should be a real port, got %s", T.repr(port))
  T.check(type(ip) == "string", "listen(0):getsockname() ip should be a string, got %s", T.repr(ip))
  accept_from(l, "127.0.0.1", port, "port 0")
  l:close()
  T.ok("listen(0) picks a port, getsockname gives it (%d)", port)
end

------------------------------------------------------------------------
-- A port number, and the same as a numeric string (lead's API decision).
do
  local port = free_port()
  local l, msg = socket.listen(port)
  T.check(l, "listen(%d): %s", port, tostring(msg))
  local _, lport = l:getsockname()
  T.eq(lport, port, "listen(port):getsockname() port")
  accept_from(l, "127.0.0.1", port, "listen(number)")
  l:close()
  T.ok("listen(port number)")

  port = free_port()
  l, msg = socket.listen(tostring(port))
  T.check(l, "listen(%q): %s", tostring(port), tostring(msg))
  T.eq(select(2, l:getsockname()), port, "listen(\"port\"):getsockname() port")
  l:close()
  T.ok("listen(numeric string)")
end

------------------------------------------------------------------------
-- "127.0.0.1:port"
do
  local port = free_port()
  local l, msg = socket.listen("127.0.0.1:" .. port)
  T.check(l, "listen(\"127.0.0.1:%d\"): %s", port, tostring(msg))
  local ip, lport = l:getsockname()
  T.eq(ip, "127.0.0.1", "listen(\"127.0.0.1:port\"):getsockname() ip")
  T.eq(lport, port, "listen(\"127.0.0.1:port\"):getsockname() port")
  local pip = accept_from(l, "127.0.0.1", port, "listen ipv4")
  T.eq(pip, "127.0.0.1", "accepted socket's peer ip")
  l:close()
  T.ok("listen(\"127.0.0.1:port\")")
end

------------------------------------------------------------------------
-- "[::1]:port"
local have6 = true
do
  local port = free_port()
  local l, msg = socket.listen("[::1]:" .. port)
  if not l then
    have6 = false
    T.note("listen [::1] failed (%s): no IPv6 here, IPv6 parts not run", tostring(msg))
  else
    local ip, lport = l:getsockname()
    T.eq(ip, "[::1]", "listen(\"[::1]:port\"):getsockname() ip")
    T.eq(lport, port, "listen(\"[::1]:port\"):getsockname() port")
    local pip = accept_from(l, "::1", port, "listen ipv6")
    T.eq(pip, "[::1]", "accepted socket's peer ip (IPv6)")
    l:close()
    T.ok("listen(\"[::1]:port\")")
  end
end

------------------------------------------------------------------------
-- Dual stack: a bare port accepts IPv4 and IPv6 clients; the IPv4 client
-- shows as plain "127.0.0.1", not as "::ffff:127.0.0.1".
if have6 then
  local l = assert(socket.listen(0))
  local _, port = l:getsockname()
  local pip4, pport4, cport4 = accept_from(l, "127.0.0.1", port, "dual stack v4")
  T.eq(pip4, "127.0.0.1", "dual-stack listener: IPv4 client's address")
  T.eq(pport4, cport4, "dual-stack listener: IPv4 client's port")
  local pip6, pport6, cport6 = accept_from(l, "::1", port, "dual stack v6")
  T.eq(pip6, "[::1]", "dual-stack listener: IPv6 client's address")
  T.eq(pport6, cport6, "dual-stack listener: IPv6 client's port")
  l:close()
  T.ok("bare port accepts 127.0.0.1 and ::1 clients")
end

------------------------------------------------------------------------
-- Port in use: nil, message, "EADDRINUSE".
local function check_inuse(arg, what)
  local r = table.pack(socket.listen(arg))
  T.eq(r[1], nil, what .. ": listen on a port in use, first value")
  T.check(type(r[2]) == "string" and #r[2] > 0,
          "%s: expected a message string, got %s", what, T.repr(r[2]))
  T.eq(r[3], "EADDRINUSE", what .. ": errno name")
end

do
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  check_inuse("127.0.0.1:" .. port, "same IPv4 address")
  l:close()

  l = assert(socket.listen(0))
  port = select(2, l:getsockname())
  check_inuse(port, "same bare port")
  check_inuse("127.0.0.1:" .. port, "IPv4 address on a dual-stack port")
  if have6 then check_inuse("[::1]:" .. port, "IPv6 address on a dual-stack port") end
  l:close()

  -- The port is free again once closed.
  local l2, msg = socket.listen("127.0.0.1:" .. port)
  T.check(l2, "listen after the previous listener closed: %s", tostring(msg))
  l2:close()
  T.ok("port in use: nil, msg, EADDRINUSE; free again after close")
end

------------------------------------------------------------------------
-- A closed listener: accept returns nil (and a message), does not block.
do
  local l = assert(socket.listen("127.0.0.1:0"))
  l:close()
  local r = table.pack(l:accept())
  T.eq(r[1], nil, "accept on a closed listener")
  -- hasconnection on a closed listener: false or a "closed" error are both
  -- fine; what matters is that it does not report a client.
  local ok, has = pcall(l.hasconnection, l)
  T.check(not ok or has == false, "hasconnection on a closed listener gave %s", T.repr(has))
  l:close()   -- twice is harmless
  T.ok("closed listener: accept gives nil")
end

T.done()

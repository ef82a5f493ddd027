-- SPDX-License-Identifier: MIT
-- pluto.luasocket: LuaSocket's `socket` module (version 3's API) on
-- pluto.socket's sockets.
--
--   package.loaded.socket = require "pluto.luasocket"
--   local http = require "socket.http"      -- Debian's, unmodified
--
-- Every call that waits follows pluto.socket's rule: inside a coroutine
-- it yields (any scheduler that resumes coroutines drives it; under
-- pluto.scheduler it costs nothing while it waits), outside one it
-- blocks.  So LuaSocket code written for one connection at a time runs
-- concurrently when each connection has its own coroutine.
--
-- An object here is a Lua table whose metatable is its class (LuaSocket's
-- "tcp{master}", "tcp{client}", "tcp{server}", "udp{unconnected}",
-- "udp{connected}"); its native pluto.socket socket or listener is in
-- field _s.  A master has no native socket: what is set on it (the bound
-- address, options, time limits) is kept in the table and applied when
-- connect or listen makes one.  A client's receive buffer is the native
-- socket's own, so a native socket can be wrapped and unwrapped without
-- copying or reordering what it holds.  Where this module must behave
-- differently from LuaSocket, doc/luasocket.md says so.

local native = require "pluto.socket"

local M = {}

local floor, tointeger, huge = math.floor, math.tointeger, math.huge
local type, select, tostring, tonumber = type, select, tostring, tonumber
local getmetatable, setmetatable, error = getmetatable, setmetatable, error
local now_ms = native._now

------------------------------------------------------------------------
-- Errors: LuaSocket's words
------------------------------------------------------------------------

-- LuaSocket reports some errors with words of its own instead of the
-- system's text; pluto.socket gives the errno (or resolver) name, so the
-- word is looked up by it.  A reset, an abort and a broken pipe are all
-- "closed" there (the system's text stays available as an extra value).
local WORDS = {
  ECONNREFUSED = "connection refused",
  EADDRINUSE = "address already in use",
  EISCONN = "already connected",
  EACCES = "permission denied",
  ECONNABORTED = "closed",
  ECONNRESET = "closed",
  EPIPE = "closed",
  EBADF = "closed",
  ETIMEDOUT = "timeout",
  EAI_AGAIN = "temporary failure in name resolution",
  EAI_FAIL = "non-recoverable failure in name resolution",
  EAI_FAMILY = "ai_family not supported",
  EAI_MEMORY = "memory allocation failure",
  EAI_NONAME = "host or service not provided, or not known",
  EAI_SERVICE = "service not supported for socket type",
}

-- The receive patterns report failures by message only: the same words
-- by the system's text (the C locale's: Lua never sets another).
local TEXT_WORDS = {
  ["Connection reset by peer"] = "closed",
  ["Software caused connection abort"] = "closed",
  ["Broken pipe"] = "closed",
  truncated = "closed",           -- TLS ended without close_notify
}

-- LuaSocket's message for a failure pluto.socket described as msg, name.
local function word(msg, name)
  return WORDS[name] or TEXT_WORDS[msg] or msg
end

local function argerror(n, fname, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), (level or 2) + 1)
end

------------------------------------------------------------------------
-- Addresses
------------------------------------------------------------------------

-- pluto.socket writes IPv6 in brackets ("[::1]"); LuaSocket does not.
local function plain(ip)
  return ip and (ip:match("^%[(.*)%]$") or ip)
end

local function family_of(ip)
  return ip:find(":", 1, true) and "inet6" or "inet"
end

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
      or (host:find(":", 1, true) ~= nil and host:match("^%[?[%x:.]+%%?[%w]*%]?$") ~= nil)
end

-- ip, port, family in LuaSocket's form from pluto.socket's ip, port (or
-- nil, LuaSocket's message).
local function address(ip, port, name)
  if not ip then return nil, word(port, name) end
  ip = plain(ip)
  return ip, port, family_of(ip)
end

-- The services file, read once: port <-> name for TCP.
local services
local function load_services()
  if services then return services end
  services = { byport = {}, byname = {} }
  local f = io.open("/etc/services")
  if f then
    for line in f:lines() do
      local name, port = line:match("^([%w%-%._]+)%s+(%d+)/tcp")
      if name then
        port = tonumber(port)
        if not services.byport[port] then services.byport[port] = name end
        services.byname[name] = services.byname[name] or port
      end
    end
    f:close()
  end
  return services
end

-- A port given as LuaSocket takes one: a number, a numeric string or a
-- service name ("http").  Raises for anything else.
local function checkport(v, n, fname)
  local p = tointeger(tonumber(v))
  if not p and type(v) == "string" then p = load_services().byname[v] end
  if not p or p < 0 or p > 65535 then
    argerror(n, fname, type(v) == "string" and "unknown service or port" or
             "port out of range", 3)
  end
  return p
end

local function checkstring(v, n, fname)
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then
    argerror(n, fname, "string expected, got " .. (v == nil and "no value" or type(v)), 3)
  end
  return v
end

-- One IP for host (a literal, at once, or a name looked up on the dns
-- lane: it yields in a coroutine), of the family if given.
local function resolve_one(host, family)
  local list, msg, name = native.resolve(host, family)
  if not list then return nil, word(msg, name) end
  return list[1]
end

------------------------------------------------------------------------
-- Classes
------------------------------------------------------------------------

local CLASS = {}                 -- metatable -> class name
local META = {}                  -- class name -> metatable
local GROUPS = {
  ["tcp{any}"] = { ["tcp{master}"] = true, ["tcp{client}"] = true, ["tcp{server}"] = true },
  ["udp{any}"] = { ["udp{connected}"] = true, ["udp{unconnected}"] = true },
}

-- Native objects, by descriptor number, for select on objects that only
-- give their getfd (LTN12 sources and sinks of other code); weak, and
-- checked against the object's current number when used.
local byfd = setmetatable({}, { __mode = "v" })

-- The class name of v, or nil.
local function classof(v)
  return CLASS[getmetatable(v)]
end

-- Raise LuaSocket's error unless self is of class (or group) want.
local function check(self, want, fname)
  local cls = classof(self)
  if cls ~= want and not (GROUPS[want] and GROUPS[want][cls]) then
    argerror(1, fname, want .. " expected, got " .. (cls or type(self)), 3)
  end
  return cls
end

local function define(name, methods)
  local index = { class = name }
  for k, f in pairs(methods) do index[k] = f end
  local mt = {
    __index = index,
    __tostring = function(self) return ("%s: %p"):format(name, self) end,
    __close = function(self) self:close() end,
    __name = name,
  }
  CLASS[mt], META[name] = name, mt
  return mt
end

-- pluto.socket's own metatables (sockets and listeners), to tell its
-- objects apart in wrap and select.
local REG = debug and debug.getregistry and debug.getregistry() or {}
local function native_kind(v)
  local mt = getmetatable(v)
  if mt == nil then return nil end
  if mt == REG["pluto.socket.socket"] then return "socket" end
  if mt == REG["pluto.socket.listener"] then return "listener" end
end

local function attach(self, s)
  self._s = s
  local fd = s:getfd()
  if fd >= 0 then byfd[fd] = s end
end

------------------------------------------------------------------------
-- Time limits
------------------------------------------------------------------------

-- A limit as LuaSocket takes it: nil or negative for none.
local function limit(v, n, fname)
  if v == nil then return nil end
  local t = tonumber(v)
  if not t or t ~= t then argerror(n, fname, "number expected", 3) end
  if t < 0 or t == huge then return nil end
  return t
end

-- settimeout(value [, mode]): mode "b" (each wait), "t" or "r" (each
-- call), as LuaSocket reads it (its first letter).
local function settimeout(self, value, mode)
  local v = limit(value, 2, "settimeout")
  local m = mode == nil and "b" or checkstring(mode, 3, "settimeout"):sub(1, 1)
  if m == "b" then
    self._block = v
  elseif m == "t" or m == "r" then
    self._total = v
    m = "t"
  else
    argerror(3, "settimeout", "invalid timeout mode", 2)
  end
  local s = self._s
  if s and native_kind(s) == "socket" then s:settimeout(v, m) end
  return 1
end

local function gettimeout(self)
  return self._block or -1, self._total or -1
end

-- The limit of one wait of a call that waits once (connect, accept): the
-- smaller of the two, or nil.
local function wait_limit(self)
  local b, t = self._block, self._total
  if b and t then return b < t and b or t end
  return b or t
end

-- A new native socket takes the object's limits.
local function apply_timeouts(self, s)
  s:settimeout(self._total, "t")
  s:settimeout(self._block, "b")
end

------------------------------------------------------------------------
-- Options
------------------------------------------------------------------------

-- The options LuaSocket's TCP objects take, and how a master (which has
-- no socket yet) checks and reports them.  Those marked "before" must be
-- known when the socket is made (connect's or listen's options); the
-- others are set on the socket right after.
local TCP_OPTIONS = {
  keepalive = "bool", reuseaddr = "before", reuseport = "before",
  linger = "linger", ["tcp-nodelay"] = "bool", ["ipv6-v6only"] = "before",
  ["tcp-keepidle"] = "int", ["tcp-keepcnt"] = "int", ["tcp-keepintvl"] = "int",
  ["recv-buffer-size"] = "int", ["send-buffer-size"] = "int", dontroute = "bool",
}

local function master_setoption(self, name, value)
  local kind = TCP_OPTIONS[name]
  if not kind then argerror(2, "setoption", "unsupported option `" .. tostring(name) .. "'", 3) end
  if kind == "linger" then
    if type(value) ~= "table" then argerror(3, "setoption", "table expected", 3) end
    value = { on = value.on and true or false, timeout = tointeger(value.timeout) or 0 }
  elseif kind == "int" then
    value = tointeger(value)
    if not value or value < 0 then argerror(3, "setoption", "integer >= 0 expected", 3) end
  else
    value = value and true or false
  end
  self._opts[name] = value
  return 1
end

local function master_getoption(self, name)
  local kind = TCP_OPTIONS[name]
  if not kind then argerror(2, "getoption", "unsupported option `" .. tostring(name) .. "'", 3) end
  local v = self._opts[name]
  if v ~= nil then
    if kind == "linger" then return { on = v.on, timeout = v.timeout } end
    return v
  end
  if kind == "linger" then return { on = false, timeout = 0 } end
  if name == "tcp-nodelay" then return true end       -- pluto.socket's default
  if name == "ipv6-v6only" then return self._family == "inet6" end
  if kind == "int" then return nil, "not known before connect or listen" end
  return false
end

-- The options set on a master, applied to its new native socket.
local function apply_options(self, s)
  for name, v in pairs(self._opts) do
    if TCP_OPTIONS[name] ~= "before" then
      local ok, msg, errname = s:setoption(name, v)
      if not ok then return nil, word(msg, errname) end
    end
  end
  return true
end

local function setoption(self, name, value)
  local s = self._s
  if not s then return master_setoption(self, name, value) end
  local ok, msg, errname = s:setoption(name, value)
  if not ok then return nil, word(msg, errname) end
  return 1
end

local function getoption(self, name)
  local s = self._s
  if not s then return master_getoption(self, name) end
  local v, msg, errname = s:getoption(name)
  if v == nil then return nil, word(msg, errname) end
  return v
end

------------------------------------------------------------------------
-- Methods every object has
------------------------------------------------------------------------

local function getfd(self)
  local s = self._s
  return s and s:getfd() or -1
end

-- LuaSocket's setfd replaces the descriptor; a native socket cannot take
-- one over, so only the descriptor it already has is accepted.
local function setfd(self, fd)
  if tointeger(fd) == getfd(self) then return end
  error("setfd: pluto.luasocket cannot give an object another descriptor", 2)
end

local function close(self)
  local s = self._s
  if s then s:close() end
  self._closed = true
  return 1
end

local function getfamily(self)
  local fam = self._family
  if not fam and self._s then
    local ip = self._s:getsockname()
    fam = ip and family_of(ip)
  end
  return fam == "inet6" and "inet6" or "inet4"
end

local function dirty(self)
  local s = self._s
  return s ~= nil and native_kind(s) == "socket" and s:_buffered() > 0
end

-- The extension: the native object under this one (same socket, same
-- buffer; closing either closes both).
local function unwrap(self)
  return self._s
end

------------------------------------------------------------------------
-- TCP
------------------------------------------------------------------------

local tcp = {}
local MASTER, CLIENT, SERVER     -- metatables, defined below

local function new_tcp(family)
  return setmetatable({ _family = family, _opts = {}, _rx = 0, _tx = 0,
                        _t0 = now_ms() }, MASTER)
end

local function new_client(s)
  local self = setmetatable({ _opts = {}, _rx = 0, _tx = 0, _t0 = now_ms() }, CLIENT)
  attach(self, s)
  return self
end

function tcp:bind(host, port)
  check(self, "tcp{master}", "bind")
  host = checkstring(host, 2, "bind")
  port = checkport(port, 3, "bind")
  if self._closed then return nil, "closed" end
  local ip
  if host ~= "*" then
    local err
    ip, err = resolve_one(host, self._family)
    if not ip then return nil, err end
    self._family = self._family or family_of(ip)
  end
  self._bind = { ip = ip, port = port }
  return 1
end

-- What socket.listen takes for the object's bound address.
local function listen_spec(self)
  local b = self._bind or { port = 0 }
  if b.ip then
    return (b.ip:find(":", 1, true) and "[" .. b.ip .. "]:" or b.ip .. ":") .. b.port
  end
  if self._family ~= "inet6" then return "0.0.0.0:" .. b.port end
  -- IPv6 wildcard: IPv6 only (tcp6's default), or both families.
  if self._opts["ipv6-v6only"] == false then return tostring(b.port) end
  return "[::]:" .. b.port
end

function tcp:listen(backlog)
  check(self, "tcp{master}", "listen")
  if self._closed then return nil, "closed" end
  local n = tointeger(floor(tonumber(backlog) or 32))
  n = n < 1 and 1 or n > 65535 and 65535 or n
  local l, msg, errname = native.listen(listen_spec(self),
    { backlog = n, reuseport = self._opts.reuseport or nil })
  if not l then return nil, word(msg, errname) end
  local ok, err = apply_options(self, l)
  if not ok then l:close(); return nil, err end
  attach(self, l)
  setmetatable(self, SERVER)
  return 1
end

function tcp:connect(host, port)
  local cls = check(self, "tcp{any}", "connect")
  host = checkstring(host, 2, "connect")
  port = checkport(port, 3, "connect")
  if cls ~= "tcp{master}" then return nil, "already connected" end
  if self._closed then return nil, "closed" end
  local b = self._bind
  if b and not b.ip and b.port == 0 then b = nil end   -- bound to nothing
  local t = wait_limit(self)
  local opts = {
    family = self._family,
    localaddr = b and b.ip, localport = b and b.port,
    reuseaddr = self._opts.reuseaddr or nil,
    timeout = t ~= 0 and t or nil,     -- 0: see doc/luasocket.md
  }
  local s, msg, errname = native.connect(host, port, "tcp", opts)
  if not s then return nil, word(msg, errname), msg end
  local ok, err = apply_options(self, s)
  if not ok then s:close(); return nil, err end
  apply_timeouts(self, s)
  attach(self, s)
  setmetatable(self, CLIENT)
  return 1
end
tcp.setpeername = tcp.connect
tcp.setsockname = tcp.bind

function tcp:accept()
  check(self, "tcp{server}", "accept")
  local l = self._s
  if self._closed then return nil, "closed" end
  local t = wait_limit(self)
  if t then
    -- Wait for a client within the limit, then take it (never waits).
    local deadline = now_ms() + t * 1000
    while not l:hasconnection() do
      if l:getfd() < 0 then return nil, "closed" end
      local left = (deadline - now_ms()) / 1000
      if left <= 0 then return nil, "timeout" end
      native._select({ l }, {}, left)
    end
  end
  local s, msg, errname = l:accept()
  if not s then return nil, word(msg, errname) end
  return new_client(s)
end

-- Bytes a receive took from the buffer: its result less the prefix, and
-- a line's LF (its CRs are not counted: they are not known here).
local function consumed(data, prefix, pattern)
  local n = #data - (prefix and #prefix or 0)
  if pattern == nil or pattern == "*l" or pattern == "l" then n = n + 1 end
  return n
end

function tcp:receive(pattern, prefix)
  check(self, "tcp{client}", "receive")
  local s = self._s
  if prefix ~= nil then prefix = checkstring(prefix, 3, "receive") end
  if type(pattern) == "string" and tonumber(pattern) then pattern = tonumber(pattern) end
  if type(pattern) == "number" then
    -- LuaSocket's count includes the prefix: receive(10, "abc") reads 7
    -- more bytes, and a prefix as long as the count reads nothing.
    local n = floor(pattern)
    if n < 0 then argerror(2, "receive", "invalid receive pattern", 2) end
    if prefix and #prefix > 0 and n <= #prefix then return prefix end
    pattern = n - (prefix and #prefix or 0)
  end
  local data, msg, partial = s:receive(pattern, prefix)
  if data then
    local n = consumed(data, prefix, pattern)
    -- "*a" that finds the stream already ended fails (as LuaSocket's).
    if n == 0 and (pattern == "*a" or pattern == "a") then
      return nil, "closed", data
    end
    self._rx = self._rx + n
    return data
  end
  self._rx = self._rx + #partial - (prefix and #prefix or 0)
  local w = TEXT_WORDS[msg]
  if w then return nil, w, partial, msg end
  return nil, msg, partial
end

-- A string index as LuaSocket reads one (a number, cut to an integer).
local function index(v, default)
  local n = tonumber(v) or default
  if n ~= n then n = default end
  if n > 2^53 then n = 2^53 elseif n < -2^53 then n = -2^53 end
  return tointeger(floor(n))
end

function tcp:send(data, i, j)
  check(self, "tcp{client}", "send")
  data = checkstring(data, 2, "send")
  local size = #data
  i, j = index(i, 1), index(j, -1)
  if i < 0 then i = size + i + 1 end
  if j < 0 then j = size + j + 1 end
  if i < 1 then i = 1 end
  if j > size then j = size end
  if i > j then return i - 1 end
  local part = (i == 1 and j == size) and data or data:sub(i, j)
  local ok, msg, errname, sent = self._s:send(part)
  if ok then
    self._tx = self._tx + #part
    return j
  end
  sent = sent or 0
  self._tx = self._tx + sent
  local w = word(msg, errname)
  return nil, w, i + sent - 1, w ~= msg and msg or nil
end

function tcp:shutdown(mode)
  check(self, "tcp{client}", "shutdown")
  mode = mode == nil and "both" or checkstring(mode, 2, "shutdown")
  if mode ~= "both" and mode ~= "send" and mode ~= "receive" then
    argerror(2, "shutdown", "invalid option '" .. mode .. "'", 2)
  end
  local ok, msg, errname = self._s:shutdown(mode)
  if not ok then return nil, word(msg, errname) end
  return 1
end

function tcp:getpeername()
  check(self, "tcp{any}", "getpeername")
  local s = self._s
  if classof(self) ~= "tcp{client}" then
    return nil, self._closed and "Bad file descriptor" or "Transport endpoint is not connected"
  end
  if self._closed then return nil, "Bad file descriptor" end
  return address(s:getpeer())
end

function tcp:getsockname()
  check(self, "tcp{any}", "getsockname")
  if self._closed then return nil, "Bad file descriptor" end
  local s = self._s
  if s then return address(s:getsockname()) end
  local b = self._bind
  if b and b.ip then return b.ip, b.port, family_of(b.ip) end
  if self._family == "inet6" then return "::", b and b.port or 0, "inet6" end
  return "0.0.0.0", b and b.port or 0, "inet"
end

function tcp:getstats()
  check(self, "tcp{client}", "getstats")
  return self._rx, self._tx, (now_ms() - self._t0) / 1000
end

function tcp:setstats(received, sent, age)
  check(self, "tcp{client}", "setstats")
  self._rx = tonumber(received) or self._rx
  self._tx = tonumber(sent) or self._tx
  if tonumber(age) then self._t0 = now_ms() - tonumber(age) * 1000 end
  return 1
end

-- The extension: TLS on a client, with pluto.socket's starttls and its
-- options (doc/tls.md): true [, alpn protocol], or nil, message, name.
function tcp:starttls(arg, opts)
  check(self, "tcp{client}", "starttls")
  local ok, msg, errname = self._s:starttls(arg, opts)
  if ok then return true, msg end
  if ok == nil then return nil, "TLS already started" end
  return nil, msg, errname
end

tcp.close = close
tcp.dirty = dirty
tcp.getfd = getfd
tcp.setfd = setfd
tcp.getfamily = getfamily
tcp.settimeout = settimeout
tcp.gettimeout = gettimeout
tcp.setoption = setoption
tcp.getoption = getoption
tcp.unwrap = unwrap

MASTER = define("tcp{master}", tcp)
CLIENT = define("tcp{client}", tcp)
SERVER = define("tcp{server}", tcp)

function M.tcp() return new_tcp(nil) end
function M.tcp4() return new_tcp("inet") end
function M.tcp6()
  local m = new_tcp("inet6")
  m._opts["ipv6-v6only"] = true           -- as LuaSocket's tcp6
  return m
end

------------------------------------------------------------------------
-- UDP
------------------------------------------------------------------------

local udp = {}
local UNCONNECTED, CONNECTED

M._DATAGRAMSIZE = 8192

local UDP_OPTIONS = {
  dontroute = true, broadcast = true, reuseaddr = true, reuseport = true,
  ["ip-multicast-if"] = true, ["ip-multicast-ttl"] = true, ["ip-multicast-loop"] = true,
  ["ip-add-membership"] = true, ["ip-drop-membership"] = true,
  ["ipv6-unicast-hops"] = true, ["ipv6-multicast-hops"] = true,
  ["ipv6-multicast-loop"] = true, ["ipv6-add-membership"] = true,
  ["ipv6-drop-membership"] = true, ["ipv6-v6only"] = true,
  ["recv-buffer-size"] = true, ["send-buffer-size"] = true,
}

-- The native socket of a UDP object; udp() makes it only once an address
-- says which family it needs.
local function udp_native(self, family)
  local s = self._s
  if s then return s end
  if self._closed then return nil, "closed" end
  family = self._family or family or "inet"
  local err
  s, err = native._udp(family)
  if not s then return nil, err end
  if family == "inet6" then
    s:setoption("ipv6-v6only", self._opts["ipv6-v6only"] ~= false)
  end
  for name, v in pairs(self._opts) do
    if name ~= "ipv6-v6only" then
      local ok, msg, errname = s:setoption(name, v)
      if not ok then s:close(); return nil, word(msg, errname) end
    end
  end
  apply_timeouts(self, s)
  self._family = family
  attach(self, s)
  return s
end

local function new_udp(family)
  local self = setmetatable({ _family = family, _opts = {} }, UNCONNECTED)
  if family then
    local ok, err = udp_native(self)
    if not ok then return nil, err end
  end
  return self
end

function M.udp() return new_udp(nil) end
function M.udp4() return new_udp("inet") end
function M.udp6() return new_udp("inet6") end

function udp:setoption(name, value)
  local s = self._s
  if s then return setoption(self, name, value) end
  if not UDP_OPTIONS[name] then
    argerror(2, "setoption", "unsupported option `" .. tostring(name) .. "'", 2)
  end
  self._opts[name] = value
  return 1
end

function udp:getoption(name)
  local s = self._s
  if s then return getoption(self, name) end
  if not UDP_OPTIONS[name] then
    argerror(2, "getoption", "unsupported option `" .. tostring(name) .. "'", 2)
  end
  local v = self._opts[name]
  if v == nil then return nil, "not known before the socket is made" end
  return v
end

function udp:setsockname(host, port)
  check(self, "udp{unconnected}", "setsockname")
  host = checkstring(host, 2, "setsockname")
  port = checkport(port, 3, "setsockname")
  local ip, err = "*", nil
  if host ~= "*" then
    ip, err = resolve_one(host, self._family)
    if not ip then return nil, err end
  end
  local s
  s, err = udp_native(self, ip ~= "*" and family_of(ip) or nil)
  if not s then return nil, err end
  local ok, msg, errname = s:_bind(ip, port)
  if not ok then return nil, word(msg, errname) end
  return 1
end

-- setpeername(host, port) aims the socket at one peer (udp{connected});
-- setpeername("*") undoes that.
function udp:setpeername(host, port)
  check(self, "udp{any}", "setpeername")
  host = checkstring(host, 2, "setpeername")
  if host == "*" then
    if self._s then
      local ok, msg, errname = self._s:_connect()
      if not ok then return nil, word(msg, errname) end
    end
    setmetatable(self, UNCONNECTED)
    return 1
  end
  port = checkport(port, 3, "setpeername")
  local ip, err = resolve_one(host, self._family)
  if not ip then return nil, err end
  local s
  s, err = udp_native(self, family_of(ip))
  if not s then return nil, err end
  local ok, msg, errname = s:_connect(ip, port)
  if not ok then return nil, word(msg, errname) end
  setmetatable(self, CONNECTED)
  return 1
end

-- One datagram (cut to size bytes, as recv(2) cuts it), or nil, message.
local function receive_datagram(self, size, fname)
  size = size == nil and M._DATAGRAMSIZE or tonumber(size)
  if not size then argerror(2, fname, "number expected", 3) end
  local s, err = udp_native(self)
  if not s then return nil, err end
  if wait_limit(self) == 0 and s:peek() == nil then return nil, "timeout" end
  local d, msg, errname = s:recv()
  if not d then
    if msg == nil then return nil, "closed" end
    return nil, word(msg, errname)
  end
  if #d > size then d = d:sub(1, floor(size)) end
  return d
end

function udp:receive(size)
  check(self, "udp{any}", "receive")
  return receive_datagram(self, size, "receive")
end

function udp:receivefrom(size)
  check(self, "udp{unconnected}", "receivefrom")
  local d, err = receive_datagram(self, size, "receivefrom")
  if not d then return nil, err end
  local ip, port = self._s:getpeer()
  return d, plain(ip), port
end

function udp:send(data)
  check(self, "udp{connected}", "send")
  data = checkstring(data, 2, "send")
  local ok, msg, errname = self._s:send(data)
  if not ok then return nil, word(msg, errname) end
  return #data
end

function udp:sendto(data, host, port)
  check(self, "udp{unconnected}", "sendto")
  data = checkstring(data, 2, "sendto")
  host = checkstring(host, 3, "sendto")
  port = checkport(port, 4, "sendto")
  local ip, err = resolve_one(host, self._family)
  if not ip then return nil, err end
  local s
  s, err = udp_native(self, family_of(ip))
  if not s then return nil, err end
  s:setpeer(ip, port)
  local ok, msg, errname = s:send(data)
  if not ok then return nil, word(msg, errname) end
  return #data
end

function udp:getpeername()
  check(self, "udp{connected}", "getpeername")
  if self._closed then return nil, "Bad file descriptor" end
  return address(self._s:getpeer())
end

function udp:getsockname()
  check(self, "udp{any}", "getsockname")
  if self._closed then return nil, "Bad file descriptor" end
  local s = self._s
  if not s then return "0.0.0.0", 0, "inet" end
  return address(s:getsockname())
end

udp.close = close
udp.dirty = dirty
udp.getfd = getfd
udp.setfd = setfd
udp.getfamily = getfamily
udp.settimeout = settimeout
udp.gettimeout = gettimeout
udp.unwrap = unwrap

UNCONNECTED = define("udp{unconnected}", udp)
CONNECTED = define("udp{connected}", udp)

------------------------------------------------------------------------
-- Module functions: connect, bind, select, time
------------------------------------------------------------------------

-- connect(host, port [, localhost [, localport [, family]]])
function M.connect(host, port, lhost, lport, family)
  local m
  if family == "inet" then m = M.tcp4()
  elseif family == "inet6" then m = M.tcp6()
  elseif family == nil then m = M.tcp()
  else argerror(5, "connect", "invalid family '" .. tostring(family) .. "'", 2) end
  if lhost or lport then
    local ok, err = m:bind(lhost or "*", lport or 0)
    if not ok then return nil, err end
  end
  local ok, err, msg = m:connect(host, port)
  if not ok then return nil, err, msg end
  return m
end

function M.connect4(host, port, lhost, lport) return M.connect(host, port, lhost, lport, "inet") end
function M.connect6(host, port, lhost, lport) return M.connect(host, port, lhost, lport, "inet6") end

-- bind(host, port [, backlog]): a server listening there ("*": every
-- IPv4 address, as LuaSocket's).
function M.bind(host, port, backlog)
  host = checkstring(host, 1, "bind")
  if host == "*" then host = "0.0.0.0" end
  local ip, err = resolve_one(host)
  if not ip then return nil, err end
  local m = family_of(ip) == "inet6" and M.tcp6() or M.tcp4()
  m:setoption("reuseaddr", true)
  local ok
  ok, err = m:bind(ip, port)
  if ok then ok, err = m:listen(backlog) end
  if not ok then return nil, err end
  return m
end

-- The native object select watches for v: one of ours, a native object,
-- or a table that only gives getfd (an LTN12 source or sink).
local proxies = setmetatable({}, { __mode = "k" })     -- sink/source -> object
local function watched(v)
  if proxies[v] then v = proxies[v] end
  if CLASS[getmetatable(v)] then return v._s end
  if native_kind(v) then return v end
  local t = type(v)
  if (t == "table" or t == "userdata") and v.getfd then
    local fd = tointeger(v:getfd()) or -1
    if fd < 0 then return nil end          -- closed: left out, as LuaSocket does
    local s = byfd[fd]
    if s and s:getfd() == fd then return s end
    error("select: descriptor " .. fd .. " is not a pluto.socket socket", 4)
  end
  return nil
end

local function isdirty(v)
  if CLASS[getmetatable(v)] or native_kind(v) then return false end
  local t = type(v)
  return (t == "table" or t == "userdata") and type(v.dirty) == "function"
         and v:dirty() and true or false
end

-- The natives of the objects in t (an array, or nil), and where each was.
local function collect(t, reading, now)
  local natives, objs = {}, {}
  if t == nil then return natives, objs end
  for i = 1, huge do
    local v = t[i]
    if v == nil then break end
    local s = watched(v)
    if s then
      natives[#natives + 1] = s
      objs[#natives] = v
    end
    if reading and isdirty(v) then now[#now + 1] = v end
  end
  return natives, objs
end

local function add(set, v)
  if not set[v] then
    set[#set + 1] = v
    set[v] = #set
  end
end

-- select(recvt, sendt [, timeout]): any number of sockets; in a
-- coroutine it yields until one is ready.
function M.select(recvt, sendt, timeout)
  local now = {}
  local rn, ro = collect(recvt, true, now)
  local wn, wo = collect(sendt, false, now)
  timeout = limit(timeout, 3, "select")
  if #now > 0 then timeout = 0 end
  local ri, wi = native._select(rn, wn, timeout)
  local readable, writable = {}, {}
  for _, v in ipairs(now) do add(readable, v) end
  for _, k in ipairs(ri) do add(readable, ro[k]) end
  for _, k in ipairs(wi) do add(writable, wo[k]) end
  if #readable == 0 and #writable == 0 then return readable, writable, "timeout" end
  return readable, writable
end

-- The system's clock, seconds since the epoch with their fraction.
M.gettime = native._gettime

function M.sleep(seconds)
  local t = tonumber(seconds)
  if not t or t ~= t then argerror(1, "sleep", "number expected", 2) end
  if t < 0 then t = 0 end
  if t > 999999999 then t = 999999999 end     -- pluto.socket's bound
  native.sleep(t * 1000)
end

M._VERSION = "LuaSocket 3.0 (pluto.luasocket, " .. tostring(native._VERSION) .. ")"
M._SETSIZE = math.maxinteger     -- select has no descriptor limit
M._SOCKETINVALID = -1

------------------------------------------------------------------------
-- DNS (on pluto.socket's dns lane: in a coroutine the lookups yield)
------------------------------------------------------------------------

local dns = {}
M.dns = dns

local NOT_FOUND = "host not found"

function dns.gethostname()
  return native._gethostname()
end

-- The host name of an IP (PTR), or nil (also for what only looked like
-- an IP literal).
local function reverse(ip)
  local ok, name = pcall(native._reverse, ip)
  return ok and name or nil
end

function dns.toip(host)
  host = checkstring(host, 1, "toip")
  if is_ip(host) then
    local ip = plain(host)
    return ip, { name = reverse(ip) or ip, alias = {}, ip = { ip } }
  end
  local list, canon = native._lookup(host, "inet")
  if not list then return nil, NOT_FOUND end
  return list[1], { name = canon, alias = {}, ip = list }
end

function dns.tohostname(host)
  host = checkstring(host, 1, "tohostname")
  if is_ip(host) then
    local ip = plain(host)
    local name = reverse(ip)
    if not name then return nil, NOT_FOUND end
    return name, { name = name, alias = {}, ip = { ip } }
  end
  local list, canon = native._lookup(host, "inet")
  if not list then return nil, NOT_FOUND end
  return canon, { name = canon, alias = {}, ip = list }
end

function dns.getaddrinfo(host)
  host = checkstring(host, 1, "getaddrinfo")
  local list, msg, name = native._lookup(host)
  if not list then return nil, word(msg, name) end
  local r = {}
  for i, ip in ipairs(list) do r[i] = { family = family_of(ip), addr = ip } end
  return r
end

-- getnameinfo(host [, port]): the names of host's addresses (an address
-- without one is given as itself) and the service name of port.
function dns.getnameinfo(host, port)
  if host == nil and port == nil then return nil, WORDS.EAI_NONAME end
  local names = {}
  if host ~= nil then
    host = checkstring(host, 1, "getnameinfo")
    local list = { plain(host) }
    if not is_ip(host) then
      local msg, name
      list, msg, name = native._lookup(host)
      if not list then return nil, word(msg, name) end
    end
    for i, ip in ipairs(list) do names[i] = reverse(ip) or ip end
  end
  local service
  if port ~= nil then
    local p = tointeger(tonumber(port))
    service = p and load_services().byport[p] or tostring(port)
  end
  return names, service
end

------------------------------------------------------------------------
-- try, newtry, protect, skip
------------------------------------------------------------------------

-- An error raised by a try function: a table holding the message, told
-- from other errors by its metatable.
local TRY = { __tostring = function(e) return tostring(e[1]) end }

function M.newtry(finalizer)
  return function(...)
    if (...) then return ... end
    if finalizer then finalizer() end
    error(setmetatable({ (select(2, ...)) }, TRY), 0)
  end
end

M.try = M.newtry()

-- Errors raised by try come back as nil, message; others go on up.
-- (pcall can yield in Lua 5.4: protected functions may wait.)
local function protected(ok, ...)
  if ok then return ... end
  local e = ...
  if getmetatable(e) == TRY then return nil, e[1] end
  error(e, 0)
end

function M.protect(f)
  return function(...) return protected(pcall(f, ...)) end
end

function M.skip(d, ...)
  return select(tointeger(d) + 1, ...)
end

------------------------------------------------------------------------
-- LTN12 sources and sinks
------------------------------------------------------------------------

M.BLOCKSIZE = 2048
M.sourcet, M.sinkt = {}, {}

-- A function that calls t[name](a, b); the name may be left out
-- ("default").
function M.choose(t)
  return function(name, a, b)
    if type(name) ~= "string" then name, a, b = "default", name, a end
    local f = t[name or "nil"]
    if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
    return f(a, b)
  end
end

-- A callable table that select can watch (through getfd and dirty).
local function proxy(sock, call)
  local p = setmetatable({
    getfd = function() return sock:getfd() end,
    dirty = function() return sock:dirty() end,
  }, { __call = call })
  proxies[p] = sock
  return p
end

M.sinkt["close-when-done"] = function(sock)
  return proxy(sock, function(_, chunk)
    if chunk then return sock:send(chunk) end
    sock:close()
    return 1
  end)
end

M.sinkt["keep-open"] = function(sock)
  return proxy(sock, function(_, chunk)
    if chunk then return sock:send(chunk) end
    return 1
  end)
end
M.sinkt.default = M.sinkt["keep-open"]

M.sourcet["by-length"] = function(sock, length)
  return proxy(sock, function()
    if length <= 0 then return nil end
    local chunk, err = sock:receive(length < M.BLOCKSIZE and length or M.BLOCKSIZE)
    if not chunk then return nil, err end
    length = length - #chunk
    return chunk
  end)
end

M.sourcet["until-closed"] = function(sock)
  local done = false
  return proxy(sock, function()
    if done then return nil end
    local chunk, err, partial = sock:receive(M.BLOCKSIZE)
    if chunk then return chunk end
    if err ~= "closed" then return nil, err end
    sock:close()
    done = true
    return partial
  end)
end
M.sourcet.default = M.sourcet["until-closed"]

M.sink = M.choose(M.sinkt)
M.source = M.choose(M.sourcet)

------------------------------------------------------------------------
-- Native objects
------------------------------------------------------------------------

-- wrap(s): the object of this module for a native socket or listener of
-- pluto.socket, sharing it (and its buffer) as it is; obj:unwrap() gives
-- it back.  LuaSocket's default limits (none) are set on it.
function M.wrap(s)
  local kind = native_kind(s)
  if kind == "listener" then
    local self = setmetatable({ _opts = {}, _rx = 0, _tx = 0, _t0 = now_ms() }, SERVER)
    attach(self, s)
    return self
  elseif kind ~= "socket" then
    argerror(1, "wrap", "pluto.socket socket or listener expected, got " .. type(s), 2)
  end
  s:settimeout(nil, "t")
  s:settimeout(nil, "b")
  if not s:isudp() then return new_client(s) end
  local self = setmetatable({ _opts = {} },
                            s:getside() == "client" and CONNECTED or UNCONNECTED)
  local ip = s:getsockname()
  self._family = ip and family_of(plain(ip)) or nil
  attach(self, s)
  return self
end

return M

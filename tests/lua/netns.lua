-- SPDX-License-Identifier: MIT
-- netns.lua: network namespaces for the DNS and Happy Eyeballs tests and
-- the DNS benchmark (root only). A helper module (require "netns").
--
--   local N = require "netns"
--   local why = N.why_not()           -- nil, or why namespaces cannot be used
--   local ns, err = N.create("plutodns")
--   ... ns:ip("link set lo up"), ns:write_etc("hosts", text),
--       ns:spawn(cmd), ns:spawn_lua(path, args...), ns:sh(cmd) ...
--   local dns = N.start_dns(ns)       -- dnsmasq + the delaying relay
--   N.stop_dns(dns)
--   ns:destroy()                       -- always, also after a failure
--
-- Every namespace is named PREFIX..PID (our PID), so parallel tests never
-- collide, and a namespace left behind by a test that was killed (its PID
-- gone) is removed by the next create with the same prefix.
-- `ip netns exec NS cmd` runs cmd in the namespace and bind-mounts each
-- file of /etc/netns/NS/ over the same name in /etc (resolv.conf, hosts).

local T = require "testlib"

local N = {}

-- Tools run without the sanitizer runtime (see testlib's spawn).
local function tool(cmd)
  return "env -u LD_PRELOAD " .. cmd
end

-- Run a command; returns true if it exited 0, and its output (stdout and
-- stderr together).
function N.sh(cmd)
  local h = T.popen(tool(cmd) .. " 2>&1", "r", cmd)
  local out = h:read("a")
  local ok = h:close()
  return ok == true, out
end

-- Is a program on PATH?
function N.have(prog)
  return T.have_program(prog)
end

-- nil when namespaces can be made here, else the reason why not.
function N.why_not()
  local h = T.popen("exec id -u 2>/dev/null", "r", "id")
  local uid = h and tonumber(h:read("a"))
  if h then h:close() end
  if uid ~= 0 then
    return "needs root to create network namespaces (uid " .. tostring(uid) .. ")"
  end
  if not N.have("ip") then
    return "the ip command (iproute2) is not installed"
  end
  return nil
end

local NS = {}
NS.__index = NS

local function etc_dir(name) return "/etc/netns/" .. name end

-- Remove namespaces PREFIX<pid> whose process is gone.
function N.sweep(prefix)
  local ok, out = N.sh("ip netns list")
  if not ok then return end
  for line in out:gmatch("[^\n]+") do
    local name = line:match("^(%S+)")
    local pid = name and name:match("^" .. prefix .. "(%d+)$")
    if pid and T.exited(tonumber(pid)) then
      N.sh("ip netns del " .. T.q(name))
      N.sh("rm -rf " .. T.q(etc_dir(name)))
    end
  end
end

-- A new namespace PREFIX<pid> with lo up; or nil, reason.
function N.create(prefix)
  local why = N.why_not()
  if why then return nil, why end
  N.sweep(prefix)
  local name = prefix .. T.self_pid()
  N.sh("ip netns del " .. T.q(name))            -- a stale one of ours
  local ok, out = N.sh("ip netns add " .. T.q(name))
  if not ok then
    return nil, "ip netns add " .. name .. " failed: " .. out:gsub("%s+$", "")
  end
  local ns = setmetatable({ name = name, pids = {} }, NS)
  ok, out = ns:ip("link set lo up")
  if not ok then
    ns:destroy()
    return nil, "cannot bring lo up in " .. name .. ": " .. out
  end
  return ns
end

-- Shell text running cmd inside the namespace.
function NS:cmd(cmd)
  return "ip netns exec " .. T.q(self.name) .. " " .. cmd
end

-- Run cmd inside the namespace; ok, output.
function NS:sh(cmd)
  return N.sh(self:cmd(cmd))
end

-- `ip -n NS args`; ok, output.
function NS:ip(args)
  return N.sh("ip -n " .. T.q(self.name) .. " " .. args)
end

-- Like ns:ip, failing the test when the command fails.
function NS:must(args)
  local ok, out = self:ip(args)
  T.check(ok, "ip -n %s %s: %s", self.name, args, out)
  return out
end

-- Write /etc/netns/NS/<file> (seen as /etc/<file> inside the namespace).
function NS:write_etc(file, text)
  local dir = etc_dir(self.name)
  if not self.made_etc then
    T.check(N.sh("mkdir -p " .. T.q(dir)), "cannot create %s", dir)
    self.made_etc = true
  end
  local f = assert(io.open(dir .. "/" .. file, "w"))
  f:write(text)
  f:close()
end

-- Spawn cmd inside the namespace (a tool: no LD_PRELOAD); pid, handle.
-- `ip netns exec` execs the command, so the PID is the command's own.
function NS:spawn(cmd)
  local pid, h = T.spawn(self:cmd(cmd), { tool = true })
  self.pids[#self.pids + 1] = pid
  return pid, h
end

-- Shell text running a Lua script (path relative to the source tree, or
-- absolute) with arguments, through the test wrapper when there is one.
function N.lua_cmd(path, ...)
  if path:sub(1, 1) ~= "/" then path = T.SRCDIR .. "/" .. path end
  local args = {}
  for i = 1, select("#", ...) do args[#args + 1] = T.q(select(i, ...)) end
  local runner = T.LUA
  if T.RUN_LUA and T.RUN_LUA ~= "" then runner = T.q(T.RUN_LUA) end
  return T.preload_env() .. runner .. " " .. T.q(path) .. " " .. table.concat(args, " ")
end

-- Spawn a Lua script inside the namespace; pid, handle.
function NS:spawn_lua(path, ...)
  return self:spawn(N.lua_cmd(path, ...))
end

-- Run a Lua script inside the namespace to its end (bounded by timeout_ms,
-- then killed); returns its stdout and how it ended (ok, how, code).
function NS:run_lua(timeout_ms, path, ...)
  local pid, h = self:spawn_lua(path, ...)
  local out = h:read("a")        -- until the child closes stdout (exits)
  local ok, how, code = T.wait_exit(pid, h, timeout_ms)
  return out, ok, how, code
end

-- End what we spawned here and remove the namespace and its /etc files.
-- Safe to call twice. (/etc/netns itself stays: another test running in
-- parallel may be using it.)
function NS:destroy()
  for _, pid in ipairs(self.pids) do
    if T.children[pid] then T.kill(pid) end
  end
  self.pids = {}
  if self.name then
    N.sh("ip netns del " .. T.q(self.name))
    N.sh("rm -rf " .. T.q(etc_dir(self.name)))
    self.name = nil
  end
end

------------------------------------------------------------------------
-- A delayed DNS server inside a namespace
------------------------------------------------------------------------

-- dnsmasq (dnsmasq-base) on 127.0.0.1:5353 answers every name under
-- test.pluto with 192.0.2.1 and 2001:db8::1 (documentation addresses, never
-- contacted), and NXDOMAIN for names under .invalid; in front of it, on
-- 127.0.0.1:53, the delaying relay h_dns_delay.lua. resolv.conf points
-- at the relay.
--
-- Both run with real-time priority (chrt -f) when the kernel allows it: a
-- client with a thousand threads each sending its queries at once would
-- otherwise get the CPU while the relay (one thread among a thousand
-- runnable ones) waits, and its socket's receive buffer (about 200 KiB,
-- a few hundred datagrams; net.core.rmem_default cannot be changed inside
-- a namespace) overflows: lost queries, 5 s resolver timeouts. Neither
-- ever spins, so this costs the rest of the machine nothing.
--
-- opts: delay (ms, default 100), mode ("fifo"|"co"), window, resolv (the
-- options line), domain (default "test.pluto"), rt (default true).
-- Returns a handle for N.stop_dns; fails the test if a part does not start.
function N.start_dns(ns, opts)
  opts = opts or {}
  local d = { log = os.tmpname() }
  local domain = opts.domain or "test.pluto"
  local rt = ""
  if opts.rt ~= false and N.sh("chrt -f 10 true") then rt = "chrt -f 10 " end
  d.rt = rt ~= ""
  ns:write_etc("resolv.conf", "nameserver 127.0.0.1\noptions " ..
               (opts.resolv or "timeout:5 attempts:1") .. "\n")
  local dnsmasq = table.concat({
    "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--pid-file",
    "--no-resolv", "--no-hosts", "--port=5353",
    "--listen-address=127.0.0.1", "--bind-interfaces",
    "--address=/" .. domain .. "/192.0.2.1",
    "--address=/" .. domain .. "/2001:db8::1",
    "--address=/invalid/",              -- NXDOMAIN for anything .invalid
    "--cache-size=0",
  }, " ")
  d.dnsmasq, d.dh = ns:spawn(rt .. dnsmasq .. " 2>" .. T.q(d.log))
  d.relay, d.rh = ns:spawn(rt .. N.lua_cmd("tests/lua/h_dns_delay.lua",
                               "127.0.0.1:53", "127.0.0.1:5353",
                               tostring(opts.delay or 100), opts.mode or "fifo",
                               tostring(opts.window or 64)))
  local line = d.rh:read("l")
  if line ~= "ready" then
    local f = io.open(d.log)
    local log = f and f:read("a") or ""
    if f then f:close() end
    N.stop_dns(d)
    T.check(false, "the DNS relay did not start (got %s); dnsmasq said: %s",
            T.repr(line), log)
  end
  return d
end

function N.stop_dns(d)
  if not d then return end
  if d.relay and T.children[d.relay] then T.kill(d.relay, d.rh) end
  if d.dnsmasq and T.children[d.dnsmasq] then T.kill(d.dnsmasq, d.dh) end
  if d.log then os.remove(d.log) end
  d.relay, d.dnsmasq, d.log = nil, nil, nil
end

return N

-- SPDX-License-Identifier: MIT
-- tlscerts.lua: the TLS tests' certificates, made at test time with
-- certtool (GnuTLS) in a fresh temporary directory, plus small helpers the
-- t_tls_*.lua tests share (running the peer tools, free ports, waiting for
-- a peer server to listen).
--
--   local C = require "tlscerts"
--   C.need("certtool", "openssl")     -- exit 77 (skip) if one is missing
--   local pki = C.make()              -- builds the PKI (about 0.5 s)
--   ... pki.cafile, pki.ca, pki.localhost.chain, pki.localhost.private_key
--   pki:cleanup()                     -- removes the directory (also done
--                                     -- when the Lua state closes)
--
-- The PKI: one CA (RSA-2048, CN "Pluto Test CA") and, signed by it,
--   localhost  RSA-2048, CN/DNS localhost, IP SANs 127.0.0.1 and ::1
--   ecdsa      ECDSA P-256, same names as localhost
--   ed25519    Ed25519, same names as localhost
--   expired    RSA, localhost, valid 2019-01-01 .. 2020-01-01 only
--   wrong      RSA, CN/DNS wrong.example (no IP SANs)
--   other      RSA, CN/DNS other.test (for SNI selection)
-- and untrusted: an RSA certificate for localhost from a second CA that
-- nobody trusts (untrusted_ca, file untrusted_cafile); chained: an ECDSA
-- leaf for localhost signed by an intermediate CA under ours, its chain
-- being leaf + intermediate (chained_leaf_only: the leaf alone).
-- Each entry is { chain = PEM, private_key = PEM, certfile = path,
-- keyfile = path, cn = name }: it can be put straight into the certs
-- array of s:starttls (extra fields are ignored).
--
-- Every test makes its own directory (mktemp -d), so tests can run in
-- parallel. If the test process is killed (no finalizer runs), testlib's
-- watchdog removes it (T.remove_on_exit).
local T = require "testlib"

local C = {}

-- Run a shell command without the sanitizer runtime; true if it exited 0,
-- else false and the exit status.
local function sh(cmd)
  -- exec: one process fewer (the limit on processes may be near).
  local ok, _, code = os.execute("exec env -u LD_PRELOAD sh -c " .. T.q(cmd))
  return ok == true, code
end

function C.have(tool)
  return T.have_program(tool)
end

-- Skip the test (exit 77) unless every tool named is installed.
function C.need(...)
  for i = 1, select("#", ...) do
    local tool = select(i, ...)
    if not C.have(tool) then T.skip("%s is not installed", tool) end
  end
end

local function readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
C.readfile = readfile

local function writefile(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end
C.writefile = writefile

-- The certtool templates.
local CA_TMPL = [[
cn = "Pluto Test CA"
organization = "pluto.socket tests"
serial = 1
expiration_days = 30
ca
cert_signing_key
crl_signing_key
]]

local function server_tmpl(cn, serial, opts)
  local t = { string.format('cn = "%s"', cn),
              'organization = "pluto.socket tests"',
              "serial = " .. serial,
              string.format('dns_name = "%s"', cn) }
  if opts.ips then
    t[#t + 1] = 'ip_address = "127.0.0.1"'
    t[#t + 1] = 'ip_address = "::1"'
  end
  if opts.expired then
    t[#t + 1] = 'activation_date = "2019-01-01 00:00:00"'
    t[#t + 1] = 'expiration_date = "2020-01-01 00:00:00"'
  else
    t[#t + 1] = "expiration_days = 30"
  end
  t[#t + 1] = "tls_www_server"
  t[#t + 1] = "signing_key"
  if opts.rsa then t[#t + 1] = "encryption_key" end
  return table.concat(t, "\n") .. "\n"
end

-- name, key file, CN, template options
local SERVERS = {
  { "localhost", "rsa.key",     "localhost",     { ips = true, rsa = true } },
  { "ecdsa",     "ecdsa.key",   "localhost",     { ips = true } },
  { "ed25519",   "ed25519.key", "localhost",     { ips = true } },
  { "expired",   "rsa.key",     "localhost",     { ips = true, rsa = true, expired = true } },
  { "wrong",     "rsa.key",     "wrong.example", { rsa = true } },
  { "other",     "other.key",   "other.test",    { rsa = true } },
}

local function cleanup(self)
  local dir = rawget(self, "dir")
  if dir and dir:match("/pluto%-tls%.[%w]+$") then
    sh("rm -rf " .. T.q(dir))
  end
  self.dir = nil
end

local pki_mt = { __index = {}, __gc = cleanup }
pki_mt.__index.cleanup = cleanup
-- A path inside the PKI's directory (for the tests' own scratch files).
function pki_mt.__index.path(self, name) return self.dir .. "/" .. name end

-- Build the PKI in a new directory; fails the test if certtool fails.
function C.make()
  C.need("certtool")
  local h = T.popen("exec env -u LD_PRELOAD mktemp -d \"${TMPDIR:-/tmp}/pluto-tls.XXXXXXXX\"",
                    "r", "mktemp")
  local dir = h:read("l")
  h:close()
  T.check(dir and dir:match("/pluto%-tls%.[%w]+$"), "mktemp -d failed: %s", tostring(dir))
  -- The table (and its finalizer) exists from here on, so the directory
  -- goes even if a step below fails.
  local pki = setmetatable({ dir = dir }, pki_mt)
  T.remove_on_exit(dir)

  writefile(dir .. "/ca.tmpl", CA_TMPL)
  writefile(dir .. "/untrusted.tmpl", (CA_TMPL:gsub("Pluto Test CA", "Untrusted Test CA")))
  local keygen = "certtool --generate-privkey --no-text "
  local cmds = {
    "cd " .. T.q(dir),
    keygen .. "--key-type=rsa --bits=2048 --outfile ca.key",
    keygen .. "--key-type=rsa --bits=2048 --outfile rsa.key",
    keygen .. "--key-type=rsa --bits=2048 --outfile other.key",
    keygen .. "--key-type=ecdsa --curve=secp256r1 --outfile ecdsa.key",
    keygen .. "--key-type=ed25519 --outfile ed25519.key",
    keygen .. "--key-type=rsa --bits=2048 --outfile untrusted.key",
    "certtool --generate-self-signed --no-text --load-privkey ca.key"
      .. " --template ca.tmpl --outfile ca.pem",
    "certtool --generate-self-signed --no-text --load-privkey untrusted.key"
      .. " --template untrusted.tmpl --outfile untrusted_ca.pem",
  }
  for i, s in ipairs(SERVERS) do
    local name, key, cn, opts = s[1], s[2], s[3], s[4]
    writefile(dir .. "/" .. name .. ".tmpl", server_tmpl(cn, 100 + i, opts))
    cmds[#cmds + 1] = "certtool --generate-certificate --no-text --load-privkey "
      .. key .. " --load-ca-certificate ca.pem --load-ca-privkey ca.key"
      .. " --template " .. name .. ".tmpl --outfile " .. name .. ".pem"
  end
  -- An intermediate CA under ours, and a leaf for localhost under it.
  cmds[#cmds + 1] = keygen .. "--key-type=ecdsa --curve=secp256r1 --outfile inter.key"
  cmds[#cmds + 1] = keygen .. "--key-type=ecdsa --curve=secp256r1 --outfile chained.key"
  cmds[#cmds + 1] = "certtool --generate-certificate --no-text --load-privkey inter.key"
    .. " --load-ca-certificate ca.pem --load-ca-privkey ca.key"
    .. " --template inter.tmpl --outfile inter.pem"
  cmds[#cmds + 1] = "certtool --generate-certificate --no-text --load-privkey chained.key"
    .. " --load-ca-certificate inter.pem --load-ca-privkey inter.key"
    .. " --template chained.tmpl --outfile chained.pem"
  writefile(dir .. "/inter.tmpl", (CA_TMPL:gsub("Pluto Test CA", "Pluto Test Intermediate")
                                          :gsub("serial = 1", "serial = 2")))
  writefile(dir .. "/chained.tmpl", server_tmpl("localhost", 200, { ips = true }))
  -- A leaf signed by the untrusted CA, for localhost.
  cmds[#cmds + 1] = "certtool --generate-certificate --no-text --load-privkey rsa.key"
    .. " --load-ca-certificate untrusted_ca.pem --load-ca-privkey untrusted.key"
    .. " --template localhost.tmpl --outfile untrusted.pem"
  local log_path = dir .. "/certtool.log"
  local made, code = sh(table.concat(cmds, " >>" .. log_path .. " 2>&1 && ") ..
                        " >>" .. log_path .. " 2>&1")
  if not made then
    local log = io.open(dir .. "/certtool.log")
    local text = log and log:read("a") or ""
    if log then log:close() end
    -- No shell at all (system() reports 127) or a shell that could not
    -- fork: the process limit, not certtool.
    if (code == 127 and text == "") or text:find("Cannot fork", 1, true)
       or text:find("Resource temporarily unavailable", 1, true) then
      T.skip("cannot start certtool to make the test PKI: no process could be started (%s)",
             T.process_limits())
    end
    error("FAIL: certtool could not make the test PKI:\n" .. text, 2)
  end

  pki.cafile = dir .. "/ca.pem"
  pki.ca = readfile(pki.cafile)
  pki.untrusted_cafile = dir .. "/untrusted_ca.pem"
  for _, s in ipairs(SERVERS) do
    local name, key, cn = s[1], s[2], s[3]
    pki[name] = {
      chain = readfile(dir .. "/" .. name .. ".pem"),
      private_key = readfile(dir .. "/" .. key),
      certfile = dir .. "/" .. name .. ".pem",
      keyfile = dir .. "/" .. key,
      cn = cn,
    }
  end
  -- chained: leaf + intermediate in the chain; chained_leaf_only: the
  -- leaf alone (a client trusting only our CA cannot build the path).
  local inter = readfile(dir .. "/inter.pem")
  local leaf = readfile(dir .. "/chained.pem")
  pki.intermediate = inter
  pki.chained = {
    chain = leaf .. inter,
    private_key = readfile(dir .. "/chained.key"),
    certfile = dir .. "/chained-full.pem",
    keyfile = dir .. "/chained.key",
    cn = "localhost",
  }
  writefile(pki.chained.certfile, pki.chained.chain)
  pki.chained_leaf_only = {
    chain = leaf,
    private_key = pki.chained.private_key,
    certfile = dir .. "/chained.pem",
    keyfile = dir .. "/chained.key",
    cn = "localhost",
  }
  pki.untrusted = {
    chain = readfile(dir .. "/untrusted.pem"),
    private_key = readfile(dir .. "/rsa.key"),
    certfile = dir .. "/untrusted.pem",
    keyfile = dir .. "/rsa.key",
    cn = "localhost",
  }
  for _, k in ipairs({ "ca", "localhost", "ecdsa", "ed25519", "expired", "wrong", "chained",
                       "other", "untrusted" }) do
    local pem = type(pki[k]) == "table" and pki[k].chain or pki[k]
    T.check(pem:find("-----BEGIN CERTIFICATE-----", 1, true),
            "certtool made no certificate for %s", k)
  end
  return pki
end

------------------------------------------------------------------------
-- Peer tools
------------------------------------------------------------------------

-- Start a tool (no LD_PRELOAD) with stdin from `input` (a file, default
-- /dev/null) and stdout+stderr to the file `out`. Returns pid, handle.
function C.spawn_tool(cmd, out, input)
  return T.spawn(cmd .. " <" .. T.q(input or "/dev/null") .. " >" .. T.q(out) .. " 2>&1",
                 { tool = true })
end

-- Run a tool to its end (bounded by timeout_ms, then it is killed) and
-- return its output (stdout and stderr) and how it ended ("exit", code) as
-- handle:close() says. Inside a coroutine the wait yields (socket.sleep),
-- so a server in the same scheduler keeps running.
function C.run_tool(cmd, out, input, timeout_ms)
  local pid, h = C.spawn_tool(cmd, out, input)
  local ok, how, code = T.wait_exit(pid, h, timeout_ms or 20000)
  local text = readfile(out)
  if ok == nil and how == nil then
    error(string.format("FAIL: %s did not finish within %d ms; output:\n%s",
                        cmd, timeout_ms or 20000, text), 2)
  end
  return text, how, code
end

-- A port that was free a moment ago on 127.0.0.1 (for tools that need a
-- port number: they can lose a race for it, so callers retry).
function C.free_port(socket)
  local l = assert(socket.listen("127.0.0.1:0"))
  local _, port = l:getsockname()
  l:close()
  return port
end

-- Inodes of sockets listening on TCP port `port` (IPv4 or IPv6).
local function listening_inodes(port)
  local hexport = string.format(":%04X", port)
  local inodes = {}
  for _, file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        local loc, st, inode =
          line:match("^%s*%d+:%s+(%x+:%x+)%s+%x+:%x+%s+(%x%x)%s+%S+%s+%S+%s+%S+%s+%d+%s+%d+%s+(%d+)")
        if loc and st == "0A" and loc:sub(-5):upper() == hexport then
          inodes[#inodes + 1] = inode
        end
      end
      f:close()
    end
  end
  return inodes
end

-- True when process `pid` holds a socket listening on `port`.
function C.pid_listens(pid, port)
  local inodes = listening_inodes(port)
  if #inodes == 0 then return false end
  local h = T.popen("exec env -u LD_PRELOAD ls -l /proc/" .. pid .. "/fd 2>/dev/null", "r", "ls")
  local fds = h:read("a")
  h:close()
  for _, inode in ipairs(inodes) do
    if fds:find("socket:[" .. inode .. "]", 1, true) then return true end
  end
  return false
end

-- Start a peer server with make_cmd(port) on a free port and wait until it
-- listens. Retries with another port (up to 5 times) when the server exits
-- (lost the port). Returns pid, handle, port, output file.
function C.start_server(socket, make_cmd, out, timeout_ms)
  timeout_ms = timeout_ms or 10000
  local last = ""
  for _ = 1, 5 do
    local port = C.free_port(socket)
    local pid, h = C.spawn_tool(make_cmd(port), out)
    local up = T.wait_until(function()
      if T.exited(pid) then return "exited" end
      if C.pid_listens(pid, port) then return "up" end
    end, timeout_ms, nil, true)
    if up == "up" then return pid, h, port, out end
    T.kill(pid, h)
    last = readfile(out)
    if up == nil then
      error("FAIL: server did not listen within " .. timeout_ms .. " ms: "
            .. make_cmd(port) .. "\n" .. last, 2)
    end
  end
  error("FAIL: server could not start: " .. last, 2)
end

------------------------------------------------------------------------
-- Small HTTP helpers for our own TLS server
------------------------------------------------------------------------

-- Read from s until the end of an HTTP header (\r\n\r\n or \n\n), bounded.
-- Returns the text received, or nil, why.
function C.read_header(s, max)
  max = max or 65536
  local buf = ""
  for _ = 1, 1000 do
    if buf:find("\r?\n\r?\n") then return buf end
    if #buf > max then return nil, "header too long" end
    local d, err = s:recv()
    if not d then return nil, err or "closed" end
    buf = buf .. d
  end
  return nil, "too many chunks"
end

function C.http_response(body)
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
         .. #body .. "\r\nConnection: close\r\n\r\n" .. body
end

-- Receive until the peer closes, bounded in bytes and calls.
function C.recv_until_close(s, max)
  max = max or (1 << 20)
  local parts, n = {}, 0
  for _ = 1, 100000 do
    local d = s:recv()
    if not d then break end
    parts[#parts + 1] = d
    n = n + #d
    if n > max then break end
  end
  return table.concat(parts)
end

return C

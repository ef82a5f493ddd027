-- SPDX-License-Identifier: MIT
-- luasocket_https.lua: Debian's socket.http (lua-socket), unmodified,
-- fetching HTTPS URLs through pluto.luasocket, several at once under one
-- scheduler.  The `create` below is all it takes: connect, then TLS to the
-- same host name, verified (chain and name) by default.
--
--   lua5.4 doc/examples/luasocket_https.lua [CAFILE] URL...
--
-- With the test server of tls.md (lua5.4 doc/examples/tls_server.lua 8443 pki):
--   lua5.4 doc/examples/luasocket_https.lua pki/ca.pem https://localhost:8443/ https://localhost:8443/x
-- Without CAFILE the system's trust store is used.
local socket = require "pluto.luasocket"
package.loaded.socket = socket              -- before anything loads LuaSocket
local http = require "socket.http"
local ltn12 = require "ltn12"
local Scheduler = require "pluto.scheduler"

-- socket.http calls create() for each connection, then connect(host,
-- port) on what it returns.
local function https(tls_opts)
  return function()
    local c = socket.tcp()
    local connect = c.connect
    function c:connect(host, port)
      local ok, err = connect(self, host, port)
      if not ok then return nil, err end
      return self:starttls(host, tls_opts)  -- chain and name verified
    end
    return c
  end
end

local args = { ... }
local tls_opts
if args[1] and not args[1]:match("^https://") then
  tls_opts = { cafile = table.remove(args, 1) }
end
if #args == 0 then
  io.stderr:write("usage: lua5.4 luasocket_https.lua [CAFILE] URL...\n")
  os.exit(2)
end

local sched = Scheduler.new()
for _, url in ipairs(args) do
  sched:add(function()
    local body = {}
    local ok, code, headers = http.request{ url = url, create = https(tls_opts),
                                            sink = ltn12.sink.table(body) }
    if not ok then
      print(url, "failed: " .. tostring(code))
    else
      print(url, code, headers["content-type"], #table.concat(body) .. " bytes")
    end
  end)
end
sched:run()

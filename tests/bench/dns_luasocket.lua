-- SPDX-License-Identifier: MIT
-- dns_luasocket.lua: COUNT distinct lookups with LuaSocket's
-- socket.dns.toip, one after the other (it blocks: there is no other way
-- to use it from one Lua state).
-- usage: dns_luasocket.lua COUNT [TAG]  prints: count=N ok=N fail=N ms=.. err=..
local socket = require "socket"

local count = tonumber(arg[1] or 100)
local tag = arg[2] or "r0"
local ok, fail, first_err = 0, 0, nil
local t0 = socket.gettime()
for i = 1, count do
  local name = "n" .. i .. "." .. tag .. ".test.pluto"
  local ip, err = socket.dns.toip(name)
  if ip == "192.0.2.1" then ok = ok + 1 else
    fail = fail + 1
    first_err = first_err or (name .. ": " .. tostring(err))
  end
end
io.write(string.format("count=%d ok=%d fail=%d ms=%.1f err=%s\n", count, ok, fail,
                       (socket.gettime() - t0) * 1000, first_err or "-"))

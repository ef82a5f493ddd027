-- SPDX-License-Identifier: MIT
-- dns_luv.lua: COUNT distinct lookups with luv's uv.getaddrinfo, all
-- submitted at once (libuv runs them on its threadpool: 4 threads unless
-- UV_THREADPOOL_SIZE says otherwise). Same query as socket.resolve: any
-- family, one entry per address.
-- usage: dns_luv.lua COUNT [TAG]     prints: count=N ok=N fail=N ms=.. err=..
local uv = require "luv"

local count = tonumber(arg[1] or 1000)
local tag = arg[2] or "r0"
local ok, fail, done, first_err = 0, 0, 0, nil
local t0 = uv.hrtime()
local t_end

for i = 1, count do
  local name = "n" .. i .. "." .. tag .. ".test.pluto"
  uv.getaddrinfo(name, nil, { socktype = "stream" }, function(err, res)
    local good = false
    for _, a in ipairs(res or {}) do
      if a.addr == "192.0.2.1" then good = true end
    end
    if good then ok = ok + 1 else
      fail = fail + 1
      first_err = first_err or (name .. ": " .. tostring(err))
    end
    done = done + 1
    if done == count then t_end = uv.hrtime() end
  end)
end
uv.run()
io.write(string.format("count=%d ok=%d fail=%d ms=%.1f err=%s\n", count, ok, fail,
                       ((t_end or uv.hrtime()) - t0) / 1e6, first_err or "-"))

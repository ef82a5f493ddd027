-- SPDX-License-Identifier: MIT
-- dns_cqueues.lua: COUNT distinct names looked up with cqueues' own
-- non-blocking stub resolver (cqueues.dns.resolvers pool, reading
-- /etc/resolv.conf), A and AAAA for each name as getaddrinfo does, as many
-- queries in flight as the pool allows.
-- A cqueues resolver carries one query at a time on a UDP socket of its
-- own, so the pool's size is the number of queries in flight (and of
-- sockets). The pool is raised to POOL (default: 2*COUNT, capped at 8192
-- to stay well inside the descriptor limit), and POOL coroutines take the
-- queries from a shared list: never more callers than resolvers (the pool
-- busy-waits when asked for more than hiwat resolvers).
-- usage: dns_cqueues.lua COUNT [TAG [POOL]]
--   prints: count=N ok=N fail=N ms=.. pool=N err=..
local cqueues = require "cqueues"
local resolvers = require "cqueues.dns.resolvers"

local count = tonumber(arg[1] or 1000)
local tag = arg[2] or "r0"
local poolsize = tonumber(arg[3] or math.min(2 * count, 8192))

local pool = assert(resolvers.stub())
pool.hiwat = poolsize
pool.lowat = poolsize         -- keep resolvers for reuse instead of closing them

local total = 2 * count       -- A and AAAA per name
local nextq = 0
local a_ok, aaaa_ok = {}, {}
local first_err
local cq = cqueues.new()
local t0 = cqueues.monotime()
local t_end
local finished = 0

for _ = 1, math.min(poolsize, total) do
  cq:wrap(function()
    while nextq < total do
      nextq = nextq + 1
      local j = nextq
      local i = (j + 1) // 2
      local qtype = (j % 2 == 1) and "A" or "AAAA"
      local name = "n" .. i .. "." .. tag .. ".test.pluto"
      local pkt, err = pool:query(name, qtype, "IN", 30)
      if pkt then
        if qtype == "A" then
          for rr in pkt:grep { section = "answer", type = "A" } do
            if rr:addr() == "192.0.2.1" then a_ok[i] = true end
          end
        else
          aaaa_ok[i] = true
        end
      else
        first_err = first_err or (name .. " " .. qtype .. ": " .. tostring(err))
      end
      finished = finished + 1
      if finished == total then t_end = cqueues.monotime() end
    end
  end)
end
local okl, err = cq:loop()
if not okl then first_err = first_err or tostring(err) end
local ok = 0
for i = 1, count do if a_ok[i] and aaaa_ok[i] then ok = ok + 1 end end
io.write(string.format("count=%d ok=%d fail=%d ms=%.1f pool=%d err=%s\n", count, ok,
                       count - ok, ((t_end or cqueues.monotime()) - t0) * 1000,
                       poolsize, first_err or "-"))

-- SPDX-License-Identifier: MIT
-- h_dns_client.lua: runs inside the namespace of t_dns_netns.lua (and of
-- the DNS benchmark). Resolves COUNT distinct names nI.TAG.test.pluto from
-- COUNT coroutines under one pluto.scheduler, all in flight at once.
--
-- usage: h_dns_client.lua COUNT [DNS_THREADS [TAG [SINGLE]]]
--   DNS_THREADS  if given and not "-", socket.config{dns_threads = N}
--   SINGLE       "1" (default): first time one lookup alone
-- Prints key=value lines:
--   single_ms=..  single=<addresses>          (one lookup, alone)
--   count=N ok=N fail=N ms=..  err=<first error>
--   max_dns_threads=N  cap=N
--   udp_rcvbuf_errors=N  (this namespace's UDP receive-buffer drops)

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local count = tonumber(arg[1] or 1000)
local threads = arg[2]
local tag = arg[3] or "r0"
local single = (arg[4] or "1") == "1"

if threads and threads ~= "-" then
  socket.config { dns_threads = tonumber(threads) }
end
local cap = socket.config().dns_threads
local now = socket._now

local function out(fmt, ...)
  io.stdout:write(string.format(fmt, ...), "\n")
  io.stdout:flush()
end

local function udp_rcvbuf_errors()
  local f = io.open("/proc/net/snmp")
  if not f then return -1 end
  local head, vals
  for line in f:lines() do
    if line:match("^Udp: ") then
      if not head then head = line else vals = line end
    end
  end
  f:close()
  if not (head and vals) then return -1 end
  local names, nums = {}, {}
  for w in head:gmatch("%S+") do names[#names + 1] = w end
  for w in vals:gmatch("%S+") do nums[#nums + 1] = w end
  for i, n in ipairs(names) do
    if n == "RcvbufErrors" then return tonumber(nums[i]) end
  end
  return -1
end

local function has(list, want)
  for _, a in ipairs(list or {}) do if a == want then return true end end
  return false
end

local drops0 = udp_rcvbuf_errors()

-- One lookup alone, inside a coroutine of its own scheduler.
if single then
  local sched = Scheduler.new()
  sched:add(function()
    local t0 = now()
    local r, msg, name = socket.resolve("single." .. tag .. ".test.pluto")
    local ms = (t_end or now()) - t0
    out("single_ms=%.1f", ms)
    out("single=%s", r and table.concat(r, ",") or
                     ("nil " .. tostring(msg) .. " " .. tostring(name)))
  end)
  sched:run()
end

-- COUNT lookups at once.
local sched = Scheduler.new()
local ok, fail, done, first_err = 0, 0, 0, nil
local maxthreads, t_end = 0, nil
local t0 = now()
for i = 1, count do
  sched:add(function()
    local name = "n" .. i .. "." .. tag .. ".test.pluto"
    local r, msg, ename = socket.resolve(name)
    if r and has(r, "192.0.2.1") then
      ok = ok + 1
    else
      fail = fail + 1
      first_err = first_err or (name .. ": " .. (r and table.concat(r, ",") or
                                 (tostring(msg) .. " " .. tostring(ename))))
    end
    done = done + 1
    if done == count then t_end = now() end
  end)
end
-- Watch the dns lane's thread count while the lookups run (bounded: it
-- ends with them, or after 60 s).
sched:add(function()
  local stop = now() + 60000
  while done < count and now() < stop do
    local n = socket.stats().dns.threads
    if n > maxthreads then maxthreads = n end
    socket.sleep(5)
  end
end)
sched:run()
local ms = (t_end or now()) - t0

out("count=%d ok=%d fail=%d ms=%.1f err=%s", count, ok, fail, ms,
    first_err or "-")
out("max_dns_threads=%d cap=%d", maxthreads, cap)
out("udp_rcvbuf_errors=%d", udp_rcvbuf_errors() - drops0)

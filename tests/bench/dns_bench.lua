-- SPDX-License-Identifier: MIT
-- dns_bench.lua: many distinct DNS lookups against a server that takes
-- 100 ms per query, from one Lua process: pluto.socket's resolve against
-- luv, cqueues and LuaSocket. Run as root (it makes a network namespace):
-- see dns_bench.sh. Prints a markdown table on stdout.
--
-- The server: in a namespace of our own, dnsmasq answers every name under
-- test.pluto and our relay (tests/lua/h_dns_delay.lua) holds each query
-- 100 ms in front of it; /etc/netns/NS/resolv.conf points at the relay
-- (same setup as tests/lua/t_dns_netns.lua, from tests/lua/netns.lua).
-- Every client runs inside the namespace as its own process, and every
-- run asks for names no run asked before.
--
-- Environment:
--   DNS_BENCH_SIZES   comma-separated name counts (default "1000,10000")
--   DNS_BENCH_REPS    runs per cell, median reported (default 3)
--   DNS_BENCH_ONCE_S  a run longer than this is not repeated (default 30)
--   DNS_BENCH_MAX_S   a run expected (from the row's smaller size) to last
--                     longer than this is not made: its time is
--                     extrapolated, and labelled so (default 120: luv's
--                     default threadpool at 10,000 names would take 8.5 min;
--                     DNS_BENCH_MAX_S=900 measures it)
--   DNS_BENCH_DELAY   the relay's delay in ms (default 100)
--   DNS_BENCH_SEQ     names for the sequential LuaSocket run (default 100)
--   DNS_BENCH_ONLY    comma-separated row keys to run (default: all):
--                     pluto, pluto1024, luv, luv64, luv1024, cqueues,
--                     luasocket

local T = require "testlib"
local N = require "netns"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local SIZES = {}
for s in env("DNS_BENCH_SIZES", "1000,10000"):gmatch("%d+") do SIZES[#SIZES + 1] = tonumber(s) end
local REPS = tonumber(env("DNS_BENCH_REPS", "3"))
local ONCE_S = tonumber(env("DNS_BENCH_ONCE_S", "30"))
local MAX_S = tonumber(env("DNS_BENCH_MAX_S", "120"))
local DELAY = tonumber(env("DNS_BENCH_DELAY", "100"))
local SEQ = tonumber(env("DNS_BENCH_SEQ", "100"))
local ONLY = nil
if env("DNS_BENCH_ONLY", nil) then
  ONLY = {}
  for k in env("DNS_BENCH_ONLY", ""):gmatch("[%w_]+") do ONLY[k] = true end
end

local BENCH = T.SRCDIR .. "/tests/bench/"

local function log(fmt, ...)
  io.stderr:write(string.format(fmt, ...), "\n")
  io.stderr:flush()
end

local why = N.why_not()
if why then T.skip("%s", why) end
if not N.have("dnsmasq") then T.skip("dnsmasq is not installed (apt-get install dnsmasq-base)") end

-- Which client libraries this Lua has.
local function lua_has(mod)
  local ok = os.execute(T.LUA .. " -e " .. T.q("require '" .. mod .. "'") .. " >/dev/null 2>&1")
  return ok == true
end

local function fmt_int(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n == 0 then return nil end
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

local function loadavg()
  local f = io.open("/proc/loadavg")
  local l = f and f:read("l") or "?"
  if f then f:close() end
  return l:match("^(%S+ %S+ %S+)") or l
end
local load_start = loadavg()

local ns, err = N.create("plutobench")
if not ns then T.skip("cannot create a network namespace: %s", err) end

local run_id = 0
-- Run one client in the namespace; returns the parsed key=value table.
local function run_client(prefix, path, ...)
  local pid, h = ns:spawn(prefix .. N.lua_cmd(path, ...))
  local out = h:read("a")
  local ok, how, code = T.wait_exit(pid, h, 1200 * 1000)
  local v = {}
  for k, val in out:gmatch("([%w_]+)=(%S*)") do
    if v[k] == nil then v[k] = val end        -- the first of each key
  end
  v.raw = out
  v.exit_ok = ok
  if not ok then log("client %s failed (%s %s): %s", path, tostring(how), tostring(code), out) end
  return v
end

-- UDP datagrams the namespace's sockets dropped for a full receive buffer
-- so far (the relay's, dnsmasq's or a client's): lost queries or answers.
local function udp_drops()
  local ok, out = ns:sh("cat /proc/net/snmp")
  if not ok then return nil end
  local head, vals
  for line in out:gmatch("[^\n]+") do
    if line:match("^Udp: ") then
      if not head then head = line else vals = line end
    end
  end
  if not (head and vals) then return nil end
  local names, nums = {}, {}
  for w in head:gmatch("%S+") do names[#names + 1] = w end
  for w in vals:gmatch("%S+") do nums[#nums + 1] = w end
  for i, name in ipairs(names) do
    if name == "RcvbufErrors" then return tonumber(nums[i]) end
  end
  return nil
end

local rows = {
  { key = "pluto", label = "pluto.socket `resolve`, 1 scheduler, default dns_threads (1024)",
    run = function(n, tag)
      return run_client("", "tests/lua/h_dns_client.lua", n, "-", tag, "0")
    end },
  { key = "pluto1024", label = "pluto.socket `resolve`, 1 scheduler, `config{dns_threads=1024}`",
    run = function(n, tag)
      return run_client("", "tests/lua/h_dns_client.lua", n, "1024", tag, "0")
    end },
  -- libuv lets getaddrinfo (its "slow I/O" work) use at most half of its
  -- threadpool, so 4 threads mean 2 lookups at a time, 64 mean 32.
  { key = "luv", need = "luv",
    label = "luv `uv.getaddrinfo`, default threadpool (4 threads: 2 lookups at a time)",
    run = function(n, tag)
      return run_client("env -u UV_THREADPOOL_SIZE ", BENCH .. "dns_luv.lua", n, tag)
    end },
  { key = "luv64", need = "luv",
    label = "luv `uv.getaddrinfo`, UV_THREADPOOL_SIZE=64 (32 lookups at a time)",
    run = function(n, tag)
      return run_client("env UV_THREADPOOL_SIZE=64 ", BENCH .. "dns_luv.lua", n, tag)
    end },
  { key = "luv1024", need = "luv",
    label = "luv `uv.getaddrinfo`, UV_THREADPOOL_SIZE=1024 (libuv's maximum: 512 at a time)",
    run = function(n, tag)
      return run_client("env UV_THREADPOOL_SIZE=1024 ", BENCH .. "dns_luv.lua", n, tag)
    end },
  { key = "cqueues", need = "cqueues", label = "cqueues `cqueues.dns.resolvers` pool, hiwat=min(2n, 8192)",
    run = function(n, tag)
      return run_client("", BENCH .. "dns_cqueues.lua", n, tag)
    end },
  { key = "luasocket", need = "socket", sequential = true,
    label = "LuaSocket `socket.dns.toip`, sequential (A only)",
    run = function(n, tag)
      return run_client("", BENCH .. "dns_luasocket.lua", n, tag)
    end },
}

local results = {}      -- key -> size -> { times = {...}, fails = n, note = ... }
local relay_lines = {}
local dns
local ok, e = pcall(function()
  dns = N.start_dns(ns, { delay = DELAY })
  log("# namespace %s: dnsmasq pid %d, relay pid %d (real-time priority: %s)",
      ns.name, dns.dnsmasq, dns.relay, tostring(dns.rt))

  -- Is the relay a bottleneck? Load it directly: bursts of 2,000, of the
  -- biggest size and of twice that (A and AAAA per name) in queries, all
  -- at once, and the latter again with 2,000 in flight at a time (ideal:
  -- 100 ms per wave of 2,000, i.e. 20,000 queries a second).
  local big = 2 * SIZES[#SIZES]
  for _, b in ipairs { { 2000, 2000 }, { big // 2, big // 2 }, { big, big }, { big, 2000 } } do
    local d0 = udp_drops()
    local v = run_client("", BENCH .. "dns_blast.lua", b[1], "200", b[2])
    local d1 = udp_drops()
    local ms = tonumber(v.ms) or -1
    local line = string.format("relay alone: %s queries, %s in flight at once: %s answered in %s ms " ..
                               "(%s queries/s; ideal %s ms); %s datagrams dropped",
                               fmt_int(b[1]), fmt_int(tonumber(v.inflight) or b[2]),
                               fmt_int(tonumber(v.answered) or 0), fmt_int(ms),
                               fmt_int((tonumber(v.answered) or 0) / ms * 1000),
                               fmt_int(DELAY * math.ceil(b[1] / b[2])),
                               (d0 and d1) and fmt_int(d1 - d0) or "?")
    relay_lines[#relay_lines + 1] = line
    log("# %s", line)
  end

  local tagn = 0
  for _, row in ipairs(rows) do
    results[row.key] = {}
    if ONLY and not ONLY[row.key] then
      row.skipped = "not selected"
    elseif row.need and not lua_has(row.need) then
      row.skipped = "`" .. row.need .. "` not installed"
    else
      local sizes = row.sequential and { SEQ } or SIZES
      local per_lookup        -- ms per lookup at the row's previous size
      for _, n in ipairs(sizes) do
        local cell = { times = {}, fails = 0 }
        results[row.key][n] = cell
        if per_lookup and per_lookup * n > MAX_S * 1000 then
          cell.extrapolated = per_lookup * n
          log("# %-10s n=%-6d not run: expected %.0f s (over DNS_BENCH_MAX_S)",
              row.key, n, per_lookup * n / 1000)
        else
          local reps = row.sequential and 1 or REPS
          for r = 1, reps do
            tagn = tagn + 1
            local d0 = udp_drops()
            local v = row.run(tostring(n), "b" .. tagn)
            local d1 = udp_drops()
            if d0 and d1 then cell.drops = (cell.drops or 0) + (d1 - d0) end
            -- A server that died makes every later lookup fail at once:
            -- say so, and start it again.
            if T.exited(dns.relay) or T.exited(dns.dnsmasq) then
              local which = T.exited(dns.relay) and "relay" or "dnsmasq"
              local _, how, code = T.kill(which == "relay" and dns.relay or dns.dnsmasq)
              local note = string.format("the %s died during %s n=%d run %d (%s %s): " ..
                                         "that run's figure is not valid; restarted",
                                         which, row.key, n, r, tostring(how), tostring(code))
              log("# %s", note)
              relay_lines[#relay_lines + 1] = "**" .. note .. "**"
              cell.invalid = true
              N.stop_dns(dns)
              dns = N.start_dns(ns, { delay = DELAY })
            end
            local ms = tonumber(v.ms)
            if ms then cell.times[#cell.times + 1] = ms end
            cell.fails = cell.fails + (tonumber(v.fail) or n)
            if v.err and v.err ~= "-" then cell.err = cell.err or v.err end
            log("# %-10s n=%-6d run %d: %s ms, %s failed%s", row.key, n, r, v.ms or "?",
                v.fail or "?", (v.err and v.err ~= "-") and (" (" .. v.err .. ")") or "")
            if not ms or ms > ONCE_S * 1000 then break end
          end
          local m = median(cell.times)
          per_lookup = m and m / n
        end
      end
    end
  end
  local v = run_client("", BENCH .. "dns_blast.lua", "stats")
  relay_lines[#relay_lines + 1] = "relay counters at the end: " .. (v.raw:gsub("%s+$", ""))
end)
N.stop_dns(dns)
ns:destroy()
if not ok then error(e, 0) end

------------------------------------------------------------------------
-- The table
------------------------------------------------------------------------

local function cell_text(cell)
  if cell and cell.extrapolated then
    return "~" .. fmt_int(cell.extrapolated) .. " ms (**extrapolated** from the smaller size: not run)"
  end
  if not cell or #cell.times == 0 then return "n/a" end
  local m = median(cell.times)
  local parts = {}
  for i, t in ipairs(cell.times) do parts[i] = fmt_int(t) end
  local s = "**" .. fmt_int(m) .. " ms**"
  if #cell.times > 1 then
    s = s .. " (median of " .. #cell.times .. ": " .. table.concat(parts, " / ") .. ")"
  else
    s = s .. " (1 run)"
  end
  if cell.fails > 0 then s = s .. ", " .. fmt_int(cell.fails) .. " lookups failed" end
  if cell.invalid then s = s .. " (a server died during a run: see below)" end
  if cell.drops and cell.drops > 0 then
    s = s .. ", " .. fmt_int(cell.drops) .. " datagrams dropped"
  end
  return s
end

local function nproc()
  local h = io.popen("nproc 2>/dev/null")
  local n = h and h:read("l")
  if h then h:close() end
  return n or "?"
end

local out = {}
local function p(s) out[#out + 1] = s end
p(string.format("### DNS: distinct lookups, server delay %d ms per query", DELAY))
p("")
local head = "| resolver (all lookups in flight at once unless noted) |"
local sep = "|---|"
for _, n in ipairs(SIZES) do
  head = head .. " " .. fmt_int(n) .. " names |"
  sep = sep .. "---|"
end
p(head)
p(sep)
for _, row in ipairs(rows) do
  local line = "| " .. row.label .. " |"
  if row.skipped then
    for _ = 1, #SIZES do line = line .. " " .. row.skipped .. " |" end
  elseif row.sequential then
    local cell = results[row.key][SEQ]
    local ms = cell and median(cell.times)
    for _, n in ipairs(SIZES) do
      if ms then
        line = line .. string.format(" ~%s ms (**extrapolated** from %d names measured in %s ms%s) |",
                                     fmt_int(ms / SEQ * n), SEQ, fmt_int(ms),
                                     cell.fails > 0 and (", " .. cell.fails .. " failed") or "")
      else
        line = line .. " n/a |"
      end
    end
  else
    for _, n in ipairs(SIZES) do line = line .. " " .. cell_text(results[row.key][n]) .. " |" end
  end
  p(line)
end
p("")
p(string.format("Wall time from the first lookup started to the last one answered, in one " ..
                "process. Each name asks A and AAAA (getaddrinfo's way; cqueues asks both " ..
                "itself), except LuaSocket's toip (A only). Ideal with unlimited parallelism: " ..
                "~%d ms. Machine: %s cores, Linux, glibc resolver (resolv.conf: " ..
                "timeout:5 attempts:1). Datagrams dropped: UDP receive-buffer " ..
                "overflows in the namespace during the runs (lost queries or " ..
                "answers; a lost one costs its lookup the 5 s timeout).", DELAY, nproc()))
p(string.format("Load average (1/5/15 min) at the start: %s; at the end: %s " ..
                "(other work on this shared machine adds noise).", load_start, loadavg()))
for _, l in ipairs(relay_lines) do p("- " .. l) end
io.stdout:write(table.concat(out, "\n"), "\n")
T.done()

-- SPDX-License-Identifier: MIT
-- report.lua: turns the runner's raw results into doc/benchmarks.md and a
-- gnuplot script for the chart.
-- usage: report.lua RESULTS.tsv ENV.txt DNS.md OUT.md PLOTPREFIX
--   RESULTS.tsv lines (tab-separated):
--     W wl impl run value|FAIL   one figure of one run
--     I wl impl run text         a remark on a run
--     N wl impl 0 reason         not applicable to that implementation
--     A wl impl metric value     the anatomy pass (perf stat counts)
--   writes OUT.md, PLOTPREFIX.gp (which writes PLOTPREFIX.svg) and
--   PLOTPREFIX-N.dat.
local results_path, env_path, dns_path, out_path, plot = table.unpack(arg)
assert(plot, "usage: report.lua RESULTS.tsv ENV.txt DNS.md OUT.md PLOTPREFIX")

-- Copas takes part in the http line only (a socket.http client).
local IMPLS = { "pluto", "luasocket", "copas", "cqueues", "luv", "c" }
local PEERS = { "luasocket", "copas", "cqueues", "luv" }
local NAMES = {
  pluto = "**ours**", luasocket = "LuaSocket", copas = "Copas", cqueues = "cqueues",
  luv = "luv", c = "C baseline",
}
local PLAIN = {
  pluto = "ours", luasocket = "LuaSocket", copas = "Copas", cqueues = "cqueues",
  luv = "luv", c = "C",
}

local function commas(i)
  local s = string.format("%d", i)
  while true do
    local r, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
    s = r
    if k == 0 then return s end
  end
end

local METRICS  -- filled in below, once the sizes are known
local function metrics(z, zn)
return {
  { id = "pingpong1", title = "pingpong1",
    what = ("1 connection, %d B echo, %s round trips"):format(z("msg", 64), z("pp1_rounds", 20000)),
    unit = "round trips/s", high = true },
  { id = "pingpong50", title = "pingpong50",
    what = ("%s connections, %d B echo, %s round trips each"):format(z("pp50_conns", 50),
      z("msg", 64), z("pp50_rounds", 2000)),
    unit = "round trips/s", high = true },
  { id = "bulk", title = "bulk", what = ("%s MiB, 64 KiB writes, plain"):format(z("bulk_mib", 256)),
    unit = "MiB/s", high = true },
  { id = "bulk_tls", title = "bulk TLS", what = ("%s MiB, 64 KiB writes, TLS"):format(z("bulk_mib", 256)),
    unit = "MiB/s", high = true },
  { id = "tls_rsa", title = "TLS RSA", what = "server handshakes, RSA-2048",
    unit = "handshakes/s", high = true },
  { id = "tls_ecdsa", title = "TLS ECDSA", what = "server handshakes, ECDSA P-256",
    unit = "handshakes/s", high = true },
  { id = "idle_rss", title = "idle RSS",
    what = ("server RSS per idle connection (%s waiting)"):format(z("idle_conns", 18000)),
    unit = "KiB", high = false },
  { id = "idle_threads", title = "idle threads",
    what = ("server threads while %s wait"):format(z("idle_conns", 18000)),
    unit = "threads", high = false },
  { id = "idle_cpu", title = "idle CPU",
    what = ("server CPU while %s wait"):format(z("idle_conns", 18000)),
    unit = "% of a core", high = false },
  { id = "idle_probe", title = "idle probe",
    what = ("new connect + %d B round trip meanwhile"):format(z("msg", 64)),
    unit = "µs", high = false },
  { id = "slowloris_base", title = "TLS probe",
    what = "a fresh handshake + first answer, server otherwise idle (ECDSA)",
    unit = "µs", high = false },
  { id = "slowloris_loaded", title = "slowloris",
    what = ("the same while %s clients say nothing and %s stall in their ClientHello")
             :format(z("slow_silent", 6000), z("slow_partial", 1000)),
    unit = "µs", high = false },
  { id = "http", title = "http",
    what = ("socket.http GETs of %d KiB, %s at a time (LuaSocket: one at a time), %s in all")
             :format(zn("http_size", 65536) // 1024, z("http_conns", 500), z("http_reqs", 5000)),
    unit = "requests/s", high = true },
}
end

-- Read everything.
local function lines(path)
  local f = io.open(path, "r")
  if not f then return function() return nil end end
  return f:lines()
end

local env = {}
for l in lines(env_path) do
  local k, v = l:match("^(%w+)\t(.*)$")
  if k then env[k] = v end
end

-- The sizes of the run (the runner's "sizes" line), for the texts.
local Z = {}
for k, v in (env.sizes or ""):gmatch("([%w_]+)=(%S+)") do Z[k] = tonumber(v) or v end
local function z(k, d)
  local v = Z[k] or d
  if type(v) == "number" and v >= 1000 and v == math.floor(v) then return commas(v) end
  return v
end
local function zn(k, d) return tonumber(Z[k]) or d end
local quick = Z.quick == 1
METRICS = metrics(z, zn)

local values, fails, remarks, na, anatomy = {}, {}, {}, {}, {}
local function slot(t, wl, impl)
  t[wl] = t[wl] or {}
  t[wl][impl] = t[wl][impl] or {}
  return t[wl][impl]
end
for l in lines(results_path) do
  local kind, wl, impl, run, v = l:match("^(%u)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  if kind == "W" then
    if v == "FAIL" then
      local s = slot(fails, wl, impl)
      s[#s + 1] = run
    else
      local s = slot(values, wl, impl)
      s[#s + 1] = tonumber(v)
    end
  elseif kind == "I" then
    local s = slot(remarks, wl, impl)
    s[#s + 1] = "run " .. run .. ": " .. v
  elseif kind == "N" then
    na[wl] = na[wl] or {}
    na[wl][impl] = v
  elseif kind == "A" then
    slot(anatomy, wl, impl)[run] = tonumber(v)
  end
end

local dns = ""
do
  local f = io.open(dns_path, "r")
  if f then dns = f:read("a"); f:close() end
end

-- Statistics.
local function stats(t)
  if not t or #t == 0 then return nil end
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  local med = n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
  return { med = med, min = s[1], max = s[n], n = n }
end

local function fmt(v)
  if v == nil then return "?" end
  local a = math.abs(v)
  if a >= 1000 then return commas(math.floor(v + 0.5)) end
  if a >= 100 then return string.format("%.0f", v) end
  if a >= 10 then return string.format("%.1f", v) end
  if a >= 1 then return string.format("%.2f", v) end
  return string.format("%.3g", v)
end

local function ratio(a, b)
  if not a or not b or b == 0 then return "–" end
  local r = a / b
  if r >= 10 then return string.format("%.0f×", r) end
  if r >= 1 then return string.format("%.2f×", r) end
  return string.format("%.2f×", r)
end

-- Notes: numbered footnotes for cells that are n/a or failed.
local notes, note_of = {}, {}
local function footnote(text)
  if not note_of[text] then
    notes[#notes + 1] = text
    note_of[text] = #notes
  end
  return "[" .. note_of[text] .. "]"
end

local S = {}
for _, m in ipairs(METRICS) do
  S[m.id] = {}
  for _, impl in ipairs(IMPLS) do
    S[m.id][impl] = stats(values[m.id] and values[m.id][impl])
  end
end

local function cell(m, impl)
  local st = S[m.id][impl]
  local f = fails[m.id] and fails[m.id][impl]
  local reason = na[m.id] and na[m.id][impl]
  if reason then return "n/a " .. footnote(reason) end
  if not st then
    if f then return "failed " .. footnote("failed runs: see the runner's log (BENCH_KEEP=1 keeps every process's output)") end
    return "–"
  end
  local s = (impl == "pluto" and "**%s**" or "%s"):format(fmt(st.med))
  if st.n > 1 then s = s .. string.format(" (%s–%s)", fmt(st.min), fmt(st.max)) end
  if f then s = s .. " " .. footnote("some runs failed; the figure is of the others") end
  return s
end

-- The best peer of a line (highest or lowest median, as is better).
local function best_peer(m)
  local best, who
  for _, impl in ipairs(PEERS) do
    local st = S[m.id][impl]
    if st and (not best or (m.high and st.med > best or not m.high and st.med < best)) then
      best, who = st.med, impl
    end
  end
  return best, who
end

local out = {}
local function w(...) out[#out + 1] = table.concat({ ... }) end

w("# Benchmarks")
w("")
w("pluto.socket against the Lua socket libraries of Debian's archive")
w("(LuaSocket with LuaSec for TLS, cqueues with luaossl, luv) and a small C")
w("program standing for this machine's limit (epoll, GnuTLS). Made by")
w("`make bench` (`tests/bench/run`); this page is rewritten by every run.")
w("What bounds each line, and what was done about it:")
w("[performance.md](performance.md).")
if quick then
  w("")
  w("**This was a smoke test (`BENCH_QUICK=1`): tiny sizes, figures meaningless.**")
end
w("")
w("## Machine")
w("")
w("| | |")
w("| --- | --- |")
w("| CPU | ", env.cpu or "?", " |")
w("| `nproc` | ", env.nproc or "?", " |")
w("| kernel | ", env.kernel or "?", " |")
w("| date | ", env.date or "?", " |")
w("| measured build | commit ", env.commit or "?", "; `socket.so` built ", env.module or "?", " |")
w("| Lua | ", (env.lua or "?"):match("^Lua [%d.]+") or env.lua or "?", " |")
w("| packages | ", env.versions or "?", " |")
w("| runs per figure | ", env.runs or "?", "; the median, with min–max in brackets |")
w("| load average (1, 5, 15 min) | ", env.load or "?", " |")
w("| whole suite | ", env.elapsed and string.format("%.1f min", tonumber(env.elapsed) / 60) or "?", " |")
w("")
w("## Results")
w("")
w("Median of the runs, (min–max). Higher is better for rates (↑), lower for")
w("costs (↓). The ratios divide our median by the best peer's (LuaSocket,")
w("Copas, cqueues or luv, whichever did best on that line) and by the C")
w("baseline's:")
w("on ↑ lines above 1× means ours is faster; on ↓ lines below 1× means ours")
w("costs less.")
w("")
local hdr = { "workload", "unit" }
for _, impl in ipairs(IMPLS) do hdr[#hdr + 1] = NAMES[impl] end
hdr[#hdr + 1] = "ours / best peer"
hdr[#hdr + 1] = "ours / C"
w("| ", table.concat(hdr, " | "), " |")
local sep = {}
for i = 1, #hdr do sep[i] = i <= 2 and "---" or "---:" end
w("| ", table.concat(sep, " | "), " |")
for _, m in ipairs(METRICS) do
  local row = { m.title .. ": " .. m.what, m.unit .. (m.high and " ↑" or " ↓") }
  for _, impl in ipairs(IMPLS) do row[#row + 1] = cell(m, impl) end
  local ours = S[m.id].pluto and S[m.id].pluto.med
  local best, who = best_peer(m)
  local r = ratio(ours, best)
  row[#row + 1] = r ~= "–" and (r .. " (" .. PLAIN[who] .. ")") or "–"
  row[#row + 1] = ratio(ours, S[m.id].c and S[m.id].c.med)
  w("| ", table.concat(row, " | "), " |")
end
w("")
for i, n in ipairs(notes) do w("[", i, "] ", n, "  ") end
if #notes > 0 then w("") end
do
  local pc = {}
  for _, kind in ipairs{ "rsa", "ecdsa" } do
    local st = stats(values["tls_" .. kind .. "_percore"] and values["tls_" .. kind .. "_percore"].c)
    if st then
      pc[#pc + 1] = string.format("%s %s (%s–%s)", kind == "rsa" and "RSA" or "ECDSA",
                                  fmt(st.med), fmt(st.min), fmt(st.max))
    end
  end
  if #pc > 0 then
    w("The C baseline's TLS server runs as many threads as ours uses (one per")
    w("handshake in flight: ", z("tls_conns", 16), "); with one thread per core (", env.nproc or "?",
      ") instead it made ", table.concat(pc, ", "), " handshakes/s: the load")
    w("client shares the cores, and the scheduler shares them out per thread.")
    w("")
  end
end
do
  -- The crypto libraries' own signing rate, one thread: what bounds the
  -- TLS lines (LuaSec and luaossl sign with OpenSSL, ours and the C
  -- baseline with GnuTLS).
  local lines = {}
  for _, kind in ipairs{ "rsa", "ecdsa" } do
    local g = stats(values["sign_" .. kind] and values["sign_" .. kind].gnutls)
    local o = stats(values["sign_" .. kind] and values["sign_" .. kind].openssl)
    if g then
      lines[#lines + 1] = string.format(
        "- %s: GnuTLS %s (%s–%s) signatures/s%s", kind == "rsa" and "RSA-2048" or "ECDSA P-256",
        fmt(g.med), fmt(g.min), fmt(g.max),
        o and string.format(", OpenSSL %s (%s–%s): OpenSSL signs %.1f× as fast",
                            fmt(o.med), fmt(o.min), fmt(o.max), o.med / g.med) or "")
    end
  end
  if #lines > 0 then
    w("Each handshake makes the server sign once, so the crypto library's")
    w("signing rate on one core bounds the TLS lines. Measured in the same run")
    w("(one thread; GnuTLS: `ctools.c sign-speed` with the benchmark's key;")
    w("OpenSSL: `openssl speed`):")
    w("")
    for _, l in ipairs(lines) do w(l) end
    w("")
    w("LuaSec and cqueues (luaossl) sign with OpenSSL; ours and the C baseline")
    w("with GnuTLS (nettle). That is why the OpenSSL-based peers lead the RSA")
    w("line: it compares crypto libraries more than socket libraries. Ours is")
    w("measured against the C GnuTLS server there.")
    w("")
  end
end
w("![The figures as bar charts, min–max as error bars](bench/results.svg)")
w("")

-- Anatomy.
local AN = {
  { id = "pingpong1", per = "per round trip" },
  { id = "pingpong50", per = "per round trip" },
  { id = "bulk", per = "per MiB" },
}
local AM = {
  { id = "cpu_us", name = "CPU time, µs" },
  { id = "cs", name = "context switches" },
  { id = "sys", name = "system calls" },
  { id = "futex", name = "of which futex" },
}
local have_anatomy = next(anatomy) ~= nil
w("## Where the time goes")
w("")
if have_anatomy then
  w("One more run of pingpong1, pingpong50 and plain bulk with both processes")
  w("under `perf stat` (counting only): CPU time, context switches and system")
  w("calls of client and server together, divided by the round trips (by the")
  w("MiB for bulk). Counting disturbs the timing a little, so these runs are")
  w("not in the table above.")
  w("")
  local h = { "workload", "count" }
  local aimpls = {}                      -- (Copas has no anatomy runs)
  for _, impl in ipairs(IMPLS) do
    if impl ~= "copas" then aimpls[#aimpls + 1] = impl end
  end
  for _, impl in ipairs(aimpls) do h[#h + 1] = NAMES[impl] end
  w("| ", table.concat(h, " | "), " |")
  local sp = {}
  for i = 1, #h do sp[i] = i <= 2 and "---" or "---:" end
  w("| ", table.concat(sp, " | "), " |")
  for _, a in ipairs(AN) do
    for _, am in ipairs(AM) do
      local row = { a.id, am.name .. " " .. a.per }
      for _, impl in ipairs(aimpls) do
        local v = anatomy[a.id] and anatomy[a.id][impl] and anatomy[a.id][impl][am.id]
        row[#row + 1] = v and ((impl == "pluto" and "**%s**" or "%s"):format(fmt(v))) or "–"
      end
      w("| ", table.concat(row, " | "), " |")
    end
  end
else
  w("_Not measured in this run (`perf stat` was not usable, or the anatomy")
  w("pass was not selected)._")
end
w("")

w("## DNS")
w("")
w((dns:gsub("%s+$", "")))
w("")

w("## How it is measured")
w("")
w("- Loopback (127.0.0.1) only; client and server are always separate")
w("  processes, started fresh for every run; every run of every")
w("  implementation is interleaved (run 1 of all, then run 2 of all, ...).")
w("- Both ends of pingpong and bulk are the same implementation: ours is")
w("  `pluto.socket` with every peer a coroutine under `pluto.scheduler`;")
w("  LuaSocket uses blocking calls for one connection and `socket.select`")
w("  over non-blocking sockets for 50; cqueues one coroutine per connection;")
w("  luv callbacks; C one epoll loop per process. Every implementation sets")
w("  `TCP_NODELAY`.")
w("- pingpong: the client sends 64 bytes and waits for all 64 to come back,")
w("  over and over; the server echoes whatever it reads. Timed by the client")
w("  from before its first connect to the last answer.")
w("- bulk: the sender writes ", z("bulk_mib", 256), " MiB in writes of 64 KiB (each a 4-byte")
w("  block number then a fixed pattern: `bench_common.lua`, `cpeer.c`), then")
w("  waits for the receiver to close. The receiver checks the byte count and,")
w("  in every chunk it gets, the first and last byte and each block number")
w("  starting in it; it times from the first byte to the last. TLS: ECDSA")
w("  certificate, system default priorities (TLS 1.3), the client verifying")
w("  the chain against the bench CA.")
w("- tls: one fixed load client for every server (`ctools.c tls-load`, C and")
w("  GnuTLS): ", z("tls_conns", 16), " threads, each looping connect, full handshake (no session")
w("  tickets, so no resumption; the client does not verify the chain),")
w("  read one byte the server sends after its handshake, close; handshakes")
w("  completed in ", zn("tls_seconds", 5) - zn("tls_warmup", 1), " s after ", z("tls_warmup", 1),
  " s of warm-up. Servers: ours (`starttls(certs)`")
w("  in a `socket.bind` callback), LuaSec (non-blocking `dohandshake` under")
w("  `socket.select`), cqueues with a luaossl context, and the C baseline:")
w("  epoll threads, each with its own `SO_REUSEPORT` listener, as many as")
w("  ours uses (see above). The load client runs on the same cores: its")
w("  share of the CPU is the same for every server, so the figures compare,")
w("  but none is a server's rate on a machine of its own. LuaSec and luaossl")
w("  use OpenSSL, the others GnuTLS (nettle): the RSA line compares crypto")
w("  libraries as much as socket libraries.")
w("- idle: the server is each implementation's echo server (ours: a")
w("  coroutine per connection waiting in `recv`; cqueues: a coroutine per")
w("  connection in `read`; luv: `read_start` callbacks; C: epoll). A C")
w("  process (`ctools.c idle-clients`) opens ", z("idle_conns", 18000), " connections and stays")
w("  silent. RSS per connection = (RSS with all of them accepted, once it has")
w("  settled − RSS before, after 3 warm-up connections) / their number (kernel")
w("  socket buffers are not in RSS); CPU = utime+stime from `/proc/PID/stat`")
w("  over ", z("idle_cpu_seconds", 5), " s while they wait, in % of one core; the probe is a third")
w("  process doing ", z("probes", 20), " times connect + 64 B round trip + close, 10 ms apart")
w("  (median); the threads are the server's (`/proc/PID/status`). LuaSocket")
w("  cannot take part: `socket.select` handles at most 1,024 descriptors.")
w("- slowloris: each TLS server of the tls line with the ECDSA certificate;")
w("  a third process (`ctools.c tls-probe`) makes ", z("probes", 20), " fresh clients one after")
w("  the other (connect, full handshake, read the server's first byte, close;")
w("  median), first with the server otherwise idle, then while `ctools.c")
w("  slowloris` holds ", z("slow_silent", 6000), " connections that say nothing and ",
  z("slow_partial", 1000), " that sent")
w("  the first 10 bytes of a ClientHello and stalled. Ours drops both kinds")
w("  at its 10 s handshake deadline; the probe runs well before that.")
w("  LuaSocket's server (`socket.select`) cannot hold that many descriptors.")
w("- http: the client is Debian's `socket.http` (lua-socket), unmodified, with")
w("  `ltn12.sink.table`; each body's length is checked. One C server for all")
w("  (`ctools.c http-server`: one epoll thread, any GET gets a fixed ",
  zn("http_size", 65536) // 1024, " KiB body")
w("  and `Connection: close`). Ours: `package.loaded.socket =")
w("  require \"pluto.luasocket\"`, ", z("http_conns", 500), " coroutines under one `pluto.scheduler`,")
w("  each taking the next request until ", z("http_reqs", 5000), " have been made. Copas: the same")
w("  ", z("http_conns", 500), " threads under Copas (Debian's lua-copas is Copas 1.1.7, packaged for")
w("  Lua 5.1/5.2 and loaded from there; it has no `copas.http`, so `create`")
w("  gives `socket.http` Copas's connect, send and receive). LuaSocket: the")
w("  same requests one after the other, blocking. Timed by the client from")
w("  before the first request to the end of the last.")
w("- Sizes used in this run: `", env.sizes or "?", "`.")
w("- The machine may be shared with other work (see the load average above):")
w("  the spread between runs (min–max) can be wide, pingpong's most of all,")
w("  since it is paced by wake-ups. Compare medians, and the counts of the")
w("  table \"Where the time goes\", which vary much less.")
w("- Every process runs under `timeout` and ends by itself (bounded counts,")
w("  idle limits); the runner kills leftovers by PID.")
w("")

-- Remarks of the runs, one line per workload and implementation: what
-- the TLS servers and the load client counted, the idle servers' memory
-- and threads, failures.
local rem = {}
for _, m in ipairs(METRICS) do
  for _, impl in ipairs(IMPLS) do
    local r = remarks[m.id] and remarks[m.id][impl]
    if r then
      local served, threads, cfail, idle, other = {}, {}, {}, {}, {}
      for _, text in ipairs(r) do
        local sv, sf, th = text:match("server: served=(%d+) failed=(%d+) threads=(%d+)")
        local cf = text:match("client: handshakes=%d+ failed=(%d+)")
        local r0, r1, t = text:match("rss before (%d+) KiB, with %d+: (%d+) KiB, threads (%d+)")
        if sv then
          served[#served + 1] = sv .. (sf ~= "0" and (" (" .. sf .. " failed)") or "")
          threads[#threads + 1] = th
        elseif cf then
          cfail[#cfail + 1] = cf
        elseif r0 then
          idle[#idle + 1] = string.format("%s → %s KiB, %s threads", r0, r1, t)
        else
          other[#other + 1] = text
        end
      end
      local parts = {}
      if #served > 0 then
        parts[#parts + 1] = "handshakes served per run " .. table.concat(served, ", ")
          .. "; server threads (most seen) " .. table.concat(threads, ", ")
      end
      if #cfail > 0 then
        parts[#parts + 1] = "failed handshakes seen by the client " .. table.concat(cfail, ", ")
      end
      if #idle > 0 then
        parts[#parts + 1] = "RSS before → with the idle connections, per run: " .. table.concat(idle, "; ")
      end
      for _, o in ipairs(other) do parts[#parts + 1] = o end
      rem[#rem + 1] = "- " .. m.title .. ", " .. PLAIN[impl] .. ": " .. table.concat(parts, "; ")
    end
  end
end
if #rem > 0 then
  w("## Remarks of the processes")
  w("")
  w("What the servers and clients reported besides their figures.")
  w("")
  for _, r in ipairs(rem) do w(r) end
  w("")
end

local f = assert(io.open(out_path, "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()

-- The chart: one panel per metric, one bar per implementation (median),
-- min–max as error bars.
local gp = {}
local function g(...) gp[#gp + 1] = table.concat({ ... }) end
local rows = math.ceil(#METRICS / 3)
g('set terminal svg size 1500,', 340 * rows, ' dynamic font "sans,11" background "white"')
g('set output "', plot, '.svg"')
g('set multiplot layout ', rows, ',3 title "pluto.socket benchmarks, ', (env.date or ""),
  ', ', (env.cpu or ""):gsub('"', ""), ' x', env.nproc or "?", '"')
g('set style fill solid 0.7 border -1')
g('set boxwidth 0.6')
g('set grid ytics')
g('set yrange [0:*]')
g('unset key')
g('set xtics nomirror')
g('set ytics nomirror')
local colors = { pluto = "#d62728", luasocket = "#1f77b4", copas = "#ff7f0e",
                 cqueues = "#2ca02c", luv = "#9467bd", c = "#7f7f7f" }
for i, m in ipairs(METRICS) do
  local dat = plot .. "-" .. i .. ".dat"
  local d = assert(io.open(dat, "w"))
  local n = 0
  for _, impl in ipairs(IMPLS) do
    local st = S[m.id][impl]
    if st then
      d:write(string.format('%d "%s" %.6g %.6g %.6g 0x%s\n', n, PLAIN[impl], st.med, st.min,
                            st.max, colors[impl]:sub(2)))
      n = n + 1
    end
  end
  d:close()
  g('set title "', m.title, ': ', m.what, '"')
  g('set ylabel "', m.unit, m.high and " (higher is better)" or " (lower is better)", '"')
  if n == 0 then
    g('set xrange [-1:1]')
    g('set label 1 "no data" at 0,0.5 center')
    g('plot 0 notitle lc rgb "white"')
    g('unset label 1')
  else
    g('set xrange [-0.6:', n - 0.4, ']')
    g('plot "', dat, '" using 1:3:6:xtic(2) with boxes lc rgb variable, ',
      '"" using 1:3:4:5 with yerrorbars lc rgb "black" pt -1')
  end
end
g('unset multiplot')
local gf = assert(io.open(plot .. ".gp", "w"))
gf:write(table.concat(gp, "\n"), "\n")
gf:close()

-- testlib.lua: small helpers shared by the tests in tests/lua/.
--
-- Conventions (see tests/run-lua): a test is `$LUA tests/lua/t_x.lua`;
-- exit 0 = pass, 77 = skipped, anything else = fail. Requiring this file
-- starts a watchdog that kills the test with SIGKILL if it runs longer than
-- PLUTO_TEST_WATCHDOG seconds (default 45), so a hang in the module turns
-- into a failure instead of a stuck suite.

local T = {}

------------------------------------------------------------------------
-- Environment
------------------------------------------------------------------------

-- Directory holding this file (tests/lua), from the chunk's own source name.
T.DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
T.SRCDIR = os.getenv("PLUTO_TEST_SRCDIR") or (T.DIR .. "/../..")
T.BUILDDIR = os.getenv("PLUTO_TEST_BUILDDIR") or T.SRCDIR
-- The interpreter for child processes. Not quoted when used, so a command
-- with arguments (a sanitizer host program, say) works too.
T.LUA = os.getenv("LUA") or "lua5.4"
-- Sanitizer runs set PLUTO_TEST_LIGHT=1: threads and memory cost more there.
T.light = os.getenv("PLUTO_TEST_LIGHT") == "1"

-- n normally, light_n under PLUTO_TEST_LIGHT.
function T.scale(n, light_n)
  if T.light then return light_n end
  return n
end

------------------------------------------------------------------------
-- Reporting
------------------------------------------------------------------------

local function repr(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end
T.repr = repr

-- Raise a test failure, pointing at the caller's line (level 2 = the caller
-- of check/eq; level 3 from inside helpers that call fail).
local function fail(level, fmt, ...)
  error("FAIL: " .. string.format(fmt, ...), level + 1)
end

function T.check(cond, fmt, ...)
  if not cond then fail(2, fmt or "check failed", ...) end
  return cond
end

function T.eq(got, want, what)
  if got ~= want then
    fail(2, "%s: expected %s, got %s", what or "value", repr(want), repr(got))
  end
  return got
end

-- `s` must be a string containing `needle` (plain find, not a pattern).
function T.has(s, needle, what)
  if type(s) ~= "string" or not s:find(needle, 1, true) then
    fail(2, "%s: expected a string containing %s, got %s", what or "value",
         repr(needle), repr(s))
  end
  return s
end

-- Call fn(...) expecting a Lua error whose message contains `needle`.
-- Returns the message.
function T.raises(needle, what, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail(2, "%s: expected an error containing %s, but the call succeeded",
                  what, repr(needle)) end
  err = tostring(err)
  if not err:find(needle, 1, true) then
    fail(2, "%s: expected an error containing %s, got %s", what, repr(needle), repr(err))
  end
  return err
end

-- One line per sub-check that passed, so a log shows how far a test got.
function T.ok(fmt, ...)
  io.stdout:write("ok - ", string.format(fmt, ...), "\n")
  io.stdout:flush()
end

function T.note(fmt, ...)
  io.stdout:write("# ", string.format(fmt, ...), "\n")
  io.stdout:flush()
end

------------------------------------------------------------------------
-- Processes
------------------------------------------------------------------------

-- Quote a string for /bin/sh.
function T.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- PID of this Lua process (/proc/self, read from this process, is us).
function T.self_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("l"):match("^(%d+)"))
  f:close()
  return pid
end

-- Children still to be ended, pid -> popen handle. Each is also listed
-- ("pid starttime") in T.CHILDREN_FILE for the watchdog, which ends them if
-- this process hangs or dies; the start time guards against PID reuse.
T.children = {}
T.CHILDREN_FILE = os.tmpname()

-- Start time of process pid (field 22 of /proc/pid/stat), or nil.
local function starttime(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local line = f:read("l") or ""
  f:close()
  local rest = line:match("^.*%) (.*)$")     -- fields after the command name
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return fields[20]                           -- field 22 overall
end

-- Finalizer run when the Lua state closes (also after an uncaught error):
-- end every child not ended yet, so that closing its popen handle (which
-- waits for the child) cannot hang. Finalizers run in reverse order of
-- creation, so a fresh sentinel is made after each spawn to run first.
local sentinel_mt = { __gc = function(self)
  -- Replaced sentinels are garbage the GC may collect at any time: only
  -- the current one acts (it is collected only when the state closes).
  if self ~= T.sentinel then return end
  for pid in pairs(T.children) do
    if not T.exited(pid) then
      os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    end
  end
  for pid in pairs(T.children) do
    for _ = 1, 300 do                      -- up to ~3 s, then SIGKILL
      if T.exited(pid) then break end
      os.execute("sleep 0.01")
    end
    if not T.exited(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  end
end }

-- Spawn `cmd` through /bin/sh and return pid, handle. The handle reads the
-- child's stdout; its stderr goes to ours. `exec` makes the PID we print the
-- PID of `cmd` itself. End it with T.kill(pid, h) or T.wait_exit(pid, h).
-- Options:
--   tool = true  run without LD_PRELOAD (curl, socat, date...: under
--                sanitizers only Lua children should get the runtime).
function T.spawn(cmd, opts)
  opts = opts or {}
  local prefix = opts.tool and "exec env -u LD_PRELOAD " or "exec "
  local h = assert(io.popen("echo $$; " .. prefix .. cmd, "r"))
  local pid = tonumber(h:read("l"))
  assert(pid, "spawn: could not read the child's pid")
  T.children[pid] = h
  local st = starttime(pid)
  if st then
    local f = io.open(T.CHILDREN_FILE, "a")
    if f then f:write(pid, " ", st, "\n"); f:close() end
  end
  T.sentinel = setmetatable({}, sentinel_mt)
  return pid, h
end

-- Shell text running tests/lua/<name>.lua with arguments: through the
-- test wrapper (PLUTO_TEST_RUN_LUA, which sets paths and the sanitizer
-- runtime up again) when there is one, else with $LUA in our environment.
T.RUN_LUA = os.getenv("PLUTO_TEST_RUN_LUA")
function T.lua_cmd(name, ...)
  local args = {}
  for i = 1, select("#", ...) do args[#args + 1] = T.q(select(i, ...)) end
  local runner = T.LUA
  if T.RUN_LUA and T.RUN_LUA ~= "" then runner = T.q(T.RUN_LUA) end
  return runner .. " " .. T.q(T.DIR .. "/" .. name .. ".lua") .. " "
         .. table.concat(args, " ")
end

-- A Lua child process running tests/lua/<name>.lua with arguments.
function T.spawn_lua(name, ...)
  return T.spawn(T.lua_cmd(name, ...))
end

-- "env LD_PRELOAD=... " restoring our LD_PRELOAD (sanitizer runtime) for a
-- Lua child started through tools that ran without it; "" when unset or
-- when the wrapper (which sets it up itself) runs the child.
function T.preload_env()
  local p = os.getenv("LD_PRELOAD")
  if not p or p == "" or (T.RUN_LUA and T.RUN_LUA ~= "") then return "" end
  return "env LD_PRELOAD=" .. T.q(p) .. " "
end

-- True once process `pid` has exited (gone, or a zombie awaiting reaping).
function T.exited(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return true end
  local line = f:read("l") or ""
  f:close()
  local state = line:match("%) (%a)")
  return state == nil or state == "Z" or state == "X"
end

-- Read one line from a child's stdout, failing (instead of blocking forever)
-- when the child exits without writing one. Reading blocks; the watchdog
-- bounds it if the child hangs while alive.
function T.readline(h, what)
  local line = h:read("l")
  if not line then fail(2, "%s: child ended without output", what or "readline") end
  return line
end

-- End a child by its PID and reap it. Returns what handle:close() returns
-- (ok, "exit"|"signal", code).
function T.kill(pid, h, sig)
  if not T.exited(pid) then
    os.execute("kill -" .. (sig or "TERM") .. " " .. pid .. " 2>/dev/null")
    -- Give it up to 3 s to go, then insist.
    if not T.wait_until(function() return T.exited(pid) end, 3000, nil, true) then
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  h = h or T.children[pid]
  T.children[pid] = nil
  if h then return h:close() end
end

-- Wait (bounded) for process `pid` to exit by itself; then reap it.
-- Returns ok, how, code from handle:close(), or nil if it did not exit in
-- time (then it has been killed).
function T.wait_exit(pid, h, timeout_ms)
  if not T.wait_until(function() return T.exited(pid) end, timeout_ms, nil, true) then
    T.kill(pid, h, "KILL")
    return nil
  end
  T.children[pid] = nil
  return h:close()
end

-- Number of open descriptors of this process (the pipe used to count them
-- is included, consistently in every count).
function T.fd_count()
  local h = assert(io.popen("exec env -u LD_PRELOAD ls -1 /proc/" .. T.self_pid() .. "/fd"))
  local n = 0
  for _ in h:lines() do n = n + 1 end
  h:close()
  return n
end

-- The soft limit `name` of this process, as /proc/self/limits words it
-- ("Max open files", "Max processes"): a number, or math.huge.
function T.rlimit(name)
  local f = io.open("/proc/self/limits")
  if not f then return math.huge end
  for line in f:lines() do
    if line:sub(1, #name) == name then
      f:close()
      local soft = line:sub(#name + 1):match("^%s+(%S+)")
      return soft == "unlimited" and math.huge or tonumber(soft) or math.huge
    end
  end
  f:close()
  return math.huge
end

-- Whether this process runs as root (limits on processes do not bind it).
function T.is_root()
  local f = io.open("/proc/self/status")
  if not f then return false end
  local uid = f:read("a"):match("\nUid:%s*(%d+)")
  f:close()
  return uid == "0"
end

-- Skip unless this process may open `n` descriptors and create `threads`
-- more threads (RLIMIT_NOFILE, and RLIMIT_NPROC for a user other than
-- root, which counts every process and thread of that user).
function T.need(n, threads, what)
  local fds = T.rlimit("Max open files")
  if fds < n then
    T.skip("%s needs %d descriptors; the limit is %d", what or "this test", n, fds)
  end
  if threads and not T.is_root() then
    local procs = T.rlimit("Max processes")
    if procs < threads + 100 then
      T.skip("%s needs %d threads; the process limit (RLIMIT_NPROC) is %d",
             what or "this test", threads, procs)
    end
  end
end

-- Number of threads of this process.
function T.thread_count()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local n = tonumber(f:read("a"):match("Threads:%s*(%d+)"))
  f:close()
  return n
end

------------------------------------------------------------------------
-- Time
------------------------------------------------------------------------

-- Wall-clock milliseconds from a monotonic source: /proc/uptime (10 ms
-- resolution, no process spawned). os.clock() is CPU time, not wall time.
function T.now_ms()
  local f = io.open("/proc/uptime")
  if f then
    local up = f:read("n")
    f:close()
    if up then return up * 1000 end
  end
  -- Fallback: realtime clock with nanoseconds, through date(1).
  local h = io.popen("exec env -u LD_PRELOAD date +%s%N")
  local ns = tonumber(h:read("l"))
  h:close()
  return ns / 1e6
end
T.CLOCK_RES_MS = 10

-- Pause for about ms milliseconds between polls: socket.sleep when the
-- module is loaded (yields inside a coroutine), else sleep(1).
local function pause(ms)
  local socket = package.loaded["pluto.socket"]
  if socket then
    socket.sleep(ms)
  else
    os.execute(string.format("sleep %.3f", ms / 1000))
  end
end
T.pause = pause

-- Poll fn() every ~step ms until it returns a true value (returned) or
-- timeout_ms passes. On timeout: fails with `what`, or returns nil when
-- `soft` is true. Bounded both in time and in iterations.
function T.wait_until(fn, timeout_ms, what, soft, step)
  step = step or 10
  local t0 = T.now_ms()
  local max_iter = math.floor(timeout_ms / step) * 4 + 100
  for _ = 1, max_iter do
    local v = fn()
    if v then return v end
    if T.now_ms() - t0 > timeout_ms then break end
    pause(step)
  end
  local v = fn()
  if v then return v end
  if soft then return nil end
  fail(2, "%s: not reached within %d ms", what or "condition", timeout_ms)
end

------------------------------------------------------------------------
-- Sockets
------------------------------------------------------------------------

-- A connected pair over loopback: client, server side, listener, port.
-- host: "127.0.0.1" (default) or "::1". Works outside coroutines (the
-- kernel completes the connect from its backlog) and inside them.
function T.pair(socket, host)
  host = host or "127.0.0.1"
  local addr = host:find(":", 1, true) and ("[" .. host .. "]:0") or (host .. ":0")
  local l = assert(socket.listen(addr))
  local _, port = l:getsockname()
  local c = assert(socket.connect(host, port))
  local s = assert(l:accept())
  return c, s, l, port
end

-- Receive exactly n bytes (gathering chunks) or fail. Returns the bytes.
function T.recv_n(s, n, what)
  local parts, got = {}, 0
  for _ = 1, n + 10 do           -- at least one byte per useful recv
    if got >= n then break end
    local d, err = s:recv()
    if not d then fail(2, "%s: stream ended after %d of %d bytes (%s)",
                       what or "recv_n", got, n, tostring(err)) end
    parts[#parts + 1] = d
    got = got + #d
  end
  local all = table.concat(parts)
  if #all ~= n then fail(2, "%s: expected %d bytes, got %d", what or "recv_n", n, #all) end
  return all
end

-- Receive until end of stream (nil); bounded by max_bytes.
function T.recv_all(s, max_bytes)
  max_bytes = max_bytes or 1 << 24
  local parts, got = {}, 0
  for _ = 1, max_bytes + 1 do
    local d = s:recv()
    if not d then break end
    parts[#parts + 1] = d
    got = got + #d
    if got > max_bytes then fail(2, "recv_all: more than %d bytes", max_bytes) end
  end
  return table.concat(parts)
end

------------------------------------------------------------------------
-- Watchdog and exit
------------------------------------------------------------------------

-- A background shell that checks twice a second whether we are alive and
-- after `seconds` ends our children (listed in T.CHILDREN_FILE) and kills
-- us with SIGKILL. When we are gone (any exit, crash included) it ends the
-- children we left and exits within 0.5 s; T.done() ends it by PID. It is
-- not a popen handle (closing the Lua state never waits for it) and holds
-- none of our output streams (its message goes through /proc/<pid>/fd/2).
function T.watchdog(seconds)
  if T.watchdog_pid then
    os.execute("kill " .. T.watchdog_pid .. " 2>/dev/null")
    T.watchdog_pid = nil
  end
  local me = T.self_pid()
  local script = [[
me=ME; f=FILE; i=0; sp=
# Ended by T.done (SIGTERM): take the pending sleep along, leave no orphan.
trap '[ -n "$sp" ] && kill $sp 2>/dev/null; exit 0' TERM
alive() { s=$(sed 's/.*) //' /proc/$me/stat 2>/dev/null | cut -d' ' -f1); [ -n "$s" ] && [ "$s" != Z ]; }
killkids() {
  [ -f "$f" ] || return 0
  while read p st; do
    s=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f20)
    [ -n "$s" ] && [ "$s" = "$st" ] && kill -9 $p 2>/dev/null
  done < "$f"
}
while alive; do
  if [ $i -ge LIMIT ]; then
    echo "watchdog: test still running after SECS s: killing it (pid $me) and its children" \
      > /proc/$me/fd/2 2>/dev/null
    killkids; kill -9 $me; rm -f "$f"; exit 0
  fi
  i=$((i+1)); sleep 0.5 & sp=$!; wait $sp; sp=
done
killkids; rm -f "$f"
]]
  script = script:gsub("ME", tostring(me)):gsub("FILE", T.q(T.CHILDREN_FILE))
                 :gsub("LIMIT", tostring(seconds * 2)):gsub("SECS", tostring(seconds))
  local h = assert(io.popen("( exec env -u LD_PRELOAD sh -c " .. T.q(script) ..
                            " ) </dev/null >/dev/null 2>&1 & echo $!"))
  T.watchdog_pid = tonumber(h:read("l"))
  h:close()
end

local function end_watchdog()
  io.stdout:flush()
  if T.watchdog_pid then os.execute("kill " .. T.watchdog_pid .. " 2>/dev/null") end
  T.watchdog_pid = nil
  os.remove(T.CHILDREN_FILE)
end

-- Pass: end the watchdog, close the Lua state (runs finalizers, so the
-- module's cleanup is exercised too) and exit 0.
function T.done()
  end_watchdog()
  os.exit(0, true)
end

-- Skip: exit 77 with a reason.
function T.skip(fmt, ...)
  io.stdout:write("SKIP: ", string.format(fmt, ...), "\n")
  end_watchdog()
  os.exit(77, true)
end

T.watchdog(tonumber(os.getenv("PLUTO_TEST_WATCHDOG")) or 45)

return T

-- SPDX-License-Identifier: MIT
-- testlib.lua: small helpers shared by the tests in tests/lua/.
--
-- Conventions (see tests/run-lua): a test is `$LUA tests/lua/t_x.lua`;
-- exit 0 = pass, 77 = skipped, anything else = fail. Requiring this file
-- starts a watchdog that kills the test with SIGKILL if it runs longer than
-- PLUTO_TEST_WATCHDOG seconds (default 45), so a hang in the module turns
-- into a failure instead of a stuck suite; it needs no new process once
-- started, and if it cannot be started the test is skipped.

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
-- Resource limits
------------------------------------------------------------------------

-- The soft and hard values of a line of /proc/self/limits ("Max open
-- files", "Max processes"): numbers, math.huge for "unlimited" or when
-- the line cannot be read. Read from a file, not from `ulimit`: no
-- process is started, so this works when no more can be.
function T.rlimit(name)
  local f = io.open("/proc/self/limits")
  if not f then return math.huge, math.huge end
  local text = f:read("a")
  f:close()
  local soft, hard = text:match(name:gsub("%p", "%%%0") .. "%s+(%S+)%s+(%S+)")
  local function num(v) return v ~= "unlimited" and tonumber(v) or math.huge end
  return num(soft), num(hard)
end

local function limit_text(v)
  if v == math.huge then return "unlimited" end
  return tostring(v)
end

-- Skip (exit 77) unless this process may have `n` descriptors open at
-- once; `why` says what needs them. tests/run-lua raises the soft limit
-- to the hard one first, so under it the hard limit is what counts.
function T.need_fds(n, why)
  local soft, hard = T.rlimit("Max open files")
  if soft >= n then return end
  local hint = ""
  if hard >= n then
    hint = "; run the test through tests/run-lua, which raises the soft limit to the hard one"
  end
  T.skip("needs %d open descriptors (%s); the limit is %s (hard %s)%s",
         n, why, limit_text(soft), limit_text(hard), hint)
end

-- One line about the process limits, for messages about a failed fork:
-- RLIMIT_NPROC counts every thread of the user, not only processes.
function T.process_limits()
  local soft, hard = T.rlimit("Max processes")
  return string.format("max user processes %s (hard %s), threads in this process %s",
                       limit_text(soft), limit_text(hard), tostring(T.thread_count()))
end

-- A process could not be started (io.popen returned nil, err). Lacking
-- processes (EAGAIN: the user's or the system's limit) is an environment
-- without a resource the test needs: skip with the reason. Anything else
-- fails the test.
function T.cannot_start(what, err)
  -- io.popen's message is "<command>: <strerror>": keep the reason.
  err = tostring(err)
  err = err:match(".*: (.-)$") or err
  if err:find("Resource temporarily unavailable", 1, true)
     or err:find("Cannot allocate memory", 1, true) then
    T.skip("cannot start %s: %s (%s)", what, err, T.process_limits())
  end
  error(string.format("FAIL: cannot start %s: %s", what, err), 3)
end

-- Is program `prog` on PATH? Looked up by this process, not by a shell,
-- so the answer is right also when no process can be started (a shell
-- that cannot start would make every program look missing).
function T.have_program(prog)
  for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
    local f = io.open(dir .. "/" .. prog, "r")
    if f then
      f:close()
      return true
    end
  end
  return false
end

-- io.popen(cmd, mode), or the test skips or fails as T.cannot_start says.
function T.popen(cmd, mode, what)
  local h, err = io.popen(cmd, mode or "r")
  if not h then T.cannot_start(what or cmd, err) end
  return h
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

-- Send signal `sig` ("TERM", "KILL"...) to child `pid` with kill(1), or,
-- when that cannot start (no process left), through the watchdog, which
-- signals with its built-in kill within a quarter of a second.
function T.signal(pid, sig)
  if os.execute("kill -" .. sig .. " " .. pid .. " 2>/dev/null") or T.exited(pid) then
    return
  end
  local st = starttime(pid)
  if not st or not T.watchdog_pid then return end
  T.signal_seq = (T.signal_seq or 0) + 1
  local name = T.CHILDREN_FILE .. ".sig." .. T.signal_seq
  local f = io.open(name .. ".new", "w")
  if not f then return end
  f:write(sig, " ", pid, " ", st, "\n")
  f:close()
  os.rename(name .. ".new", name)          -- whole, or not there
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
    if not T.exited(pid) then T.signal(pid, "TERM") end
  end
  for pid in pairs(T.children) do
    local t0 = T.now_ms()
    while not T.exited(pid) and T.now_ms() - t0 < 3000 do   -- then SIGKILL
      T.os_sleep(10)       -- not socket.sleep: the module may be closed
    end
    if not T.exited(pid) then T.signal(pid, "KILL") end
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
  local h = T.popen("echo $$; " .. prefix .. cmd, "r", cmd)
  local pid = tonumber(h:read("l"))
  if not pid then
    h:close()
    error("FAIL: spawn: could not read the child's pid: " .. cmd, 2)
  end
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
    T.signal(pid, sig or "TERM")
    -- Give it up to 3 s to go, then insist.
    if not T.wait_until(function() return T.exited(pid) end, 3000, nil, true) then
      T.signal(pid, "KILL")
      T.wait_until(function() return T.exited(pid) end, 3000, nil, true)
    end
    -- Closing the handle would wait for the child forever.
    if not T.exited(pid) then
      fail(2, "child %d could not be ended (%s)", pid, T.process_limits())
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
  local h = T.popen("exec env -u LD_PRELOAD ls -1 /proc/" .. T.self_pid() .. "/fd", "r",
                    "ls (to count descriptors)")
  local n = 0
  for _ in h:lines() do n = n + 1 end
  h:close()
  return n
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
-- Sleep about ms with sleep(1), or, when it cannot start (no process
-- left), wait on the clock.
function T.os_sleep(ms)
  if os.execute(string.format("exec sleep %.3f", ms / 1000)) then return end
  local t0 = T.now_ms()
  while T.now_ms() - t0 < ms do end
end

local function pause(ms)
  local socket = package.loaded["pluto.socket"]
  if socket then
    socket.sleep(ms)
  else
    T.os_sleep(ms)
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

-- The watchdog: a bash process that, once the test has run longer than
-- its limit, ends the children listed in T.CHILDREN_FILE and kills the
-- test with SIGKILL; and that, when the test is gone before that (any
-- exit, a crash included), ends the children it left and removes the
-- paths given to T.remove_on_exit.
--
-- It has to work when no process can be started any more (RLIMIT_NPROC
-- reached, or a test filling it with threads): the shell it replaces,
-- which started `sed` and `sleep` twice a second, ended when they could
-- not start and left hung tests unbounded. So this one starts no process
-- after its own start. It waits in bash's built-in `read -t` on a pipe
-- from this process (io.popen in "w" mode, never written to), reads
-- /proc/<pid>/stat with built-in redirections, and signals with the
-- built-in kill (also for T.signal, when kill(1) cannot start).
--
-- End of file on that pipe means the test has closed it or died. The
-- handle is the oldest object with a finalizer (made when testlib is
-- first required), so it is closed last when the Lua state closes, after
-- every other finalizer. glibc's popen closes it in later popen children,
-- so T.spawn's children do not keep it open; a child of os.execute does
-- while it runs, which the check four times a second covers.
--
-- A new limit reaches it through a file (T.watchdog(seconds) again). Only
-- its start needs a new process; when that fails, the test is skipped
-- (exit 77) with the reason instead of running unbounded.
T.WATCHDOG_LIMIT_FILE = T.CHILDREN_FILE .. ".limit"   -- "generation seconds"
T.WATCHDOG_READY_FILE = T.CHILDREN_FILE .. ".wd"      -- its PID, once running
T.REMOVE_FILE = T.CHILDREN_FILE .. ".rm"              -- paths to remove, one a line

local WATCHDOG_SCRIPT = [=[
me=$1 me_start=$2 f=$3
gen= secs=0 deadline=0 nsig=0
# statof PID: state and start time of PID, from the fields that follow
# the command name in /proc/PID/stat (state is the first, start time the
# 20th); false once PID is gone.
statof() {
  local line
  read -r line < "/proc/$1/stat" || return 1
  set -- ${line##*") "}
  state=$1 start=${20}
}
alive() {
  statof "$me" 2>/dev/null && [ "$state" != Z ] && [ "$state" != X ] &&
    [ "$start" = "$me_start" ]
}
killkids() {
  local pid st
  [ -f "$f" ] || return 0
  while read -r pid st; do
    statof "$pid" 2>/dev/null && [ "$start" = "$st" ] && kill -9 "$pid" 2>/dev/null
  done < "$f"
}
# The only commands it runs (rm), and only once the test is gone.
finish() {
  local p
  killkids
  if [ -f "$f.rm" ]; then
    while read -r p; do [ -e "$p" ] && rm -rf -- "$p"; done < "$f.rm"
  fi
  for p in "$f" "$f.limit" "$f.rm" "$f.wd" "$f".sig.*; do
    [ -e "$p" ] && rm -f -- "$p"
  done
  exit 0
}
# Signals T.signal could not send: "$f.sig.N" holds "SIG PID STARTTIME".
signals() {
  local sig pid st
  while [ -f "$f.sig.$((nsig + 1))" ]; do
    nsig=$((nsig + 1))
    read -r sig pid st < "$f.sig.$nsig" && statof "$pid" 2>/dev/null &&
      [ "$start" = "$st" ] && kill -"$sig" "$pid" 2>/dev/null
  done
}
echo $$ > "$f.wd"
while :; do
  if [ -f "$f.limit" ] && read -r g s < "$f.limit" && [ "$g" != "$gen" ]; then
    gen=$g secs=$s deadline=$((SECONDS + s))
  fi
  if [ -n "$gen" ] && [ "$SECONDS" -ge "$deadline" ]; then
    echo "watchdog: test still running after $secs s: killing it (pid $me) and its children" \
      >> "/proc/$me/fd/2" 2>/dev/null
    killkids
    alive && kill -9 "$me" 2>/dev/null
    finish
  fi
  signals
  read -r -t 0.25 _
  rc=$?
  if [ "$rc" -gt 128 ]; then
    alive || finish          # a moment without news: are we still there?
  elif [ "$rc" -ne 0 ]; then
    finish                   # end of file: the test closed the pipe or died
  fi
done
]=]

local function write_limit(seconds)
  T.watchdog_gen = (T.watchdog_gen or 0) + 1
  -- Written aside and renamed, so the watchdog never reads half a line.
  local tmp = T.WATCHDOG_LIMIT_FILE .. ".new"
  local f = assert(io.open(tmp, "w"))
  f:write(T.watchdog_gen, " ", math.ceil(seconds), "\n")
  f:close()
  assert(os.rename(tmp, T.WATCHDOG_LIMIT_FILE))
end

-- The last finalizer before the pipe closes: the watchdog's files go,
-- so that it exits without starting rm.
local closer_mt = { __gc = function()
  os.remove(T.CHILDREN_FILE)
  os.remove(T.WATCHDOG_LIMIT_FILE)
  os.remove(T.WATCHDOG_READY_FILE)
end }

local function start_watchdog()
  local me = T.self_pid()
  local cmd = "exec env -u LD_PRELOAD bash -c " .. T.q(WATCHDOG_SCRIPT) ..
              " watchdog " .. me .. " " .. T.q(starttime(me)) .. " " ..
              T.q(T.CHILDREN_FILE) .. " >/dev/null 2>&1"
  local why
  for attempt = 1, 4 do
    local h, err = io.popen(cmd, "w")        -- its stdin is the pipe
    if h then
      local t0 = T.now_ms()
      while T.now_ms() - t0 < 5000 do
        local f = io.open(T.WATCHDOG_READY_FILE)
        local pid = f and tonumber(f:read("l"))
        if f then f:close() end
        if pid then
          T.watchdog_pid, T.watchdog_pipe = pid, h
          -- Made right after the pipe, so finalized right before it is
          -- closed: every child has been ended and reaped by then.
          T.watchdog_closer = setmetatable({}, closer_mt)
          return
        end
        pause(10)
      end
      local _, _, code = h:close()
      why = code == 127 and "bash is not installed" or "it did not start within 5 s"
      if code == 127 then break end
    else
      why = tostring(err):match(".*: (.-)$") or tostring(err)
    end
    pause(250 * attempt)          -- a limit reached for a moment?
  end
  os.remove(T.CHILDREN_FILE)
  os.remove(T.WATCHDOG_LIMIT_FILE)
  io.stdout:write(string.format(
    "SKIP: cannot start the watchdog that bounds this test's time: %s (%s)\n",
    why, T.process_limits()))
  os.exit(77, true)
end

-- Limit this test to `seconds` from now (also after an earlier limit).
function T.watchdog(seconds)
  write_limit(seconds)
  if not T.watchdog_pid then start_watchdog() end
end

-- Have the watchdog remove `path` (rm -rf) once this process is gone,
-- however it ends (for directories a finalizer would miss after SIGKILL).
function T.remove_on_exit(path)
  local f = assert(io.open(T.REMOVE_FILE, "a"))
  f:write(path, "\n")
  f:close()
end

-- Pass: close the Lua state (runs finalizers, so the module's cleanup is
-- exercised too; the watchdog still bounds it) and exit 0.
function T.done()
  io.stdout:flush()
  os.exit(0, true)
end

-- Skip: exit 77 with a reason.
function T.skip(fmt, ...)
  io.stdout:write("SKIP: ", string.format(fmt, ...), "\n")
  io.stdout:flush()
  os.exit(77, true)
end

T.watchdog(tonumber(os.getenv("PLUTO_TEST_WATCHDOG")) or 45)

return T

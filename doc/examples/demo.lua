-- SPDX-License-Identifier: MIT
-- demo.lua -- one echo server and many clients in one process, under one
-- pluto.scheduler.
--
--   lua5.4 doc/examples/demo.lua [clients] [messages]
--
-- The server listens on 127.0.0.1 on a port the system picks (port 0) and
-- answers every line it receives with the same line in upper case.  Each
-- client connects, sends a few lines, checks every reply and closes.  When
-- the last client is done the listener is closed, every coroutine ends,
-- sched:run() returns and the script prints a summary.  Exit status 0 means
-- every client got every reply right.

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local NCLIENTS = math.tointeger(tonumber(arg and arg[1])) or 200
local NMESSAGES = math.tointeger(tonumber(arg and arg[2])) or 5
local TIMEOUT = 20      -- seconds; no single recv or send may take longer

-- Read one line (without its "\n") from s.  recv() hands back chunks as
-- TCP delivered them, so a chunk may hold part of a line or several lines;
-- whatever follows the first "\n" goes back with unrecv() for next time.
-- Returns the line, or nil plus recv's error (nil alone: the peer closed).
local function readline(s)
    local parts = {}
    while true do
        local chunk, err, errno = s:recv()
        if not chunk then
            return nil, err, errno
        end
        local nl = chunk:find("\n", 1, true)
        if nl then
            if nl < #chunk then
                s:unrecv(chunk:sub(nl + 1))
            end
            parts[#parts + 1] = chunk:sub(1, nl - 1)
            return table.concat(parts)
        end
        parts[#parts + 1] = chunk
    end
end

local sched = Scheduler.new()

-- The server ---------------------------------------------------------------

-- The callback runs in a coroutine of its own for each client; bind closes
-- the client's socket when the callback returns.
local served = 0
local acceptor, listener = socket.bind(sched, "127.0.0.1:0", function(s)
    s:settimeout(TIMEOUT)
    while true do
        local line = readline(s)
        if not line then
            break               -- the client closed (or the connection failed)
        end
        if not s:send(line:upper() .. "\n") then
            break
        end
    end
    served = served + 1
end)

local host, port = listener:getsockname()
print(("server: listening on %s:%d"):format(host, port))

-- The clients --------------------------------------------------------------

local done, failed = 0, 0
local sent, received = 0, 0
local peak = { wait = 0, connect = 0 }   -- worker threads seen at once
local problems = {}

local function note_peak()
    local st = socket.stats()
    for lane in pairs(peak) do
        if st[lane].threads > peak[lane] then
            peak[lane] = st[lane].threads
        end
    end
end

-- Runs once per client, whether it succeeded or not; the last one to
-- finish closes the listener, which ends the acceptor coroutine.
local function finish(id, problem)
    done = done + 1
    if problem then
        failed = failed + 1
        if #problems < 10 then
            problems[#problems + 1] = ("client %d: %s"):format(id, problem)
        end
    end
    if done == NCLIENTS then
        listener:close()
    end
end

local function client(id)
    local s, err, errno = socket.connect("127.0.0.1", port)
    if not s then
        return finish(id, ("connect: %s (%s)"):format(err, errno))
    end
    s:settimeout(TIMEOUT)
    note_peak()
    for i = 1, NMESSAGES do
        local msg = ("hello %d from client %d"):format(i, id)
        local ok, serr = s:send(msg .. "\n")
        if not ok then
            s:close()
            return finish(id, "send: " .. tostring(serr))
        end
        sent = sent + #msg + 1
        local reply, rerr = readline(s)
        if reply ~= msg:upper() then
            s:close()
            return finish(id, ("expected %q, got %s"):format(msg:upper(),
                reply and ("%q"):format(reply) or tostring(rerr or "end of stream")))
        end
        received = received + #reply + 1
    end
    s:close()
    finish(id)
end

local wall0, cpu0 = os.time(), os.clock()
for id = 1, NCLIENTS do
    sched:add(function() client(id) end)
end
sched:run()
local wall, cpu = os.difftime(os.time(), wall0), os.clock() - cpu0

-- The summary --------------------------------------------------------------

print(("clients: %d done, %d failed; server handled %d connections")
      :format(done - failed, failed, served))
print(("bytes: %d sent, %d echoed back (%d messages each way)")
      :format(sent, received, (done - failed) * NMESSAGES))
print(("time: %s wall clock, %.2f s CPU (all threads)")
      :format(wall < 1 and "under 1 s" or ("about %d s"):format(wall), cpu))
print(("peak worker threads seen by clients: wait %d, connect %d")
      :format(peak.wait, peak.connect))
local st = socket.stats()
for _, lane in ipairs { "wait", "connect", "dns", "cpu" } do
    local l = st[lane]
    print(("pool %-7s threads %d (idle %d, busy %d), queued %d, completed %d")
          :format(lane, l.threads, l.idle, l.busy, l.queued, l.completed))
end
print(("listener: %s; acceptor coroutine: %s")
      :format(tostring(listener), coroutine.status(acceptor)))
for _, p in ipairs(problems) do
    print(p)
end

if failed > 0 or done ~= NCLIENTS then
    print("demo: FAILED")
    os.exit(1)
end
print("demo: ok")
os.exit(0)

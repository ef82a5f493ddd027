-- SPDX-License-Identifier: MIT
-- resolve_many.lua -- 1,000 name lookups at once, from one scheduler.
--
--   lua5.4 doc/examples/resolve_many.lua [names-file] [dns_threads]
--
-- With a file (one host name per line; blank lines and lines starting
-- with # are skipped), every name in it is looked up.  Without one, the
-- script looks up "localhost" 1,000 times: /etc/hosts answers, so it runs
-- offline, but each lookup is still a real getaddrinfo call on a worker.
-- The optional second argument sets the dns lane's cap (default 256).
--
-- Each lookup is one coroutine calling socket.resolve, which yields while
-- getaddrinfo runs on a thread of the dns lane.  At most dns_threads
-- lookups run at the same time; the others wait in the lane's queue.
-- socket.stats().dns shows that right after the lookups were started, and
-- again at the end.

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local names = {}
if arg[1] then
    for line in io.lines(arg[1]) do
        local name = line:match("^%s*([^%s#][^%s]*)")
        if name then
            names[#names + 1] = name
        end
    end
else
    for i = 1, 1000 do
        names[i] = "localhost"
    end
end

if arg[2] then
    socket.config{ dns_threads = assert(math.tointeger(tonumber(arg[2])),
                                        "dns_threads must be an integer") }
end
print(("%d names, dns_threads = %d"):format(#names, socket.config().dns_threads))

local sched = Scheduler.new()
local answers = {}            -- answers[i]: array of addresses, or false
local failures = {}           -- error name -> count

for i, name in ipairs(names) do
    sched:add(function()
        local addrs, msg, errname = socket.resolve(name)
        if addrs then
            answers[i] = addrs
        else
            answers[i] = false
            local key = tostring(errname) .. " (" .. tostring(msg) .. ")"
            failures[key] = (failures[key] or 0) + 1
        end
    end)
end

-- sched:add resumed each coroutine once, up to its first wait: every
-- lookup has been handed to the dns lane by now (or has already finished).
local st = socket.stats().dns
print(("started: %d lookups running, %d queued, %d already done")
      :format(st.busy, st.queued, st.completed))

local started = os.time()
sched:run()                   -- returns when every lookup has finished

local ok = 0
for i = 1, #names do
    if answers[i] then ok = ok + 1 end
end
print(("%d resolved, %d failed, in about %d s"):format(ok, #names - ok,
                                                      os.time() - started))
for key, n in pairs(failures) do
    print(("  %5d  %s"):format(n, key))
end
for i = 1, math.min(3, #names) do
    if answers[i] then
        print(("  %s -> %s"):format(names[i], table.concat(answers[i], " ")))
    end
end
-- Threads stay alive idle for a while (idle_ms), so `threads` now is
-- about the most that ran at once.
st = socket.stats().dns
print(("dns lane: %d threads, %d lookups completed"):format(st.threads, st.completed))

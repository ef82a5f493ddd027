-- SPDX-License-Identifier: MIT
-- poll_scheduler.lua -- socket calls under a scheduler that is not
-- pluto.scheduler: a loop that just resumes every live coroutine, the way
-- Pluto's own scheduler does.
--
--   lua5.4 doc/examples/poll_scheduler.lua
--
-- Inside a coroutine a call that has to wait yields (with no values).
-- Resumed before its work is done, it yields again; resumed after, it
-- returns the result.  So any loop of coroutine.resume works -- it just
-- spends CPU while everything waits, which pluto.scheduler does not.

local socket = require "pluto.socket"

local tasks = {}
local function spawn(f)
    tasks[#tasks + 1] = coroutine.create(f)
end

local function run()
    while #tasks > 0 do
        for i = #tasks, 1, -1 do
            local co = tasks[i]
            local ok, err = coroutine.resume(co)
            if not ok then
                error(debug.traceback(co, err), 0)
            end
            if coroutine.status(co) == "dead" then
                table.remove(tasks, i)
            end
        end
    end
end

local l = assert(socket.listen("127.0.0.1:0"))
local ip, port = l:getsockname()

spawn(function()                        -- the server: one client, then stop
    local s = assert(l:accept())        -- yields until the client arrives
    local line = s:recv()
    assert(s:send("you said: " .. line))
    s:close()
    l:close()
end)

spawn(function()                        -- the client
    socket.sleep(100)                   -- yields for about 100 ms
    local s = assert(socket.connect(ip, port))
    assert(s:send("hello"))
    print(s:recv())                     --> you said: hello
    s:close()
end)

run()

-- SPDX-License-Identifier: MIT
-- t_fd_leak.lua: 5,000 sockets (500 under PLUTO_TEST_LIGHT) created and
-- dropped (closed explicitly, or just left to the GC, some with a recv in
-- flight in an abandoned coroutine): after collectgarbage the number of
-- open descriptors (/proc/<pid>/fd) comes back to near where it started,
-- within a bounded wait.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local SOCKETS = T.scale(5000, 500)
local BATCH = 250                     -- pairs alive at once
local SLACK = 8                       -- descriptors the module may keep (eventfd...)

T.need_fds(2 * BATCH + 100, ("%d connected pairs at once, with both ends here"):format(BATCH))

-- Let the module deliver completions (a scheduler round) and collect.
local function settle()
  collectgarbage("collect")
  collectgarbage("collect")
  local sched = Scheduler.new()
  sched:add(function() socket.sleep(20) end)
  sched:run()
end

-- Warm up once (the module may open its eventfd etc. on first use), then
-- take the baseline.
do
  local c, s, l = T.pair(socket)
  c:close(); s:close(); l:close()
  settle()
end
local base = T.fd_count()
T.note("descriptors at start: %d", base)

local l = assert(socket.listen("127.0.0.1:0"))
local _, port = l:getsockname()
local made = 0
local mode = 0
while made < SOCKETS do
  local keep = {}                   -- alive until the end of this batch
  for _ = 1, BATCH do
    if made >= SOCKETS then break end
    local c = assert(socket.connect("127.0.0.1", port))
    local s = assert(l:accept())
    made = made + 2
    mode = mode % 4 + 1
    if mode == 1 then
      c:close(); s:close()            -- closed explicitly
    elseif mode == 2 then
      keep[#keep + 1] = { c, s }      -- dropped with the batch, left to the GC
    elseif mode == 3 then
      -- A recv in flight in a coroutine that is then abandoned, peer open.
      local co = coroutine.create(function() return s:recv() end)
      assert(coroutine.resume(co))
      T.eq(coroutine.status(co), "suspended", "recv with nothing to read should yield")
      keep[#keep + 1] = { c, co }
    else
      -- Same, with data flowing first and the waiter on the client side.
      s:send("x")
      T.eq(c:recv(), "x", "round trip")
      local co = coroutine.create(function() return c:recv() end)
      assert(coroutine.resume(co))
      keep[#keep + 1] = { s, co }
    end
  end
  keep = nil
  collectgarbage("collect")
end
l:close()

local peak_note = T.fd_count()
local final = T.wait_until(function()
  settle()
  local n = T.fd_count()
  if n <= base + SLACK then return n end
end, 10000, nil, true, 100)
T.check(final, "descriptors did not come back: %d at start, %d now (after %d sockets)",
        base, T.fd_count(), made)
T.ok("%d sockets created and dropped; descriptors %d -> %d (right after: %d)",
     made, base, final, peak_note)
T.done()

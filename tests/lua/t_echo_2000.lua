-- SPDX-License-Identifier: MIT
-- t_echo_2000.lua: 2,000 concurrent echo clients (200 under
-- PLUTO_TEST_LIGHT) in one scheduler, against an echo server made with
-- socket.bind in the same scheduler. Each client sends a few messages and
-- checks each echo; all must succeed.
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local N = T.scale(2000, 200)
local MSGS = 3

-- Both ends of every connection are in this process.
T.need_fds(2 * N + 64, ("%d connections with both ends here"):format(N))

local sched = Scheduler.new()
local served = 0
local acceptor, l = socket.bind(sched, "127.0.0.1:0", function(s)
  served = served + 1
  for _ = 1, 1000 do                 -- bounded: a client sends MSGS messages
    local d = s:recv()
    if not d then break end
    s:send(d)
  end
end)
local _, port = l:getsockname()

local okc, failures, first_failure = 0, 0, nil
local finished = 0

local function client(i)
  local ok, err = pcall(function()
    local c, msg = socket.connect("127.0.0.1", port)
    T.check(c, "client %d: connect: %s", i, tostring(msg))
    for k = 1, MSGS do
      -- Messages of different sizes, some above one segment.
      local m = string.format("client %d message %d ", i, k) .. string.rep("*", (i * 7 + k * 1000) % 3000)
      T.eq(c:send(m), true, "client " .. i .. " send")
      T.eq(T.recv_n(c, #m, "echo"), m, "client " .. i .. " echo " .. k)
    end
    c:close()
  end)
  if ok then okc = okc + 1 else
    failures = failures + 1
    first_failure = first_failure or err
  end
  finished = finished + 1
  if finished == N then
    -- All clients done: stop the acceptor so run() can return.
    sched:remove(acceptor)
    l:close()
  end
end

local t0 = T.now_ms()
for i = 1, N do
  sched:add(function() client(i) end)
end
sched:run()
local elapsed = T.now_ms() - t0

T.check(failures == 0, "%d of %d clients failed; first: %s", failures, N, tostring(first_failure))
T.eq(okc, N, "clients that completed")
T.eq(served, N, "connections served by the bind callback")
T.ok("%d concurrent echo clients x %d messages in %.0f ms", N, MSGS, elapsed)
T.done()

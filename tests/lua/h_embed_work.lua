-- SPDX-License-Identifier: MIT
-- h_embed_work.lua: the mostly idle work of t_embed_luv and
-- t_embed_cqueues, about one second long, on a pluto.scheduler that the
-- host's own loop drives: a coroutine sleeping 100 ms ten times, and an
-- echo server with a client sending five messages 200 ms apart.
-- W.start(sched) adds it all; W.check() asserts it all happened.
local T = require "testlib"
local socket = require "pluto.socket"

local W = {}
local ticks, echoed = 0, {}

function W.start(sched)
  sched:add(function()
    for _ = 1, 10 do socket.sleep(100); ticks = ticks + 1 end
  end)
  local _, l = socket.bind(sched, "127.0.0.1:0", function(s)
    while true do
      local d = s:recv()
      if not d then break end
      s:send(d)
    end
  end)
  sched:add(function()
    local c = assert(socket.connect("127.0.0.1", select(2, l:getsockname())))
    for i = 1, 5 do
      socket.sleep(200)
      assert(c:send("msg" .. i))
      echoed[#echoed + 1] = c:recv()
    end
    c:close()
    l:close()
  end)
end

function W.check(what, iterations, ms)
  T.eq(ticks, 10, what .. ": sleeps that ended")
  T.eq(table.concat(echoed, " "), "msg1 msg2 msg3 msg4 msg5", what .. ": echoes")
  T.check(ms >= 900 and ms < 5000, "%s: the work took %.0f ms", what, ms)
  -- About 20 wake-ups are needed (10 timers, 5 round trips of 2 hops);
  -- a busy-waiting host would count thousands.
  T.check(iterations <= 200, "%s: the host loop ran %d times over %.0f ms (busy?)",
          what, iterations, ms)
end

return W

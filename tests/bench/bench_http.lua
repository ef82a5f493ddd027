-- SPDX-License-Identifier: MIT
-- bench_http.lua: the client side of the "http" workload: Debian's
-- socket.http fetching GETs of SIZE bytes from ctools.c http-server,
-- REQUESTS in all, CONNS at a time, each body checked for its length.
--
--   lua5.4 bench_http.lua pluto PORT CONNS REQUESTS SIZE
--       socket.http on pluto.luasocket (package.loaded.socket), CONNS
--       coroutines under one pluto.scheduler
--   lua5.4 bench_http.lua copas PORT CONNS REQUESTS SIZE
--       socket.http on LuaSocket under Copas: CONNS Copas threads whose
--       `create` gives socket.http Copas's connect, send and receive
--   lua5.4 bench_http.lua luasocket PORT 1 REQUESTS SIZE
--       socket.http on LuaSocket, one request after the other
--
-- Prints "RESULT <requests per second>", timed from before the first
-- request to the end of the last.
local mode, port, conns, total, size = arg[1], tonumber(arg[2]), tonumber(arg[3]),
                                       tonumber(arg[4]), tonumber(arg[5])
assert(mode and port and conns and total and size,
       "usage: bench_http.lua pluto|copas|luasocket PORT CONNS REQUESTS SIZE")

local url = "http://127.0.0.1:" .. port .. "/bench"
local started, finished, failed = 0, 0, 0
local clock

-- One request: the body's length checked.
local function fetch(http, ltn12, create)
  local t = {}
  local ok, code = http.request{ url = url, sink = ltn12.sink.table(t), create = create }
  local n = 0
  for _, s in ipairs(t) do n = n + #s end
  if ok ~= 1 or code ~= 200 or n ~= size then
    failed = failed + 1
    if failed <= 3 then
      io.stderr:write("request failed: ", tostring(ok), " ", tostring(code), " ", n, "\n")
    end
  end
  finished = finished + 1
end

-- Each worker takes requests until REQUESTS have been started.
local function worker(http, ltn12, create)
  while started < total do
    started = started + 1
    fetch(http, ltn12, create)
  end
end

if mode == "pluto" then
  package.loaded.socket = require "pluto.luasocket"
  local socket = require "socket"
  local http, ltn12 = require "socket.http", require "ltn12"
  local Scheduler = require "pluto.scheduler"
  clock = socket.gettime
  local sched = Scheduler.new()
  local t0 = clock()
  for _ = 1, conns do sched:add(worker, http, ltn12) end
  sched:run()
  io.write(("RESULT %.1f\n"):format(finished / (clock() - t0)))
elseif mode == "copas" then
  -- Debian packages Copas for Lua 5.1 and 5.2 only; its code runs on 5.4.
  package.path = package.path .. ";/usr/share/lua/5.2/?.lua"
  local copas = require "copas"          -- before socket.http, as Copas asks
  local socket = require "socket"
  local http, ltn12 = require "socket.http", require "ltn12"
  clock = socket.gettime
  -- socket.http calls connect, settimeout, send, receive and close;
  -- Copas gives the waiting ones (copas.wrap has no connect or close, and
  -- its receive drops the prefix that socket.http passes).
  local function create()
    local skt = socket.tcp()
    return {
      connect = function(_, host, p)
        local ok, err = copas.connect(skt, host, p)
        if not ok and err == "already connected" then return 1 end
        return ok, err
      end,
      settimeout = function() return 1 end,
      send = function(_, data, i, j) return copas.send(skt, data, i, j) end,
      receive = function(_, pattern, prefix) return copas.receive(skt, pattern, prefix) end,
      close = function() return skt:close() end,
    }
  end
  local t0 = clock()
  -- (Copas 1 resumes a new thread with a socket argument first: nil.)
  for _ = 1, conns do copas.addthread(function() worker(http, ltn12, create) end) end
  local deadline = clock() + 600
  while finished < total and clock() < deadline do copas.step(1) end
  io.write(("RESULT %.1f\n"):format(finished / (clock() - t0)))
elseif mode == "luasocket" then
  local socket = require "socket"
  local http, ltn12 = require "socket.http", require "ltn12"
  clock = socket.gettime
  local t0 = clock()
  worker(http, ltn12)
  io.write(("RESULT %.1f\n"):format(finished / (clock() - t0)))
else
  error("unknown mode " .. tostring(mode))
end
io.write(("requests=%d failed=%d\n"):format(finished, failed))
os.exit(failed == 0 and 0 or 1)

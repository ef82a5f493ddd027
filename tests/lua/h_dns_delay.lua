-- SPDX-License-Identifier: MIT
-- h_dns_delay.lua: a delaying DNS relay over UDP, written with pluto.socket
-- itself (this machine's kernel refuses `tc netem`, so DNS latency is made
-- here). Each query is held DELAY_MS, then forwarded to UPSTREAM (dnsmasq)
-- under an id of our own, and the reply goes back to the original sender
-- with its original id (setpeer + send on the server socket).
--
-- usage: h_dns_delay.lua LISTEN UPSTREAM [DELAY_MS [MODE [WINDOW [LIFETIME_S]]]]
--   LISTEN, UPSTREAM  "ip:port" (e.g. 127.0.0.1:53 and 127.0.0.1:5353)
--   DELAY_MS          default 100
--   MODE              "fifo" (default): one delay-line coroutine for all
--                     queries (every query waits the same time, so a FIFO
--                     keeps the order of deadlines);
--                     "co": each query in its own coroutine that does
--                     socket.sleep(DELAY_MS) then forwards it. Simpler, but
--                     it costs the receiving loop more per datagram: a
--                     burst of 5,000 datagrams at once overflows the
--                     socket's receive buffer (about 200 KiB) in "co" mode,
--                     while "fifo" takes 10,000 at once without a loss
--                     (tests/bench/dns_blast.lua measures it)
--   WINDOW            most queries outstanding at the upstream at once
--                     (default 64): the rest wait their turn here, so a
--                     burst of thousands never overflows the upstream's
--                     socket receive buffer (about 200 KiB: a few hundred
--                     small datagrams)
--   LIFETIME_S        the relay stops by itself after this (default 3600)
--
-- Prints "ready" on stdout once the upstream has answered a probe. A
-- datagram "STATS" (not DNS) is answered with the relay's counters:
--   "received=N forwarded=N answered=N expired=N maxpending=N maxqueued=N"

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local W = require "h_dns_wire"

local listen = arg[1] or "127.0.0.1:53"
local upstream = arg[2] or "127.0.0.1:5353"
local delay = tonumber(arg[3] or 100)
local mode = arg[4] or "fifo"
local window = tonumber(arg[5] or 64)
local lifetime = tonumber(arg[6] or 3600)
assert(mode == "co" or mode == "fifo", "MODE must be co or fifo")

local uphost, upport = upstream:match("^%[?([^%]]-)%]?:(%d+)$")
assert(uphost, "UPSTREAM must be ip:port")

local now = socket._now
local srv = assert(socket.udpserver(listen))
local up = assert(socket.connect(uphost, tonumber(upport), "udp"))

-- Wait (outside any coroutine) until the upstream answers: bounded in
-- tries and time (200 x 50 ms).
do
  up:settimeout(0.05)
  local probe = W.query(0, "relay-probe.invalid", W.A)
  local answered = false
  for _ = 1, 200 do
    up:send(probe)
    local r, err = up:recv()
    if r and W.header(r) == 0 then answered = true; break end
    if not r and err ~= "timeout" then socket.sleep(50) end  -- refused
  end
  if not answered then
    io.stderr:write("h_dns_delay: upstream ", upstream, " never answered\n")
    os.exit(1)
  end
  up:settimeout(nil)
end

local stats = { received = 0, forwarded = 0, answered = 0, expired = 0,
                maxpending = 0, maxqueued = 0 }

-- Queries at the upstream: our id -> { original id bytes, ip, port, sent }.
local pending, npending, lastid = {}, 0, 0
-- Queries that are due but wait for a window slot (a FIFO).
local waiting, whead, wtail = {}, 1, 0

local function send_up(q, ip, port)
  local id
  for _ = 1, 65536 do
    lastid = (lastid % 0xffff) + 1            -- 1..65535; 0 is the probe's
    if not pending[lastid] then id = lastid; break end
  end
  if not id then return end                   -- cannot happen below 65535
  pending[id] = { q:sub(1, 2), ip, port, now() }
  npending = npending + 1
  if npending > stats.maxpending then stats.maxpending = npending end
  stats.forwarded = stats.forwarded + 1
  up:send(string.pack(">I2", id) .. q:sub(3))
end

local function forward(q, ip, port)
  if npending < window and whead > wtail then
    return send_up(q, ip, port)
  end
  wtail = wtail + 1
  waiting[wtail] = { q, ip, port }
  local queued = wtail - whead + 1
  if queued > stats.maxqueued then stats.maxqueued = queued end
end

local function drain_waiting()
  while npending < window and whead <= wtail do
    local e = waiting[whead]
    waiting[whead] = nil
    whead = whead + 1
    send_up(e[1], e[2], e[3])
  end
end

local sched = Scheduler.new()

-- The next datagram on sock. Under load, datagrams are taken while the
-- kernel has them (peek never blocks); when it has none the coroutine
-- naps (10 naps of 0.01 ms -- in effect "after the others", or up to 1 ms
-- when nothing else is due -- then 10 naps of 1 ms), and only then waits
-- in recv, on a worker. Waiting in recv for every datagram costs two
-- thread hand-offs per datagram: under load that made the relay itself
-- the bottleneck (~60 us of CPU per query, against ~20 us so).
-- (Not socket.sleep(0) nor coroutine.yield(): see the module bug noted in
-- tests/lua/t_udp.lua -- a coroutine whose receive job another coroutine
-- took over by peek keeps a stale "waits on a job" mark, and pluto.scheduler
-- never resumes it after a plain yield. A nap of > 0 ms resets the mark.)
local function next_datagram(sock)
  for i = 1, 20 do
    if sock:peek() ~= nil then return sock:recv() end
    socket.sleep(i <= 10 and 0.01 or 1)
  end
  return sock:recv()
end

-- fifo mode: one coroutine runs the delay line while it is not empty.
local line, lhead, ltail, line_running = {}, 1, 0, false
local drain_srv

local function delay_line()
  local n = 0
  while lhead <= ltail do
    local e = line[lhead]
    local wait = e[4] - now()
    if wait > 0 then socket.sleep(wait) end
    line[lhead] = nil
    lhead = lhead + 1
    forward(e[1], e[2], e[3])
    n = n + 1
    if n % 16 == 0 then drain_srv() end
  end
  line_running = false
end

-- One datagram from a client, with its sender.
local function handle_query(q, ip, port)
  if q == "STATS" then
    srv:setpeer(ip, port)
    srv:send(string.format(
      "received=%d forwarded=%d answered=%d expired=%d maxpending=%d maxqueued=%d",
      stats.received, stats.forwarded, stats.answered, stats.expired,
      stats.maxpending, stats.maxqueued))
  elseif #q >= 12 then
    stats.received = stats.received + 1
    if mode == "co" then
      sched:add(function()
        socket.sleep(delay)
        forward(q, ip, port)
      end)
    else
      ltail = ltail + 1
      line[ltail] = { q, ip, port, now() + delay }
      if not line_running then
        line_running = true
        sched:add(delay_line)
      end
    end
  end
end

-- Take every query the kernel holds now (never blocks; nothing while the
-- reader below waits in recv). Called between the other loops' items too:
-- while the relay sends a burst of due queries or of answers, clients keep
-- sending, and the socket's receive buffer holds only a few hundred
-- datagrams.
function drain_srv()
  for _ = 1, 100000 do
    if srv:peek() == nil then return end
    local q = srv:recv()
    if q == nil then return end
    handle_query(q, srv:getpeer())
  end
end

-- Queries from clients.
sched:add(function()
  while true do
    local q, err = next_datagram(srv)
    if q == nil and err == nil then break end          -- closed
    if q then handle_query(q, srv:getpeer()) end
  end
end)

-- Replies from the upstream.
sched:add(function()
  local n = 0
  while true do
    local r, err = next_datagram(up)
    if r == nil and err == nil then break end          -- closed
    if r and #r >= 12 then
      local id = string.unpack(">I2", r)
      local p = pending[id]
      if p then
        pending[id] = nil
        npending = npending - 1
        srv:setpeer(p[2], p[3])
        srv:send(p[1] .. r:sub(3))
        stats.answered = stats.answered + 1
      end
      drain_waiting()
      n = n + 1
      if n % 16 == 0 then drain_srv() end
    end
  end
end)

-- Forget queries the upstream never answered (so they do not hold window
-- slots forever), and stop after the lifetime.
sched:add(function()
  local stop = now() + lifetime * 1000
  while now() < stop do
    socket.sleep(1000)
    local old = now() - 3000
    for id, p in pairs(pending) do
      if p[4] < old then
        pending[id] = nil
        npending = npending - 1
        stats.expired = stats.expired + 1
      end
    end
    drain_waiting()
  end
  srv:close()
  up:close()
end)

io.stdout:write("ready\n")
io.stdout:flush()
sched:run()

-- SPDX-License-Identifier: MIT
-- pluto.scheduler: runs coroutines, resuming each only when it can go on.
--
-- A coroutine yields for one of three reasons, told apart by
-- socket._waitstate(co) right after it yields:
--   nil      a plain coroutine.yield(): resume it next round;
--   true     it waits on a socket operation: resume it once _poll reports
--            the operation finished;
--   number   it sleeps until that time (socket._now's clock): keep it in
--            a timer heap.
-- When nothing can run, run() sleeps in the kernel on the completion
-- eventfd, with the nearest timer as the timeout, so an idle server uses
-- no CPU.

local socket = require "pluto.socket"

local poll, waitstate, now = socket._poll, socket._waitstate, socket._now
local pending = socket._pending
local resume, status = coroutine.resume, coroutine.status
local traceback = debug.traceback

local Scheduler = {}
Scheduler.__index = Scheduler

-- Timer heap: an array of { deadline, co }, smallest deadline first.

local function heap_push(h, deadline, co)
  local i = #h + 1
  h[i] = { deadline, co }
  while i > 1 do
    local p = i // 2
    if h[p][1] <= h[i][1] then break end
    h[p], h[i] = h[i], h[p]
    i = p
  end
end

local function heap_pop(h)
  local top, n = h[1], #h
  h[1] = h[n]
  h[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and h[l][1] < h[m][1] then m = l end
    if r <= n and h[r][1] < h[m][1] then m = r end
    if m == i then break end
    h[m], h[i] = h[i], h[m]
    i = m
  end
  return top
end

function Scheduler.new()
  return setmetatable({
    coros = {},      -- set of the coroutines this scheduler runs
    count = 0,
    runnable = {},   -- array: yielded plainly, to resume next round
    batch = {},      -- this round's coroutines, from bhead on (a queue)
    bhead = 1,
    filing = 0,      -- steps under way (see _step)
    timers = {},     -- heap of sleeping coroutines
    yieldfunc = nil,
    errorfunc = nil,
  }, Scheduler)
end

setmetatable(Scheduler, { __call = function(cls) return cls.new() end })

-- Resume co once (with the arguments given, on its first resume) and file
-- it by why it yielded, or drop it if it ended. Filing allocates, and so
-- can raise a memory error that would lose co: self.filing counts the
-- steps under way, and one left above zero when a round begins means an
-- error escaped one, so that round first finds every coroutine again
-- (_resync). Steps nest (a coroutine may call add), hence a count.
function Scheduler:_step(co, ...)
  self.filing = self.filing + 1
  local ok, err = resume(co, ...)
  if not ok and status(co) == "suspended" then
    -- The resume itself failed (no memory to start it): co did not run.
    -- _resync will find it -- unless this was add's first resume with
    -- arguments, which a later resume would not pass: then it was never
    -- started, and add fails.
    if select("#", ...) > 0 then self:remove(co) end
    error(err, 0)
  end
  if status(co) == "dead" then
    if self.coros[co] then
      self.coros[co] = nil
      self.count = self.count - 1
    end
    self.filing = self.filing - 1
    if not ok then
      if self.errorfunc then
        self.errorfunc(traceback(co, tostring(err)))
      else
        error(traceback(co, tostring(err)), 0)
      end
    end
    return
  end
  local w = waitstate(co)
  if w == nil then
    local r = self.runnable
    r[#r + 1] = co
  elseif w ~= true then
    heap_push(self.timers, w, co)
  end
  self.filing = self.filing - 1
end

-- After an error escaped a step: file every coroutine again by its wait
-- state. One filed twice is only resumed once too often, which is safe (a
-- coroutine resumed early yields again); none is lost. A coroutine waiting
-- on an operation needs nothing: _poll reports it when the operation ends.
function Scheduler:_resync()
  local batch, timers = self.batch, self.timers
  for co in pairs(self.coros) do
    if status(co) == "suspended" then
      local w = waitstate(co)
      if w == nil then
        batch[#batch + 1] = co
      elseif w ~= true then
        heap_push(timers, w, co)
      end
    end
  end
  self.filing = 0
end

-- The body of a coroutine added while errorfunc is set. xpcall does not
-- call its handler for a memory error, so errorfunc then gets the message
-- here: it sees every coroutine's failure.
local function guarded(errorfunc, f, ...)
  local handled = false
  local function handler(e)
    handled = true
    return errorfunc(e)
  end
  local r = table.pack(xpcall(f, handler, ...))
  if not r[1] and not handled then errorfunc(r[2]) end
  return table.unpack(r, 1, r.n)
end

function Scheduler:add(f, ...)
  local co
  if type(f) == "thread" then
    co = f
  elseif type(f) == "function" then
    local errorfunc = self.errorfunc
    if errorfunc then
      co = coroutine.create(guarded)
      if not self.coros[co] then
        self.coros[co] = true
        self.count = self.count + 1
      end
      self:_step(co, errorfunc, f, ...)
      return co
    end
    co = coroutine.create(f)
  else
    error("bad argument #1 to 'add' (function or thread expected, got "
          .. type(f) .. ")", 2)
  end
  if not self.coros[co] then
    self.coros[co] = true
    self.count = self.count + 1
  end
  self:_step(co, ...)
  return co
end

function Scheduler:addloop(f)
  if type(f) ~= "function" then
    error("bad argument #1 to 'addloop' (function expected, got "
          .. type(f) .. ")", 2)
  end
  return self:add(function()
    while f() ~= false do
      coroutine.yield()
    end
  end)
end

function Scheduler:contains(co)
  return self.coros[co] == true
end

function Scheduler:remove(co)
  if self.coros[co] then
    self.coros[co] = nil
    self.count = self.count - 1
  end
end

-- How long the kernel wait may last: 0 if something can run now, else
-- until the nearest timer (-1: no timer, wait for a completion).
function Scheduler:_timeout()
  if self.bhead <= #self.batch or #self.runnable > 0 or self.filing > 0
     or self.yieldfunc then
    return 0
  end
  local top = self.timers[1]
  if not top then return -1 end
  local ms = top[1] - now()
  return ms > 0 and ms or 0
end

-- The coroutines to resume this round, appended to self.batch: each is
-- appended before it is taken off the set or heap it came from, so that
-- a memory error on the way loses none (the next round finds it again).
function Scheduler:_collect(wait_ms)
  local coros, timers, batch = self.coros, self.timers, self.batch
  if self.filing > 0 then self:_resync() end
  -- Copied before the list is replaced: a memory error in the copy
  -- leaves the coroutines in self.runnable for the next round.
  local runnable = self.runnable
  for i = 1, #runnable do batch[#batch + 1] = runnable[i] end
  self.runnable = {}
  -- Coroutines whose operations finished.
  local ready = poll(wait_ms)
  for co in pairs(ready) do
    if coros[co] then
      batch[#batch + 1] = co
      ready[co] = nil
    end
  end
  -- Coroutines whose sleep is over (stale entries are skipped: the
  -- coroutine was removed, or woke and went on to other things).
  local t = now()
  while timers[1] and timers[1][1] <= t do
    local e = timers[1]
    if coros[e[2]] and waitstate(e[2]) == e[1] then
      batch[#batch + 1] = e[2]
    end
    heap_pop(timers)
  end
end

-- One round: collect what can run, waiting at most wait_ms for it, and
-- resume it. Each coroutine leaves the batch before it is resumed, so
-- that after an error (raised out of run or step) the next call goes on
-- with the rest.
function Scheduler:_round(wait_ms)
  if self.bhead > #self.batch then
    self.batch, self.bhead = {}, 1
    self:_collect(wait_ms)
  end
  local coros, batch = self.coros, self.batch
  while self.bhead <= #batch do
    local co = batch[self.bhead]
    batch[self.bhead] = false
    self.bhead = self.bhead + 1
    if coros[co] and status(co) == "suspended" then
      self:_step(co)
    end
  end
end

-- Embedding: a host with a loop of its own (luv, cqueues, a GUI or game
-- loop) watches pollfd() for readability and calls step() when it is
-- readable or timeout() has passed. The three make the scheduler look
-- like a cqueues controller, so cqueues.poll(sched) works as it is.

-- The descriptor that becomes readable when an operation finishes.
function Scheduler:pollfd()
  return socket._pollfd()
end

-- What to watch pollfd() for (cqueues' polling protocol).
function Scheduler:events()
  return "r"
end

-- Seconds until step() has something to do without pollfd() becoming
-- readable: 0 if something can run now, the time to the nearest sleep's
-- end, or nil if only finished operations can bring work (then watch
-- pollfd()), or if nothing is left to run.
function Scheduler:timeout()
  if self.count == 0 then return nil end
  if self.bhead <= #self.batch or #self.runnable > 0 or self.filing > 0
     or pending() then
    return 0
  end
  local top = self.timers[1]
  if not top then return nil end
  local s = (top[1] - now()) / 1000
  return s > 0 and s or 0
end

-- One round: resume what can run, waiting at most 'timeout' seconds
-- (default 0: never wait) for something to. Returns true while
-- coroutines remain (false once all have finished).
function Scheduler:step(timeout)
  if self.count == 0 then return false end
  local ms = 0
  if timeout ~= nil then
    if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
      error("bad argument #1 to 'step' (seconds >= 0 expected, got "
            .. tostring(timeout) .. ")", 2)
    end
    ms = timeout * 1000
  end
  local need = self:_timeout()
  if need >= 0 and need < ms then ms = need end
  self:_round(ms)
  return self.count > 0
end

function Scheduler:run()
  while self.count > 0 do
    self:_round(self:_timeout())
    if self.yieldfunc then
      self.yieldfunc()
    end
  end
end

return Scheduler

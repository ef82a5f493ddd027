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
    timers = {},     -- heap of sleeping coroutines
    yieldfunc = nil,
    errorfunc = nil,
  }, Scheduler)
end

setmetatable(Scheduler, { __call = function(cls) return cls.new() end })

-- Resume co once and file it by why it yielded (or drop it if it ended).
function Scheduler:_step(co)
  local ok, err = resume(co)
  if status(co) == "dead" then
    if self.coros[co] then
      self.coros[co] = nil
      self.count = self.count - 1
    end
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
end

function Scheduler:add(f)
  local co
  if type(f) == "thread" then
    co = f
  elseif type(f) == "function" then
    local errorfunc = self.errorfunc
    if errorfunc then
      co = coroutine.create(function(...) return xpcall(f, errorfunc, ...) end)
    else
      co = coroutine.create(f)
    end
  else
    error("bad argument #1 to 'add' (function or thread expected, got "
          .. type(f) .. ")", 2)
  end
  if not self.coros[co] then
    self.coros[co] = true
    self.count = self.count + 1
  end
  self:_step(co)
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
function Scheduler:_timeout(batch)
  if #batch > 0 or self.yieldfunc then return 0 end
  local top = self.timers[1]
  if not top then return -1 end
  local ms = top[1] - now()
  return ms > 0 and ms or 0
end

function Scheduler:run()
  local coros, timers = self.coros, self.timers
  while self.count > 0 do
    local batch = self.runnable
    self.runnable = {}
    -- Coroutines whose operations finished.
    local ready = poll(self:_timeout(batch))
    for co in pairs(ready) do
      if coros[co] then
        ready[co] = nil
        batch[#batch + 1] = co
      end
    end
    -- Coroutines whose sleep is over (stale entries are skipped: the
    -- coroutine was removed, or woke and went on to other things).
    local t = now()
    while timers[1] and timers[1][1] <= t do
      local e = heap_pop(timers)
      if coros[e[2]] and waitstate(e[2]) == e[1] then
        batch[#batch + 1] = e[2]
      end
    end
    for i = 1, #batch do
      local co = batch[i]
      if coros[co] and status(co) == "suspended" then
        self:_step(co)
      end
    end
    if self.yieldfunc then
      self.yieldfunc()
    end
  end
end

return Scheduler

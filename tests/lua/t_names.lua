-- SPDX-License-Identifier: MIT
-- t_names.lua: the module names (SPEC §1): require "pluto" gives
-- { socket = ..., scheduler = ... }; "pluto:socket" and "pluto:scheduler"
-- resolve once pluto.socket (or pluto) has been required, and with
-- `lua5.4 -l pluto`.
local T = require "testlib"

-- First pluto.socket alone (not pluto), then the colon names.
local socket = require "pluto.socket"
T.eq(type(socket), "table", "require 'pluto.socket'")
T.eq(type(socket.connect), "function", "pluto.socket.connect")
local ok, colon = pcall(require, "pluto:socket")
T.check(ok, "require 'pluto:socket' after requiring pluto.socket: %s", tostring(colon))
T.eq(colon, socket, "require 'pluto:socket' is pluto.socket")
local Scheduler = require "pluto.scheduler"
ok, colon = pcall(require, "pluto:scheduler")
T.check(ok, "require 'pluto:scheduler' after requiring pluto.socket: %s", tostring(colon))
T.eq(colon, Scheduler, "require 'pluto:scheduler' is pluto.scheduler")
T.ok("pluto:socket and pluto:scheduler after require 'pluto.socket'")

local pluto = require "pluto"
T.eq(type(pluto), "table", "require 'pluto'")
T.eq(pluto.socket, socket, "require('pluto').socket")
T.eq(pluto.scheduler, Scheduler, "require('pluto').scheduler")
T.ok("require 'pluto' gives { socket, scheduler }")

-- Fresh interpreters, so the order of requires is what the case says.
local function child(args, what)
  local pid, h = T.spawn(T.LUA .. " " .. args .. " 2>&1")
  local out = h:read("a")
  local ok2, how, code = T.wait_exit(pid, h, 10000)
  T.check(ok2 and code == 0, "%s: exit %s %s, output: %s", what, tostring(how), tostring(code), out)
  return out
end

child("-l pluto -e " .. T.q('assert(require "pluto:socket")'), "lua -l pluto -e require 'pluto:socket'")
child("-l pluto -e " .. T.q('assert(pluto.socket == require "pluto:socket"); ' ..
                            'assert(pluto.scheduler == require "pluto:scheduler")'),
      "lua -l pluto: global pluto and the colon names agree")
child("-e " .. T.q('require "pluto.socket"; ' ..
                   'assert(require "pluto:scheduler" == require "pluto.scheduler")'),
      "fresh: pluto:scheduler after pluto.socket")
child("-e " .. T.q('local p = require "pluto"; assert(p.socket and p.scheduler); ' ..
                   'assert(require "pluto:socket" == p.socket)'),
      "fresh: pluto:socket after pluto")
-- The translated seed header: local { scheduler, socket } = require "*"
child("-e " .. T.q('local p = require "pluto"; local scheduler, socket = p.scheduler, p.socket; ' ..
                   'local s = scheduler.new(); s:add(function() socket.sleep(1) end); s:run()'),
      "fresh: the seed's require \"*\" translated")
T.ok("child interpreters: -l pluto, fresh requires")

T.done()

-- SPDX-License-Identifier: MIT
-- t_unrecv_after_close.lua: after close, unrecv stores nothing (SPEC §4):
-- it used to keep the data, recv then returned it (doc/socket.md says nil
-- once the socket was closed), and the chunks were never freed (200 MiB
-- pushed per round grew RSS by 200 MiB).
local T = require "testlib"
local socket = require "pluto.socket"

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib
end

local c, s, l = T.pair(socket)
c:close()
c:unrecv("pushed after close")
T.eq(c:recv(), nil, "recv after close and unrecv")
T.eq(c:peek(), nil, "peek after close and unrecv")
T.eq(c:isopen(), false, "isopen after close and unrecv")

local big = string.rep("u", 4 * 1024 * 1024)
collectgarbage()
local before = rss_kib()
for _ = 1, 50 do c:unrecv(big) end          -- 200 MiB if kept
collectgarbage()
local grown = rss_kib() - before
T.check(grown < 50 * 1024, "RSS grew by %d KiB after 200 MiB of unrecv on a closed socket", grown)
s:close(); l:close()
T.ok("unrecv after close stores nothing (RSS +%d KiB for 200 MiB pushed)", grown)
T.done()

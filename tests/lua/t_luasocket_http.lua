-- SPDX-License-Identifier: MIT
-- t_luasocket_http.lua: Debian's own socket.http (lua-socket), unmodified,
-- on pluto.luasocket (package.loaded.socket set first): 500 requests at
-- once in one pluto.scheduler, each in its own coroutine, against a small
-- HTTP server of pluto.socket's in the same scheduler.  Half go through
-- an explicit `create` (socket.tcp), half through http's default; each
-- body (16 KiB, different per request) is checked.  Then a chunked
-- response (socket.http's own "http-chunked" source, registered in our
-- module), a POST whose body goes out chunked (its "http-chunked" sink),
-- a redirect, and a refused connection (nil, "connection refused").
local T = require "testlib"
local luasocket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

package.loaded.socket = luasocket
local ok, http = pcall(require, "socket.http")
if not ok then T.skip("Debian's socket.http (lua-socket) cannot be loaded: %s", tostring(http)) end
local ltn12 = require "ltn12"
T.eq(require("socket"), luasocket, "socket.http sees pluto.luasocket")

local N = 500
T.need(2 * N + 100, nil, "500 HTTP requests at once")

local function body_for(path)
  local seed = path:rep(math.ceil(16384 / #path))
  return seed:sub(1, 16384)
end

-- The server: reads the request (headers, and a chunked or sized body),
-- answers by path.
local function read_request(s)
  local line = s:receive("*l")
  if not line then return nil end
  local method, path = line:match("^(%u+) (%S+)")
  local headers = {}
  while true do
    local h = s:receive("*l")
    if not h or h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local body = ""
  if headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size = tonumber(s:receive("*l"), 16)
      if not size or size == 0 then s:receive("*l"); break end
      parts[#parts + 1] = s:receive(size)
      s:receive("*l")
    end
    body = table.concat(parts)
  elseif headers["content-length"] then
    body = s:receive(tonumber(headers["content-length"]))
  end
  return method, path, headers, body
end

local function respond(s, status, headers, body)
  local h = { "HTTP/1.1 " .. status }
  for k, v in pairs(headers) do h[#h + 1] = k .. ": " .. v end
  s:send(table.concat(h, "\r\n") .. "\r\n\r\n" .. (body or ""))
end

local served = 0
local function serve(s)
  local method, path, _, body = read_request(s)
  if not method then return end
  served = served + 1
  if path == "/chunked" then
    respond(s, "200 OK", { ["Transfer-Encoding"] = "chunked", Connection = "close" })
    for _, part in ipairs({ "hello ", "chunked ", "world" }) do
      s:send(("%x\r\n%s\r\n"):format(#part, part))
    end
    s:send("0\r\n\r\n")
  elseif path == "/echo" then
    local b = method .. " " .. body
    respond(s, "200 OK", { ["Content-Length"] = #b, Connection = "close" }, b)
  elseif path == "/moved" then
    respond(s, "302 Found", { Location = "/r/target", ["Content-Length"] = 0,
                              Connection = "close" })
  else
    local b = body_for(path)
    respond(s, "200 OK", { ["Content-Length"] = #b, Connection = "close" }, b)
  end
end

local sched = Scheduler.new()
local _, l = native.bind(sched, "127.0.0.1:0", serve)
local _, port = l:getsockname()
local base = "http://127.0.0.1:" .. port

local results, finished = {}, 0
for i = 1, N do
  sched:add(function()
    local path = "/r/" .. i
    local t = {}
    local req = { url = base .. path, sink = ltn12.sink.table(t) }
    if i % 2 == 0 then req.create = luasocket.tcp end
    local one, code, headers = http.request(req)
    results[i] = { one, code, headers, table.concat(t), path }
    finished = finished + 1
  end)
end
T.check(finished < N, "the requests wait (they did not all finish while being added)")

local extra = {}
sched:add(function()
  -- Wait until the 500 are done, then the special cases, one by one.
  while finished < N do native.sleep(10) end
  extra.chunked = table.pack(http.request(base .. "/chunked"))
  local t = {}
  extra.post = table.pack(http.request{
    url = base .. "/echo", method = "POST",
    source = ltn12.source.string("posted body"), sink = ltn12.sink.table(t),
  })
  extra.post_body = table.concat(t)
  extra.moved = table.pack(http.request(base .. "/moved"))
  l:close()
  extra.refused = table.pack(http.request(base .. "/gone"))
end)

local t0 = native._now()
sched:run()
local dt = native._now() - t0

for i = 1, N do
  local r = results[i]
  T.check(r, "request %d finished", i)
  T.eq(r[1], 1, "request " .. i .. ": result")
  T.eq(r[2], 200, "request " .. i .. ": status")
  T.eq(r[3]["content-length"], "16384", "request " .. i .. ": content-length header")
  T.check(r[4] == body_for(r[5]), "request %d: body (%d bytes)", i, #r[4])
end
T.eq(served >= N, true, "the server served them")
T.ok("%d socket.http requests at once in one scheduler: %.0f ms", N, dt)

T.eq(extra.chunked[1], "hello chunked world", "a chunked response")
T.eq(extra.chunked[2], 200, "chunked: status")
T.eq(extra.post[2], 200, "POST: status")
T.eq(extra.post_body, "POST posted body", "a chunked request body arrived whole")
T.eq(extra.moved[2], 200, "a redirect was followed")
T.eq(extra.moved[1], body_for("/r/target"), "to the target")
T.eq(extra.refused[1], nil, "refused: nil")
T.eq(extra.refused[2], "connection refused", "refused: LuaSocket's message")
T.ok("chunked response and request, redirect, refused connection")

T.done()

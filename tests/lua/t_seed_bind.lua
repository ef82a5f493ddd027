-- SPDX-License-Identifier: MIT
-- t_seed_bind.lua: the seed's socket.bind "Hello, world!" HTTP server, run
-- in a child process under a pluto.scheduler, fetched by real curl over
-- IPv4 and IPv6, several times (the acceptor keeps accepting). Then the same
-- server in-process, read by a raw client, to check the exact bytes and
-- that the client socket is closed once the callback returns (lead's API
-- decision).
local T = require "testlib"
local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local RESPONSE = "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 13\r\n\r\nHello, world!"

if not T.have_program("curl") then
  T.skip("curl is not installed")
end

------------------------------------------------------------------------
-- Child server, curl clients.
do
  local pid, h = T.spawn_lua("h_hello_server")
  local port = tonumber(T.readline(h, "h_hello_server"))
  T.check(port and port > 0, "server did not print its port")

  -- -sS: quiet but show errors; -i: include the status line and headers;
  -- --noproxy: never go through a proxy from the environment.
  local function curl(url)
    local cpid, ch = T.spawn("curl -sS -i --noproxy '*' --max-time 10 " .. T.q(url) ..
                             " 2>&1", { tool = true })
    local out = ch:read("a")
    local ok, how, code = T.wait_exit(cpid, ch, 15000)
    return out, ok, code
  end

  local urls = { "http://127.0.0.1:" .. port .. "/", "http://localhost:" .. port .. "/" }
  local l6 = socket.listen("[::1]:0")
  if l6 then
    l6:close()
    urls[#urls + 1] = "http://[::1]:" .. port .. "/"
  end
  for round = 1, 2 do
    for _, url in ipairs(urls) do
      local out, ok, code = curl(url)
      T.check(ok, "curl %s failed (exit %s): %s", url, tostring(code), out)
      T.check(out:match("^HTTP/1.1 200 OK\r\n"), "curl %s: status line: %s", url, T.repr(out))
      T.has(out, "Content-Length: 13\r\n", "curl " .. url .. " headers")
      T.eq(out:match("\r\n\r\n(.*)$"), "Hello, world!", "curl " .. url .. " body")
      T.ok("curl %s (round %d): Hello, world!", url, round)
    end
  end
  T.check(not T.exited(pid), "the server exited while it should serve forever")
  T.kill(pid, h)
end

------------------------------------------------------------------------
-- In-process: exact bytes, socket closed after the callback, listener
-- returned as bind's second value (ext), acceptor coroutine first.
do
  local sched = Scheduler.new()
  local served, sides = 0, {}
  local acceptor, l = socket.bind(sched, "127.0.0.1:0", function(s)
    served = served + 1
    sides[#sides + 1] = s:getside()
    local content = "Hello, world!"
    s:send("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: " .. #content ..
           "\r\n\r\n" .. content)
  end)
  T.eq(type(acceptor), "thread", "bind's first value (the acceptor coroutine)")
  T.check(sched:contains(acceptor), "the scheduler should contain bind's acceptor")
  local _, port = l:getsockname()
  local N = 3
  local bodies = {}
  sched:add(function()
    for i = 1, N do
      local c = assert(socket.connect("127.0.0.1", port))
      c:send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      -- Read until end of stream: ends only if the server closes.
      bodies[i] = T.recv_all(c, 1 << 16)
      c:close()
    end
    -- Done: stop the acceptor so run() can return.
    sched:remove(acceptor)
    l:close()
  end)
  sched:run()
  T.eq(served, N, "callbacks run")
  for i = 1, N do
    T.eq(bodies[i], RESPONSE, "response " .. i)
    T.eq(sides[i], "server", "getside() in the bind callback")
  end
  T.ok("in-process bind: exact response, connection closed after the callback")
end

T.done()

-- SPDX-License-Identifier: MIT
-- t_luasocket_lineproto.lua: a line protocol client written the
-- LuaSocket way (a receive("*l") loop until "closed") on pluto.luasocket,
-- against a peer of another language: a small Python server that greets
-- in pieces (a line split over several writes 20 ms apart, CRLF split
-- between writes, a line with a CR inside), answers "ECHO x" with x,
-- "SUM a b" with a+b, and "QUIT" with "BYE" and a close.  The client
-- runs in a pluto.scheduler coroutine next to a ticking one (its waits
-- yield) and once more outside coroutines (they block).
local T = require "testlib"
local luasocket = require "pluto.luasocket"
local native = require "pluto.socket"
local Scheduler = require "pluto.scheduler"
local C = require "tlscerts"

C.need("python3")

local SERVER = [[
import socket, sys, time
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
srv.settimeout(20)
for _ in range(2):
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in (b"HEL", b"LO wor", b"ld\r", b"\nsecond\r\n", b"with\rcr\r\n", b"READY\n"):
        c.sendall(piece)
        time.sleep(0.02)
    f = c.makefile("rb")
    for line in f:
        words = line.decode().strip().split(" ")
        if words[0] == "ECHO":
            c.sendall((" ".join(words[1:]) + "\r\n").encode())
        elif words[0] == "SUM":
            c.sendall(("%d\r\n" % (int(words[1]) + int(words[2]))).encode())
        elif words[0] == "QUIT":
            c.sendall(b"BYE\r\n")
            break
    f.close()
    c.close()
]]

local script = os.tmpname()
do
  local f = assert(io.open(script, "w"))
  f:write(SERVER)
  f:close()
end
local pid, h = T.spawn("python3 " .. T.q(script), { tool = true })
local port = tonumber(T.readline(h, "python server's port"))
T.check(port, "python server port")

-- The client: LuaSocket style, to the end of the stream.
local function client(where)
  local c = assert(luasocket.connect("127.0.0.1", port))
  c:settimeout(10)
  local lines = {}
  for _ = 1, 20 do
    local line, err = c:receive("*l")
    if not line then T.check(false, "%s: greeting ended early: %s", where, err) end
    lines[#lines + 1] = line
    if line == "READY" then break end
  end
  T.eq(lines[1], "HELLO world", where .. ": a line sent in pieces")
  T.eq(lines[2], "second", where .. ": second line")
  T.eq(lines[3], "withcr", where .. ": a CR inside is dropped")
  assert(c:send("ECHO hello there\r\n"))
  assert(c:send("SUM 20 22\n"))
  assert(c:send("QUIT\r\n"))
  local replies = {}
  for _ = 1, 10 do
    local line, err, partial = c:receive("*l")
    if not line then
      T.eq(err, "closed", where .. ": the loop ends with closed")
      T.eq(partial, "", where .. ": nothing left over")
      break
    end
    replies[#replies + 1] = line
  end
  T.eq(table.concat(replies, "|"), "hello there|42|BYE", where .. ": the replies")
  c:close()
  T.ok("%s: line protocol against python", where)
end

local sched = Scheduler.new()
local done, ticks = false, 0
sched:add(function() client("in a coroutine"); done = true end)
sched:add(function() while not done do ticks = ticks + 1; native.sleep(10) end end)
sched:run()
T.check(ticks >= 5, "the client's waits yielded (%d ticks)", ticks)
client("outside coroutines")

T.wait_exit(pid, h, 5000)
os.remove(script)
T.done()

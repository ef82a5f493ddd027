-- SPDX-License-Identifier: MIT
-- tls_client.lua -- a blocking HTTPS client: connect, starttls, one request,
-- then a second connection that resumes the TLS session of the first.
--
--   lua5.4 doc/examples/tls_server.lua 8443 pki &       (see that file)
--   lua5.4 doc/examples/tls_client.lua [port] [pki-dir] [host]
--                                          (defaults: 8443 pki localhost)
--
-- The server's certificate is checked against pki/ca.pem (the test CA of
-- doc/tls.md) instead of the system's trust store, and must carry the name
-- `host`.  No scheduler, no coroutine: every call that waits blocks.

local socket = require "pluto.socket"

local port = tonumber(arg[1]) or 8443
local dir = arg[2] or "pki"
local host = arg[3] or "localhost"

-- One HTTPS GET over a new connection.  Returns the response and the TLS
-- session to resume with, or nil and a reason.
local function get(session)
    -- connect accepts a name: "localhost" is looked up, and its addresses
    -- are raced (IPv6 and IPv4) until one answers.
    local s, err, errno = socket.connect(host, port)
    if not s then
        return nil, ("connect: %s (%s)"):format(err, tostring(errno))
    end
    s:settimeout(10)          -- limits the handshake, and each recv/send

    local ok, detail, errname = s:starttls(host, {
        cafile = dir .. "/ca.pem",      -- trust our test CA only
        alpn = { "http/1.1" },          -- offer HTTP/1.1
        session = session,              -- nil the first time
    })
    if not ok then                      -- s has been closed
        return nil, ("TLS: %s (%s)"):format(detail, errname)
    end
    print(("TLS with %s, ALPN: %s, istls: %s")
          :format(s:getpeer(), tostring(detail), tostring(s:istls())))

    s:send("GET / HTTP/1.1\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n")

    -- Read to the end of the stream.  The first chunk received also brings
    -- the server's TLS 1.3 session ticket, so tlssession() is worth taking
    -- after that.
    local parts = {}
    while true do
        local data, rerr, rerrno = s:recv()
        if not data then
            if rerr then
                s:close()
                return nil, ("recv: %s (%s)"):format(rerr, tostring(rerrno))
            end
            break           -- the server closed: the whole answer is here
        end
        parts[#parts + 1] = data
    end
    local saved = s:tlssession()
    s:close()               -- sends close_notify if the kernel takes it now
    return table.concat(parts), saved
end

local answer, saved = get(nil)          -- on failure: nil, reason
if not answer then
    io.stderr:write(saved .. "\n")     -- the reason
    os.exit(1)
end
print(answer)
print(("session data: %d bytes"):format(saved and #saved or 0))

-- The second connection offers the saved session.  If the server accepts
-- it, the handshake is shorter (no certificate sent); if not, it is a full
-- one.  Either way starttls succeeds.
local again, err = get(saved)
if not again then
    io.stderr:write(err .. "\n")
    os.exit(1)
end
print(again)

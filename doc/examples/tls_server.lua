-- SPDX-License-Identifier: MIT
-- tls_server.lua -- the HTTPS "Hello, world!" server from Pluto's socket
-- documentation, in Lua 5.4, with a certificate from your own test CA.
--
-- First make the certificates (commands in doc/tls.md, "Test certificates
-- with certtool"): a directory with ca.pem, localhost.pem, localhost.key.
--
--   lua5.4 doc/examples/tls_server.lua [port] [pki-dir]   (defaults: 8443 pki)
--   curl --cacert pki/ca.pem https://localhost:8443/     (another terminal)
--   lua5.4 doc/examples/tls_client.lua 8443 pki          (or this client)
--
-- Stop it with Ctrl-C.  It listens on the loopback address only.

local socket = require "pluto.socket"
local Scheduler = require "pluto.scheduler"

local port = tonumber(arg[1]) or 8443
local dir = arg[2] or "pki"

local function readfile(path)
    local f, err = io.open(path, "rb")
    if not f then
        io.stderr:write(err .. "\n(make the test certificates first: see"
                        .. " doc/tls.md, \"Test certificates with certtool\")\n")
        os.exit(1)
    end
    local data = f:read("a")
    f:close()
    return data
end

-- One entry per certificate.  Add more (for other names, or an ECDSA key
-- for the same name) and GnuTLS picks per client, by SNI and algorithms.
local certs = {
    {
        chain = readfile(dir .. "/localhost.pem"),
        private_key = readfile(dir .. "/localhost.key"),
    },
}

local sched = Scheduler.new()

local _, listener = socket.bind(sched, "127.0.0.1:" .. port, function(s)
    s:settimeout(10)            -- limits the handshake and every recv/send
    local ip = s:getpeer()      -- now: a failed starttls closes the socket

    -- The handshake.  On failure the socket is already closed; say why
    -- (a client that does not trust our CA shows up here too).
    -- Results: true and the ALPN protocol chosen (or nil); or false, a
    -- message and a GnuTLS error name.
    local ok, detail, errname = s:starttls(certs, { alpn = { "http/1.1" } })
    if not ok then
        print(("handshake with %s failed: %s (%s)"):format(ip, detail, errname))
        return
    end
    local proto = detail

    -- Read the request head first: closing with unread bytes would make
    -- Linux reset the connection, maybe before the client read the reply.
    local head = ""
    while not head:find("\r\n\r\n", 1, true) do
        local data = s:recv()
        if not data or #head > 65536 then
            return          -- gone, timed out, or not HTTP: bind closes s
        end
        head = head .. data
    end
    print(("%s: %s (ALPN: %s)"):format(ip, head:match("^[^\r\n]*"),
                                       tostring(proto)))

    local content = "Hello, world!"
    s:send("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: "
           .. #content .. "\r\n\r\n" .. content)
    -- Returning closes the socket: close_notify, then the TCP close.
end)

print(("Listening on https://localhost:%d/  (bound to %s)")
      :format(port, listener:getsockname()))
sched:run()

-- t_fuzz_api_strict.lua: the API fuzzer of t_fuzz_api.lua (apifuzz.lua),
-- also checking the argument rules of SPEC §2 and §4 on every call it
-- makes: a string holding a NUL where C takes a C string (connect's host
-- and kind, listen/udpserver/bind addresses, resolve's host, setpeer's IP,
-- starttls's hostname, cafile and ALPN names) raises an error; so does a
-- time or a count that is NaN, or infinite where no meaning is documented
-- (sleep, settimeout, _poll, config fields; details in apifuzz.lua);
-- after close, unrecv stores nothing; the __gc metamethods, reachable
-- through getmetatable, do not crash when given another kind of object.
require("apifuzz").main(true)

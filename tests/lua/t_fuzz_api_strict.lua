-- t_fuzz_api_strict.lua: the API fuzzer of t_fuzz_api.lua (apifuzz.lua),
-- also checking the argument rules of SPEC §2 and §4 on every call it
-- makes: a string holding a NUL where C takes a C string (connect's host
-- and kind, listen/udpserver/bind addresses, resolve's host, setpeer's IP,
-- starttls's hostname, cafile and ALPN names) raises an error; NaN and
-- infinities as a time (sleep, settimeout, _poll) or a count (config
-- fields) raise an error; after close, unrecv stores nothing.
require("apifuzz").main(true)

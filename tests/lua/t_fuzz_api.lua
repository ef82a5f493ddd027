-- t_fuzz_api.lua: a seeded, bounded fuzzer of the whole Lua API (see
-- apifuzz.lua): every function, method and scheduler member, called with
-- values of every type on live, busy and closed objects, directly and in
-- coroutines. Must hold: no crash, no hang, no leak (descriptors back at
-- the end; LeakSanitizer in the ASan build), every raised error a string,
-- socket.config restored. Loopback only, on ports the test opened.
-- PLUTO_TEST_SEED picks another seed, PLUTO_FUZZ_STEPS another length,
-- PLUTO_FUZZ_TRACE=1 prints each call before it is made (to find a crash).
-- The argument rules of SPEC §2 are t_fuzz_api_strict.lua's.
require("apifuzz").main(false)

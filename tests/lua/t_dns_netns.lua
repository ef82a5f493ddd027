-- SPDX-License-Identifier: MIT
-- t_dns_netns.lua: thousands of lookups in flight at once from one
-- scheduler, against a DNS server that takes 100 ms per query.
--
-- Inside a network namespace made for this test: dnsmasq (dnsmasq-base) on
-- 127.0.0.1:5353 answers every name under test.pluto, and our delaying
-- relay (h_dns_delay.lua, written with pluto.socket) listens on
-- 127.0.0.1:53 in front of it; /etc/netns/NS/resolv.conf points glibc at
-- the relay. A child script (h_dns_client.lua) runs in the namespace:
--   * one lookup alone takes >= 100 ms (the delay works) and gives both
--     the A and the AAAA answer;
--   * 1,000 distinct names from 1,000 coroutines all resolve, in < 1 s in
--     total (one after the other they would take 100 s); every name must
--     resolve, and the time limit gets a second run with new names if the
--     first one missed it (a parallel `make check` on 2 cores);
--   * the dns lane never ran more threads than its cap.
-- Root only: skipped (77) when namespaces cannot be made or dnsmasq is
-- missing. Everything started is ended by PID; the namespace and its /etc
-- files are removed, also when a check fails.

local T = require "testlib"
local N = require "netns"

local why = N.why_not()
if why then T.skip("%s", why) end
if not N.have("dnsmasq") then
  T.skip("dnsmasq is not installed (apt-get install dnsmasq-base)")
end

local COUNT = T.scale(1000, 200)
local LIMIT_MS = T.scale(1000, 3000)
local DELAY = 100
-- The client (same limits as this process) has COUNT lookups in flight,
-- each with its own UDP socket.
T.need_fds(COUNT + 64, ("%d lookups in flight at once in the client"):format(COUNT))

local ns, err = N.create("plutodns")
if not ns then T.skip("cannot create a network namespace: %s", err) end

local dns
local ok, e = pcall(function()
  dns = N.start_dns(ns, { delay = DELAY })
  T.ok("dnsmasq (pid %d) and the delaying relay (pid %d) run in %s",
       dns.dnsmasq, dns.relay, ns.name)

  -- The time limit is checked on up to two runs: on this 2-core machine a
  -- parallel `make check` can steal the CPU for a moment. Every run must
  -- resolve every name.
  local v, ms
  for attempt = 1, 2 do
    local out, done, how, code = ns:run_lua(30000, "tests/lua/h_dns_client.lua",
                                            tostring(COUNT), "-", "r" .. attempt,
                                            attempt == 1 and "1" or "0")
    io.stdout:write((out:gsub("[^\n]+", "# %0")))
    T.check(done, "the client failed (%s %s): %s", tostring(how), tostring(code), out)

    v = {}
    for k, val in out:gmatch("([%w_]+)=(%S*)") do v[k] = val end

    if attempt == 1 then
      -- One lookup alone: delayed, with both families' answers.
      local single_ms = tonumber(v.single_ms)
      T.check(single_ms, "no single-lookup time in %s", out)
      T.has(v.single, "192.0.2.1", "single lookup")
      T.has(v.single, "2001:db8::1", "single lookup")
      T.check(single_ms >= DELAY - 1,
              "one lookup took %.1f ms: the relay does not delay (>= %d expected)",
              single_ms, DELAY)
      T.ok("one lookup alone took %.1f ms (relay delay %d ms)", single_ms, DELAY)
    end

    -- The batch.
    T.eq(tonumber(v.count), COUNT, "lookups started")
    T.check(tonumber(v.fail) == 0, "%s of %d lookups failed; first: %s; " ..
            "UDP receive-buffer drops in the namespace: %s",
            v.fail, COUNT, v.err, v.udp_rcvbuf_errors)
    T.eq(tonumber(v.ok), COUNT, "lookups that succeeded")
    ms = tonumber(v.ms)
    if ms < LIMIT_MS then break end
    T.note("run %d: %d lookups took %.0f ms (limit %d ms)%s", attempt, COUNT, ms,
           LIMIT_MS, attempt == 1 and ": once more" or "")
  end
  T.check(ms < LIMIT_MS,
          "%d lookups took %.0f ms (limit %d ms; sequentially %d ms); " ..
          "UDP receive-buffer drops in the namespace: %s",
          COUNT, ms, LIMIT_MS, COUNT * DELAY, v.udp_rcvbuf_errors)
  T.ok("%d distinct names resolved from %d coroutines in %.0f ms " ..
       "(sequentially %d ms)", COUNT, COUNT, ms, COUNT * DELAY)

  local maxt, cap = tonumber(v.max_dns_threads), tonumber(v.cap)
  T.check(maxt and cap and maxt <= cap,
          "dns lane ran %s threads, cap %s", v.max_dns_threads, v.cap)
  T.check(maxt > 1, "the lookups did not run in parallel (%s threads)", v.max_dns_threads)
  T.ok("dns lane peaked at %d threads (cap %d)", maxt, cap)
end)

N.stop_dns(dns)
ns:destroy()
if not ok then error(e, 0) end
T.done()

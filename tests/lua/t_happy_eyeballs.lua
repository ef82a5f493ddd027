-- SPDX-License-Identifier: MIT
-- t_happy_eyeballs.lua: connect(name, port) races the name's addresses
-- (RFC 8305): an IPv6 address that silently drops packets costs only the
-- 250 ms head start, then IPv4 wins.
--
-- In a network namespace made for the test: a veth pair with 2001:db8::1/64
-- on one end and a permanent neighbour entry for 2001:db8::dead with a MAC
-- nobody has, so packets to it leave and vanish (no neighbour discovery
-- failure, no ICMP: the connect just waits); or, where veth is missing,
-- 2001:db8::1/64 on lo and an ip6tables DROP rule for 2001:db8::dead.
-- /etc/netns/NS/hosts says he.test is 2001:db8::dead and 127.0.0.1.
-- The parent checks that a plain connect to [2001:db8::dead] hangs (bash,
-- 0.5 s); then h_dns_he.lua, in the namespace, checks:
--   * resolve("he.test")[1] is the IPv6 address (glibc's RFC 6724 order);
--   * pluto's own connect to [2001:db8::dead] is pending after 300 ms, and
--     once abandoned and collected its descriptor is closed;
--   * connect("he.test", port) to a listener on 127.0.0.1 succeeds in
--     [head start, 1 s), getpeer() is 127.0.0.1, data flows; the losing
--     IPv6 attempt is closed (descriptor count back where it was); the
--     same outside a coroutine.
-- Root only: skipped (77) when namespaces cannot be made.

local T = require "testlib"
local N = require "netns"

local why = N.why_not()
if why then T.skip("%s", why) end
local ns, err = N.create("plutohe")
if not ns then T.skip("cannot create a network namespace: %s", err) end

local skip_reason
local ok, e = pcall(function()
  -- A dead IPv6 neighbour on a veth, or a DROP rule.
  local how
  if ns:ip("link add va type veth peer name vb") then
    ns:must("link set va up")
    ns:must("link set vb up")
    ns:must("addr add 2001:db8::1/64 dev va nodad")
    ns:must("neigh replace 2001:db8::dead lladdr 02:00:5e:00:53:01 dev va nud permanent")
    how = "veth with a permanent neighbour entry nobody answers for"
  elseif N.have("ip6tables") then
    ns:must("addr add 2001:db8::1/64 dev lo nodad")
    local okr, out = ns:sh("ip6tables -A OUTPUT -d 2001:db8::dead -j DROP")
    if not okr then
      skip_reason = "neither veth nor ip6tables work here: " .. out
      return
    end
    how = "ip6tables DROP rule"
  else
    skip_reason = "veth interfaces cannot be made and ip6tables is missing"
    return
  end
  ns:write_etc("hosts", "127.0.0.1 localhost\n2001:db8::dead he.test\n127.0.0.1 he.test\n")
  T.ok("namespace %s: 2001:db8::dead drops packets (%s)", ns.name, how)

  -- A plain connect to the IPv6 address must hang, not fail at once.
  if N.have("bash") and N.have("timeout") then
    local t0 = T.now_ms()
    local r1, r2, code = os.execute("env -u LD_PRELOAD " .. ns:cmd(
      "timeout 0.5 bash -c 'exec 3<>/dev/tcp/2001:db8::dead/9' 2>/dev/null"))
    local ms = T.now_ms() - t0
    T.check(code == 124, "a plain connect to [2001:db8::dead] ended after %.0f ms " ..
            "(%s %s): the address does not drop silently", ms, tostring(r2), tostring(code))
    T.ok("a plain connect to [2001:db8::dead] was still waiting after 0.5 s")
  end

  local out, done, how2, code = ns:run_lua(30000, "tests/lua/h_dns_he.lua", "250")
  io.stdout:write(out)
  T.check(done, "h_dns_he.lua failed (%s %s)", tostring(how2), tostring(code))
end)

ns:destroy()
if not ok then error(e, 0) end
if skip_reason then T.skip("%s", skip_reason) end
T.done()

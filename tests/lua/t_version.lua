-- SPDX-License-Identifier: MIT
-- t_version.lua: socket._VERSION is "pluto.socket " followed by the
-- package's version, the one in configure.ac's AC_INIT (which tests/run-lua
-- passes as PLUTO_TEST_VERSION; when the suite runs against an installed
-- copy without configure, it is read from configure.ac itself).
local T = require "testlib"
local socket = require "pluto.socket"

local want = os.getenv("PLUTO_TEST_VERSION")
if not want or want == "" then
  local f = io.open(T.SRCDIR .. "/configure.ac")
  if not f then T.skip("no PLUTO_TEST_VERSION and no configure.ac to read the version from") end
  want = f:read("a"):match("AC_INIT%(%[[^%]]*%],%s*%[([^%]]+)%]")
  f:close()
  T.check(want, "no version in configure.ac's AC_INIT")
end

T.check(want:match("^%d+%.%d+%.%d+$"), "package version %s is not MAJOR.MINOR.PATCH", T.repr(want))
T.eq(socket._VERSION, "pluto.socket " .. want, "socket._VERSION")
T.ok("socket._VERSION is %s", socket._VERSION)

-- The same module table under its other names (SPEC: "pluto").
T.eq(require("pluto").socket._VERSION, socket._VERSION, "require('pluto').socket._VERSION")
T.done()

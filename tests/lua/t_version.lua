-- SPDX-License-Identifier: MIT
-- t_version.lua: socket._VERSION is "pluto.socket " followed by the
-- package's version, the one in configure.ac's AC_INIT (which tests/run-lua
-- passes as PLUTO_TEST_VERSION; when the suite runs against an installed
-- copy without configure, it is read from configure.ac itself); and the
-- module and scheduler loaded are the files the test wrapper names.
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

-- The suite tests the copy it says it tests: the wrapper (tests/run-lua:
-- the build tree; tests/run-installed: an installed copy) names the
-- files that require must find.
local cmod = os.getenv("PLUTO_TEST_MODULE_FILE")
local lmod = os.getenv("PLUTO_TEST_SCHEDULER_FILE")
if cmod and cmod ~= "" then
  T.eq(package.searchpath("pluto.socket", package.cpath), cmod, "where pluto.socket comes from")
  T.ok("pluto.socket from %s", cmod)
end
if lmod and lmod ~= "" then
  T.eq(package.searchpath("pluto.scheduler", package.path), lmod, "where pluto.scheduler comes from")
  T.ok("pluto.scheduler from %s", lmod)
end
T.done()

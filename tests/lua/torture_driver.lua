-- SPDX-License-Identifier: MIT
-- torture_driver.lua: what the t_torture_*.lua tests share. They run
-- tests/torture (see tests/torture.c), the allocation-failure torture
-- host, on the h_torture_*.lua scripts and report what it found.
--
--   local D = require "torture_driver"
--   D.run("h_torture_tcp", { "plain" }, { mode = "from" })   -- every N
--   D.run("h_torture_tls", { "sched", ca, cert, key },
--         { mode = "burst", runs = 200 })                    -- a stride
--   D.finish()       -- fails the test if any run went wrong, else passes
--
-- Each call is one torture process: it prints the N range, the number of
-- runs and their outcomes (ok / not enough memory / failed, descriptors
-- leaked), and its failures; a hang (the host's alarm), a crash or a
-- sanitizer report (LeakSanitizer at its exit) fails the test too.
local T = require "testlib"

local D = {}

D.HOST = T.BUILDDIR .. "/tests/torture"
local results = {}
local failures = {}

-- Skip the test when the host was not built (make check builds it).
function D.need_host()
  local f = io.open(D.HOST, "rb")
  if not f then T.skip("%s is not built (make check builds it)", D.HOST) end
  f:close()
end

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpname()
  local h = assert(io.popen("env -u LD_PRELOAD mktemp \"${TMPDIR:-/tmp}/pluto-torture.XXXXXXXX\""))
  local path = h:read("l")
  h:close()
  T.check(path and path ~= "", "mktemp failed")
  return path
end

-- Run the host on tests/lua/<script>.lua with args. opts:
--   mode      "once" | "from" | "burst" (default "from")
--   runs      about this many runs (a stride); default every N
--   burst     burst length (host default 10)
--   max_fail  stop after so many failed runs (default 5)
--   time_limit seconds for one run (default 30)
--   timeout   seconds for the whole process (default 600)
-- Returns the summary line.
function D.run(script, args, opts)
  opts = opts or {}
  local mode = opts.mode or "from"
  local flags = { "-m", mode, "-x", tostring(opts.max_fail or 5),
                  "-t", tostring(opts.time_limit or 30) }
  if opts.runs then flags[#flags + 1] = "-r"; flags[#flags + 1] = tostring(opts.runs) end
  if opts.burst then flags[#flags + 1] = "-b"; flags[#flags + 1] = tostring(opts.burst) end
  local words = { T.q(T.RUN_LUA ~= nil and T.RUN_LUA ~= "" and T.RUN_LUA or "env"),
                  T.q(D.HOST) }
  for _, f in ipairs(flags) do words[#words + 1] = T.q(f) end
  words[#words + 1] = T.q(T.DIR .. "/" .. script .. ".lua")
  for _, a in ipairs(args or {}) do words[#words + 1] = T.q(a) end
  local out = tmpname()
  local cmd = table.concat(words, " ") .. " >" .. T.q(out) .. " 2>&1"
  local label = string.format("%s %s mode=%s%s", script, (args or {})[1] or "",
                              mode, opts.runs and (" ~" .. opts.runs .. " runs") or " every N")
  local t0 = T.now_ms()
  -- The host is a C program with its own sanitizer runtime: no preload.
  local pid, h = T.spawn(cmd, { tool = true })
  local ok, how, code = T.wait_exit(pid, h, (opts.timeout or 600) * 1000)
  local text = readfile(out)
  os.remove(out)
  local secs = (T.now_ms() - t0) / 1000
  local summary = text:match("torture: [^\n]* runs, [^\n]*") or "(no summary)"
  T.note("%s: %s", label, (summary:gsub("^torture: %S+ ", "")))
  local bad = {}
  for line in text:gmatch("[^\n]+") do
    if line:match("^N=%d+ FAIL") or line:match("^N=%d+ %a+ LEAK") then
      bad[#bad + 1] = line:sub(1, 400)
    end
  end
  local verdict
  if ok == nil and how == nil then
    verdict = "did not finish in time (killed)"
  elseif how == "signal" then
    verdict = "crashed (signal " .. tostring(code) .. ")"
  elseif code == 3 then
    verdict = "hang: " .. (text:match("torture: HANG[^\n]*") or "time limit")
  elseif code == 23 then
    verdict = "sanitizer report"
  elseif code ~= 0 then
    verdict = "failed runs (exit " .. tostring(code) .. ")"
  end
  if code ~= 0 and code ~= 1 or how == "signal" or (ok == nil and how == nil) then
    -- Show how it ended: a report, a crash, or the last lines.
    local shown, n = {}, 0
    for line in text:gmatch("[^\n]+") do
      if not line:match("^N=") then
        n = n + 1
        if n <= 60 then shown[#shown + 1] = line end
      end
    end
    T.note("%s: %s; output:\n%s", label, verdict, table.concat(shown, "\n"))
  end
  for i = 1, math.min(#bad, 8) do T.note("  %s", bad[i]) end
  if #bad > 8 then T.note("  ... %d more", #bad - 8) end
  if verdict then
    failures[#failures + 1] = label .. ": " .. verdict .. (bad[1] and ("; first: " .. bad[1]) or "")
  end
  results[#results + 1] = { label = label, summary = summary, secs = secs }
  return summary
end

-- Pass, or fail with the list of what went wrong.
function D.finish()
  if #failures > 0 then
    error("FAIL: allocation-failure torture:\n  " .. table.concat(failures, "\n  "), 0)
  end
  T.ok("%d torture runs ended well (success or \"not enough memory\", "
       .. "no leak, no crash, no hang)", #results)
  T.done()
end

return D

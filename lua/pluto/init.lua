-- SPDX-License-Identifier: MIT
-- require "pluto" gives both modules, as Pluto's `require "*"` does.
-- Loading pluto.socket also makes "pluto:socket" and "pluto:scheduler"
-- resolvable by require, so `lua5.4 -l pluto` prepares Pluto's names.
return {
  socket = require "pluto.socket",
  scheduler = require "pluto.scheduler",
}

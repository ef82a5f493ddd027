-- SPDX-License-Identifier: MIT
-- LuaRocks build of pluto.socket.  In an unpacked release tarball or a
-- checkout (with autoconf, automake and libtool for the latter):
--   luarocks --lua-version=5.4 make
-- or, next to the release tarball named in source.url:
--   luarocks --lua-version=5.4 build pluto-socket-0.1.0-1.rockspec
-- It runs the project's own ./configure with LuaRocks' directories, then
-- make and make install, so the build is the one `make` does; GnuTLS's
-- development files (Debian: libgnutls28-dev) must be installed.
rockspec_format = "3.0"
package = "pluto-socket"
version = "0.1.0-1"

source = {
   -- The release tarball (make dist); a path without a scheme is a file
   -- relative to the directory LuaRocks runs in.
   url = "pluto-socket-0.1.0.tar.gz",
   dir = "pluto-socket-0.1.0",
}

description = {
   summary = "Pluto's socket library for Lua 5.4: TCP, TLS, UDP, DNS, a coroutine scheduler",
   detailed = [[
pluto.socket is the socket library of the Pluto language as a C module
for stock Lua 5.4 on Linux: TCP clients and servers, TLS with GnuTLS on
either side, UDP, name lookups, and a scheduler that serves thousands of
connections from one Lua thread.  Code reads as if it blocked; inside a
coroutine every call that has to wait yields instead.  require
"pluto.socket", "pluto.scheduler" or "pluto".
]],
   license = "MIT",
   labels = { "networking", "socket", "tls", "coroutines" },
}

supported_platforms = { "linux" }

dependencies = {
   "lua >= 5.4, < 5.5",
}

external_dependencies = {
   GNUTLS = {
      header = "gnutls/gnutls.h",
      library = "gnutls",
   },
}

build = {
   type = "command",
   -- No configure in a checkout: make it first.  LuaRocks' LIBDIR and
   -- LUADIR receive pluto/socket.so and pluto/*.lua; the documentation
   -- goes to the rock's doc directory (`luarocks doc pluto-socket`).
   -- GnuTLS is taken where LuaRocks found it, so pkg-config is not needed
   -- for it; the unit tests (Check) are not built.
   build_command = [[
test -x ./configure || autoreconf -fi || exit 1
./configure --prefix="$(PREFIX)" \
   --with-lua-cmoddir="$(LIBDIR)" --with-lua-moddir="$(LUADIR)" \
   --with-lua-include="$(LUA_INCDIR)" --docdir="$(PREFIX)/doc" \
   --without-check LUA="$(LUA)" CC="$(CC)" CFLAGS="$(CFLAGS)" \
   GNUTLS_CFLAGS="-I$(GNUTLS_INCDIR)" GNUTLS_LIBS="-L$(GNUTLS_LIBDIR) -lgnutls" &&
$(MAKE)
]],
   install_command = "$(MAKE) install",
   -- make install has put the documentation in place already.
   copy_directories = {},
}

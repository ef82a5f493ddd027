#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerate configure and Makefile.in (the same as `autoreconf -fi`).
# Needs autoconf, automake, libtool and pkg-config (for pkg.m4).
set -e
cd "$(dirname "$0")"
exec autoreconf -fi "$@"

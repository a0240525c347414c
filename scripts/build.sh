#!/bin/sh
# build.sh [BUILDDIR [CONFIGURE-ARGS...]] — configures (once) and builds
# mdrepl out of tree, by default in _build/.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
dir=${1:-_build}
[ $# -gt 0 ] && shift

[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || "$src/configure" --enable-werror "$@" >/dev/null
make -s -j"$(nproc)" >/dev/null

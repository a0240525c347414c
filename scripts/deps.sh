#!/bin/sh
# deps.sh — installs the Debian packages mdrepl needs to build and test,
# only those missing. Run as root (or with sudo available).
set -eu

pkgs="build-essential autoconf automake pkg-config librsync-dev libinotifytools0-dev
zlib1g-dev libssl-dev check openssl rsync groff-base iproute2 procps psmisc
systemd"
# mandoc: tests/e2e/manpages.sh lints the pages with it when installed.
# fiu-utils: fiu-run, for the failing-fsync rounds of tests/fault/soak.sh.
# nftables: tests/e2e/compress_auto.sh limits a link with it (and bench/run counts bytes).
# strace: tests/e2e/status.sh holds up syncd's sync calls with it (a slow disk).
[ "${1:-}" = "--test" ] && pkgs="$pkgs clang mandoc fiu-utils nftables strace"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "Installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# hostile.sh — a real mdrepl-syncd (standby, plaintext on loopback) fed
# hand-made hostile input by tests/rawclient, as a compromised primary or
# anyone who can reach the port would send it (docs/security.md):
#  - paths with "..", absolute paths, a path through a symlink planted in
#    the mail tree, a path into tmp/: the batch is refused (ACK status 6,
#    path) and nothing is written, inside or outside the mail root;
#  - a chunked PUT that ends short of its size: refused (status 9,
#    integrity), no partial file;
#  - a frame announcing 100 MB, a frame with a bad CRC: the connection is
#    dropped and the log says why;
#  - an unsupported protocol version, a sender with a lower generation:
#    refused with ERROR version / generation;
# and the daemon keeps serving after each.
. "$(dirname "$0")/lib.sh"

RAW=$top_builddir/tests/rawclient

TLS=0 write_conf standby standby
M=$T/standby/mail
mkdir -p "$M/dom0/user0/Maildir/cur" "$M/dom0/user0/Maildir/new" "$M/dom0/user0/Maildir/tmp" \
	"$T/outside/cur" "$T/outside/new" "$T/outside/tmp"
ln -s "$T/outside" "$M/dom0/link"
start_syncd standby
manifest "$M" >"$T/before"
ls -R "$T/outside" >"$T/outside.before"

# hostile SCENARIO PATTERN: runs the scenario, expects PATTERN in the
# replies, and the daemon alive afterwards.
hostile() {
	"$RAW" "$PORT_standby" "$1" >"$T/$1.out" 2>&1 || fail "rawclient $1: $(cat "$T/$1.out")"
	expect_grep "$2" "$T/$1.out"
	kill -0 "$PID_syncd_standby" || fail "syncd died after $1: $(tail -5 "$T/syncd_standby.log")"
}

hostile dotdot "ACK status=6 (path)"
hostile absolute "ACK status=6 (path)"
hostile symlink-target "ACK status=6 (path)"
hostile tmpdir "ACK status=6 (path)"
[ ! -e "$T/escape-dotdot" ] && [ ! -e "$T/standby/escape-dotdot" ] &&
	[ ! -e /tmp/mdrepl-escape-absolute ] || fail "a file was written outside the mail root"
ok "paths with '..', absolute, through a planted symlink, into tmp/: refused (path)"

hostile truncated "ACK status=9 (integrity)"
ok "a transfer that ends short of its size: refused (integrity)"

hostile oversize "^EOF"
expect_grep "frame of 104857600 bytes exceeds the 1048576 byte limit" "$T/syncd_standby.log"
hostile badcrc "^EOF"
expect_grep "CRC mismatch" "$T/syncd_standby.log"
ok "an oversized frame and a CRC mismatch: connection dropped, logged"

hostile badversion "ERROR code=2 (version)"
hostile lowgen "ERROR code=4 (generation)"
ok "an unsupported version and a lower generation: refused"

manifest "$M" >"$T/after"
ls -R "$T/outside" >"$T/outside.after"
cmp -s "$T/before" "$T/after" || fail "the mail tree changed: $(diff "$T/before" "$T/after")"
cmp -s "$T/outside.before" "$T/outside.after" || fail "the directory behind the symlink changed"
[ -z "$(ls -A "$M/.mdrepl-tmp" 2>/dev/null)" ] || fail "staged files left: $(ls -A "$M/.mdrepl-tmp")"
ok "nothing written in the mail tree or outside it; nothing left staged; syncd still serving"

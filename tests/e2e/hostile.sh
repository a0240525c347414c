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
#  - SIG_REQ and READ_REQ naming a FIFO a local user planted: answered
#    "not found" at once (opening it must not block the session);
# and the daemon keeps serving after each. Then, on a primary, a FIFO
# planted in a Maildir does not stall rolling replication: the messages
# delivered after it still reach the standby.
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

mkfifo "$M/dom0/user0/Maildir/cur/fifo:2,"
manifest "$M" >"$T/before"
hostile fifo "^EOF"
[ "$(grep -c "_REP" "$T/fifo.out")" = 2 ] || fail "SIG_REQ/READ_REQ of a FIFO not answered: $(cat "$T/fifo.out")"
ok "SIG_REQ and READ_REQ of a planted FIFO: answered, not blocked"

manifest "$M" >"$T/after"
ls -R "$T/outside" >"$T/outside.after"
cmp -s "$T/before" "$T/after" || fail "the mail tree changed: $(diff "$T/before" "$T/after")"
cmp -s "$T/outside.before" "$T/outside.after" || fail "the directory behind the symlink changed"
[ -z "$(ls -A "$M/.mdrepl-tmp" 2>/dev/null)" ] || fail "staged files left: $(ls -A "$M/.mdrepl-tmp")"
ok "nothing written in the mail tree or outside it; nothing left staged; syncd still serving"

# --- a FIFO planted on the primary ------------------------------------------
# (a new standby: the old one follows rawclient's generation 1000 now)
TLS=0 write_conf primary primary
TLS=0 write_conf standby2 standby
M=$T/standby2/mail
U=$T/primary/mail/u/Maildir
mkdir -p "$U/cur" "$U/new" "$U/tmp"
echo one >"$U/cur/1.host:2,S"
start_syncd standby2
set_peer primary "$PORT_standby2"
start_primary primary
wait_synced primary 20 || fail "primary and standby did not sync at the start"
mkfifo "$U/new/2.host"
echo three >"$U/new/3.host"
wait_for 15 test -f "$M/u/Maildir/new/3.host" ||
	fail "a message delivered after a FIFO was not replicated: $(tail -3 "$T/syncclient_primary.log")"
[ ! -e "$M/u/Maildir/new/2.host" ] || fail "the FIFO was replicated"
ok "a FIFO planted in a Maildir on the primary does not stall rolling replication"

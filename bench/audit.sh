#!/bin/sh
# audit.sh [BUILDDIR] — what `mdreplctl audit` costs against rsync (not a
# test). One corpus (mailgen populate, 20,000 messages by default, synced
# to a standby over TLS on 127.0.0.1), both trees identical; medians of 3
# runs of each:
#
#   audit            digest caches warm on both nodes (the nightly case)
#   audit, no cache  both digest caches removed first (every folder listed)
#   rsync -an        --delete, to an rsync daemon on 127.0.0.1 (names,
#                    sizes, mtimes: what a shallow audit compares)
#   audit --deep     every message hashed on both nodes
#   rsync -anc       --delete, checksums of every file on both sides
#
# Time is wall clock; bytes are what crossed the socket (the audit's
# client_wire_in + client_wire_out, TLS included; rsync's --stats "bytes
# sent" + "bytes received", plaintext). The page cache is warm for both
# (the trees were just written); nothing drops it, so that other work on
# the machine is not disturbed. rsync is told to skip what mdrepl does not
# replicate (tmp/, Dovecot index caches, locks).
#
#   MESSAGES=20000 USERS=200 RUNS=3 bench/audit.sh _build
set -eu
cd "$(dirname "$0")/.."
top_srcdir=$(pwd)
top_builddir=$(cd "${1:-_build}" && pwd)
export top_srcdir top_builddir
. "$top_srcdir/tests/e2e/lib.sh"

MESSAGES=${MESSAGES:-20000}
USERS=${USERS:-200}
RUNS=${RUNS:-3}

write_conf primary primary
write_conf standby standby
"$MAILGEN" populate "$T/primary/mail" --users "$USERS" --messages "$MESSAGES" --folders 4 \
	--big 2 --seed 41 >/dev/null
start_syncd standby
set_peer primary "$PORT_standby"
"$SYNCCLIENT" -c "$T/primary.conf" --all >"$T/sync.out" 2>&1 || fail "full sync: $(cat "$T/sync.out")"
sleep 2.2 # past the digest cache's racy window

# An rsync daemon serving the standby's tree.
RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/rsyncd.conf" <<CONF
use chroot = no
uid = 0
gid = 0
[standby]
path = $T/standby/mail
read only = no
CONF
start rsyncd rsync --daemon --no-detach --config="$T/rsyncd.conf" --address=127.0.0.1 --port="$RPORT"
wait_for 10 rsync "rsync://127.0.0.1:$RPORT/" || fail "rsync daemon did not start"
EXCL="--exclude=tmp/ --exclude=dovecot.index* --exclude=dovecot.list.index* --exclude=*.lock --exclude=.mdrepl-tmp/"

store=$(find "$T/primary/mail" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
files=$(find "$T/primary/mail" -type f | wc -l)

field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$2" | head -1
}

# one KIND: runs it once, prints "SECONDS BYTES".
one() {
	start=$(date +%s%N)
	case $1 in
	audit | audit-cold | audit-deep)
		[ "$1" != audit-cold ] || rm -f "$T/primary/state/digest.cache" "$T/standby/state/digest.cache"
		deep=
		[ "$1" != audit-deep ] || deep=--deep
		st=0
		"$CTL" -c "$T/primary.conf" audit $deep --json >"$T/run.json" || st=$?
		[ "$st" = 0 ] || fail "audit $deep exited $st: $(cat "$T/run.json")"
		bytes=$(($(field client_wire_in "$T/run.json") + $(field client_wire_out "$T/run.json")))
		;;
	rsync | rsync-c)
		c=
		[ "$1" != rsync-c ] || c=c
		# shellcheck disable=SC2086
		rsync -an$c --delete --stats $EXCL "$T/primary/mail/" "rsync://127.0.0.1:$RPORT/standby/" \
			>"$T/rsync.out" 2>&1 || fail "rsync: $(cat "$T/rsync.out")"
		bytes=$(sed -n -e 's/,//g' -e 's/^Total bytes sent: \([0-9]*\).*/\1/p' \
			-e 's/^Total bytes received: \([0-9]*\).*/\1/p' "$T/rsync.out" |
			awk '{s += $1} END {print s}')
		;;
	esac
	echo "$(( ($(date +%s%N) - start) / 1000000 )) $bytes"
}

# median KIND: the median of RUNS runs, as "ms bytes".
median() {
	i=0
	: >"$T/runs"
	while [ "$i" -lt "$RUNS" ]; do
		one "$1" >>"$T/runs"
		i=$((i + 1))
	done
	sort -n "$T/runs" | sed -n "$(((RUNS + 1) / 2))p"
}

one audit >/dev/null # warms the digest caches of both nodes
echo "corpus: $files files, $(awk "BEGIN {printf \"%.1f\", $store / 1048576}") MB, $MESSAGES messages, $USERS users; medians of $RUNS runs"
printf '%-34s %10s %14s\n' "" "seconds" "bytes on wire"
for k in audit audit-cold rsync audit-deep rsync-c; do
	case $k in
	audit) label="mdreplctl audit (caches warm)" ;;
	audit-cold) label="mdreplctl audit (no digest cache)" ;;
	rsync) label="rsync -an --delete" ;;
	audit-deep) label="mdreplctl audit --deep" ;;
	rsync-c) label="rsync -anc --delete" ;;
	esac
	set -- $(median "$k")
	printf '%-34s %10.2f %14d\n' "$label" "$(awk "BEGIN {print $1 / 1000}")" "$2"
done

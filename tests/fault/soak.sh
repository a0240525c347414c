#!/bin/sh
# soak.sh — the soak fault harness (issue 9). A replicating pair on
# 127.0.0.1 — mdrepl-journald and mdrepl-syncclient --rolling on a
# primary, mdrepl-syncd on a standby, TLS through tests/faultproxy — runs a
# mixed mail workload (bench/mailgen load for four users: deliveries, flag
# changes, moves, copies, expunges, dovecot-uidlist rewrites; at the same
# time tests/mdworkload for two more, with folders created, renamed and
# deleted too) while one fault per round is injected at random. The kinds come from a shuffled deck, so each occurs
# equally often:
#
#   kill-journald, kill-syncclient  kill -9 at a random moment, restarted
#   kill-syncd      kill -9 of the listener and its session processes, of
#                   the listener alone (its sessions must follow it, by
#                   PR_SET_PDEATHSIG), or of the session alone
#   cut, stall, half  the link cut mid-frame; stalled for 0.3-6 s; a frame
#                   half written, then silence on a connection left open
#   corrupt         a plaintext link (both daemons restarted without TLS)
#                   with one bit flipped per connection: the standby must
#                   log a CRC or framing error and apply nothing of it
#   enospc          the standby's mail root (a tmpfs) shrunk to just above
#                   what it holds, then grown back
#   fsync           syncd (apply_sync = fsync) under libfiu's fiu-run, its
#                   fsync and fdatasync failing at random — or always, and
#                   then no batch may be acknowledged
#   overflow        journald born with fs.inotify.max_queued_events = 64 and
#                   stopped during a burst: the overflow must be journaled
#                   as a rescan
#   restore         syncd stopped, the standby's mail root and state
#                   directory replaced by a copy saved some rounds earlier
#                   (cold, or hot: taken under load, state first); or the
#                   mail root alone, and then standby.pos removed as the
#                   runbook says (nothing detects a tree older than the
#                   position it records)
#
# After every round, with the link healed and every daemon running: the
# standby catches up (bounded), `mdreplctl audit` (--deep every fifth
# round) exits 0, and the trees are identical: names, sizes, mtimes, modes
# and SHA-256 of every replicated file. The message set is checked on its
# own: per user, every base name on the primary is on the standby (none
# lost), exactly once (none duplicated), nothing else is (none extra), and
# with the same bytes (none altered). A daemon that exits on its own is a
# failure too. The first failure stops the run and keeps the scratch
# directory (SOAK_KEEP_GOING=1 records it, repairs and goes on).
#
# Kinds that cannot run here are skipped and said so: enospc and overflow
# need root (a tmpfs mount, the sysctl), fsync needs fiu-run (Debian:
# fiu-utils) and a syncd that runs under it (not a sanitizer build).
#
# Environment: SOAK_ROUNDS (12), SOAK_SEED (random, printed; the same seed
# gives the same faults and workload, not the same timing), SOAK_KINDS
# (every kind), SOAK_RATE (200 ops/s), SOAK_SECONDS (1.5 s of load a
# round), SOAK_CATCHUP (90 s), SOAK_LOG (the per-round log, also printed),
# SOAK_SUMMARY (where the totals table goes, also printed).
. "$(dirname "$0")/../e2e/lib.sh"

ROUNDS=${SOAK_ROUNDS:-12}
SEED=${SOAK_SEED:-$(($(date +%s%N) / 1000 % 1000000007))}
RATE=${SOAK_RATE:-200}
SECS=${SOAK_SECONDS:-1.5}
CATCHUP=${SOAK_CATCHUP:-90}
ALL_KINDS="kill-journald kill-syncclient kill-syncd cut stall half corrupt enospc fsync overflow restore"
KINDS=${SOAK_KINDS:-$ALL_KINDS}
LOG=${SOAK_LOG:-$T/rounds.log}
SUMMARY=${SOAK_SUMMARY:-$T/summary.txt}
Q=/proc/sys/fs/inotify/max_queued_events
MIX=30,20,10,5,35,5 # deliver, flag, move, copy, expunge, uidlist: about as many go as come
MNT=""
QSAVED=""

say() {
	echo "$*" | tee -a "$LOG"
}

# ---------------------------------------------------------------- random
rs=$SEED
# rnd N: R = a pseudo-random number in [0, N).
rnd() {
	rs=$(((rs * 1103515245 + 12345) % 2147483648))
	R=$(((rs / 65536) % $1))
}

# pick WORD...: P = one of the words, at random.
pick() {
	rnd $#
	shift "$R"
	P=$1
}

sleep_ms() {
	sleep "$(($1 / 1000)).$(printf %03d $(($1 % 1000)))"
}

# ----------------------------------------------------------------- exit
soak_exit() {
	for p in $PIDS; do
		if ours "$p"; then kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; fi
	done
	wait 2>/dev/null || true
	# set -e applies in traps: nothing here may fail.
	[ -z "$QSAVED" ] || echo "$QSAVED" >"$Q" 2>/dev/null || true
	if [ -n "$MNT" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
	cleanup
}
trap soak_exit EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------- the pair
# Each node's configuration is derived from NODE.base: with or without
# [tls] (LINK), and for the standby with apply_sync = fsync (SYNCMODE).
LINK=tls
SYNCMODE=syncfs
mkconf() {
	if [ "$LINK" = plain ]; then
		sed '/^\[tls\]/,/^\[/{/^\[tls\]/d;/^\[/!d;}' "$T/$1.base" >"$T/$1.conf"
	else
		cp "$T/$1.base" "$T/$1.conf"
	fi
	if [ "$1" = standby ] && [ "$SYNCMODE" = fsync ]; then
		printf '[sync]\napply_sync = fsync\n' >>"$T/$1.conf"
	fi
}

# start_journald [nolock]: journald, answering; born (unless told) under
# the shared lock of INOTIFY_LOCK, so that it never inherits the lowered
# queue limit of another test (journald_overflow.sh) running meanwhile.
start_journald() {
	if [ "${1:-}" != nolock ]; then
		exec 8>"$INOTIFY_LOCK"
		flock -s -w 120 8 || round_fail "cannot take $INOTIFY_LOCK"
	fi
	start journald_primary "$JOURNALD" -c "$T/primary.conf" -f
	wait_for 10 eval '[ -n "$(jd_num overflows)" ]' ||
		round_fail "journald did not start: $(tail -3 "$T/journald_primary.log")"
	[ "${1:-}" = nolock ] || flock -u 8
}

start_syncclient() {
	start syncclient_primary "$SYNCCLIENT" -c "$T/primary.conf" --rolling -f
}

# jd_num KEY: a number from journald's part of the primary's status.
jd_num() { part_num primary journald "$1"; }

# sd_durable: the standby's durable LSN, as its standby.pos says.
sd_durable() {
	status_json standby | sed 's/.*"syncd":{//' | jnum durable_lsn
}

# pmode TEXT: the proxy's fault mode; pstat NAME: one of its counters.
pmode() {
	echo "$*" >"$T/proxy.port.mode"
	sleep 0.25 # it polls the file every 200 ms at most
}

pstat() {
	sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$T/proxy.port.stats"
}

# logmark NAME / lognew NAME PATTERN: matches in NAME's log since the mark.
logmark() {
	eval "MARK_$1=$(cat "$T/$1.log" 2>/dev/null | wc -l)"
}

lognew() {
	eval "m=\$MARK_$1"
	tail -n "+$((m + 1))" "$T/$1.log" | grep -c -e "$2" || true
}

# link_mode tls|plain: restarts syncd and syncclient on the other link.
link_mode() {
	[ "$LINK" != "$1" ] || return 0
	stop_daemon syncclient_primary || round_fail "syncclient did not stop on SIGTERM"
	stop_daemon syncd_standby || round_fail "syncd did not stop on SIGTERM"
	LINK=$1
	mkconf primary
	mkconf standby
	start_syncd standby
	start_syncclient
}

# ------------------------------------------------------------- workload
# load_start: the round's workload, in the background: mailgen on the
# mailgen users (dom0/), and at the same time mdworkload on its own users
# (mdw/), whose operations include folders created, renamed and deleted
# (the two do not share users: each expects to be the only writer).
load_start() {
	rnd 1000000
	ls=$R
	(
		"$MAILGEN" load "$T/primary/mail/dom0" --rate "$RATE" --seconds "$SECS" --mix "$MIX" \
			--seed "$ls" >"$T/load.out" &
		"$WORKLOAD" run "$T/primary/mail/mdw" --deliveries 20 --flags 10 --moves 10 \
			--expunges 20 --folder-ops 4 --uidlists 4 --rate 40 --seed "$ls" >"$T/work.out" ||
			exit 1
		wait $! # mailgen's
	) &
	LOAD_PID=$!
	PIDS="$PIDS $LOAD_PID"
}

load_wait() {
	wait "$LOAD_PID" || round_fail "the workload failed: $(cat "$T/load.out" "$T/work.out")"
	forget "$LOAD_PID"
	n=$(sed -n 's/.* deliver=\([0-9]*\).* copy=\([0-9]*\).*/\1 \2/p' "$T/load.out")
	w=$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' "$T/work.out")
	ops=$(sed -n 's/^load: ops=\([0-9]*\).*/\1/p' "$T/load.out")
	set -- $n
	ROUND_WRITTEN=$((ROUND_WRITTEN + ${1:-0} + ${2:-0} + ${w:-0}))
	ROUND_OPS=$((ROUND_OPS + ${ops:-0}))
}

# ------------------------------------------------------------- checking
# msgsums DIR: "USER|BASE SHA-256" for every message in cur/ and new/,
# sorted (USER: the path through /Maildir; BASE: the name before ":2,").
msgsums() {
	contents "$1" >"$T/contents.$2"
	awk '{
		p = $2; sub(/^\.\//, "", p)
		if (p !~ /\/(cur|new)\/[^\/]*$/) next
		n = split(p, c, "/"); base = c[n]; sub(/:2,.*/, "", base)
		u = p; sub(/\/Maildir\/.*/, "/Maildir", u)
		print u "|" base " " $1
	}' "$T/contents.$2" | LC_ALL=C sort >"$T/msgs.$2"
	cut -d' ' -f1 "$T/msgs.$2" >"$T/bases.$2"
}

# compare: counts lost, duplicated, extra and altered messages, and other
# differences between the trees (metadata, flags, mtimes, modes).
compare() {
	msgsums "$T/primary/mail" p
	msgsums "$SMAIL" s
	LOST=$(LC_ALL=C comm -23 "$T/bases.p" "$T/bases.s" | wc -l)
	EXTRA=$(LC_ALL=C comm -13 "$T/bases.p" "$T/bases.s" | LC_ALL=C sort -u | wc -l)
	DUP=$(uniq -d "$T/bases.s" | wc -l)
	ALTERED=$(LC_ALL=C join "$T/msgs.p" "$T/msgs.s" | awk '$2 != $3' | wc -l)
	MSGS=$(wc -l <"$T/bases.p")
	manifest "$T/primary/mail" >"$T/manifest.p"
	manifest "$SMAIL" >"$T/manifest.s"
	OTHER=0
	if ! cmp -s "$T/manifest.p" "$T/manifest.s" || ! cmp -s "$T/contents.p" "$T/contents.s"; then
		OTHER=$( (diff "$T/manifest.p" "$T/manifest.s"; diff "$T/contents.p" "$T/contents.s") |
			grep -c '^[<>]' || true)
	fi
}

# -------------------------------------------------------------- faults
ROUND_DETAIL=""

# A daemon killed at a random moment of the load, restarted after a while.
fault_kill() {
	load_start
	rnd 1300
	sleep_ms $((R + 100))
	case $1 in
	journald)
		crash journald_primary
		rnd 500
		sleep_ms "$R"
		start_journald
		ROUND_DETAIL="journald killed"
		;;
	syncclient)
		crash syncclient_primary
		rnd 500
		sleep_ms "$R"
		start_syncclient
		ROUND_DETAIL="syncclient killed"
		;;
	syncd)
		kids=$(pgrep -P "$PID_syncd_standby" || true)
		pick all listener session
		case $P in
		all)
			crash syncd_standby
			start_syncd standby
			;;
		listener)
			# Its sessions get SIGTERM when it dies: none may survive it
			# (a new syncd must not find one holding the writer lock).
			kill -STOP "$PID_syncd_standby"
			kids=$(pgrep -P "$PID_syncd_standby" || true)
			kill -9 "$PID_syncd_standby"
			wait "$PID_syncd_standby" 2>/dev/null || true
			forget "$PID_syncd_standby"
			for k in $kids; do
				wait_for 10 gone "$k" ||
					round_fail "session $k of the killed syncd is still running"
			done
			start_syncd standby
			;;
		session)
			if [ -z "$kids" ] && wait_for 3 pgrep -P "$PID_syncd_standby"; then
				kids=$(pgrep -P "$PID_syncd_standby" || true)
			fi
			if [ -n "$kids" ]; then
				kill -9 $kids 2>/dev/null || true
			else
				P="session (none was running)"
				INEFFECTIVE=1
			fi
			;;
		esac
		ROUND_DETAIL="syncd killed: $P"
		;;
	esac
	load_wait
}

# wait_fault COUNTER BEFORE: the proxy's counter moved past BEFORE; a burst
# of deliveries makes traffic if the load made too little.
wait_fault() {
	[ "$(pstat "$1")" -gt "$2" ] && return 0
	"$MAILGEN" burst "$T/primary/mail/dom0" --deliver 100 --flags 0 --expunge 0 --move 0 >/dev/null
	ROUND_WRITTEN=$((ROUND_WRITTEN + 100))
	wait_for 20 eval "[ \$(pstat $1) -gt $2 ]" || say "warning: no $1 in this round"
}

fault_proxy() {
	case $1 in
	cut)
		pick 500 5000 50000 300000
		pmode "cut $P"
		counter=cuts
		;;
	stall)
		rnd 5700
		ms=$((R + 300))
		pick 5000 50000 300000
		pmode "stall $ms $P"
		counter=stalls
		;;
	half)
		pick 500 5000 50000 300000
		pmode "half $P"
		counter=halves
		;;
	corrupt)
		link_mode plain
		pick 200 2000 20000 200000
		pmode "corrupt $P"
		counter=corruptions
		logmark syncd_standby
		;;
	esac
	desc=$(cat "$T/proxy.port.mode")
	before=$(pstat $counter)
	load_start
	load_wait
	wait_fault $counter "$before"
	pmode pass
	n=$(($(pstat $counter) - before))
	ROUND_DETAIL="$desc -> $counter=$n"
	if [ "$1" = corrupt ]; then
		detected=$(lognew syncd_standby 'CRC mismatch\|bad frame header\|byte limit\|malformed\|unknown message type\|expected HELLO')
		ROUND_DETAIL="corrupt $P -> corruptions=$n, refused by the standby=$detected"
		[ "$n" = 0 ] || [ "$detected" -gt 0 ] ||
			round_fail "$n corrupted connections, but the standby logged no CRC or framing error"
	fi
	[ "$n" -gt 0 ] || INEFFECTIVE=1
}

# The standby's disk fills up, then grows.
fault_enospc() {
	logmark syncd_standby
	for try in 1 2 3 4 5; do
		used=$(df -k --output=used "$MNT" | tail -n 1)
		rnd 512
		mount -o remount,size=$((used + 64 + R))k "$MNT" 2>/dev/null && break
	done
	free=$(df -k --output=avail "$MNT" | tail -n 1)
	load_start
	load_wait
	if [ "$(lognew syncd_standby 'No space left')" = 0 ]; then
		"$MAILGEN" burst "$T/primary/mail/dom0" --deliver 300 --flags 0 --expunge 0 --move 0 >/dev/null
		ROUND_WRITTEN=$((ROUND_WRITTEN + 300))
		wait_for 20 eval '[ "$(lognew syncd_standby "No space left")" -gt 0 ]' || true
	fi
	full=$(lognew syncd_standby 'No space left')
	[ "$full" -gt 0 ] || INEFFECTIVE=1
	# While the disk is full, a message visible on the standby under a
	# name the primary still has is complete.
	(cd "$MNT" && find . -path '*/tmp' -prune -o \( -path '*/cur/*' -o -path '*/new/*' \) -type f -print) >"$T/visible"
	(cd "$MNT" && tr '\n' '\0' <"$T/visible" | xargs -0 -r sha256sum) | LC_ALL=C sort -k2 >"$T/visible.s"
	(cd "$T/primary/mail" && tr '\n' '\0' <"$T/visible" | xargs -0 -r sha256sum 2>/dev/null) |
		LC_ALL=C sort -k2 >"$T/visible.p" || true
	partial=$(LC_ALL=C join -1 2 -2 2 "$T/visible.s" "$T/visible.p" | awk '$2 != $3' | wc -l)
	[ "$partial" = 0 ] || round_fail "$partial partial files visible on the full disk"
	mount -o remount,size=2g "$MNT"
	ROUND_DETAIL="${free} KB left -> $full 'No space left' errors, no partial file visible"
}

# syncd under libfiu with failing fsync/fdatasync. The failure point is
# enabled once syncd listens (its start-up writes files too), through the
# proxy refusing connections meanwhile, so that every session is forked
# with it.
fault_fsync() {
	pick 1 0.5 0.2 0.05
	prob=$P
	stop_daemon syncd_standby || round_fail "syncd did not stop on SIGTERM"
	SYNCMODE=fsync
	mkconf standby
	pmode refuse
	rm -f "$T/standby/state/syncd.port"
	start syncd_standby fiu-run -x -f "$T/fiu" "$SYNCD" -c "$T/standby.conf" -f
	wait_for 10 test -s "$T/standby/state/syncd.port" ||
		round_fail "syncd under fiu-run did not start: $(tail -3 "$T/syncd_standby.log")"
	timeout 10 fiu-ctrl -f "$T/fiu" -c "enable_random name=posix/io/sync/*,probability=$prob" \
		"$PID_syncd_standby" || round_fail "fiu-ctrl failed"
	logmark syncd_standby
	d0=$(sd_durable)
	pmode pass
	load_start
	load_wait
	sleep 1
	failed=$(lognew syncd_standby 'fsync\|fdatasync')
	refused=$(lognew syncd_standby 'batch [0-9]* refused')
	if [ "$prob" = 1 ]; then
		d1=$(sd_durable)
		head=$(jd_num head_lsn)
		[ "$d1" = "$d0" ] ||
			round_fail "every fsync failed, yet the standby's durable position moved from $d0 to $d1"
		ROUND_DETAIL="fsync always fails: $refused batches refused, durable lsn stayed $d0 (head $head)"
	else
		ROUND_DETAIL="fsync fails with p=$prob: $failed failures logged, $refused batches refused"
	fi
	[ "$failed" -gt 0 ] || INEFFECTIVE=1
	stop_daemon syncd_standby || round_fail "syncd under fiu did not stop on SIGTERM"
	rm -f "$T"/fiu-*
	SYNCMODE=syncfs
	mkconf standby
	start_syncd standby
}

# journald born with a queue of 64 events, stopped during a burst.
fault_overflow() {
	stop_daemon journald_primary || round_fail "journald did not stop on SIGTERM"
	exec 9>"$INOTIFY_LOCK"
	flock -w 120 9 || round_fail "cannot take $INOTIFY_LOCK"
	QSAVED=$(cat "$Q")
	echo 64 >"$Q"
	start_journald nolock
	echo "$QSAVED" >"$Q"
	QSAVED=""
	flock -u 9
	kill -STOP "$PID_journald_primary"
	"$MAILGEN" burst "$T/primary/mail/dom0" --deliver 150 --flags 150 --expunge 100 --move 30 >/dev/null
	ROUND_WRITTEN=$((ROUND_WRITTEN + 150))
	kill -CONT "$PID_journald_primary"
	load_start
	load_wait
	wait_for 10 eval '[ "$(jd_num overflows)" -gt 0 ] && [ "$(jd_num rescans)" -gt 0 ]' ||
		INEFFECTIVE=1
	ROUND_DETAIL="overflows=$(jd_num overflows) rescans=$(jd_num rescans)"
	[ "$INEFFECTIVE" = 1 ] || grep -q 'inotify event queue overflowed' "$T/journald_primary.log" ||
		round_fail "overflow not logged"
	# Back to a journald with the normal queue.
	stop_daemon journald_primary || round_fail "journald did not stop on SIGTERM"
	start_journald
}

# snapshot ROUND: a copy of the standby (state directory and mail root), as
# a backup takes it: cold (caught up, nothing moving) or hot (under load,
# the state directory copied before the mail root, as docs/operations.md
# says a backup of a running standby must do).
SNAP_ROUND=""
snapshot() {
	rm -rf "$T/snap"
	mkdir -p "$T/snap/mail"
	pick cold hot
	SNAP_KIND=$P
	ROUND_WRITTEN=0 ROUND_OPS=0
	[ "$SNAP_KIND" = cold ] || load_start
	# Under load files vanish while cp runs: it says so, and goes on.
	cp -a "$T/standby/state" "$T/snap/state" 2>/dev/null || [ "$SNAP_KIND" = hot ]
	cp -a "$SMAIL/." "$T/snap/mail/" 2>/dev/null || [ "$SNAP_KIND" = hot ]
	if [ "$SNAP_KIND" = hot ]; then
		load_wait
		TOT_WRITTEN=$((TOT_WRITTEN + ROUND_WRITTEN))
		TOT_OPS=$((TOT_OPS + ROUND_OPS))
	fi
	SNAP_ROUND=$1
}

# syncd stopped under load; its mail root replaced by the copy; its state
# directory too, or else (the mail root alone restored: the standby's
# position would be ahead of its tree, and nothing tells) standby.pos is
# removed, as the runbook in docs/operations.md says.
fault_restore() {
	pick state tree
	what=$P
	load_start
	rnd 1000
	sleep_ms $((R + 100))
	stop_daemon syncd_standby || round_fail "syncd did not stop on SIGTERM"
	find "$SMAIL" -mindepth 1 -delete
	cp -a "$T/snap/mail/." "$SMAIL/"
	if [ "$what" = state ]; then
		rm -rf "$T/standby/state"
		cp -a "$T/snap/state" "$T/standby/state"
		ROUND_DETAIL="mail root and state restored from a $SNAP_KIND copy of round $SNAP_ROUND"
	else
		rm -f "$T/standby/state/standby.pos"
		ROUND_DETAIL="mail root restored from a $SNAP_KIND copy of round $SNAP_ROUND, standby.pos removed"
	fi
	start_syncd standby
	load_wait
}

# ----------------------------------------------------------- the rounds
# round_fail TEXT: the round failed; keeps the evidence.
FAILURES=0
round_fail() {
	say "FAIL round $ROUND ($KIND): $*"
	FAILURES=$((FAILURES + 1))
	if [ "${SOAK_KEEP_GOING:-}" = "" ]; then
		pmode pass 2>/dev/null || true
		KEEP_TMP=1
		[ -z "$MNT" ] || cp -a "$MNT" "$T/standby-mail-at-failure" 2>/dev/null || true
		echo "scratch directory kept: $T (logs: *.log, proxy.port.stats)" >&2
		exit 1
	fi
}

# revive: every daemon is running again; one that exited is a failure.
revive() {
	for d in journald_primary syncclient_primary syncd_standby proxy; do
		running "$d" && continue
		EXITS=$((EXITS + 1))
		round_fail "$d exited on its own: $(tail -n 3 "$T/$d.log")"
		case $d in
		journald_primary) start_journald ;;
		syncclient_primary) start_syncclient ;;
		syncd_standby) start_syncd standby ;;
		proxy) fail "the proxy died" ;;
		esac
	done
}

verify() {
	pmode pass
	revive
	t0=$(date +%s%N)
	if ! wait_synced primary "$CATCHUP"; then
		round_fail "the standby did not catch up within $CATCHUP s: $(status_json primary)"
		"$CTL" -c "$T/primary.conf" audit --repair >/dev/null 2>&1 || true
		wait_synced primary "$CATCHUP" || fail "no catch-up even after a repair"
	fi
	CATCHUP_S=$(awk "BEGIN {printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9}")
	deep=""
	[ $((ROUND % 5)) != 0 ] || deep=--deep
	if timeout 300 "$CTL" -c "$T/primary.conf" audit $deep --json >"$T/audit.json" 2>"$T/audit.err"; then
		AUDIT=clean
		AUDITS_CLEAN=$((AUDITS_CLEAN + 1))
	else
		AUDIT="differences($?)"
	fi
	AUDITS=$((AUDITS + 1))
	[ -z "$deep" ] || { AUDIT="$AUDIT,deep"; DEEP=$((DEEP + 1)); }
	compare
	TOT_LOST=$((TOT_LOST + LOST))
	TOT_DUP=$((TOT_DUP + DUP))
	TOT_EXTRA=$((TOT_EXTRA + EXTRA))
	TOT_ALTERED=$((TOT_ALTERED + ALTERED))
	TOT_OTHER=$((TOT_OTHER + OTHER))
	if [ "$AUDIT" != clean ] && [ "$AUDIT" != clean,deep ]; then
		round_fail "audit not clean: $(cat "$T/audit.json" "$T/audit.err" | head -c 2000)"
	fi
	if [ $((LOST + DUP + EXTRA + ALTERED + OTHER)) != 0 ]; then
		diff "$T/manifest.p" "$T/manifest.s" | head -20 >&2 || true
		round_fail "lost=$LOST duplicated=$DUP extra=$EXTRA altered=$ALTERED other=$OTHER"
		"$CTL" -c "$T/primary.conf" audit --deep --repair >/dev/null 2>&1 || true
		wait_synced primary "$CATCHUP" || true
	fi
}

# next_kind: KIND = the next card of the deck, reshuffled when empty.
DECK=""
next_kind() {
	if [ -z "$DECK" ]; then
		keyed=""
		for k in $KINDS; do
			rnd 1000000
			keyed="$keyed$R $k
"
		done
		DECK=$(printf '%s' "$keyed" | sort -n | cut -d' ' -f2 | tr '\n' ' ')
	fi
	set -- $DECK
	KIND=$1
	shift
	DECK="$*"
}

# ---------------------------------------------------------------- setup
: >"$LOG"
say "soak: $ROUNDS rounds, seed $SEED, kinds: $KINDS"
skip() {
	KINDS=$(for k in $KINDS; do [ "$k" = "$1" ] || printf '%s ' "$k"; done)
	say "skip: $1 — $2"
}
SMAIL=$T/standby/mail
TLS=1 write_conf primary primary
TLS=1 write_conf standby standby
for n in primary standby; do
	# Short timeouts: a silent link is noticed within seconds.
	sed -i -e 's/^connect_timeout_ms = .*/connect_timeout_ms = 2000/' \
		-e 's/^io_timeout_ms = .*/io_timeout_ms = 4000/' \
		-e 's/^keepalive_s = .*/keepalive_s = 1/' "$T/$n.conf"
	# Small segments, so retention deletes some while the soak runs.
	cat >>"$T/$n.conf" <<CONF
[journal]
fsync_interval_ms = 20
segment_size = 64K
[audit]
settle_timeout_s = 10
CONF
	mv "$T/$n.conf" "$T/$n.base"
	mkconf $n
done

case " $KINDS " in *" enospc "* | *" restore "*)
	if mount -t tmpfs -o size=2g,mode=0755 tmpfs "$SMAIL" 2>/dev/null; then
		MNT=$SMAIL
	else
		skip enospc "cannot mount a tmpfs for the standby's mail root (not root?)"
	fi ;;
esac
case " $KINDS " in *" fsync "*)
	# fiu's preload library and AddressSanitizer's runtime do not mix (a
	# sanitizer build of syncd crashes at start under fiu-run).
	if ! command -v fiu-run >/dev/null || ! command -v fiu-ctrl >/dev/null; then
		skip fsync "fiu-run not installed (Debian: apt-get install fiu-utils)"
	elif ! env ASAN_OPTIONS=verify_asan_link_order=0 fiu-run -x -f "" "$SYNCD" --version \
		>/dev/null 2>&1; then
		skip fsync "$SYNCD does not run under fiu-run (a sanitizer build?)"
	fi ;;
esac
case " $KINDS " in *" overflow "*)
	[ -w "$Q" ] || skip overflow "$Q is not writable (needs root)" ;;
esac

"$MAILGEN" populate "$T/primary/mail" --users 4 --messages 500 --folders 3 --big 0 \
	--domains 1 --seed "$SEED" >/dev/null
mkdir "$T/primary/mail/mdw"
"$WORKLOAD" setup "$T/primary/mail/mdw" --users 2 --folders 3 --messages 20 >/dev/null
start_syncd standby
sed -i "/^\[listen\]/,/^\[/ s|^address = .*|address = 127.0.0.1:$PORT_standby|" "$T/standby.base"
start proxy "$FAULTPROXY" "$T/proxy.port" "$PORT_standby" --seed "$SEED"
wait_for 10 test -s "$T/proxy.port" || fail "the proxy did not start"
pmode pass
sed -i "/^\[peer\]/,/^\[/ s|^address = .*|address = 127.0.0.1:$(cat "$T/proxy.port")|" \
	"$T/primary.base"
mkconf primary
mkconf standby
start_journald
start_syncclient
wait_synced primary 120 || fail "the initial compare did not finish: $(status_json primary)"

# ---------------------------------------------------------------- rounds
for k in $ALL_KINDS; do eval "N_$(echo "$k" | tr - _)=0; X_$(echo "$k" | tr - _)=0"; done
TOT_WRITTEN=0 TOT_OPS=0 TOT_LOST=0 TOT_DUP=0 TOT_EXTRA=0 TOT_ALTERED=0 TOT_OTHER=0
AUDITS=0 AUDITS_CLEAN=0 DEEP=0 EXITS=0
START=$(date +%s)
ROUND=0
case " $KINDS " in *" restore "*) snapshot 0 ;; esac
ROUND=1
while [ "$ROUND" -le "$ROUNDS" ]; do
	next_kind
	r0=$(date +%s%N)
	ROUND_WRITTEN=0 ROUND_OPS=0 INEFFECTIVE=0 ROUND_DETAIL=""
	[ "$KIND" = corrupt ] || link_mode tls
	case $KIND in
	kill-journald) fault_kill journald ;;
	kill-syncclient) fault_kill syncclient ;;
	kill-syncd) fault_kill syncd ;;
	cut | stall | half | corrupt) fault_proxy "$KIND" ;;
	enospc) fault_enospc ;;
	fsync) fault_fsync ;;
	overflow) fault_overflow ;;
	restore) fault_restore ;;
	*) fail "unknown fault kind $KIND" ;;
	esac
	verify
	v=$(echo "$KIND" | tr - _)
	eval "N_$v=\$((N_$v + 1))"
	[ "$INEFFECTIVE" = 0 ] || eval "X_$v=\$((X_$v + 1))"
	TOT_WRITTEN=$((TOT_WRITTEN + ROUND_WRITTEN))
	TOT_OPS=$((TOT_OPS + ROUND_OPS))
	secs=$(awk "BEGIN {printf \"%.1f\", ($(date +%s%N) - $r0) / 1e9}")
	say "round $ROUND/$ROUNDS $KIND: $ROUND_DETAIL$([ "$INEFFECTIVE" = 0 ] || echo " (fault did not take effect)");" \
		"ops=$ROUND_OPS written=$ROUND_WRITTEN messages=$MSGS lost=$LOST duplicated=$DUP" \
		"extra=$EXTRA altered=$ALTERED other=$OTHER audit=$AUDIT catchup=${CATCHUP_S}s round=${secs}s"
	# Now and then a fresh copy of the standby, for a later restore.
	rnd 4
	[ "$R" != 0 ] || case " $KINDS " in *" restore "*) snapshot "$ROUND" ;; esac
	ROUND=$((ROUND + 1))
done
WALL=$(($(date +%s) - START))

# ---------------------------------------------------------------- totals
{
	echo "soak totals: $ROUNDS rounds in $WALL s, seed $SEED"
	printf '%-16s %7s %10s\n' "fault kind" rounds "no effect"
	for k in $ALL_KINDS; do
		v=$(echo "$k" | tr - _)
		eval "printf '%-16s %7s %10s\n' $k \$N_$v \$X_$v"
	done
	printf '%-28s %s\n' "operations" "$TOT_OPS" \
		"messages written" "$TOT_WRITTEN" \
		"messages at the end" "$MSGS" \
		"lost" "$TOT_LOST" \
		"duplicated" "$TOT_DUP" \
		"extra (expunged, came back)" "$TOT_EXTRA" \
		"altered" "$TOT_ALTERED" \
		"other tree differences" "$TOT_OTHER" \
		"audits clean" "$AUDITS_CLEAN of $AUDITS ($DEEP deep)" \
		"daemons that exited" "$EXITS" \
		"failed rounds" "$FAILURES"
} >"$SUMMARY"
cat "$SUMMARY"
[ "$FAILURES" = 0 ] || fail "$FAILURES rounds failed (see above)"
for k in $KINDS; do
	v=$(echo "$k" | tr - _)
	eval "n=\$N_$v"
	[ "$n" -gt 0 ] || [ "$ROUNDS" -lt "$(echo $KINDS | wc -w)" ] || fail "fault kind $k never ran"
done
ok "soak: $ROUNDS rounds, every message exact, every audit clean"

# lib.sh — helpers for the end-to-end tests. Source it; it sets `set -eu`,
# makes a scratch directory $T removed on exit (with every process the test
# started), and defines assertions. Every wait is bounded.

set -eu

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
JOURNALD=$top_builddir/journal/mdrepl-journald
SYNCD=$top_builddir/syncd/mdrepl-syncd
SYNCCLIENT=$top_builddir/syncclient/mdrepl-syncclient
CTL=$top_builddir/ctl/mdreplctl

T=$(mktemp -d "${TMPDIR:-/tmp}/mdrepl-e2e.XXXXXX")
PIDS=""

# ours PID: PID is a child of this shell. Pids are recycled (pid_max is
# 32768 here): a process that died long ago must not be killed in its stead.
ours() {
	[ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" = "$$" ]
}

# forget PID: drops PID from the processes killed on exit.
forget() {
	PIDS=$(for p in $PIDS; do [ "$p" = "$1" ] || printf '%s ' "$p"; done)
}

cleanup() {
	for p in $PIDS; do
		if ours "$p"; then kill -9 "$p" 2>/dev/null || true; fi
	done
	wait 2>/dev/null || true
	if [ "${KEEP_TMP:-}" = "" ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# expect_exit CODE CMD...: runs CMD, output to $T/out and $T/err.
expect_exit() {
	want=$1
	shift
	set +e
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	[ "$got" = "$want" ] || fail "'$*' exited $got, expected $want; stderr: $(cat "$T/err")"
}

# expect_grep PATTERN FILE
expect_grep() {
	grep -q -- "$1" "$2" || fail "'$1' not found in $2: $(cat "$2")"
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	limit=$1
	shift
	end=$(($(date +%s%N) + limit * 1000000000))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

MAILGEN=$top_builddir/bench/mailgen

# manifest DIR: every entry replication covers, one per line, sorted:
# directories with their mode; files with size, mtime (ns) and mode.
# tmp/ contents, mdrepl's staging directory and Dovecot's index caches
# and lock files are left out, as replication leaves them out.
manifest() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 \
			-name .mdrepl-tmp -prune -o \
			\( -name 'dovecot.index*' -o -name 'dovecot.list.index*' \
			-o -name 'dovecot.mailbox.log*' -o -name '*.lock' \) -prune -o \
			-name tmp -type d -prune -printf 'D %P %m\n' -o \
			-type d -printf 'D %P %m\n' -o \
			-type f -printf 'F %P %s %T@ %m\n' -o \
			-printf 'X %P %y\n'
	) | LC_ALL=C sort
}

# contents DIR: SHA-256 of every file manifest lists.
contents() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 \
			-name .mdrepl-tmp -prune -o \
			\( -name 'dovecot.index*' -o -name 'dovecot.list.index*' \
			-o -name 'dovecot.mailbox.log*' -o -name '*.lock' \) -prune -o \
			-name tmp -type d -prune -o \
			-type f -print0 | xargs -0 -r sha256sum
	) | LC_ALL=C sort -k2
}

# same_trees A B: names, sizes, mtimes (ns), modes and contents agree.
same_trees() {
	manifest "$1" >"$T/manifest.a"
	manifest "$2" >"$T/manifest.b"
	if ! cmp -s "$T/manifest.a" "$T/manifest.b"; then
		echo "trees differ ($1 vs $2):" >&2
		diff "$T/manifest.a" "$T/manifest.b" | head -20 >&2
		return 1
	fi
	contents "$1" >"$T/contents.a"
	contents "$2" >"$T/contents.b"
	if ! cmp -s "$T/contents.a" "$T/contents.b"; then
		echo "contents differ ($1 vs $2):" >&2
		diff "$T/contents.a" "$T/contents.b" | head -20 >&2
		return 1
	fi
}

# write_conf NAME ROLE: $T/NAME.conf for a node with its tree in
# $T/NAME/mail and state in $T/NAME/state, listening on a free port.
# With TLS=1 (default) it uses certificates from $T/certs.
write_conf() {
	mkdir -p "$T/$1/mail" "$T/$1/state"
	cat >"$T/$1.conf" <<CONF
[node]
mail_root = $T/$1/mail
state_dir = $T/$1/state
initial_role = $2
[listen]
address = 127.0.0.1:0
[peer]
address = 127.0.0.1:1
connect_timeout_ms = 3000
io_timeout_ms = 20000
keepalive_s = 5
[log]
level = ${LOG_LEVEL:-info}
CONF
	if [ "${TLS:-1}" = 1 ]; then
		[ -f "$T/certs/ca.crt" ] || "$CTL" gen-certs "$T/certs" primary standby >/dev/null
		cat >>"$T/$1.conf" <<CONF
[tls]
ca_file = $T/certs/ca.crt
cert_file = $T/certs/$1.crt
key_file = $T/certs/$1.key
CONF
	fi
}

# start NAME CMD...: runs a daemon in the background, logging to $T/NAME.log.
start() {
	name=$1
	shift
	"$@" >>"$T/$name.log" 2>&1 &
	eval "PID_$name=$!"
	PIDS="$PIDS $!"
}

# start_syncd NODE: syncd for $T/NODE.conf; sets PORT_NODE once it listens.
start_syncd() {
	rm -f "$T/$1/state/syncd.port"
	start "syncd_$1" "$SYNCD" -c "$T/$1.conf" -f
	wait_for 10 test -s "$T/$1/state/syncd.port" || fail "syncd $1 did not start: $(cat "$T/syncd_$1.log")"
	eval "PORT_$1=$(cat "$T/$1/state/syncd.port")"
}

# crash NAME: kill -9 a daemon started with `start`, and its children
# (syncd's session processes), as a crash would. Stopped first, it forks
# no new child meanwhile; returns once the children are gone too (their
# locks released: a daemon started next must not find them held).
crash() {
	eval "pid=\$PID_$1"
	if ours "$pid"; then
		kill -STOP "$pid" 2>/dev/null || true
		kids=$(pgrep -P "$pid" || true)
		kill -9 $kids "$pid" 2>/dev/null || true
		for k in $kids; do wait_for 10 gone "$k" || true; done
	fi
	wait "$pid" 2>/dev/null || true
	forget "$pid"
}

# gone PID: no such process, or only its zombie (its files are closed).
gone() {
	case $(ps -o stat= -p "$1" 2>/dev/null) in Z* | "") return 0 ;; esac
	return 1
}

# running NAME: the daemon started with `start` is alive (not a zombie).
running() {
	eval "pid=\${PID_$1:-}"
	[ -n "$pid" ] && ours "$pid" && ! gone "$pid"
}

# stop_daemon NAME [SECONDS]: SIGTERM, as systemd stops it; waits (10 s by
# default) for it to exit; returns 1 (after a kill -9) if it did not.
stop_daemon() {
	eval "pid=\$PID_$1"
	rc=0
	if running "$1"; then
		kill -TERM "$pid"
		if ! wait_for "${2:-10}" eval "! running $1"; then
			crash "$1"
			rc=1
		fi
	fi
	wait "$pid" 2>/dev/null || true
	forget "$pid"
	return $rc
}

# status NODE: mdreplctl status --json for the node.
status_json() {
	"$CTL" -c "$T/$1.conf" status --json
}

FAULTPROXY=$top_builddir/tests/faultproxy
WORKLOAD=$top_builddir/tests/mdworkload
# Held shared while a journald starts, exclusively while a test lowers
# fs.inotify.max_queued_events (which a new inotify instance inherits).
INOTIFY_LOCK=${TMPDIR:-/tmp}/mdrepl-e2e-inotify.lock

# pin_port NODE: makes NODE's syncd listen on the port it got, from now
# on, so restarts keep it.
pin_port() {
	eval "port=\$PORT_$1"
	sed -i "/^\[listen\]/,/^\[/ s|^address = .*|address = 127.0.0.1:$port|" "$T/$1.conf"
}

# set_peer NODE PORT: points NODE's [peer] address at 127.0.0.1:PORT.
set_peer() {
	sed -i "/^\[peer\]/,/^\[/ s|^address = .*|address = 127.0.0.1:$2|" "$T/$1.conf"
}

# jnum KEY: a number from the JSON on stdin (first occurrence of "KEY":).
jnum() {
	sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" | head -n 1
}

# part_num NODE DAEMON KEY: a number from DAEMON's part of NODE's status.
part_num() {
	status_json "$1" | sed "s/.*\"$2\":{//" | jnum "$3"
}

# start_primary NODE: journald and rolling syncclient for NODE.
start_primary() {
	start "journald_$1" "$JOURNALD" -c "$T/$1.conf" -f
	start "syncclient_$1" "$SYNCCLIENT" -c "$T/$1.conf" --rolling -f
}

# caught_up NODE: the primary NODE's syncclient is connected, has read
# the journal to journald's head, and the standby made all of it durable.
caught_up() {
	st=$(status_json "$1")
	case $st in *'"state":"connected"'*) ;; *) return 1 ;; esac
	head=$(printf '%s' "$st" | sed 's/.*"journald":{//' | jnum head_lsn)
	read=$(printf '%s' "$st" | jnum read_lsn)
	durable=$(printf '%s' "$st" | sed 's/.*"syncclient":{//' | jnum durable_lsn)
	lag=$(printf '%s' "$st" | jnum lag_records)
	[ -n "$head" ] && [ "$read" = "$head" ] && [ "$durable" = "$head" ] && [ "$lag" = 0 ]
}

# wait_synced NODE SECONDS: caught_up, and the tree stays unchanged for a
# moment (journald has seen everything).
wait_synced() {
	wait_for "$2" caught_up "$1" || return 1
	sleep 0.3
	wait_for "$2" caught_up "$1"
}

# unique_bases DIR: fails if any message base appears twice in one user.
unique_bases() {
	(cd "$1" && find . -path '*/cur/*' -type f -o -path '*/new/*' -type f) |
		sed -e 's|/Maildir/.*/\([^/]*\)$|/Maildir \1|' -e 's|:.*||' |
		LC_ALL=C sort | uniq -d >"$T/dups"
	[ ! -s "$T/dups" ] || { echo "duplicated messages: $(head -3 "$T/dups")" >&2; return 1; }
}

# audit_pair USERS MESSAGES SEED: a generated primary full-synced to a
# standby, with the journal and audit settings the audit tests use.
audit_pair() {
	write_conf primary primary
	write_conf standby standby
	"$MAILGEN" populate "$T/primary/mail" --users "$1" --messages "$2" --folders 4 \
		--big 0 --seed "$3"
	start_syncd standby
	set_peer primary "$PORT_standby"
	cat >>"$T/primary.conf" <<CONF
[journal]
fsync_interval_ms = 20
[audit]
settle_timeout_s = 20
CONF
	"$SYNCCLIENT" -c "$T/primary.conf" --all >"$T/sync.out" 2>&1 ||
		fail "full sync: $(cat "$T/sync.out")"
}

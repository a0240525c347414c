#!/bin/sh
# journald.sh [BUILDDIR] — benchmarks mdrepl-journald (not a test):
#
#  1. live burst: N deliveries + renames at full speed while journald runs;
#     records journaled per second from the first operation to the moment
#     the journal head stops moving, and journald's CPU per 1,000 events
#     (utime + stime from /proc/PID/stat);
#  2. backlog: the same burst while journald is stopped (SIGSTOP, with
#     fs.inotify.max_queued_events raised so nothing overflows), then
#     continued: how fast journald drains a queue of events;
#  3. memory: RSS (VmRSS / VmHWM) and start-up time with 20,000 watched
#     folders (5,000 users x 4 folders).
#
# Needs root for step 2 (the sysctl is restored on exit). Uses
# tests/mdworkload (built here if missing).
set -eu
cd "$(dirname "$0")/.."
B=$(cd "${1:-_build}" && pwd)
make -s -C "$B/tests" mdworkload >/dev/null
JD=$B/journal/mdrepl-journald
CTL=$B/ctl/mdreplctl
WL=$B/tests/mdworkload
N=${BURST:-20000}
T=$(mktemp -d "${TMPDIR:-/tmp}/mdrepl-bench.XXXXXX")
Q=/proc/sys/fs/inotify/max_queued_events
QSAVED=$(cat "$Q")
PID=""

finish() {
	[ -z "$PID" ] || kill -9 "$PID" 2>/dev/null || true
	[ -w "$Q" ] && echo "$QSAVED" >"$Q"
	rm -rf "$T"
}
trap finish EXIT

node() {
	rm -rf "$T/n"
	mkdir -p "$T/n/mail" "$T/n/state"
	cat >"$T/n/conf" <<EOF
[node]
mail_root = $T/n/mail
state_dir = $T/n/state
initial_role = primary
EOF
}

field() {
	"$CTL" -c "$T/n/conf" journal status | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

start() {
	"$JD" -c "$T/n/conf" -f 2>"$T/n/log" &
	PID=$!
	until "$CTL" -c "$T/n/conf" journal status >/dev/null 2>&1; do sleep 0.05; done
}

stop() {
	kill -TERM "$PID"
	wait "$PID" || true
	PID=""
}

cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$PID/stat"
}

now_ms() {
	date +%s%3N
}

# Polls until the head has not moved for 1 s; prints the time (ms) of its
# last change.
settle() {
	last=$(field head_lsn)
	changed=$(now_ms)
	while [ $(($(now_ms) - changed)) -lt 1000 ]; do
		sleep 0.02
		h=$(field head_lsn)
		if [ "$h" != "$last" ]; then
			last=$h
			changed=$(now_ms)
		fi
	done
	echo "$changed"
}

burst() {
	"$WL" run "$T/n/mail" --deliveries $((N / 2)) --flags $((N / 2)) --seed 11 >/dev/null
}

hz=$(getconf CLK_TCK)
echo "== 1. live burst: $((N / 2)) deliveries + $((N / 2)) flag renames into 100 users"
node
"$WL" setup "$T/n/mail" --users 100 --folders 3 --messages 0
start
h0=$(field head_lsn)
e0=$(field events)
c0=$(cpu_ticks)
t0=$(now_ms)
burst
t1=$(now_ms)
t2=$(settle)
h1=$(field head_lsn)
e1=$(field events)
c1=$(cpu_ticks)
recs=$((h1 - h0))
evs=$((e1 - e0))
ms=$((t2 - t0))
echo "workload: $((t1 - t0)) ms; journal settled $((t2 - t1)) ms after it"
echo "records: $recs in $ms ms = $((recs * 1000 / ms)) records/s; inotify events: $evs"
echo "journald CPU: $(((c1 - c0) * 1000 / hz)) ms = $(((c1 - c0) * 1000 * 1000 / hz / evs)) ms per 1,000 events"
echo "fsyncs: $(field fsyncs), rescans: $(field rescans), overflows: $(field overflows)"
stop

if [ -w "$Q" ]; then
	echo "== 2. backlog: the same burst queued while journald is stopped"
	echo 1048576 >"$Q"
	node
	"$WL" setup "$T/n/mail" --users 100 --folders 3 --messages 0
	start
	echo "$QSAVED" >"$Q"
	h0=$(field head_lsn)
	c0=$(cpu_ticks)
	kill -STOP "$PID"
	burst
	t0=$(now_ms)
	kill -CONT "$PID"
	t2=$(settle)
	h1=$(field head_lsn)
	c1=$(cpu_ticks)
	recs=$((h1 - h0))
	ms=$((t2 - t0))
	echo "drained $recs records in $ms ms = $((recs * 1000 / ms)) records/s" \
		"(CPU $(((c1 - c0) * 1000 / hz)) ms, overflows $(field overflows))"
	stop
else
	echo "== 2. skipped (needs root to raise $Q)"
fi

echo "== 3. memory with 20,000 folders (5,000 users x 4 folders)"
node
"$WL" setup "$T/n/mail" --users 5000 --folders 3 --messages 0
t0=$(now_ms)
start
t1=$(now_ms)
echo "watches: $(field watches); start-up (walk + watch) $((t1 - t0)) ms"
grep -E "VmRSS|VmHWM" "/proc/$PID/status" | tr -s ' \t' ' '
stop

#!/bin/sh
# journald_overflow.sh — an inotify queue overflow becomes a full rescan,
# never a silent gap: journald is born with fs.inotify.max_queued_events
# lowered to 64, stopped with SIGSTOP during a burst so its queue
# overflows, and continued; a rescan record appears, the overflow is
# counted, and the replay converges. The sysctl is restored as soon as
# journald is up, and in a trap on any failure.
. "$(dirname "$0")/journald_lib.sh"

Q=/proc/sys/fs/inotify/max_queued_events
if ! [ -w "$Q" ]; then
	echo "SKIP: $Q is not writable (needs root)"
	exit 77
fi
saved=$(cat "$Q")
restore() {
	echo "$saved" >"$Q"
}
trap 'restore; cleanup' EXIT

jd_use node
"$WORKLOAD" setup "$N/mail" --users 5 --folders 2 --messages 5
cp -a "$N/mail" "$N/start"

# Exclusively: no other journald of these tests starts with the low limit.
exec 9>"$INOTIFY_LOCK"
flock 9
echo 64 >"$Q"
JD_NOLOCK=1 jd_start
restore
flock -u 9
[ "$(cat "$Q")" = "$saved" ] || fail "max_queued_events not restored"

kill -STOP "$JD_PID"
"$WORKLOAD" run "$N/mail" --deliveries 300 --flags 100 --seed 3 >/dev/null
kill -CONT "$JD_PID"
wait_head_stable
[ "$(jd_field overflows)" -ge 1 ] || fail "no overflow counted: $(cat "$N/status.json")"
jctl journal dump >"$N/dump"
grep -q " rescan \. subtree$" "$N/dump" || fail "no full rescan after the overflow"
grep -q "inotify event queue overflowed (fs.inotify.max_queued_events" "$N/journald.log" ||
	fail "overflow not logged"
ok "overflow counted and journaled as a full rescan"

# The watches still work after the overflow: more changes, journaled.
"$WORKLOAD" run "$N/mail" --deliveries 20 --flags 10 --folder-ops 3 --seed 4 >/dev/null
wait_head_stable
jd_stop
replay_and_compare "$N/start" "$N/mail"
[ "$(replay_count rescans)" -ge 1 ] || fail "the replay saw no rescan"
ok "replay converges after the overflow"

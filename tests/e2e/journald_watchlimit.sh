#!/bin/sh
# journald_watchlimit.sh — more directories than inotify watches: journald
# logs an error naming the limiting sysctl and its value, journals rescans
# for the folders it could not watch, counts them in status, and keeps
# journaling the rest. The limit is lowered only inside a user namespace
# of journald's own (user.max_inotify_watches), never for the host.
. "$(dirname "$0")/journald_lib.sh"

if ! unshare -U -r true 2>/dev/null; then
	echo "SKIP: cannot create a user namespace"
	exit 77
fi
jd_use node
M=$N/mail
"$WORKLOAD" setup "$M" --users 4 --folders 1 --messages 0
# root 1 + per user: user, Maildir, cur, new, .Sent, cur, new = 29 watches
unshare -U -r sh -c "echo 12 >/proc/sys/user/max_inotify_watches && exec '$JOURNALD' -c '$N/conf' -f" \
	2>>"$N/journald.log" &
JD_PID=$!
PIDS="$PIDS $JD_PID"
wait_for 15 jd_status || fail "journald did not answer: $(tail -5 "$N/journald.log")"
expect_grep "inotify watch limit reached (user.max_inotify_watches = 12); raise it, e.g. sysctl -w user.max_inotify_watches=24" "$N/journald.log"
[ "$(jd_field watches)" = 12 ] || fail "watches: $(cat "$N/status.json")"
[ "$(jd_field failed_watches)" -ge 1 ] || fail "failed watches not counted"
jctl journal dump >"$N/dump"
n=$(grep -c " rescan u00[0-9]/Maildir[^ ]* subtree$" "$N/dump") || true
[ "$n" -ge 1 ] || fail "no rescans for the unwatched folders: $(cat "$N/dump")"
ok "watch limit: error names the sysctl, rescans for what is not watched"

echo x >"$M/u000/Maildir/new/1.M1.host"
wait_for 5 sh -c "'$CTL' -c '$N/conf' journal dump | grep -q 'create u000/Maildir/new/1.M1.host'" ||
	fail "the watched folders are not journaled any more"
jd_stop
ok "journald keeps journaling what it watches"

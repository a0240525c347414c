#!/bin/sh
# journald_restart.sh — a clean stop leaves no silent gap either: what
# changed while journald was stopped (mail keeps arriving) is journaled as
# rescans of exactly those folders at the next start, not as a full
# rescan, and the replay converges. Also: a second journald is refused,
# SIGHUP reopens the log.
. "$(dirname "$0")/journald_lib.sh"

jd_use node
M=$N/mail
"$WORKLOAD" setup "$N/mail" --users 4 --folders 2 --messages 3
cp -a "$M" "$N/start"
sleep 1.2 # the setup's timestamps are older than the stop below
jd_start

expect_exit 1 "$JOURNALD" -c "$N/conf" -f
expect_grep "mdrepl-journald is already running (pid $JD_PID" "$T/err"
ok "a second journald is refused"

kill -HUP "$JD_PID"
wait_for 5 grep -q "reloaded" "$N/journald.log" || fail "SIGHUP not handled"
ok "SIGHUP reopens the log"

"$WORKLOAD" run "$M" --deliveries 20 --flags 10 --seed 5 >/dev/null
wait_head_stable
jd_stop
sleep 1.2
# While stopped: a delivery into u001's INBOX, a folder of u002 renamed,
# u003's dovecot-uidlist rewritten in place.
echo "new mail" >"$M/u001/Maildir/tmp/9.M9.host"
mv "$M/u001/Maildir/tmp/9.M9.host" "$M/u001/Maildir/new/9.M9.host,S=9"
mv "$M/u002/Maildir/.Sent" "$M/u002/Maildir/.Sent Items"
echo "3 V1 N2" >>"$M/u003/Maildir/dovecot-uidlist"
jd_start
jd_status
jctl journal dump >"$N/dump"
expect_grep " start clean$" "$N/dump"
expect_grep " rescan u001/Maildir$" "$N/dump"
expect_grep " rescan u002/Maildir subtree$" "$N/dump"
expect_grep " meta_changed u003/Maildir/dovecot-uidlist$" "$N/dump"
grep -q " rescan \. subtree$" "$N/dump" && fail "a clean restart journaled a full rescan"
grep -q "rescan u000" "$N/dump" && fail "an unchanged user was rescanned"
ok "changes made while stopped are journaled as rescans of those folders"

jd_stop
replay_and_compare "$N/start" "$M"
ok "replay converges across a clean restart"

#!/bin/sh
# journald_replay.sh — the journal alone carries a busy mail store's
# changes: 5,000 deliveries into 50 users, 2,000 flag changes, 500 moves
# between folders, 500 expunges, folders created / renamed / deleted and
# dovecot-uidlist rewritten by lock and rename-over, all while journald
# runs. Replaying the journal onto a copy of the starting tree gives the
# final tree, with no rescan. Then the same under kill -9: journald is
# killed and restarted three times during the workload; rescans appear
# only for the unclean restarts and the replay converges again.
. "$(dirname "$0")/journald_lib.sh"

WL="--deliveries 5000 --flags 2000 --moves 500 --expunges 500 --folder-ops 60 --uidlists 300"

jd_use clean
"$WORKLOAD" setup "$N/mail" --users 50 --folders 3 --messages 10
cp -a "$N/mail" "$N/start"
jd_start
# shellcheck disable=SC2086
"$WORKLOAD" run "$N/mail" $WL --seed 7 >/dev/null
wait_head_stable
jd_stop
replay_and_compare "$N/start" "$N/mail"
[ "$(replay_count rescans)" = 0 ] || fail "a clean run journaled rescans"
[ "$(replay_count anomalies)" = 0 ] || fail "records that did not apply literally"
# 2,000 flag changes + 500 moves; under load inotify may now and then
# deliver a move's two halves apart, journaled as unlink + create (which
# the replay converges with all the same), so 99 % must be renames.
[ "$(replay_count rename)" -ge 2475 ] || fail "flag changes and moves were not journaled as renames: $(replay_count rename) of 2500"
[ "$(replay_count meta_changed)" -ge 300 ] || fail "dovecot-uidlist rename-overs missing"
[ "$(replay_count folder_rename)" -ge 1 ] || fail "no folder rename journaled"
grep -q "cutting a torn tail" "$N/journald.log" && fail "a clean run found a torn tail"
ok "clean run: replay of the journal gives the final tree, no rescans"

jd_use killed
"$WORKLOAD" setup "$N/mail" --users 50 --folders 3 --messages 10
cp -a "$N/mail" "$N/start"
jd_start
# shellcheck disable=SC2086
"$WORKLOAD" run "$N/mail" $WL --seed 8 --rate 1500 >/dev/null &
wl=$!
for i in 1 2 3; do
	sleep 1
	jd_kill9
	jd_start
done
wait $wl || fail "workload failed"
wait_head_stable
jd_stop
replay_and_compare "$N/start" "$N/mail"
[ "$(replay_count rescans)" = 3 ] || fail "expected 3 rescans (one per unclean restart)"
[ "$(replay_count start)" = 4 ] || fail "expected 4 start records"
jctl journal dump >"$N/dump"
[ "$(grep -c " start unclean$" "$N/dump")" = 3 ] || fail "expected 3 unclean starts"
[ "$(grep -c " rescan \. subtree$" "$N/dump")" = 3 ] || fail "expected 3 full rescans"
ok "kill -9 three times: one full rescan per unclean restart, replay converges"

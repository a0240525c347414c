#!/bin/sh
# audit_live.sh — an audit while rolling replication carries steady load
# (issue 7): deliveries, flag changes, moves, copies, expunges and uidlist
# rewrites at ~150 operations a second; every audit run meanwhile (shallow
# and deep) reports no difference and exits 0, because differences are
# re-checked after the standby caught up with the journal head and changes
# made between the two looks are not judged. When the load stops the trees
# are identical.
. "$(dirname "$0")/lib.sh"

USERS=${AUDIT_LIVE_USERS:-40}
MESSAGES=${AUDIT_LIVE_MESSAGES:-4000}
RATE=${AUDIT_LIVE_RATE:-150}
SECONDS_LOAD=${AUDIT_LIVE_SECONDS:-25}

audit_pair "$USERS" "$MESSAGES" 31
start_primary primary
wait_synced primary 60 || fail "rolling replication did not catch up: $(status_json primary)"

"$MAILGEN" load "$T/primary/mail" --rate "$RATE" --seconds "$SECONDS_LOAD" --seed 32 \
	>"$T/load.out" 2>&1 &
load=$!
PIDS="$PIDS $load"
sleep 1
runs=0
rechecked=0
while kill -0 "$load" 2>/dev/null; do
	deep=
	[ $((runs % 3)) = 2 ] && deep=--deep
	set +e
	"$CTL" -c "$T/primary.conf" audit $deep --json >"$T/audit.$runs" 2>"$T/audit.$runs.err"
	st=$?
	set -e
	[ "$st" = 0 ] || fail "audit $deep under load exited $st: $(cat "$T/audit.$runs" "$T/audit.$runs.err")"
	grep -q '"settle":{' "$T/audit.$runs" && rechecked=$((rechecked + 1))
	runs=$((runs + 1))
done
wait "$load" || fail "mailgen load failed: $(cat "$T/load.out")"
cat "$T/load.out"
[ "$runs" -ge 3 ] || fail "only $runs audits ran during the load"
[ "$rechecked" -ge 1 ] || fail "no audit saw a live change to re-check: the test proves nothing"
ok "$runs audits (every third --deep) during $RATE ops/s: no false difference; $rechecked re-checked live changes"

wait_synced primary 60 || fail "replication did not catch up after the load"
expect_exit 0 "$CTL" -c "$T/primary.conf" audit --deep
head -1 "$T/out"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the load"
ok "after the load: audit --deep clean, trees identical"

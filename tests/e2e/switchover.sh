#!/bin/sh
# switchover.sh — planned switchover over TLS on loopback (issue 6): a
# pair A (primary) -> B under load; `switchover` on B (the load pauses in
# A's freeze hook and resumes on B from B's thaw hook), then back on A.
# Zero messages lost (every delivered message present exactly once),
# trees identical, the lag back under 1 s after each switchover, and an
# aborted switchover (a failing freeze hook) leaves both roles unchanged.
# Also: promote refuses while the primary answers (without --wait) and
# when the drain times out; demote refuses when the standby lacks mail.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pair_lib.sh"

pair_setup primary standby
trap 'for p in "$T"/A/load.pid "$T"/B/load.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; cleanup' EXIT
for n in A B; do
	# The test's "mail services": a load that the freeze hook stops and
	# the thaw hook starts (deliveries, flags, moves, copies; no expunges,
	# so that every message delivered must still be there at the end).
	# Once stopped, the freeze hook lists every message the node has: all
	# of them must be there at the end.
	cat >"$T/$n/hooks/10-load" <<HOOK
#!/bin/sh
pidf="$T/$n/load.pid"
case "\$MDREPL_EVENT" in
freeze)
	[ -f "\$pidf" ] || exit 0
	pid=\$(cat "\$pidf"); rm -f "\$pidf"
	kill "\$pid" 2>/dev/null || exit 0
	i=0; while kill -0 "\$pid" 2>/dev/null && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i+1)); done
	find "$T/$n/mail" -path '*/tmp' -prune -o \( -path '*/cur/*' -o -path '*/new/*' \) -type f -print |
		sed -e 's|.*/||' -e 's|:2,.*||' | LC_ALL=C sort >"$T/frozen.$n.\$(date +%s%N)" ;;
thaw)
	"$MAILGEN" load "$T/$n/mail" --rate 100 --seconds 120 --mix 50,30,10,10,0,5 \
		--seed \$\$ >>"$T/$n/load.out" 2>&1 </dev/null &
	echo \$! >"\$pidf" ;;
esac
HOOK
	chmod 0700 "$T/$n/hooks/10-load"
done
"$MAILGEN" populate "$T/A/mail" --users 6 --messages 600 --folders 3 --big 0 --seed 31 >/dev/null
node_start B
node_start A
wait_for 30 caught_up A || fail "A did not catch up: $(jobj A syncclient)"
wait_for 20 same_trees "$T/A/mail" "$T/B/mail" || fail "initial replication incomplete"
MDREPL_EVENT=thaw "$T/A/hooks/10-load" || fail "cannot start the load"
ok "pair running under load: A primary replicating to B"

# While A is alive, promote on B is refused; so is a drain that cannot
# finish (A's sender paused while A journals), and a demote of A that
# would drop what B lacks.
expect_exit 1 "$CTL" -c "$T/B.conf" promote
expect_grep "the primary at 127.0.0.1:$PORT_A is alive (generation 1): use --wait" "$T/err"
kill -STOP "$PID_sc_A"
sleep 1
expect_exit 1 "$CTL" -c "$T/B.conf" promote --wait=1
expect_grep "records not yet here" "$T/err"
expect_exit 1 "$CTL" -c "$T/A.conf" demote
expect_grep "records would be dropped" "$T/err"
kill -CONT "$PID_sc_A"
[ "$(jval A node role)" = primary ] && [ "$(jval B node role)" = standby ] ||
	fail "a refused promote or demote changed a role"
ok "refused: promote while the primary answers, a drain that times out, a demote that would drop mail"

lag_ok() { # NODE: its sender is connected and less than 1 s behind
	[ "$(jval "$1" syncclient connected)" = true ] &&
		awk -v l="$(jval "$1" syncclient lag_seconds)" 'BEGIN { exit !(l < 1.0) }'
}

# switch FROM TO: switchover run on TO; FROM ends as standby, TO primary.
switch() {
	sleep 2 # let the load run on FROM
	expect_exit 0 "$CTL" -c "$T/$2.conf" switchover --wait=30
	cat "$T/out"
	[ "$(jval "$1" node role)" = standby ] || fail "$1 is not a standby: $(jobj "$1" node)"
	[ "$(jval "$2" node role)" = primary ] || fail "$2 is not the primary: $(jobj "$2" node)"
	[ ! -f "$T/$1/load.pid" ] || fail "the freeze hook on $1 did not stop the load"
	[ -f "$T/$2/load.pid" ] || fail "the thaw hook on $2 did not start the load"
	expect_grep "drained" "$T/out"
	expect_grep "replicating to 127.0.0.1:[0-9]*: lag" "$T/out"
	wait_for 10 lag_ok "$2" || fail "lag on $2 not under 1 s: $(jobj "$2" syncclient)"
	ok "switchover $1 -> $2 under load: generation $(jval "$2" node generation), lag $(jval "$2" syncclient lag_seconds) s"
}

switch A B
tail -2 "$T/A/hooks.log" | tr '\n' ' ' | grep -q "freeze primary 1 demote standby 1" ||
	fail "A's hooks: $(cat "$T/A/hooks.log")"
tail -2 "$T/B/hooks.log" | tr '\n' ' ' | grep -q "promote primary 2 thaw primary 2" ||
	fail "B's hooks: $(cat "$T/B/hooks.log")"
switch B A

# A failed freeze aborts before anything changes: roles stay, B thaws.
printf '#!/bin/sh\n[ "$MDREPL_EVENT" = freeze ] && { echo "cannot stop the MTA" >&2; exit 1; }\nexit 0\n' \
	>"$T/A/hooks/05-fail"
chmod 0700 "$T/A/hooks/05-fail"
expect_exit 1 "$CTL" -c "$T/B.conf" switchover --wait=10
expect_grep "switchover aborted" "$T/err"
expect_grep "cannot stop the MTA" "$T/out"
[ "$(jval A node role)" = primary ] && [ "$(jval B node role)" = standby ] ||
	fail "roles changed by an aborted switchover"
tail -1 "$T/A/hooks.log" | grep -q "^thaw primary" || fail "A did not thaw: $(cat "$T/A/hooks.log")"
rm "$T/A/hooks/05-fail"
ok "a failing freeze hook aborts the switchover: roles unchanged, the primary thawed"

# Stop the load and compare: nothing lost, nothing twice.
MDREPL_EVENT=freeze "$T/A/hooks/10-load"
MDREPL_EVENT=freeze "$T/B/hooks/10-load"
wait_for 30 same_trees "$T/A/mail" "$T/B/mail" || fail "trees differ at the end"
bases "$T/A/mail" >"$T/final"
dups=$(uniq -d "$T/final" | head -5)
[ -z "$dups" ] || fail "messages present twice: $dups"
n=0
for f in "$T"/frozen.*; do
	missing=$(LC_ALL=C comm -23 "$f" "$T/final" | head -5)
	[ -z "$missing" ] || fail "messages lost ($f): $missing"
	n=$((n + 1))
done
[ "$n" -ge 4 ] || fail "only $n freeze snapshots"
ok "trees identical; $(wc -l <"$T/final") messages, none lost, none twice"

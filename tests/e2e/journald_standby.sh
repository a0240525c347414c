#!/bin/sh
# journald_standby.sh — on a standby journald writes nothing but answers
# on its control socket; when node.state is changed to primary (atomic
# rename, as mdreplctl promote does) it starts journaling within ~2 s;
# back to standby, it stops (with a stop record) and goes idle again.
. "$(dirname "$0")/journald_lib.sh"

# set_role ROLE: rewrites node.state by rename, as the real tools do.
set_role() {
	sed "s/^role=.*/role=$1/" "$N/state/node.state" >"$N/state/node.state.new"
	mv "$N/state/node.state.new" "$N/state/node.state"
}

jd_use node standby
M=$N/mail
mkdir -p "$M/bob/Maildir/cur" "$M/bob/Maildir/new" "$M/bob/Maildir/tmp"
jd_start
[ "$(jd_field role)" = standby ] || fail "role: $(cat "$N/status.json")"
[ "$(jd_field journaling)" = false ] || fail "journaling on a standby"
echo x >"$M/bob/Maildir/new/1.M1.host"
sleep 1.5
[ ! -e "$N/state/journal" ] || fail "a standby created $(ls -R "$N/state/journal")"
expect_exit 1 "$CTL" -c "$N/conf" notify bob/Maildir/new/1.M1.host
expect_grep "^error: this node is a standby" "$T/out"
ok "standby: idle, writes nothing, refuses notify"

set_role primary
wait_for 3 sh -c "'$CTL' -c '$N/conf' journal status | grep -q '\"journaling\":true'" ||
	fail "did not start journaling within 3 s: $(tail -3 "$N/journald.log")"
expect_grep "role changed: standby -> primary" "$N/journald.log"
echo y >"$M/bob/Maildir/new/2.M2.host"
wait_for 5 sh -c "'$CTL' -c '$N/conf' journal dump | grep -q 'create bob/Maildir/new/2.M2.host'" ||
	fail "no record for a delivery after the promotion"
jctl journal dump >"$N/dump"
expect_grep "^1 .* start clean$" "$N/dump"
ok "promoted by node.state: journals within 3 s"

set_role standby
wait_for 3 sh -c "'$CTL' -c '$N/conf' journal status | grep -q '\"journaling\":false'" ||
	fail "did not stop journaling"
jctl journal dump >"$N/dump"
tail -1 "$N/dump" | grep -q " stop$" || fail "no stop record: $(tail -2 "$N/dump")"
size=$(cat "$N/state/journal/"*.seg | wc -c)
echo z >"$M/bob/Maildir/new/3.M3.host"
sleep 1.2
[ "$(cat "$N/state/journal/"*.seg | wc -c)" = "$size" ] || fail "journal grew on a standby"
ok "demoted: clean stop record, idle again"

# Promoted again: the same journal goes on after its clean stop.
set_role primary
wait_for 3 sh -c "'$CTL' -c '$N/conf' journal dump | grep -c ' start clean$' | grep -qx 2" ||
	fail "no start record after the second promotion"
jd_stop
# What changed meanwhile (a standby's syncd writes) is journaled as a rescan.
jctl journal dump >"$N/dump"
expect_grep " rescan bob/Maildir$" "$N/dump"
tail -1 "$N/dump" | grep -q " stop$" || fail "no stop record at the end"
ok "promoted again: the journal goes on, changes made while standby are rescanned"

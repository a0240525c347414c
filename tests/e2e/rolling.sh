#!/bin/sh
# rolling.sh — rolling replication over TLS on loopback (issue 5):
# journald + syncclient --rolling on the primary, syncd on the standby.
# The initial full compare, then a load script delivering at a steady
# 200 operations/s for ROLLING_SECONDS (default 60) with flag changes,
# moves, copies, expunges and uidlist rewrites mixed in: the test reports
# delivery-to-durable-on-standby lag p50/p99, and afterwards the trees are
# identical with every message once. Then the wire cost of a flag change,
# copies linked rather than sent, and one huge message not holding up others.
. "$(dirname "$0")/lib.sh"

SECONDS_LOAD=${ROLLING_SECONDS:-60}
write_conf primary primary
write_conf standby standby
"$MAILGEN" populate "$T/primary/mail" --users 30 --messages 3000 --folders 4 --seed 21
start_syncd standby
set_peer primary "$PORT_standby"
# syncclient first, as units may race at boot: it waits for the journal,
# says so once (no error), and starts once journald has made it.
start syncclient_primary "$SYNCCLIENT" -c "$T/primary.conf" --rolling -f
wait_for 10 grep -q "waiting for mdrepl-journald" "$T/syncclient_primary.log" ||
	fail "syncclient did not say it waits for the journal: $(cat "$T/syncclient_primary.log")"
sleep 1
! grep -q "error:" "$T/syncclient_primary.log" || fail "a missing journal logged an error: $(cat "$T/syncclient_primary.log")"
[ "$(grep -c "waiting for mdrepl-journald" "$T/syncclient_primary.log")" = 1 ] ||
	fail "the wait for the journal was logged more than once"
start journald_primary "$JOURNALD" -c "$T/primary.conf" -f
wait_synced primary 60 || fail "initial compare did not finish: $(status_json primary)"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the initial compare"
ok "syncclient started before journald waited for the journal; initial full compare: identical"

"$MAILGEN" load "$T/primary/mail" --rate 200 --seconds "$SECONDS_LOAD" --seed 22 \
	--standby "$T/standby/mail" --standby-state "$T/standby/state" >"$T/load.out"
cat "$T/load.out"
grep -q 'not_durable=0 ' "$T/load.out" || fail "deliveries not durable on the standby"
wait_synced primary 60 || fail "replication did not catch up: $(status_json primary)"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the load"
unique_bases "$T/standby/mail" || fail "a message is duplicated on the standby"
ok "200 ops/s for ${SECONDS_LOAD}s: $(sed -n 's/^lag: //p' "$T/load.out"); trees identical"

# A flag change, each on its own (the worst case: one batch per change).
before=$(status_json primary | jnum wire_bytes_out)
n=0
for f in $(find "$T/primary/mail" -path '*/cur/*:2,S' | head -n 50); do
	mv "$f" "${f%S}RS"
	n=$((n + 1))
	sleep 0.02
done
wait_synced primary 30 || fail "flag changes did not replicate"
after=$(status_json primary | jnum wire_bytes_out)
per=$(((after - before) / n))
[ "$per" -lt 200 ] || fail "a flag change cost $per bytes on the wire"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the flag changes"
ok "a flag change costs $per bytes on the wire (TLS included)"

# A copy (a hard link, as Dovecot makes) is linked on the standby, not
# sent again: one made while the original is still on its way, and one
# made after the original was flagged from new/ into cur/ (the link names
# it where the standby has it now). Content goes once; nothing is needed.
u=$T/primary/mail/dom2/user2/Maildir
s0=$(status_json primary)
for i in 1 2; do
	head -c 10000000 /dev/urandom >"$u/tmp/big$i"
	mv "$u/tmp/big$i" "$u/new/1800000100.Mbig$i.test,S=10000000"
	[ "$i" = 1 ] || wait_synced primary 30 || fail "big$i did not replicate"
	mv "$u/new/1800000100.Mbig$i.test,S=10000000" "$u/cur/1800000100.Mbig$i.test,S=10000000:2,S"
	[ "$i" = 1 ] || wait_synced primary 30 || fail "big$i's flag did not replicate"
	ln "$u/cur/1800000100.Mbig$i.test,S=10000000:2,S" "$u/.Trash/cur/1800000101.Mbig$i.test,S=10000000:2,S"
done
wait_synced primary 30 || fail "the copies did not replicate"
s1=$(status_json primary)
links=$(($(echo "$s1" | jnum links) - $(echo "$s0" | jnum links)))
needs=$(($(echo "$s1" | jnum needs) - $(echo "$s0" | jnum needs)))
sent=$(($(echo "$s1" | jnum wire_bytes_out) - $(echo "$s0" | jnum wire_bytes_out)))
[ "$links" -ge 2 ] || fail "$links of 2 copies were linked"
[ "$needs" = 0 ] || fail "the standby needed content $needs times for the copies"
[ "$sent" -lt 21000000 ] || fail "$sent bytes sent for 20,000,000 bytes of content and two copies"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the copies"
ok "copies linked on the standby ($links links, $needs needs, $sent bytes for 20 MB of content)"

# A backlog (the standby was away, or the sender fell behind) becomes
# durable step by step: each acknowledgement closes the batch that filled
# meanwhile, even while the journal keeps the sender reading. It used to
# wait until the reader ran dry, so all of a backlog (or of a load the
# sender only just kept up with) waited for one batch at its end.
jhead() { part_num primary journald head_lsn; }
settled() { a=$(jhead); sleep 0.5; [ "$(jhead)" = "$a" ]; }
stop_daemon syncclient_primary
h0=$(jhead)
"$MAILGEN" burst "$T/primary/mail" --flags 30000 --deliver 0 --expunge 0 --move 0 --seed 23 >/dev/null
wait_for 30 settled || fail "journald did not settle after the burst: $(status_json primary)"
h1=$(jhead)
[ $((h1 - h0)) -ge 20000 ] || fail "the burst made $((h1 - h0)) journal records, not 20,000 or more"
start syncclient_primary "$SYNCCLIENT" -c "$T/primary.conf" --rolling -f
: >"$T/durable.seen"
end=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt "$end" ]; do
	d=$(part_num primary syncclient durable_lsn)
	echo "${d:-0}" >>"$T/durable.seen"
	[ "${d:-0}" -lt "$h1" ] || break
done
steps=$(awk -v a="$h0" -v b="$h1" '$1 > a && $1 < b' "$T/durable.seen" | sort -u | wc -l)
# Under the sanitizers each status call is slow enough to miss the whole
# replay (seen once in CI: the first answer was the end); that build is
# for memory errors, the optimized one checks the steps.
[ "$steps" -ge 2 ] || [ -n "${ASAN_OPTIONS:-}" ] ||
	fail "a backlog of $((h1 - h0)) records became durable in $steps steps: $(sort -un "$T/durable.seen" | tr '\n' ' ')"
wait_synced primary 60 || fail "the backlog did not replicate: $(status_json primary)"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the backlog"
ok "a backlog of $((h1 - h0)) records became durable in $steps steps on the way, not at its end"

# One huge message must not hold up everyone else: 10 small deliveries to
# another user, made after a 200 MB one, are on the standby before it.
big=$T/primary/mail/dom0/user0/Maildir
small=$T/primary/mail/dom1/user1/Maildir
head -c 200000000 /dev/urandom >"$big/tmp/huge"
mv "$big/tmp/huge" "$big/new/1800000000.Mhuge.test,S=200000000"
for i in 1 2 3 4 5 6 7 8 9 10; do
	printf 'Subject: small %s\n\nhello\n' "$i" >"$small/tmp/s$i"
	mv "$small/tmp/s$i" "$small/new/1800000001.Msmall$i.test"
done
sb=$T/standby/mail
wait_for 60 sh -c "[ \$(ls '$sb/dom1/user1/Maildir/new' | grep -c Msmall) -eq 10 ]" ||
	fail "small deliveries did not arrive"
[ ! -e "$sb/dom0/user0/Maildir/new/1800000000.Mhuge.test,S=200000000" ] ||
	fail "the small deliveries waited for the 200 MB message"
wait_synced primary 120 || fail "the 200 MB message did not arrive"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the large message"
ok "10 small deliveries to another user arrived before a 200 MB message made before them"

#!/bin/sh
# failover.sh — failover and rejoin over TLS on loopback (issue 6):
#  1. a pair A (primary) -> B (standby), all daemons on both nodes; load
#     on A, then kill -9 of every daemon on A;
#  2. promote --force on B (refused without --force while A cannot be
#     reached), load on B, a few messages delivered straight into A's tree
#     while A is cut off;
#  3. A's daemons restart: A is fenced (status says so), sends nothing to
#     B, and refuses B's replication (role); a stale primary is refused by
#     generation;
#  4. rejoin --dry-run changes nothing; rejoin merges: the trees become
#     identical, every message either side took is there exactly once, and
#     what B expunged stays expunged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pair_lib.sh"

pair_setup primary standby
"$MAILGEN" populate "$T/A/mail" --users 8 --messages 800 --folders 3 --big 0 --seed 21 >/dev/null
node_start B
node_start A
wait_for 30 caught_up A || fail "A did not catch up: $(jobj A syncclient)"
wait_for 20 same_trees "$T/A/mail" "$T/B/mail" || fail "initial replication incomplete"
ok "pair running: A primary replicating to B"

# --- 1. load on A, then A dies ---------------------------------------------
"$MAILGEN" load "$T/A/mail" --rate 150 --seconds 4 --seed 22 >"$T/loadA.out" &
loadpid=$!
sleep 2.5
t_crash_ns=$(date +%s%N)
node_crash A
wait "$loadpid"
ok "kill -9 of every daemon on A under load ($(cat "$T/loadA.out"))"

# --- 2. promote B ------------------------------------------------------------
expect_exit 1 "$CTL" -c "$T/B.conf" promote
expect_grep "cannot be reached" "$T/err"
expect_exit 0 "$CTL" -c "$T/B.conf" promote --force
cat "$T/out"
expect_grep "promoted: primary, generation 1 -> 2" "$T/out"
[ "$(jval B node role)" = primary ] || fail "B is not primary"
expect_grep "promote primary 2" "$T/B/hooks.log"
expect_exit 0 "$CTL" -c "$T/B.conf" promote --force
expect_grep "already the primary" "$T/out"
ok "promote --force on B: generation 2, hooks ran; a second promote says so"
bases "$T/B/mail" >"$T/b.promoted"
"$MAILGEN" load "$T/B/mail" --rate 150 --seconds 3 --seed 23 >/dev/null
for i in 1 2 3 4 5; do
	deliver "$T/A/mail" dom1/user1/Maildir "cutoff$i.host,S=60"
done
deliver "$T/A/mail" dom1/user1/Maildir/.Sent "cutoff6.host,S=60"
printf 'cutoff%s.host,S=60\n' 1 2 3 4 5 6 | LC_ALL=C sort >"$T/cutoff"

# --- 3. A comes back, fenced -------------------------------------------------
node_start A with-syncd
a_fenced() { [ "$(jval A node fenced)" = true ]; }
b_refused() { jobj B syncclient | grep -q 'is the primary'; }
a_refused() { [ "$(jval A syncd refused)" -ge 1 ]; }
wait_for 20 a_fenced ||
	fail "A does not say it is fenced: $(jobj A node) $(jobj A syncclient)"
[ "$(jval A syncclient state)" = fenced ] || fail "A's syncclient is not fenced: $(jobj A syncclient)"
"$CTL" -c "$T/A.conf" status >"$T/status.A"
expect_grep "FENCED" "$T/status.A"
# B's sender is refused by A (A still calls itself primary).
wait_for 15 b_refused ||
	fail "B's syncclient was not refused by A: $(jobj B syncclient)"
bases "$T/B/mail" >"$T/b.before"
[ -z "$(LC_ALL=C comm -12 "$T/cutoff" "$T/b.before")" ] || fail "A's cut-off mail reached B"
ok "A restarted: fenced (status says so), sends nothing, refuses B's replication"

# S: a stale primary of generation 1, for the fencing check at the end.
write_conf S primary
sed -i "s|^address = 127.0.0.1:1$|address = 127.0.0.1:$PORT_A|" "$T/S.conf"

# --- 4. rejoin -------------------------------------------------------------------
expect_exit 0 "$CTL" -c "$T/A.conf" rejoin --dry-run
cat "$T/out"
expect_grep "would recover   dom1/user1/Maildir/new/cutoff1.host,S=60" "$T/out"
[ "$(jval A node role)" = primary ] || fail "rejoin --dry-run changed the role"
bases "$T/A/mail" >"$T/a.before"
expect_exit 0 "$CTL" -c "$T/A.conf" rejoin
cat "$T/out"
expect_grep "now a standby of 127.0.0.1:$PORT_B: generation 1 -> 2" "$T/out"
expect_grep "rejoin standby 2" "$T/A/hooks.log"
[ "$(jval A node fenced)" = false ] || fail "A is still fenced"
wait_for 60 same_trees "$T/A/mail" "$T/B/mail" || fail "trees differ after rejoin"
ok "rejoin: A follows B, trees identical"

bases "$T/A/mail" >"$T/final"
dups=$(uniq -d "$T/final" | head -5)
[ -z "$dups" ] || fail "messages present twice: $dups"
missing=$(LC_ALL=C comm -23 "$T/cutoff" "$T/final")
[ -z "$missing" ] || fail "A's cut-off deliveries lost: $missing"
missing=$(LC_ALL=C comm -23 "$T/b.before" "$T/final" | head -5)
[ -z "$missing" ] || fail "B's messages lost: $missing"
# Everything A had is there, except what B expunged.
LC_ALL=C comm -23 "$T/b.promoted" "$T/b.before" >"$T/expunged"
missing=$(LC_ALL=C comm -23 "$T/a.before" "$T/final" | LC_ALL=C comm -23 - "$T/expunged" | head -5)
[ -z "$missing" ] || fail "messages A had are lost: $missing"
# What B expunged stays expunged, unless A touched it after its journal
# stopped watching (then the journal cannot tell, and it is kept).
back=0
for b in $(LC_ALL=C comm -12 "$T/expunged" "$T/final"); do
	f=$(find "$T/A/mail" -name "$b*" | head -1)
	c=$(stat -c %Z "$f")
	[ $((c * 1000000000)) -ge $((t_crash_ns - 5000000000)) ] ||
		fail "$b was expunged on B but came back"
	back=$((back + 1))
done
grep -q cutoff1 "$T/out" || fail "the report does not list the recovered mail"
n=$(find "$T/A/mail/dom1/user1/Maildir/.Recovered" -type f -name 'cutoff*' | wc -l)
[ "$n" = 6 ] || fail "$n cut-off messages in Recovered, expected 6"
ok "every message either side took is there once; $(wc -l <"$T/expunged") expunged on B stay gone ($back touched on A since kept); cut-off mail in Recovered"

# --- the old primary's generation is refused --------------------------------
expect_exit 1 "$SYNCCLIENT" -c "$T/S.conf" --all
expect_grep "generation" "$T/err"
wait_for 5 a_refused || fail "A's syncd did not count a refusal"
ok "a stale primary (generation 1) is refused by the standby of generation 2"

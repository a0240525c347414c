#!/bin/sh
# fullsync.sh — one-shot full sync over TLS on loopback (issue 4):
#  1. 200 users, 20,000 messages with Maildir++ folders and metadata,
#     synced to an empty standby: the trees are identical (names, bytes,
#     mtimes to the nanosecond, modes);
#  2. a burst (flag renames, deliveries, expunges, moves) and a folder
#     rename, then a second sync: identical again, and the only content
#     sent is what the standby lacked — no renamed or moved message's body;
#  3. kill -9 of syncd in the middle of a full sync: no partial file is
#     visible in cur/ or new/, and after a restart a rerun converges.
. "$(dirname "$0")/lib.sh"

USERS=${FULLSYNC_USERS:-200}
MESSAGES=${FULLSYNC_MESSAGES:-20000}

write_conf primary primary
write_conf standby standby
"$MAILGEN" populate "$T/primary/mail" --users "$USERS" --messages "$MESSAGES" --folders 4 \
	--big 0 --seed 11
start_syncd standby
SYNC="$SYNCCLIENT -c $T/primary.conf -o peer.address=127.0.0.1:$PORT_standby"

# Bodies deflated whatever the link (auto would not on loopback), so the
# standby's inflate path is exercised end to end.
$SYNC -o sync.compress=always --all >"$T/sync1.out" 2>"$T/sync1.err" || fail "first sync: $(cat "$T/sync1.err")"
cat "$T/sync1.out"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the first sync"
files=$(grep -c '^F' "$T/manifest.a")
ok "full sync of $files files to an empty standby: identical (names, bytes, ns mtimes, modes)"

# --- a burst, and a folder rename ---------------------------------------
bases() { # message base names under $1, one per line, sorted
	find "$1" -path '*/cur/*' -o -path '*/new/*' | sed -e 's|.*/||' -e 's|:.*||' | LC_ALL=C sort -u
}
bases "$T/standby/mail" >"$T/bases.before"
"$MAILGEN" burst "$T/primary/mail" --flags 1000 --deliver 500 --expunge 200 --move 100 --seed 12
u=$T/primary/mail/dom1/user1/Maildir
mv "$u/.Sent" "$u/.SentRenamed"
# A large message, in the user compared last: sent a chunk at a time and
# still in flight when the sync drains (it must be committed all the same).
last=$(find "$T/primary/mail" -type d -name Maildir | LC_ALL=C sort | tail -n 1)
head -c 5000000 /dev/urandom >"$last/tmp/big"
mv "$last/tmp/big" "$last/new/1800000000.Mbig.test,S=5000000"
bases "$T/primary/mail" >"$T/bases.after"
new=$(LC_ALL=C comm -13 "$T/bases.before" "$T/bases.after" | wc -l)
# metadata files the standby lacks or has otherwise (the renamed folder's)
manifest "$T/primary/mail" | grep '^F' | grep -v -e '/cur/' -e '/new/' >"$T/meta.p"
manifest "$T/standby/mail" | grep '^F' | grep -v -e '/cur/' -e '/new/' >"$T/meta.s"
meta=$(LC_ALL=C comm -23 "$T/meta.p" "$T/meta.s" | wc -l)

$SYNC --all >"$T/sync2.out" 2>"$T/sync2.err" || fail "second sync: $(cat "$T/sync2.err")"
cat "$T/sync2.out"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the burst sync"
sent=$(sed -n 's/.*sent \([0-9]*\) files.*/\1/p' "$T/sync2.out")
renamed=$(sed -n 's/.*renamed \([0-9]*\),.*/\1/p' "$T/sync2.out")
[ "$sent" = $((new + meta)) ] ||
	fail "sent $sent files, but only $new new messages and $meta metadata files were missing"
[ "$renamed" -ge 500 ] || fail "only $renamed renames for 1000 flag changes, 100 moves and a folder rename"
ok "burst: sent exactly the $new new messages and $meta metadata files, $renamed renames"

# --- kill -9 of syncd during a full sync ----------------------------------
rm -rf "$T/standby/mail" "$T/standby/state/digest.cache"
mkdir "$T/standby/mail"
crash syncd_standby
start_syncd standby
SYNC="$SYNCCLIENT -c $T/primary.conf -o peer.address=127.0.0.1:$PORT_standby"
$SYNC --all >"$T/sync3.out" 2>&1 &
syncpid=$!
# Kill syncd once a good part of the tree has arrived.
wait_for 60 sh -c "[ \$(find '$T/standby/mail' -path '*/cur/*' -type f | wc -l) -ge $((MESSAGES / 4)) ]" ||
	fail "the sync made no progress: $(cat "$T/sync3.out")"
crash syncd_standby
wait "$syncpid" && fail "syncclient succeeded although syncd was killed"
# Every message file visible on the standby is complete: same bytes as
# the primary's file of that name.
(cd "$T/standby/mail" && find . -path '*/cur/*' -type f -o -path '*/new/*' -type f) >"$T/visible"
(cd "$T/standby/mail" && tr '\n' '\0' <"$T/visible" | xargs -0 sha256sum) >"$T/visible.s"
(cd "$T/primary/mail" && tr '\n' '\0' <"$T/visible" | xargs -0 sha256sum) >"$T/visible.p"
cmp -s "$T/visible.s" "$T/visible.p" ||
	fail "a partial file was visible after kill -9: $(diff "$T/visible.s" "$T/visible.p" | head -3)"
ok "kill -9 of syncd mid-sync: $(wc -l <"$T/visible") files visible, every one complete"
start_syncd standby
SYNC="$SYNCCLIENT -c $T/primary.conf -o peer.address=127.0.0.1:$PORT_standby"
$SYNC --all >"$T/sync4.out" 2>"$T/sync4.err" || fail "sync after restart: $(cat "$T/sync4.err")"
cat "$T/sync4.out"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the rerun"
[ -z "$(ls -A "$T/standby/mail/.mdrepl-tmp" 2>/dev/null)" ] || fail "staging files left behind"
ok "after a restart, a rerun converges and leaves no staging files"

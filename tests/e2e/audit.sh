#!/bin/sh
# audit.sh — mdreplctl audit on a replicated store (issue 7):
#  1. 20,000 messages synced over TLS: the audit exits 0, and the bytes on
#     the wire are under 1% of the store's; a second audit is answered from
#     the digest caches (no folder listed again on either side);
#  2. the standby damaged five ways (a message deleted, a flag changed, a
#     metadata file removed, a stray file in cur/ — in one folder — and one
#     byte altered with size and mtime kept in another user's folder): a
#     shallow audit reports four of them but not the altered byte, --deep
#     all five (the altered byte from the deep digests of a folder that
#     is otherwise alike); both exit 1; with rolling replication running
#     they are settled differences, and --json says so;
#  3. audit --deep --repair queues rescans through journald and waits for
#     the rolling engine: a following audit --deep exits 0 (with under 1%
#     of the store on the wire too) and the trees are identical;
#  4. --user, --rate-limit (paced, and still clean), usage errors, and a
#     standby that says the audit is not its job;
#  5. without rolling replication: the report says so, and --repair leaves
#     its rescans in the journal for the rolling engine, which carries them
#     out once it runs again; without journald a repair fails (exit 2) but
#     the differences are still reported.
. "$(dirname "$0")/lib.sh"

USERS=${AUDIT_USERS:-200}
MESSAGES=${AUDIT_MESSAGES:-20000}

audit_pair "$USERS" "$MESSAGES" 21
AUDIT="$CTL -c $T/primary.conf audit"

# field NAME FILE: a number or string from a one-line JSON report.
field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$2" | head -1
}

# --- 1. clean -------------------------------------------------------------
store=$(find "$T/primary/mail" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
messages=$(find "$T/primary/mail" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l)
[ "$messages" -ge $((MESSAGES * 9 / 10)) ] || fail "only $messages messages populated"
expect_exit 0 $AUDIT --json
cp "$T/out" "$T/clean1.json"
wire=$(($(field client_wire_in "$T/out") + $(field client_wire_out "$T/out")))
[ "$(field messages "$T/out")" = "$messages" ] || fail "compared $(field messages "$T/out") messages, not $messages"
[ "$((wire * 100))" -lt "$store" ] || fail "clean audit moved $wire bytes for a $store-byte store (>= 1%)"
# The first audit came right after the sync: stamps younger than 2 s are
# not cached. Past that, a second audit lists nothing at all.
sleep 2.1
expect_exit 0 $AUDIT >/dev/null
expect_exit 0 $AUDIT --json
cp "$T/out" "$T/clean3.json"
folders=$(field folders "$T/out")
[ "$(field digest_cache_hits "$T/out")" = "$folders" ] ||
	fail "unchanged store: $(field digest_cache_hits "$T/out") cache hits for $folders folders"
[ "$(field folders_listed "$T/out")" = 0 ] || fail "unchanged store: folders were listed"
expect_exit 0 $AUDIT
head -1 "$T/out"
grep -q "^audit: $messages messages in $folders folders compared, 0 differences, [0-9.]* [KM]\{0,1\}B on the wire, [0-9.]* s\$" "$T/out" ||
	fail "summary line: $(cat "$T/out")"
ok "clean: $messages messages, $wire bytes on the wire for a $store-byte store ($(awk "BEGIN {printf \"%.3f\", $wire * 100 / $store}")%), $(field seconds "$T/clean3.json") s with warm caches"

# --- 2. damage --------------------------------------------------------------
start_primary primary
wait_synced primary 60 || fail "rolling replication did not catch up: $(status_json primary)"

S=$(echo "$T"/standby/mail/dom*/user1/Maildir)
[ -d "$S/cur" ] || fail "no $S/cur"
rel=${S#"$T/standby/mail/"}
S2=$(echo "$T"/standby/mail/dom*/user2/Maildir/.Sent)
rel2=${S2#"$T/standby/mail/"}
set -- $(ls "$S/cur" | head -2)
deleted=$1 flagged=$2
altered=$(ls "$S2/cur" | head -1)
rm "$S/cur/$deleted"
mv "$S/cur/$flagged" "$S/cur/${flagged%%:*}:2,Z"
cp -p "$S2/cur/$altered" "$T/ref"
old=$(dd if="$S2/cur/$altered" bs=1 skip=100 count=1 2>/dev/null)
new=A
[ "$old" != A ] || new=B
printf '%s' "$new" | dd of="$S2/cur/$altered" bs=1 seek=100 conv=notrunc 2>/dev/null
touch -r "$T/ref" "$S2/cur/$altered"
cmp -s "$S2/cur/$altered" "$T/ref" && fail "the byte was not altered"
rm "$S/dovecot-uidlist"
echo "stray" >"$S/cur/1700000000.M1P1.stray"

# has KIND PATH: the last JSON report lists that difference.
has() {
	grep -q "{\"kind\":\"$1\",\"path\":\"$2\"" "$T/out" ||
		fail "no $1 difference for $2 in: $(cat "$T/out")"
}
expect_exit 1 $AUDIT --json
has missing "$rel/cur/$deleted"
has flags "$rel/cur/$flagged"
has metadata "$rel/dovecot-uidlist"
has extra "$rel/cur/1700000000.M1P1.stray"
grep -q '"kind":"content"' "$T/out" && fail "a shallow audit saw the altered byte: $(cat "$T/out")"
[ "$(field differences "$T/out")" = 4 ] || fail "expected 4 differences: $(cat "$T/out")"
grep -q '"settle":{"replication_running":true,"settled":true' "$T/out" ||
	fail "the differences were not re-checked after replication settled: $(cat "$T/out")"
ok "shallow audit: missing, flags, metadata, extra; not the altered byte; settled"

expect_exit 1 $AUDIT --deep --json
has missing "$rel/cur/$deleted"
has content "$rel2/cur/$altered"
grep -q "\"path\":\"$rel2/cur/$altered\",\"folder\":\"$rel2\",\"by_hash\":true" "$T/out" ||
	fail "the altered byte is not a content difference by hash: $(cat "$T/out")"
[ "$(field differences "$T/out")" = 5 ] || fail "expected 5 differences: $(cat "$T/out")"
expect_exit 1 $AUDIT --deep
grep -q "^content  *$rel2/cur/$altered (same size, other SHA-256)\$" "$T/out" ||
	fail "text report: $(cat "$T/out")"
ok "deep audit: all five differences, the altered byte by its hash"

# --- 3. repair --------------------------------------------------------------
expect_exit 1 $AUDIT --deep --repair
cat "$T/out"
grep -q "^repaired 5 differences: 2 folders rescanned (1 deep), replication caught up at lsn [0-9]*\$" "$T/out" ||
	fail "repair report: $(cat "$T/out")"
"$CTL" -c "$T/primary.conf" journal dump >"$T/dump"
expect_grep " rescan $rel subtree\$" "$T/dump"
expect_grep " rescan $rel2 subtree deep\$" "$T/dump"
expect_exit 0 $AUDIT --deep --json
wire=$(($(field client_wire_in "$T/out") + $(field client_wire_out "$T/out")))
[ "$((wire * 100))" -lt "$store" ] || fail "clean deep audit moved $wire bytes (>= 1% of $store)"
[ "$(field hashed_bytes "$T/out")" = "$(field message_bytes "$T/out")" ] || fail "deep audit did not hash every message here: $(cat "$T/out")"
deepwire=$wire
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the repair"
ok "repair through the journal and the rolling engine: audit --deep clean ($deepwire bytes on the wire), trees identical"

# --- 4. --user, usage, standby ----------------------------------------------
expect_exit 0 $AUDIT --user "$rel" --json
[ "$(field folders "$T/out")" -ge 5 ] || fail "--user compared too little: $(cat "$T/out")"
expect_exit 0 $AUDIT --user "$T/primary/mail/$rel/"
expect_grep "^audit of $rel: " "$T/out"
expect_exit 0 $AUDIT --user "$rel" --deep --rate-limit 2M --json
bytes=$(field message_bytes "$T/out")
[ "$(field hashed_bytes "$T/out")" = "$bytes" ] || fail "--deep --user hashed $(field hashed_bytes "$T/out") of $bytes bytes"
awk "BEGIN {exit !($(field seconds "$T/out") >= $bytes / 2097152 * 0.9)}" ||
	fail "--rate-limit 2M: $bytes bytes hashed in $(field seconds "$T/out") s"
awk "BEGIN {exit !($(field paced_seconds "$T/out") > 0)}" || fail "--rate-limit never waited: $(cat "$T/out")"
expect_exit 2 $AUDIT --user nosuchdom/nosuchuser
expect_grep "no such folder" "$T/err"
expect_exit 2 $AUDIT --user ../x
expect_exit 2 $AUDIT --user "$rel/cur"
expect_grep "is not a folder" "$T/err"
expect_exit 2 $AUDIT --rate-limit lots
expect_exit 2 $AUDIT --bogus
expect_exit 2 $AUDIT extra-argument
expect_exit 0 "$CTL" -c "$T/standby.conf" audit
expect_grep "standby; the audit runs on the primary" "$T/out"
ok "--user (relative or absolute), --rate-limit paces --deep, usage errors exit 2, a standby exits 0"

# --- 5. without rolling replication -------------------------------------------
crash syncclient_primary
rm "$S/new/"* 2>/dev/null || rm "$S/cur/$(ls "$S/cur" | head -1)"
expect_exit 1 $AUDIT
expect_grep "^note: replication was not running (mdrepl-syncclient is not running)" "$T/out"
expect_exit 1 $AUDIT --repair
expect_grep "^repair queued: 1 folder rescanned (0 deep) up to lsn [0-9]*, but mdrepl-syncclient is not running" "$T/out"
start syncclient_primary "$SYNCCLIENT" -c "$T/primary.conf" --rolling -f
wait_synced primary 60 || fail "rolling replication did not catch up after its restart"
expect_exit 0 $AUDIT
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the queued repair"
ok "replication stopped: reported as such; a queued repair is carried out once it runs"

crash journald_primary
echo "stray" >"$S/cur/1700000001.M2P2.stray"
expect_exit 2 $AUDIT --repair
expect_grep "^extra  *$rel/cur/1700000001.M2P2.stray\$" "$T/out"
expect_grep "^repair failed: cannot queue the repair (is mdrepl-journald running?)" "$T/out"
ok "without journald: the repair fails with exit 2, the difference is still reported"

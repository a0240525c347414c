#!/bin/sh
# journald_notify.sh — `mdreplctl notify` (a file, a missing file, a
# directory, paths outside mail_root refused), `journal rescan`, `journal dump`
# (format, --from, --follow ending on SIGINT, corruption reported with
# file and offset), and the daemon-not-running message.
. "$(dirname "$0")/journald_lib.sh"

jd_use node
M=$N/mail
mkdir -p "$M/bob/Maildir/cur" "$M/bob/Maildir/new" "$M/bob/Maildir/tmp"
echo hello >"$M/bob/Maildir/cur/1.M1.host:2,S"
echo uids >"$M/bob/Maildir/dovecot-uidlist"

expect_exit 1 "$CTL" -c "$N/conf" notify "$M/bob/Maildir/cur/1.M1.host:2,S"
expect_grep "cannot reach mdrepl-journald: cannot connect to $N/state/journald.sock" "$T/err"
ok "notify without journald names the socket and exits 1"

jd_start
expect_exit 0 "$CTL" -c "$N/conf" notify "$M/bob/Maildir/cur/1.M1.host:2,S"
expect_grep "^ok create bob/Maildir/cur/1.M1.host:2,S$" "$T/out"
expect_exit 0 "$CTL" -c "$N/conf" notify bob/Maildir/dovecot-uidlist
expect_grep "^ok meta_changed bob/Maildir/dovecot-uidlist$" "$T/out"
expect_exit 0 "$CTL" -c "$N/conf" notify "$M/bob/Maildir/new/2.M2.host"
expect_grep "^ok unlink bob/Maildir/new/2.M2.host$" "$T/out"
expect_exit 0 "$CTL" -c "$N/conf" notify "$M/bob/Maildir/" "$M/bob/Maildir/cur"
expect_grep "^ok rescan bob/Maildir$" "$T/out"
[ "$(grep -c "^ok rescan bob/Maildir$" "$T/out")" = 2 ] || fail "cur/ should rescan its folder"
ok "notify: file, metadata, missing file, directory"

expect_exit 1 "$CTL" -c "$N/conf" notify /etc/passwd
expect_grep "^error: /etc/passwd: not under mail_root $M$" "$T/out"
expect_exit 1 "$CTL" -c "$N/conf" notify "$M/../x" "bob/../../etc"
expect_grep "^error: $M/../x: " "$T/out"
expect_grep "^error: bob/../../etc: " "$T/out"
echo partial >"$M/bob/Maildir/tmp/3.M3"
expect_exit 1 "$CTL" -c "$N/conf" notify "${M}2/bob" "$M/bob/Maildir/tmp/3.M3" bob/Maildir/tmp/4.M4
expect_grep "not under mail_root" "$T/out"
expect_grep "^error: $M/bob/Maildir/tmp/3.M3: not replicated" "$T/out"
expect_grep "^error: bob/Maildir/tmp/4.M4: does not exist and is not a replicated name" "$T/out"
expect_exit 2 "$CTL" -c "$N/conf" notify
ok "notify refuses paths outside mail_root, with .., and in tmp/"

expect_exit 0 "$CTL" -c "$N/conf" journal rescan "$M/bob"
expect_grep "^ok rescan subtree bob$" "$T/out"
jctl journal dump >"$N/dump"
grep -Eq '^1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z start clean$' "$N/dump" ||
	fail "dump format: $(head -3 "$N/dump")"
expect_grep " create bob/Maildir/cur/1.M1.host:2,S$" "$N/dump"
expect_grep " unlink bob/Maildir/new/2.M2.host$" "$N/dump"
expect_grep " rescan bob subtree$" "$N/dump"
n=$(wc -l <"$N/dump")
expect_exit 0 "$CTL" -c "$N/conf" journal dump --from 3
[ "$(head -1 "$T/out" | cut -d' ' -f1)" = 3 ] || fail "--from 3 starts at $(head -1 "$T/out")"
[ "$(wc -l <"$T/out")" = $((n - 2)) ] || fail "--from 3 printed $(wc -l <"$T/out") of $n"
ok "journal dump and --from"

# A name with a newline and a byte that is not ASCII is escaped.
name=$(printf 'odd\nname\351')
echo x >"$M/bob/Maildir/cur/$name"
wait_for 5 sh -c "'$CTL' -c '$N/conf' journal dump | grep -q 'cur/odd\\\\x0aname\\\\xe9'" ||
	fail "non-printable bytes not escaped: $(jctl journal dump | tail -2)"
ok "dump escapes non-printable bytes"

"$CTL" -c "$N/conf" journal dump --follow >"$N/follow" 2>&1 &
fpid=$!
PIDS="$PIDS $fpid"
wait_for 5 grep -q "start clean" "$N/follow" || fail "--follow printed nothing"
expect_exit 0 "$CTL" -c "$N/conf" notify bob/Maildir/new/99.M99.host
wait_for 5 grep -q "unlink bob/Maildir/new/99.M99.host" "$N/follow" ||
	fail "--follow did not show a new record"
kill -INT "$fpid"
st=0
wait "$fpid" || st=$?
[ "$st" = 0 ] || fail "dump --follow exited $st on SIGINT"
ok "journal dump --follow shows new records and exits 0 on SIGINT"

jd_stop
seg=$(ls "$N/state/journal/"*.seg | head -1)
# Flip a byte in the path of the second record (header 48 + first 41).
printf 'Z' | dd of="$seg" bs=1 seek=$((48 + 41 + 40)) conv=notrunc 2>/dev/null
expect_exit 1 "$CTL" -c "$N/conf" journal dump
expect_grep "journal corrupt: $seg: offset 89: record fails its checksum" "$T/err"
expect_exit 1 "$JOURNALD" -c "$N/conf" -f
expect_grep "journal corrupt: $seg: offset 89" "$T/err"
expect_grep "move $N/state/journal aside" "$T/err"
ok "corruption is reported with file and offset by dump and by journald"

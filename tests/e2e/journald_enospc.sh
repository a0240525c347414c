#!/bin/sh
# journald_enospc.sh — a full state disk: appends fail, journald says so
# (log, last_error in status) and keeps running; once there is space again
# its first record is a full rescan, so the failure leaves no silent gap.
# The state directory is a small tmpfs (needs root).
. "$(dirname "$0")/journald_lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root to mount a tmpfs"
	exit 77
fi
jd_use node
if ! mount -t tmpfs -o size=256k,mode=0700 tmpfs "$N/state" 2>/dev/null; then
	echo "SKIP: cannot mount a tmpfs here"
	exit 77
fi
unmount() {
	[ -z "$JD_PID" ] || kill -9 "$JD_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	umount "$N/state" 2>/dev/null || umount -l "$N/state" 2>/dev/null || true
}
trap 'unmount; cleanup' EXIT

M=$N/mail
mkdir -p "$M/bob/Maildir/cur" "$M/bob/Maildir/new" "$M/bob/Maildir/tmp"
jd_start
dd if=/dev/zero of="$N/state/filler" bs=4k 2>/dev/null || true
i=0
until grep -q "cannot journal" "$N/journald.log"; do
	i=$((i + 1))
	[ $i -le 300 ] || fail "appends never failed on a full disk"
	echo x >"$M/bob/Maildir/new/$i.M$i.host"
	sleep 0.01
done
jd_status || fail "journald stopped answering on a full disk"
expect_grep "No space left on device" "$N/status.json"
expect_grep "a full rescan follows once the journal works again" "$N/journald.log"
ok "a full state disk is reported and journald keeps running"

rm -f "$N/state/filler"
echo y >"$M/bob/Maildir/new/last.M0.host"
wait_for 5 sh -c "'$CTL' -c '$N/conf' journal dump | grep -q 'create bob/Maildir/new/last.M0.host'" ||
	fail "nothing journaled after space came back"
jctl journal dump >"$N/dump"
grep -B1 "create bob/Maildir/new/last.M0.host" "$N/dump" | head -1 | grep -q " rescan \. subtree$" ||
	fail "no full rescan before the first record after the failure: $(tail -3 "$N/dump")"
jd_stop
ok "space back: a full rescan first, then journaling goes on"

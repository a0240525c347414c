#!/bin/sh
# nonroot.sh — every daemon runs as an unprivileged mail user (uid 65534
# here) when the whole mail tree and the state directories belong to that
# user, as with a single virtual-mail uid (docs/security.md, "Running
# without root"): full sync, rolling replication of a burst, status as
# that user and as root; the state files stay the user's. Needs root to
# switch users (skipped otherwise).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "skipped: needs root to run the daemons as another user"; exit 77; }
command -v setpriv >/dev/null || { echo "skipped: no setpriv"; exit 77; }
MAILUID=65534

# as PROGRAM: a wrapper that runs PROGRAM as the mail user.
mkdir -p "$T/bin"
as() {
	printf '#!/bin/sh\nexec setpriv --reuid=%s --regid=%s --clear-groups %s "$@"\n' \
		"$MAILUID" "$MAILUID" "$1" >"$T/bin/$(basename "$1")"
	chmod 755 "$T/bin/$(basename "$1")"
	echo "$T/bin/$(basename "$1")"
}
chmod 755 "$T" "$T/bin"
write_conf primary primary
write_conf standby standby
"$MAILGEN" populate "$T/primary/mail" --users 5 --messages 200 --folders 2 --big 0 --seed 3
chown -R "$MAILUID:$MAILUID" "$T/primary" "$T/standby" "$T/certs"
SYNCD=$(as "$SYNCD")
JOURNALD=$(as "$JOURNALD")
SYNCCLIENT=$(as "$SYNCCLIENT")
USERCTL=$(as "$CTL")
USERGEN=$(as "$MAILGEN")

start_syncd standby
set_peer primary "$PORT_standby"
"$SYNCCLIENT" -c "$T/primary.conf" --all >"$T/full.out" 2>&1 ||
	fail "full sync as uid $MAILUID: $(tail -3 "$T/full.out")"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the full sync"
ok "full sync with both daemons as uid $MAILUID"

start_primary primary
wait_synced primary 30 || fail "rolling replication did not start: $(tail -3 "$T/syncclient_primary.log")"
"$USERGEN" burst "$T/primary/mail" --flags 50 --deliver 50 --expunge 20 --move 10 --seed 4 >/dev/null
wait_synced primary 30 || fail "rolling replication did not catch up"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the burst"
ok "rolling replication of a burst with journald, syncclient and syncd as uid $MAILUID"

"$USERCTL" -c "$T/primary.conf" status >"$T/st.user" || fail "status as uid $MAILUID"
"$CTL" -c "$T/primary.conf" status >"$T/st.root" || fail "status as root"
expect_grep "syncclient   connected" "$T/st.user"
expect_grep "syncclient   connected" "$T/st.root"
others=$(find "$T/primary/state" "$T/standby/state" "$T/standby/mail" ! -user "$MAILUID" | head -3)
[ -z "$others" ] || fail "files not owned by uid $MAILUID: $others"
ok "status as uid $MAILUID and as root; every state and mail file belongs to uid $MAILUID"

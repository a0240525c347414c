#!/bin/sh
# compress_auto.sh — [sync] compress = auto (issue 10):
#  1. a standby on another host (syncd in a network namespace of its own,
#     reached over a veth pair) behind a link limited to a few MB/s by
#     nftables: a full sync deflates while its output backs up and puts
#     markedly fewer bytes on the wire than the mail;
#  2. a standby on this host, made slower than the link (its syncd stopped
#     and resumed over and over, so output backs up): nothing is deflated,
#     the bytes on the wire are about the mail's. On one host the link is
#     memory and the two daemons share the CPU: deflating there only took
#     CPU from the standby and gave it inflating to do on top.
# Needs root, ip netns and nft (skipped otherwise).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "skipped: needs root for namespaces and nftables"; exit 77; }
command -v nft >/dev/null || { echo "skipped: no nft"; exit 77; }
command -v ip >/dev/null || { echo "skipped: no ip"; exit 77; }
NS=mdrepl$$
TABLE=mdrepl_e2e_$$
NET=10.231.$(($$ % 250)).
teardown() { # set -e applies in traps: nothing here may fail
	nft delete table inet "$TABLE" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	ip link del "mdr$$a" 2>/dev/null || true
}
trap 'cleanup; teardown' EXIT
ip netns add "$NS" 2>/dev/null || { echo "skipped: cannot make a network namespace"; exit 77; }
ip link add "mdr$$a" type veth peer name "mdr$$b" netns "$NS" &&
	ip addr add "${NET}1/30" dev "mdr$$a" && ip link set "mdr$$a" up &&
	ip netns exec "$NS" ip addr add "${NET}2/30" dev "mdr$$b" &&
	ip netns exec "$NS" ip link set "mdr$$b" up &&
	ip netns exec "$NS" ip link set lo up || fail "cannot set up the veth pair"
nft add table inet "$TABLE" || { echo "skipped: nftables unusable here"; exit 77; }

write_conf primary primary
write_conf standby standby
write_conf far standby
sed -i -e "/^\[listen\]/,/^\[/ s|^address = .*|address = ${NET}2:0|" \
	-e "s|/far\.crt|/standby.crt|; s|/far\.key|/standby.key|" "$T/far.conf" # the standby's certificate
"$MAILGEN" populate "$T/primary/mail" --users 10 --messages 1500 --folders 2 --big 0 --seed 51
mail=$(du -sb "$T/primary/mail" | cut -f1)

# Bytes to a port (TCP payload and headers), counted by nftables.
nft add chain inet "$TABLE" in '{ type filter hook input priority 0; policy accept; }'
wire() {
	nft list chain inet "$TABLE" in |
		awk -v p="dport $1 counter" 'index($0, p) { for (i = 1; i < NF; i++) if ($i == "bytes") s += $(i + 1) } END { print s + 0 }'
}

# --- 1. another host, behind a slow link -----------------------------------
rm -f "$T/far/state/syncd.port"
start syncd_far ip netns exec "$NS" "$SYNCD" -c "$T/far.conf" -f
wait_for 10 test -s "$T/far/state/syncd.port" || fail "syncd in $NS did not start: $(cat "$T/syncd_far.log")"
FPORT=$(cat "$T/far/state/syncd.port")
ip netns exec "$NS" nft add table inet "$TABLE"
ip netns exec "$NS" nft add chain inet "$TABLE" in '{ type filter hook input priority 0; policy accept; }'
ip netns exec "$NS" nft add rule inet "$TABLE" in tcp dport "$FPORT" limit rate over 3 mbytes/second drop
ip netns exec "$NS" nft add rule inet "$TABLE" in tcp dport "$FPORT" counter
timeout 120 "$SYNCCLIENT" -c "$T/primary.conf" -o "peer.address=${NET}2:$FPORT" --all >"$T/sync1.out" 2>&1 ||
	fail "sync over the slow link: $(cat "$T/sync1.out")"
w1=$(ip netns exec "$NS" nft list chain inet "$TABLE" in |
	awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "bytes") s += $(i + 1) } END { print s + 0 }')
same_trees "$T/primary/mail" "$T/far/mail" || fail "trees differ after the sync over the slow link"
[ "$w1" -gt 0 ] && [ $((w1 * 100)) -lt $((mail * 80)) ] ||
	fail "slow link to another host: $w1 bytes on the wire for $mail bytes of mail (no deflating?)"
ok "another host behind a 3 MB/s link: $w1 bytes on the wire for $mail bytes of mail"

# --- 2. this host, a standby slower than the link ----------------------------
start_syncd standby
nft add rule inet "$TABLE" in tcp dport "$PORT_standby" counter
timeout 120 "$SYNCCLIENT" -c "$T/primary.conf" -o "peer.address=127.0.0.1:$PORT_standby" --all \
	>"$T/sync2.out" 2>&1 &
SYNCPID=$!
PIDS="$PIDS $SYNCPID"
# The session process (syncd's child) runs 20 ms in every 100 ms.
end=$(($(date +%s) + 120))
while kill -0 "$SYNCPID" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
	for s in $(pgrep -P "$PID_syncd_standby"); do kill -STOP "$s" 2>/dev/null || true; done
	sleep 0.08
	for s in $(pgrep -P "$PID_syncd_standby"); do kill -CONT "$s" 2>/dev/null || true; done
	sleep 0.02
done
for s in $(pgrep -P "$PID_syncd_standby"); do kill -CONT "$s" 2>/dev/null || true; done
wait "$SYNCPID" || fail "sync to a slow standby: $(cat "$T/sync2.out")"
w2=$(wire "$PORT_standby")
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the sync to a slow standby"
[ $((w2 * 100)) -ge $((mail * 95)) ] ||
	fail "slow standby on this host: only $w2 bytes on the wire for $mail bytes of mail (deflated)"
ok "a slow standby on this host: $w2 bytes on the wire for $mail bytes of mail (not deflated)"

#!/bin/sh
# compress_auto.sh — [sync] compress = auto deflates while the network is
# the bottleneck, and not while the standby is (issue 10):
#  1. the link to the standby limited to a few MB/s by nftables (packets
#     over the rate dropped, so TCP's congestion window is what limits):
#     a full sync puts markedly fewer bytes on the wire than the mail;
#  2. a standby slower than the link (its syncd stopped and resumed over
#     and over): no deflating, the bytes on the wire are about the mail's
#     (deflating there only gave the standby inflating to do on top, and
#     on a shared machine took CPU from it).
# Needs root and nft (skipped otherwise).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "skipped: needs root for nftables"; exit 77; }
command -v nft >/dev/null || { echo "skipped: no nft"; exit 77; }
TABLE=mdrepl_e2e_$$
nft add table inet "$TABLE" 2>/dev/null || { echo "skipped: nftables unusable here"; exit 77; }
trap 'nft delete table inet "$TABLE" 2>/dev/null; cleanup' EXIT

write_conf primary primary
write_conf standby standby
"$MAILGEN" populate "$T/primary/mail" --users 10 --messages 1500 --folders 2 --big 0 --seed 51
start_syncd standby
pin_port standby
mail=$(du -sb "$T/primary/mail" | cut -f1)
SYNC="$SYNCCLIENT -c $T/primary.conf -o peer.address=127.0.0.1:$PORT_standby"

# Bytes to syncd's port (TCP payload and headers), counted by nftables.
nft add chain inet "$TABLE" in '{ type filter hook input priority 0; policy accept; }'
count_rule() { nft add rule inet "$TABLE" in tcp dport "$PORT_standby" "$@" counter; }
wire() {
	nft list chain inet "$TABLE" in |
		awk '/counter/ && !/drop/ { for (i = 1; i < NF; i++) if ($i == "bytes") s += $(i + 1) } END { print s + 0 }'
}
fresh_standby() {
	crash syncd_standby
	rm -rf "$T/standby/mail" "$T/standby/state"
	mkdir -p "$T/standby/mail" "$T/standby/state"
	start_syncd standby
}

# --- 1. network-bound ------------------------------------------------------
nft add rule inet "$TABLE" in tcp dport "$PORT_standby" limit rate over 3 mbytes/second drop
count_rule
timeout 120 $SYNC --all >"$T/sync1.out" 2>&1 || fail "sync over the limited link: $(cat "$T/sync1.out")"
w1=$(wire)
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the sync over the limited link"
[ $((w1 * 100)) -lt $((mail * 80)) ] ||
	fail "network-bound: $w1 bytes on the wire for $mail bytes of mail (no deflating?)"
ok "network-bound (3 MB/s): $w1 bytes on the wire for $mail bytes of mail"

# --- 2. standby-bound --------------------------------------------------------
nft flush chain inet "$TABLE" in
fresh_standby
count_rule
timeout 120 $SYNC --all >"$T/sync2.out" 2>&1 &
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
w2=$(wire)
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the sync to a slow standby"
[ $((w2 * 100)) -ge $((mail * 95)) ] ||
	fail "standby-bound: only $w2 bytes on the wire for $mail bytes of mail (deflated for a slow standby)"
ok "standby-bound: $w2 bytes on the wire for $mail bytes of mail (not deflated)"

#!/bin/sh
# demo.sh — installs what is missing, builds, and runs a live demo pair on
# 127.0.0.1: a primary (mdrepl-journald + mdrepl-syncclient --rolling) and
# a standby (mdrepl-syncd), with TLS certificates made by mdreplctl
# gen-certs. It delivers sample mail while showing `mdreplctl status`,
# shows that both trees are identical, promotes the standby, and stops
# everything it started. Takes about a minute. DEMO_SECONDS sets how long
# mail is delivered (default 15); DEMO_KEEP=1 keeps the demo directory.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/deps.sh
scripts/build.sh _build
B=$top/_build
CTL=$B/ctl/mdreplctl
MAILGEN=$B/bench/mailgen

D=$(mktemp -d "${TMPDIR:-/tmp}/mdrepl-demo.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "${DEMO_KEEP:-}" = 1 ]; then echo "demo files kept in $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Certificates: a private CA and one certificate per node"
run "$CTL" gen-certs "$D/tls" primary standby | sed -n '1,4p'

for node in primary standby; do
	mkdir -p "$D/$node/mail" "$D/$node/state"
	cat >"$D/$node.conf" <<EOF
[node]
mail_root = $D/$node/mail
state_dir = $D/$node/state
initial_role = $node
[listen]
address = 127.0.0.1:0
[peer]
address = 127.0.0.1:1
[tls]
ca_file = $D/tls/ca.crt
cert_file = $D/tls/$node.crt
key_file = $D/tls/$node.key
EOF
done

say "Sample mail on the primary: 20 users, 2,000 messages, Maildir++ folders"
"$MAILGEN" populate "$D/primary/mail" --users 20 --messages 2000 --folders 4 --seed 1
echo "$(find "$D/primary/mail" -type f | wc -l) files, $(du -sh "$D/primary/mail" | cut -f1)"

say "Standby: mdrepl-syncd listens on 127.0.0.1 (TLS, client certificates required)"
"$B/syncd/mdrepl-syncd" -c "$D/standby.conf" -f 2>"$D/syncd.log" &
PIDS="$PIDS $!"
for _ in $(seq 1 50); do [ -s "$D/standby/state/syncd.port" ] && break; sleep 0.1; done
PORT=$(cat "$D/standby/state/syncd.port")
sed -i "s|^address = 127.0.0.1:1$|address = 127.0.0.1:$PORT|" "$D/primary.conf"
echo "listening on port $PORT"

say "Primary: mdrepl-journald (inotify -> journal) and mdrepl-syncclient --rolling"
"$B/journal/mdrepl-journald" -c "$D/primary.conf" -f 2>"$D/journald.log" &
PIDS="$PIDS $!"
"$B/syncclient/mdrepl-syncclient" -c "$D/primary.conf" --rolling -f 2>"$D/syncclient.log" &
PIDS="$PIDS $!"

lag_zero() {
	st=$("$CTL" -c "$D/primary.conf" status --json)
	case $st in *'"state":"connected"'*'"lag_records":0,'*) return 0 ;; esac
	return 1
}
printf 'initial full compare'
for _ in $(seq 1 120); do lag_zero && break; printf '.'; sleep 0.5; done
echo " done"

say "Live mail for ${DEMO_SECONDS:-15} s: deliveries, flag changes, moves, expunges"
"$MAILGEN" load "$D/primary/mail" --rate 100 --seconds "${DEMO_SECONDS:-15}" --seed 2 \
	--standby "$D/standby/mail" --standby-state "$D/standby/state" >"$D/load.out" &
LOAD=$!
PIDS="$PIDS $LOAD"
while kill -0 "$LOAD" 2>/dev/null; do
	sleep 3
	kill -0 "$LOAD" 2>/dev/null || break
	echo "--- $(date +%T)"
	"$CTL" -c "$D/primary.conf" status | sed -n '1,6p'
done
wait "$LOAD" || true
cat "$D/load.out"

say "Both trees are identical (names, sizes, mtimes to the nanosecond, contents)"
for _ in $(seq 1 60); do lag_zero && break; sleep 0.5; done
tree() {
	(cd "$1" && find . -name tmp -prune -o -name .mdrepl-tmp -prune -o \
		-name 'dovecot.index*' -prune -o -type f -printf '%P %s %T@\n' | LC_ALL=C sort)
}
tree "$D/primary/mail" >"$D/p.list"
tree "$D/standby/mail" >"$D/s.list"
if cmp -s "$D/p.list" "$D/s.list"; then
	echo "identical: $(wc -l <"$D/p.list") files on each side"
else
	echo "DIFFERENT:"
	diff "$D/p.list" "$D/s.list" | head
	exit 1
fi
run "$CTL" -c "$D/standby.conf" status

say "Failover: the primary stops; the standby is promoted"
for p in $PIDS; do
	case $(cat "/proc/$p/cmdline" 2>/dev/null | tr '\0' ' ') in
	*journald*|*syncclient*) kill "$p" ;;
	esac
done
sleep 1
run "$CTL" -c "$D/standby.conf" promote --force || true
run "$CTL" -c "$D/standby.conf" status

say "Done: stopping everything the demo started"

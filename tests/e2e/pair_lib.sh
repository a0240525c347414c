# pair_lib.sh — a replicating pair A/B on loopback for the failover and
# switchover tests: both nodes run journald, syncclient --rolling and
# syncd from their own configuration, each pointing at the other, with TLS
# and a hooks directory that logs every event. Source after lib.sh.

# pair_setup ROLE_A ROLE_B: configs, certificates, syncd on fixed ports.
pair_setup() {
	"$CTL" gen-certs "$T/certs" A B S >/dev/null
	write_conf A "$1"
	write_conf B "$2"
	for n in A B; do
		mkdir -m 0700 "$T/$n/hooks"
		cat >"$T/$n/hooks/50-log" <<HOOK
#!/bin/sh
echo "\$MDREPL_EVENT \$MDREPL_ROLE \$MDREPL_GENERATION" >>"$T/$n/hooks.log"
HOOK
		chmod 0700 "$T/$n/hooks/50-log"
		printf '[hooks]\ndir = %s\ntimeout_s = 20\n' "$T/$n/hooks" >>"$T/$n.conf"
		start_syncd "$n"
	done
	# From now on each node listens on its port and talks to the other's.
	sed -i -e "s|^address = 127.0.0.1:0$|address = 127.0.0.1:$PORT_A|" \
		-e "s|^address = 127.0.0.1:1$|address = 127.0.0.1:$PORT_B|" "$T/A.conf"
	sed -i -e "s|^address = 127.0.0.1:0$|address = 127.0.0.1:$PORT_B|" \
		-e "s|^address = 127.0.0.1:1$|address = 127.0.0.1:$PORT_A|" "$T/B.conf"
}

# node_start NODE: journald and syncclient (syncd too unless running).
node_start() {
	if [ "${2:-}" = with-syncd ]; then
		start_syncd "$1"
	fi
	start "jd_$1" "$JOURNALD" -c "$T/$1.conf" -f
	start "sc_$1" "$SYNCCLIENT" -c "$T/$1.conf" --rolling -f
	wait_for 10 test -S "$T/$1/state/journald.sock" ||
		fail "journald $1 did not start: $(tail -5 "$T/jd_$1.log")"
	wait_for 10 test -S "$T/$1/state/syncclient.sock" ||
		fail "syncclient $1 did not start: $(tail -5 "$T/sc_$1.log")"
}

# node_crash NODE: kill -9 of every daemon of the node.
node_crash() {
	crash "jd_$1"
	crash "sc_$1"
	crash "syncd_$1"
}

# jobj NODE DAEMON: one object of `status --json` (DAEMON: node,
# journald, syncclient or syncd; each is flat), "null" if not running.
jobj() {
	status_json "$1" | grep -o "\"$2\":\(null\|{[^}]*}\)"
}

# jval NODE DAEMON KEY: a number, boolean or simple string from it.
jval() {
	jobj "$1" "$2" | sed -n "s/.*\"$3\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# caught_up PRIMARY: its syncclient is connected with no lag.
caught_up() {
	[ "$(jval "$1" syncclient connected)" = true ] &&
		[ "$(jval "$1" syncclient lag_records)" = 0 ]
}

# bases DIR: message base names, one per line (sorted, duplicates kept).
bases() {
	find "$1" -path '*/tmp' -prune -o \( -path '*/cur/*' -o -path '*/new/*' \) -type f -print |
		sed -e 's|.*/||' -e 's|:2,.*||' | LC_ALL=C sort
}

# deliver DIR FOLDER NAME: a message delivered the Maildir way.
deliver() {
	printf 'From: test@example.net\r\nSubject: %s\r\n\r\nbody of %s\r\n' "$3" "$3" \
		>"$1/$2/tmp/$3"
	mv "$1/$2/tmp/$3" "$1/$2/new/$3"
}

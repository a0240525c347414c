# journald_lib.sh — helpers for the mdrepl-journald end-to-end tests.
# Source it after lib.sh's location is known; it sources lib.sh itself.
#
# A node lives in $T/<name>: conf, mail/, state/. jd_use NAME selects it.
# Starting journald takes a shared lock that journald_overflow.sh takes
# exclusively while it lowers fs.inotify.max_queued_events, so no other
# journald of these tests is born with the lowered limit.

. "$(dirname "$0")/lib.sh"

JREPLAY=$top_builddir/tests/jreplay
JD_PID=""

# jd_use NAME [ROLE]: selects (and creates) the node in $T/NAME.
jd_use() {
	N=$T/$1
	mkdir -p "$N/mail" "$N/state"
	[ -f "$N/conf" ] || cat >"$N/conf" <<EOF
[node]
mail_root = $N/mail
state_dir = $N/state
initial_role = ${2:-primary}
[journal]
fsync_interval_ms = 20
[log]
level = debug
EOF
}

jctl() {
	"$CTL" -c "$N/conf" "$@"
}

jd_status() {
	jctl journal status >"$N/status.json" 2>/dev/null
}

# jd_field NAME: a field of the last jd_status (strings unquoted).
jd_field() {
	sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$N/status.json"
}

# jd_start: starts journald in the foreground, in the background; returns
# once its control socket answers.
jd_start() {
	if [ "${JD_NOLOCK:-}" = "" ]; then
		exec 9>"$INOTIFY_LOCK"
		flock -s 9
	fi
	"$JOURNALD" -c "$N/conf" -f 2>>"$N/journald.log" &
	JD_PID=$!
	PIDS="$PIDS $JD_PID"
	wait_for 15 jd_status || fail "journald did not answer: $(tail -5 "$N/journald.log")"
	[ "${JD_NOLOCK:-}" != "" ] || flock -u 9
}

# jd_stop: SIGTERM, and it must exit 0.
jd_stop() {
	kill -TERM "$JD_PID"
	st=0
	wait "$JD_PID" || st=$?
	[ "$st" = 0 ] || fail "journald exited $st after SIGTERM: $(tail -5 "$N/journald.log")"
}

jd_kill9() {
	kill -9 "$JD_PID"
	wait "$JD_PID" 2>/dev/null || true
}

# wait_head_stable: until the journal head stops moving (bounded).
wait_head_stable() {
	last=-1
	same=0
	end=$(($(date +%s) + 60))
	while [ "$same" -lt 3 ]; do
		[ "$(date +%s)" -lt "$end" ] || fail "journal head did not settle"
		jd_status || fail "journald stopped answering"
		head=$(jd_field head_lsn)
		if [ "$head" = "$last" ]; then same=$((same + 1)); else same=0; fi
		last=$head
		sleep 0.3
	done
}

# replay START FINAL: replays the node's journal onto a copy of START and
# compares the result with FINAL (names and bytes). Output in $N/replay.out.
replay_and_compare() {
	rm -rf "$N/copy"
	cp -a "$1" "$N/copy"
	"$JREPLAY" "$N/state/journal" "$N/copy" "$2" >"$N/replay.out" ||
		fail "jreplay failed: $(cat "$N/replay.out")"
	cat "$N/replay.out"
	(cd "$N/copy" && find . | sort) >"$N/names.copy"
	(cd "$2" && find . | sort) >"$N/names.final"
	diff "$N/names.copy" "$N/names.final" >"$N/names.diff" ||
		fail "names differ after replay: $(head -20 "$N/names.diff")"
	diff -r "$N/copy" "$2" >"$N/content.diff" ||
		fail "contents differ after replay: $(head -20 "$N/content.diff")"
}

# replay_count NAME: a counter from the last replay's summary.
replay_count() {
	tr ' ' '\n' <"$N/replay.out" | sed -n "s/^$1=\([0-9]*\)$/\1/p" | head -1
}

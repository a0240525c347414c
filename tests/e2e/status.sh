#!/bin/sh
# status.sh — `mdreplctl status --json` on both roles is valid JSON with
# the documented fields, the table form reads well, lag reaches 0 after
# load stops, each daemon writes its Prometheus metrics file, and a slow
# commit on the standby is logged and shown.
. "$(dirname "$0")/lib.sh"

JSONCHECK=$top_builddir/tests/jsoncheck
write_conf primary primary
write_conf standby standby
mkdir -p "$T/metrics"
for n in primary standby; do
	sed -i "/^\[node\]/a metrics_dir = $T/metrics/$n" "$T/$n.conf"
	mkdir -p "$T/metrics/$n"
done
"$MAILGEN" populate "$T/primary/mail" --users 5 --messages 500 --seed 41
start_syncd standby
set_peer primary "$PORT_standby"
start_primary primary
wait_synced primary 60 || fail "no initial sync"

"$MAILGEN" load "$T/primary/mail" --rate 200 --seconds 5 --seed 42 >/dev/null
for n in primary standby; do
	status_json "$n" >"$T/$n.json"
	"$JSONCHECK" <"$T/$n.json" || fail "status --json on the $n is not valid JSON"
done
for f in '"node":{"role":"primary","generation":1' '"journald":{' '"head_lsn":' \
	'"syncclient":{' '"state":"connected"' '"read_lsn":' '"sent_lsn":' '"received_lsn":' \
	'"applied_lsn":' '"durable_lsn":' '"lag_records":' '"lag_seconds":' '"lag_bytes":' \
	'"records_per_s":' '"wire_bytes_per_s":' '"transfers":' '"last_error":' '"fenced":false'; do
	grep -q "$f" "$T/primary.json" || fail "primary status lacks $f: $(cat "$T/primary.json")"
done
for f in '"node":{"role":"standby"' '"syncd":{' '"durable_lsn":' '"applied_lsn":' \
	'"received_lsn":' '"connected":true' '"last_batch_age_s":' '"last_commit_us":' \
	'"max_commit_us":' '"journald":null'; do
	grep -q "$f" "$T/standby.json" || fail "standby status lacks $f: $(cat "$T/standby.json")"
done
last=$(jnum last_commit_us <"$T/standby.json")
longest=$(jnum max_commit_us <"$T/standby.json")
[ "$longest" -gt 0 ] && [ "$longest" -ge "$last" ] ||
	fail "max_commit_us ($longest) is not the longest commit (last $last)"
ok "status --json is valid JSON with positions, lag and rates on both roles"

wait_synced primary 30 || fail "lag did not reach 0 after the load"
st=$(status_json primary)
[ "$(printf '%s' "$st" | jnum lag_records)" = 0 ] || fail "lag_records not 0: $st"
ok "lag reaches 0 records after the load stops"

"$CTL" -c "$T/primary.conf" status >"$T/table"
expect_grep "^node  *primary, generation 1" "$T/table"
expect_grep "^syncclient  *connected" "$T/table"
expect_grep "lag 0 records" "$T/table"
"$CTL" -c "$T/standby.conf" status >"$T/table.standby"
expect_grep "commit took [0-9.]* ms, longest [0-9.]* ms" "$T/table.standby"
ok "the status table shows role, connection, lag and commit times"

wait_for 15 test -s "$T/metrics/primary/mdrepl_syncclient.prom" || fail "no syncclient metrics file"
wait_for 15 test -s "$T/metrics/primary/mdrepl_journald.prom" || fail "no journald metrics file"
wait_for 15 test -s "$T/metrics/standby/mdrepl_syncd.prom" || fail "no syncd metrics file"
expect_grep '^mdrepl_syncclient_lag_seconds ' "$T/metrics/primary/mdrepl_syncclient.prom"
expect_grep '^mdrepl_syncclient_durable_lsn ' "$T/metrics/primary/mdrepl_syncclient.prom"
expect_grep '^mdrepl_syncclient_wire_bytes_out_total ' "$T/metrics/primary/mdrepl_syncclient.prom"
expect_grep '^mdrepl_syncclient_info{.*role="primary"' "$T/metrics/primary/mdrepl_syncclient.prom"
expect_grep '^mdrepl_syncd_batches_total ' "$T/metrics/standby/mdrepl_syncd.prom"
expect_grep '^mdrepl_syncd_generation 1' "$T/metrics/standby/mdrepl_syncd.prom"
ok "each daemon writes mdrepl_DAEMON.prom (Prometheus text format)"

# A slow standby disk: every sync call of syncd's session held up 1.2 s
# (strace's syscall delay injection, on the real process). The commit is
# logged as slow and the status shows it, and nothing is lost meanwhile.
command -v strace >/dev/null || fail "strace is needed (scripts/deps.sh --test installs it)"
sess=$(pgrep -P "$PID_syncd_standby" | head -n 1)
[ -n "$sess" ] || fail "no syncd session process under $PID_syncd_standby"
SYNCS=syncfs,fsync,fdatasync
strace -qq -f -o /dev/null -e trace=$SYNCS -e inject=$SYNCS:delay_exit=1200000 -p "$sess" &
STRACE=$!
PIDS="$PIDS $STRACE"
traced() { ! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$sess/status"; }
wait_for 10 traced || fail "strace did not attach to the syncd session $sess"
U=$(echo "$T"/primary/mail/dom*/user1/Maildir)
printf 'Subject: slow disk\n\nheld up\n' >"$U/tmp/1700000000.slowcommit.test"
mv "$U/tmp/1700000000.slowcommit.test" "$U/new/1700000000.slowcommit.test"
wait_for 30 grep -q 'took [0-9]* ms to become durable' "$T/syncd_standby.log" ||
	fail "no slow-commit warning: $(tail -n 5 "$T/syncd_standby.log")"
longest=$(part_num standby syncd max_commit_us)
[ "${longest:-0}" -ge 1000000 ] || fail "max_commit_us is $longest after a commit of over 1 s"
kill "$STRACE"
wait "$STRACE" 2>/dev/null || true
wait_synced primary 30 || fail "no catch-up after the slow commit: $(status_json primary)"
same_trees "$T/primary/mail" "$T/standby/mail" || fail "trees differ after the slow commit"
ok "a commit held up 1.2 s per sync is logged as slow and shown as max_commit_us $longest"

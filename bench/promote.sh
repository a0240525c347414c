#!/bin/sh
# promote.sh [BUILDDIR] — how long `mdreplctl promote` takes on an idle
# standby holding 20,000 messages (not a test; DESIGN §8 wants well under
# a second: nothing in a promotion walks the mail tree):
#
#  1. promote --wait while the primary is alive and idle (a probe, a drain
#     that finds nothing to wait for, the fence, syncfs, the state change,
#     journald starting to journal, hooks);
#  2. then the old primary rejoins, the pair swaps back the other way by
#     a crash: promote --force with the peer down.
#
# Prints the wall time of each command and promote's own account.
set -eu
B=$(cd "${1:-_build}" && pwd)
top_builddir=$B
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
. "$top_srcdir/tests/e2e/lib.sh"
. "$top_srcdir/tests/e2e/pair_lib.sh"
USERS=${USERS:-200}
MESSAGES=${MESSAGES:-20700}

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

pair_setup primary standby
"$MAILGEN" populate "$T/A/mail" --users "$USERS" --messages "$MESSAGES" --folders 4 --big 0 \
	--seed 41 >/dev/null
node_start B
node_start A
wait_for 600 caught_up A || fail "A did not catch up"
wait_for 60 same_trees "$T/A/mail" "$T/B/mail" || fail "trees differ"
echo "pair in sync: $(find "$T/B/mail" \( -path '*/cur/*' -o -path '*/new/*' \) -type f | wc -l) messages on the standby"
sleep 2

t=$(date +%s%N)
"$CTL" -c "$T/B.conf" promote --wait >"$T/p1" 2>&1 || fail "promote --wait: $(cat "$T/p1")"
echo "1. promote --wait, primary alive: $(ms "$t") ms wall"
sed 's/^/     /' "$T/p1"

t=$(date +%s%N)
"$CTL" -c "$T/A.conf" rejoin >"$T/r" 2>&1 || fail "rejoin: $(cat "$T/r")"
echo "   (rejoin of the old primary, trees identical: $(ms "$t") ms)"
wait_for 120 caught_up B || fail "B did not catch up"
sleep 2
node_crash B
t=$(date +%s%N)
"$CTL" -c "$T/A.conf" promote --force >"$T/p2" 2>&1 || fail "promote --force: $(cat "$T/p2")"
echo "2. promote --force, peer down: $(ms "$t") ms wall"
sed 's/^/     /' "$T/p2"

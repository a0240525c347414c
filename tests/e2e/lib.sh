# lib.sh — helpers for the end-to-end tests. Source it; it sets `set -eu`,
# makes a scratch directory $T removed on exit (with every process the test
# started), and defines assertions. Every wait is bounded.

set -eu

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
JOURNALD=$top_builddir/journal/mdrepl-journald
SYNCD=$top_builddir/syncd/mdrepl-syncd
SYNCCLIENT=$top_builddir/syncclient/mdrepl-syncclient
CTL=$top_builddir/ctl/mdreplctl

T=$(mktemp -d "${TMPDIR:-/tmp}/mdrepl-e2e.XXXXXX")
PIDS=""

cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP_TMP:-}" = "" ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok - $*"
}

# expect_exit CODE CMD...: runs CMD, output to $T/out and $T/err.
expect_exit() {
	want=$1
	shift
	set +e
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	[ "$got" = "$want" ] || fail "'$*' exited $got, expected $want; stderr: $(cat "$T/err")"
}

# expect_grep PATTERN FILE
expect_grep() {
	grep -q -- "$1" "$2" || fail "'$1' not found in $2: $(cat "$2")"
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	limit=$1
	shift
	end=$(($(date +%s%N) + limit * 1000000000))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

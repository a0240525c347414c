#!/bin/sh
# units.sh — every systemd unit the build makes passes `systemd-analyze
# verify` without a word on stderr (it exits 0 on unknown keys and only
# warns), the tmpfiles.d entry passes `systemd-tmpfiles --create` in a
# scratch root, and the units name the configured paths.
#
# verify checks that the programs in ExecStart= exist and that the pages in
# Documentation= exist: the units are verified as built, with only the
# configured sbindir pointed at the programs in the build tree (through a
# scratch directory), and with MANPATH at the pages in the build tree.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 || {
	echo "SKIP: systemd-analyze is not installed (apt-get install systemd)"
	exit 77
}
: "${inst_sbindir:?run from make check}"

S=$top_builddir/systemd
units="mdrepl-journald.service mdrepl-syncd.service mdrepl-syncclient.service
mdrepl-audit.service mdrepl-audit.timer"

# The built units name the configured directories, nothing unsubstituted.
for u in $units; do
	f=$S/$u
	[ -f "$f" ] || f=$top_srcdir/systemd/$u
	[ -f "$f" ] || fail "$u was not built"
	! grep -n '@[a-zA-Z_]*@' "$f" || fail "$u has an unsubstituted placeholder"
done
for u in mdrepl-journald mdrepl-syncd mdrepl-syncclient; do
	expect_grep "^ExecStart=$inst_sbindir/$u -c $inst_sysconfdir/mdrepl/mdrepl.conf .*-f\$" "$S/$u.service"
	expect_grep "^Type=notify\$" "$S/$u.service"
	expect_grep "^ExecReload=/bin/kill -HUP \$MAINPID\$" "$S/$u.service"
	expect_grep "^ReadWritePaths=$inst_localstatedir/lib/mdrepl\$" "$S/$u.service"
	expect_grep "^CapabilityBoundingSet=CAP_" "$S/$u.service"
done
expect_grep "^ExecStart=$inst_sbindir/mdrepl-syncclient .* --rolling -f\$" "$S/mdrepl-syncclient.service"
expect_grep "^ExecStart=$inst_sbindir/mdreplctl -c $inst_sysconfdir/mdrepl/mdrepl.conf audit\$" \
	"$S/mdrepl-audit.service"
expect_grep "^d $inst_localstatedir/lib/mdrepl 0700 root root" "$S/mdrepl.conf"
ok "units name the configured directories"

# Scratch sbindir with the built programs; units rewritten to use it.
mkdir -p "$T/sbin" "$T/units" "$T/man/man5" "$T/man/man7" "$T/man/man8"
for p in "$JOURNALD" "$SYNCD" "$SYNCCLIENT" "$CTL"; do
	[ -x "$p" ] || fail "$p was not built"
	ln -s "$p" "$T/sbin/"
done
for u in $units; do
	f=$S/$u
	[ -f "$f" ] || f=$top_srcdir/systemd/$u
	sed "s|$inst_sbindir/|$T/sbin/|g" "$f" >"$T/units/$u"
done
for m in "$top_builddir"/man/*.[578]; do
	ln -s "$m" "$T/man/man${m##*.}/"
done

(cd "$T/units" && MANPATH=$T/man systemd-analyze verify $units) >"$T/out" 2>"$T/err" ||
	fail "systemd-analyze verify failed: $(cat "$T/err")"
[ ! -s "$T/err" ] || fail "systemd-analyze verify warned: $(cat "$T/err")"
ok "systemd-analyze verify: $(echo $units | wc -w) units, no warnings"

# A broken unit must fail this check (the test can fail).
sed 's/^WatchdogSec=/WatchdogSecs=/' "$T/units/mdrepl-syncd.service" >"$T/units/broken.service"
(cd "$T/units" && MANPATH=$T/man systemd-analyze verify broken.service) >/dev/null 2>"$T/err" || true
expect_grep "Unknown key 'WatchdogSecs'" "$T/err"
ok "a misspelt key is caught"

# The tmpfiles.d entry creates the state directory, mode 0700.
if command -v systemd-tmpfiles >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/root"
	systemd-tmpfiles --root="$T/root" --create "$S/mdrepl.conf" 2>"$T/err" ||
		fail "systemd-tmpfiles failed: $(cat "$T/err")"
	[ ! -s "$T/err" ] || fail "systemd-tmpfiles warned: $(cat "$T/err")"
	[ "$(stat -c '%a %U' "$T/root$inst_localstatedir/lib/mdrepl")" = "700 root" ] ||
		fail "state directory: $(stat -c '%a %U' "$T/root$inst_localstatedir/lib/mdrepl")"
	ok "tmpfiles.d entry makes the state directory 0700"
fi

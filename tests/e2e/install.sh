#!/bin/sh
# install.sh — `make install DESTDIR=...` installs exactly the programs
# (sbindir, 0755), the man pages (0644), the systemd units, the tmpfiles.d
# entry and the example configuration, where configure put them, and
# nothing else; `make uninstall` removes every file again.
. "$(dirname "$0")/lib.sh"

: "${inst_sbindir:?run from make check}"
D=$T/root

# Not the make that runs this test: no jobserver or command-line variables.
mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" "$@"
}

mk install DESTDIR="$D" >"$T/install.log" 2>&1 || fail "make install failed: $(tail -20 "$T/install.log")"

{
	for p in mdrepl-journald mdrepl-syncd mdrepl-syncclient mdreplctl; do
		echo "755 $inst_sbindir/$p"
	done
	echo "644 $inst_mandir/man5/mdrepl.conf.5"
	echo "644 $inst_mandir/man7/mdrepl.7"
	for p in mdrepl-journald mdrepl-syncd mdrepl-syncclient mdreplctl; do
		echo "644 $inst_mandir/man8/$p.8"
	done
	for u in mdrepl-journald.service mdrepl-syncd.service mdrepl-syncclient.service \
		mdrepl-audit.service mdrepl-audit.timer; do
		echo "644 $inst_systemdsystemunitdir/$u"
	done
	echo "644 $inst_tmpfilesdir/mdrepl.conf"
	echo "644 $inst_sysconfdir/mdrepl/mdrepl.conf.example"
} | LC_ALL=C sort >"$T/expected"
(cd "$D" && find . ! -type d -printf '%m /%P\n') | sed 's|//*|/|g' | LC_ALL=C sort >"$T/got"
diff "$T/expected" "$T/got" >"$T/diff" || fail "installed files differ (< expected, > installed):
$(cat "$T/diff")"
ok "make install: $(wc -l <"$T/got") files, where configure put them, with their modes"

# What was installed names where it was installed.
u=$D$inst_systemdsystemunitdir
expect_grep "^ExecStart=$inst_sbindir/mdrepl-syncd -c $inst_sysconfdir/mdrepl/mdrepl.conf -f\$" \
	"$u/mdrepl-syncd.service"
expect_grep "^d $inst_localstatedir/lib/mdrepl 0700" "$D$inst_tmpfilesdir/mdrepl.conf"
expect_grep "$inst_sysconfdir/mdrepl/mdrepl.conf" "$D$inst_mandir/man8/mdrepl-syncd.8"
expect_grep "^#state_dir = $inst_localstatedir/lib/mdrepl\$" \
	"$D$inst_sysconfdir/mdrepl/mdrepl.conf.example"
"$D$inst_sbindir/mdreplctl" --version >"$T/out" || fail "the installed mdreplctl does not run"
expect_grep "^mdreplctl (mdrepl) " "$T/out"
ok "installed units, pages and example name the configured paths"

mk uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1 ||
	fail "make uninstall failed: $(tail -20 "$T/uninstall.log")"
(cd "$D" && find . ! -type d) >"$T/left"
[ ! -s "$T/left" ] || fail "make uninstall left: $(cat "$T/left")"
ok "make uninstall removes every file"

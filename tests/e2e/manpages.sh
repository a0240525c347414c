#!/bin/sh
# manpages.sh — every manual page renders with `groff -man -ww` without a
# warning (and passes `mandoc -Tlint` if mandoc is installed); the section
# 8 pages have the sections an operator looks for; every option and
# command a program's --help lists is in its page; every mdrepl page a
# page refers to exists.
. "$(dirname "$0")/lib.sh"

command -v groff >/dev/null 2>&1 || {
	echo "SKIP: groff is not installed (apt-get install groff-base)"
	exit 77
}

M=$top_builddir/man
pages="mdrepl.conf.5 mdrepl.7 mdrepl-journald.8 mdrepl-syncd.8 mdrepl-syncclient.8 mdreplctl.8"
for p in $pages; do
	[ -f "$M/$p" ] || fail "$p was not built"
	groff -man -ww -z "$M/$p" 2>"$T/err" || fail "groff failed on $p: $(cat "$T/err")"
	[ ! -s "$T/err" ] || fail "groff warns about $p: $(cat "$T/err")"
	# Also as man(1) renders it for a terminal (characters the device
	# lacks). Not "break" warnings: a long configured path (distcheck's)
	# cannot be adjusted to 80 columns, and needs not be.
	groff -man -ww -Wbreak -Tutf8 -rLL=80n "$M/$p" >/dev/null 2>"$T/err"
	[ ! -s "$T/err" ] || fail "groff -Tutf8 warns about $p: $(cat "$T/err")"
done
ok "groff -man -ww: no warnings on $(echo $pages | wc -w) pages"

if command -v mandoc >/dev/null 2>&1; then
	for p in $pages; do
		mandoc -Tlint -Wwarning "$M/$p" >"$T/out" 2>&1 ||
			fail "mandoc -Tlint: $p: $(cat "$T/out")"
		[ ! -s "$T/out" ] || fail "mandoc -Tlint: $p: $(cat "$T/out")"
	done
	ok "mandoc -Tlint -Wwarning: clean"
else
	echo "# mandoc is not installed: lint skipped"
fi

# plain PAGE: the page's source with roff's \- as -, for grepping.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$M/$1"
}

for p in mdrepl-journald.8 mdrepl-syncd.8 mdrepl-syncclient.8 mdreplctl.8; do
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS FILES EXIT_STATUS EXAMPLES SEE_ALSO; do
		s=$(echo "$s" | tr _ ' ')
		grep -q "^\.SH \"*$s\"*\$" "$M/$p" || fail "$p has no $s section"
	done
done
for p in mdrepl-journald.8 mdrepl-syncd.8 mdrepl-syncclient.8; do
	grep -q '^\.SH SIGNALS$' "$M/$p" || fail "$p has no SIGNALS section"
	for f in node.state mdrepl-; do
		plain "$p" | grep -q "$f" || fail "$p does not mention $f in FILES"
	done
done
ok "section 8 pages have DESCRIPTION, OPTIONS, FILES, SIGNALS, EXIT STATUS, EXAMPLES, SEE ALSO"

# Every long option in --help is documented in the program's page.
for prog in "$JOURNALD" "$SYNCD" "$SYNCCLIENT" "$CTL"; do
	name=$(basename "$prog")
	plain "$name.8" >"$T/page"
	"$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$T/opts"
	[ -s "$T/opts" ] || fail "$name --help lists no options"
	while read -r o; do
		grep -q -- "$o" "$T/page" || fail "$name --help has $o, $name.8 does not"
	done <"$T/opts"
done
ok "every option in --help is in the man page"

# Every mdreplctl command in --help has its entry in mdreplctl.8.
"$CTL" --help | sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' |
	sort -u >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 8 ] || fail "could not read the commands from mdreplctl --help: $(cat "$T/cmds")"
plain mdreplctl.8 >"$T/page"
while read -r c; do
	grep -q "^\.B[IR]* \"*$c\([ \"]\|\$\)" "$T/page" ||
		fail "mdreplctl --help has '$c', mdreplctl.8 has no entry for it"
done <"$T/cmds"
ok "every mdreplctl command is documented ($(tr '\n' ' ' <"$T/cmds"))"

# Cross references to mdrepl pages resolve.
for p in $pages; do
	plain "$p" | sed -n 's/^\.BR \(mdrepl[a-z.-]*\) (\([1-8]\)).*/\1.\2/p' | sort -u |
		while read -r ref; do
			[ -f "$M/$ref" ] || fail "$p refers to $ref, which does not exist"
		done
done
ok "references between the pages resolve"

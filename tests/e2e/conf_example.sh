#!/bin/sh
# conf_example.sh — the installed example configuration, made from the
# option table, lists every section and option with its default, parses
# as shipped, and still parses with every option line uncommented, giving
# the defaults.
. "$(dirname "$0")/lib.sh"

EX=$top_builddir/man/mdrepl.conf.example
[ -f "$EX" ] || fail "mdrepl.conf.example was not built"

# As shipped every option is commented out: only mail_root is missing.
expect_exit 2 "$CTL" -c "$EX" config
expect_grep "mail_root is not set" "$T/err"
expect_exit 0 "$CTL" -c "$EX" -o node.mail_root=/srv/mail config
ok "the example parses as shipped"

# section.key = value lines of `mdreplctl config` output ($1) or of the
# example's commented option lines ($1 with #).
keys() {
	awk -v c="$2" '/^\[/ { s = substr($0, 2, length($0) - 2); next }
		$0 ~ "^" c "[a-z_]+ =" { sub("^" c, ""); print s "." $0 }' "$1" | LC_ALL=C sort
}

printf '[node]\nmail_root = /var/vmail\n' >"$T/min.conf"
"$CTL" -c "$T/min.conf" config >"$T/defaults"
keys "$T/defaults" "" | sed 's/ =.*//' >"$T/table"
keys "$EX" "#" | sed 's/ =.*//' >"$T/example"
[ "$(wc -l <"$T/table")" -ge 30 ] || fail "too few options: $(cat "$T/table")"
diff "$T/table" "$T/example" >"$T/diff" || fail "options differ (< table, > example): $(cat "$T/diff")"
ok "every option of the table is in the example, in its section ($(wc -l <"$T/table") options)"

# Uncommented, every line is valid and shows the default (or, for an
# option without one, an example value).
sed 's/^#\([a-z_]* =\)/\1/' "$EX" >"$T/all.conf"
expect_exit 0 "$CTL" -c "$T/all.conf" config
keys "$T/out" "" >"$T/all"
keys "$T/defaults" "" >"$T/def"
LC_ALL=C comm -23 "$T/def" "$T/all" >"$T/changed"
if grep -v ' = $' "$T/changed" | grep -v '^node.mail_root = '; then
	fail "uncommented, these options do not show their default"
fi
ok "uncommented, the example gives the defaults"

# The two-node story and the paths are there, substituted.
expect_grep "^# Two nodes, one kind of file" "$EX"
expect_grep "^#   address = other-node.example.net:7870" "$EX"
! grep -n '@[A-Z_]*@' "$EX" || fail "unsubstituted placeholder"
ok "the example explains the pair"

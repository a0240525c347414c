#!/bin/sh
# cli.sh — every program: --help and --version exit 0, bad usage exits 2,
# a config error names file:line and exits 2.
. "$(dirname "$0")/lib.sh"

for p in "$JOURNALD" "$SYNCD" "$SYNCCLIENT" "$CTL"; do
	name=$(basename "$p")
	expect_exit 0 "$p" --help
	expect_grep "Usage: $name" "$T/out"
	expect_exit 0 "$p" --version
	expect_grep "^$name (mdrepl) [0-9]" "$T/out"
	expect_exit 2 "$p" --no-such-option
	expect_grep "Try '$name --help'" "$T/err"
done
ok "help, version and bad options"

cat >"$T/bad.conf" <<'CONF'
[node]
mail_rot = /var/vmail
CONF
expect_exit 2 "$CTL" -c "$T/bad.conf" status
expect_grep "bad.conf:2: unknown key 'mail_rot' in section \[node\]" "$T/err"
ok "mdreplctl -c bad.conf status names bad.conf:2 and exits 2"

for p in "$JOURNALD" "$SYNCD"; do
	expect_exit 2 "$p" -c "$T/bad.conf" -f
	expect_grep "bad.conf:2" "$T/err"
done
expect_exit 2 "$SYNCCLIENT" -c "$T/bad.conf" --all
expect_grep "bad.conf:2" "$T/err"
ok "daemons refuse the bad config with exit 2"

expect_exit 2 "$CTL" -c "$T/missing.conf" status
expect_grep "cannot open config file .*missing.conf: No such file" "$T/err"
ok "missing config file"

printf '[node]\nmail_root = /srv/mail\n' >"$T/good.conf"
expect_exit 0 "$CTL" -c "$T/good.conf" -o journal.max_size=2G config
expect_grep "^mail_root = /srv/mail" "$T/out"
expect_grep "^max_size = 2147483648" "$T/out"
expect_exit 2 "$CTL" -c "$T/good.conf" -o journal.max_size=lots config
expect_grep "journal.max_size must be a size" "$T/err"
ok "overrides"

expect_exit 2 "$SYNCCLIENT" -c "$T/good.conf"
expect_grep "exactly one of" "$T/err"
expect_exit 2 "$SYNCCLIENT" -c "$T/good.conf" --all --rolling
ok "syncclient mode checks"

# gen-certs needs no config file; keys 0600, certificates 0644, all verify.
umask 022
expect_exit 0 "$CTL" gen-certs "$T/certs"
for f in ca primary standby; do
	[ "$(stat -c %a "$T/certs/$f.key")" = 600 ] || fail "$f.key has mode $(stat -c %a "$T/certs/$f.key")"
	[ "$(stat -c %a "$T/certs/$f.crt")" = 644 ] || fail "$f.crt has mode $(stat -c %a "$T/certs/$f.crt")"
done
[ "$(stat -c %a "$T/certs")" = 700 ] || fail "certificate directory is not 0700"
openssl verify -CAfile "$T/certs/ca.crt" "$T/certs/primary.crt" "$T/certs/standby.crt" >/dev/null ||
	fail "openssl verify refused the node certificates"
openssl x509 -in "$T/certs/standby.crt" -noout -ext subjectAltName,extendedKeyUsage >"$T/ext"
expect_grep "DNS:standby" "$T/ext"
expect_grep "TLS Web Server Authentication, TLS Web Client Authentication" "$T/ext"
expect_grep "^cert_file = .*/tls/primary.crt" "$T/out"
expect_grep "^key_file = .*/tls/standby.key" "$T/out"
expect_exit 1 "$CTL" gen-certs "$T/certs"
expect_grep "ca.key already exists" "$T/err"
expect_exit 0 "$CTL" gen-certs --add "$T/certs" mx3
openssl verify -CAfile "$T/certs/ca.crt" "$T/certs/mx3.crt" >/dev/null || fail "--add: mx3.crt"
expect_exit 2 "$CTL" gen-certs "$T/certs2" "bad/name"
ok "gen-certs makes a CA and node certificates that openssl verifies"

#!/bin/sh
# summary.sh BUILDDIR — prints the result of every test of the last
# `make check`, with Check's own summary line (which it writes only to the
# test's .log), and the log of anything that failed.
set -u
dir=${1:-_build}
cd "$dir/tests" || exit 1
failed=0
for trs in $(find . -name '*.trs' | sort); do
	t=${trs%.trs}
	t=${t#./}
	res=$(sed -n 's/^:test-result: //p' "$trs")
	line=$(grep -h "^[0-9]*%: Checks:" "$t.log" 2>/dev/null | tail -1)
	[ -n "$line" ] || line=$(grep -c "^ok - " "$t.log" 2>/dev/null | sed 's/$/ checks/')
	printf '%-6s %-28s %s\n' "$res" "$t" "$line"
	case $res in
	PASS | SKIP) ;;
	*)
		failed=1
		echo "----- $t.log (last 60 lines)"
		tail -n 60 "$t.log"
		echo "-----"
		;;
	esac
done
exit $failed

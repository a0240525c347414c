#!/bin/sh
# test.sh [--sanitize] — installs what is missing, builds, and runs the
# whole test suite (Check unit suites and end-to-end tests with real
# daemons on 127.0.0.1). --sanitize builds in _build-asan with
# AddressSanitizer and UBSan. Prints each suite's summary; exits non-zero
# if anything failed.
set -eu
cd "$(dirname "$0")/.."

dir=_build
cflags="-O2 -g"
if [ "${1:-}" = "--sanitize" ]; then
	dir=_build-asan
	cflags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export CK_TIMEOUT_MULTIPLIER=4
fi

scripts/deps.sh --test
scripts/build.sh "$dir" CFLAGS="$cflags"

status=0
(cd "$dir" && make -j"$(nproc)" check >/dev/null 2>&1) || status=$?
scripts/summary.sh "$dir"
exit $status

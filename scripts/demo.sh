#!/bin/sh
# demo.sh — installs what is missing, builds, and shows the programs.
# (Becomes a live primary -> standby demo as the daemons land.)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh _build
for p in journal/mdrepl-journald syncd/mdrepl-syncd syncclient/mdrepl-syncclient ctl/mdreplctl; do
	_build/$p --version
done

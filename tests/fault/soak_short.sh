#!/bin/sh
# soak_short.sh — the soak fault harness (soak.sh) in the default test
# suite: 12 rounds, so every fault kind occurs at least once; about a
# minute. `make check-soak` runs the long version.
: "${SOAK_ROUNDS:=12}"
export SOAK_ROUNDS
. "$(dirname "$0")/soak.sh"

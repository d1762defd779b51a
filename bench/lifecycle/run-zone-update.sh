#!/bin/sh
# What a change to a 1k/100k/1M-service zone costs: acknowledged updates/s
# with the journal sync (one at a time and group-committed), IXFR apply and
# answer, RSS, compaction. Usage: bench/lifecycle/run-zone-update.sh [BUILD_DIR [SIZES...]]
# Env: AISID_BENCH_DIR (a real disk), AISID_BENCH_SECONDS, AISID_BENCH_BATCH.
set -e
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
cmake -S "$here" -B "$build" -DAISID_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_zone_update >/dev/null
[ $# -gt 0 ] && shift
exec "$build/bench/lifecycle/bench_zone_update" "$@"

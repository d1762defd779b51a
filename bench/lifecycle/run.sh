#!/bin/sh
# Lifecycle numbers: updates/s with the journal sync, and acknowledgement →
# secondary-answer latency. Usage: bench/lifecycle/run.sh [BUILD_DIR]
# Env: AISID_BENCH_UPDATES, AISID_BENCH_PROPAGATIONS, AISID_BENCH_DIR (a real disk).
set -e
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
cmake -S "$here" -B "$build" -DAISID_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_lifecycle aisidd aisid-admin >/dev/null
[ $# -gt 0 ] && shift
exec "$build/bench/lifecycle/bench_lifecycle" "$@"

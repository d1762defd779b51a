#!/bin/sh
# Verification cost of a fetched zone at ~1k, ~100k and ~1M records: zones
# made with aisid-gen-zone, signed with ldns-signzone (ECDSA P-256, ZONEMD
# SIMPLE SHA-384), then each step in its own process (bench_zonemd).
# Usage: bench/zonemd/run.sh [BUILD_DIR]
# Env: AISID_BENCH_LDNS_VERIFY=1 also times ldns-verify-zone; AISID_BENCH_SERVICES (default "170 17000 170000": a signed service is
#      about 6 records: AAAA, SVCB, NSEC and their RRSIGs), AISID_BENCH_DIR.
set -e
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
cmake -S "$here" -B "$build" -DAISID_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target bench_zonemd aisid-gen-zone >/dev/null
dir=${AISID_BENCH_DIR:-$(mktemp -d)}
cd "$dir"
key=$(ldns-keygen -a ECDSAP256SHA256 -k bench.example)
for n in ${AISID_BENCH_SERVICES:-170 17000 170000}; do
  "$build/bench/core/aisid-gen-zone" "$n" > "z$n.zone"
  t0=$(date +%s.%N)
  ldns-signzone -z 1:1 -f "z$n.signed" "z$n.zone" "$key"
  t1=$(date +%s.%N)
  echo "== $n services, $(wc -l < "z$n.signed") records signed in $(echo "$t1 - $t0" | bc | cut -c1-6) s by ldns-signzone"
  "$build/bench/zonemd/bench_zonemd" verify "z$n.signed" bench.example "$key.ds"
  "$build/bench/zonemd/bench_zonemd" load "z$n.signed"
  "$build/bench/zonemd/bench_zonemd" accept "z$n.signed" bench.example "$key.ds"
  "$build/bench/zonemd/bench_zonemd" served "z$n.signed" bench.example "$key.ds"
  # ldns-verify-zone (checks every signature, not just the apex) for comparison;
  # slow past 100k records, so only when asked.
  if [ -n "$AISID_BENCH_LDNS_VERIFY" ]; then
    /usr/bin/time -f "ldns-verify-zone -Z (all RRSIGs and ZONEMD): %es, %Us CPU, peak %MKB" ldns-verify-zone -Z "z$n.signed" >/dev/null
  fi
done
if [ -z "$AISID_BENCH_DIR" ]; then rm -rf "$dir"; fi

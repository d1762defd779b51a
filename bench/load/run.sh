#!/bin/bash
# Load test of aisidd: dnsperf below, at and past saturation for 60 s.
#   bench/load/run.sh [AISIDD_BINARY] [SECONDS]
# Starts a local Unbound (local-zone "." refuse: nothing leaves the machine)
# and aisidd on free loopback ports with the example zone and a small cache
# bound, then:
#   1. below saturation (dnsperf -Q 5000, 15 s) on AISID names only: every
#      query answered (0 lost), every answer NOERROR;
#   1b. over TCP (dnsperf -m tcp, 16 connections, 15 s): every query answered
#      NOERROR, and every connection gone afterwards (no fd leak);
#   2. past saturation (dnsperf -c 8 -q 1000, SECONDS, default 60) on a mix of
#      AISID names, cached legacy names and 200k unique legacy names (cache
#      churn), RSS sampled every second;
#   3. checks: aisidd alive and answering, RSS growth after warm-up (the
#      first 10 s) < 5 %, the cache (aisidd_cache_bytes) within --cache-size.
# Every wait is bounded; every process started here is stopped on exit.
# Exit 0 when every check holds. Output: dnsperf's, then one line per check.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=${1:-$src/build/resolver/aisidd}
secs=${2:-60}
cache_mb=8
[ -x "$bin" ] || { echo "run.sh: no aisidd at $bin" >&2; exit 2; }
for p in dnsperf unbound python3 dig; do command -v $p >/dev/null || { echo "run.sh: needs $p" >&2; exit 2; }; done

work=$(mktemp -d /tmp/aisid-load-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
cp "$bin" "$work/aisidd"   # a rebuild during the run must not swap the binary

free_port() { python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); p=s.getsockname()[1]; u.bind(("127.0.0.1",p)); print(p)'; }
wait_udp() {  # port: until something answers a DNS query (10 s at most)
  for _ in $(seq 100); do
    dig @127.0.0.1 -p "$1" +tries=1 +time=1 . SOA >/dev/null 2>&1 && return 0; sleep 0.1
  done; return 1
}

uport=$(free_port); aport=$(free_port); mport=$(free_port)
{
  echo "server:"
  echo "  interface: 127.0.0.1@$uport"; echo "  port: $uport"
  echo "  do-daemonize: no"; echo '  chroot: ""'; echo '  username: ""'; echo "  directory: \"$work\""
  echo '  pidfile: ""'; echo "  use-syslog: no"; echo "  verbosity: 0"; echo "  num-threads: 1"
  echo "  do-not-query-localhost: no"; echo "  access-control: 127.0.0.0/8 allow"
  echo '  local-zone: "." refuse'
  echo '  local-zone: "legacy.example." static'
  echo '  local-data: "legacy.example. 300 IN SOA ns.legacy.example. admin.legacy.example. 1 3600 600 86400 300"'
  for i in $(seq 0 99); do echo "  local-data: \"h$i.legacy.example. 300 IN A 192.0.2.$((i+1))\""; done
  echo "remote-control:"; echo "  control-enable: no"
} > "$work/unbound.conf"
unbound -d -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 & pids+=($!)
wait_udp "$uport" || { echo "run.sh: unbound did not start" >&2; cat "$work/unbound.log" >&2; exit 1; }

"$work/aisidd" --listen "127.0.0.1:$aport" --zone "$src/zones/ai.example.zone" --upstream "127.0.0.1:$uport" \
  --cache-size "${cache_mb}M" --metrics "127.0.0.1:$mport" --log-level warn > "$work/aisidd.log" 2>&1 &
apid=$!; pids+=($apid)
wait_udp "$aport" || { echo "run.sh: aisidd did not start" >&2; cat "$work/aisidd.log" >&2; exit 1; }

# Query files. AISID names: the registered services (explicit AAAA), names
# with a performance label (synthesized), codebook TXT, the SOA.
grep -E '^[a-z0-9.-]+ +AAAA +2001:db8:abcd' "$src/zones/ai.example.zone" | awk '{print $1".ai.example AAAA"}' > "$work/aisid.txt"
awk '{split($1,a,"."); print "p5000."$1" AAAA"}' "$work/aisid.txt" >> "$work/aisid.txt.p" && cat "$work/aisid.txt.p" >> "$work/aisid.txt"
echo "ai.example SOA" >> "$work/aisid.txt"; echo "_aisid.ai.example TXT" >> "$work/aisid.txt"
n_aisid=$(wc -l < "$work/aisid.txt")
python3 - "$work" <<'PY'
import random, sys
w = sys.argv[1]
aisid = open(w + "/aisid.txt").read().split("\n")[:-1]
random.seed(7)
with open(w + "/mix.txt", "w") as f:
    for i in range(400000):
        r = random.random()
        if r < 0.4: f.write(random.choice(aisid) + "\n")
        elif r < 0.7: f.write("h%d.legacy.example A\n" % random.randrange(100))
        else: f.write("u%d.legacy.example A\n" % random.randrange(200000))  # cache churn (NXDOMAIN, negative-cached)
PY

fail=0
echo "== 1. below saturation: AISID names, 5000 q/s for 15 s ($n_aisid names)"
dnsperf -s 127.0.0.1 -p "$aport" -d "$work/aisid.txt" -l 15 -Q 5000 -c 4 > "$work/p1.txt" 2>&1
cat "$work/p1.txt"
lost=$(awk '/Queries lost:/{print $3}' "$work/p1.txt")
noerr=$(grep -o 'NOERROR [0-9]*' "$work/p1.txt" | awk '{print $2}')
sent=$(awk '/Queries sent:/{print $3}' "$work/p1.txt")
if [ "${lost:-x}" = 0 ] && [ -n "$sent" ] && [ "${noerr:-0}" = "$sent" ]; then echo "CHECK ok: every AISID query answered NOERROR ($sent sent, 0 lost)"
else echo "CHECK FAIL: below saturation: sent=$sent lost=$lost noerror=$noerr"; fail=1; fi

echo "== 1b. over TCP: AISID names, 16 connections x 100 outstanding, 15 s (as fast as it goes)"
fds0=$(ls /proc/$apid/fd | wc -l)
dnsperf -m tcp -s 127.0.0.1 -p "$aport" -d "$work/aisid.txt" -l 15 -c 16 -q 1600 -t 5 > "$work/p1t.txt" 2>&1
cat "$work/p1t.txt"
lost=$(awk '/Queries lost:/{print $3}' "$work/p1t.txt")
noerr=$(grep -o 'NOERROR [0-9]*' "$work/p1t.txt" | awk '{print $2}')
done_q=$(awk '/Queries completed:/{print $3}' "$work/p1t.txt")
if [ "${lost:-x}" = 0 ] && [ -n "$done_q" ] && [ "$done_q" -gt 0 ] && [ "${noerr:-0}" = "$done_q" ]; then echo "CHECK ok: every TCP query answered NOERROR ($done_q, 0 lost)"
else echo "CHECK FAIL: over TCP: completed=$done_q lost=$lost noerror=$noerr"; fail=1; fi
# dnsperf has closed its connections: aisidd's side must be gone too (no fd leak).
for _ in $(seq 50); do
  open=$(curl -s -m 1 "http://127.0.0.1:$mport/metrics" | awk '/^aisidd_tcp_connections /{print $2}')
  [ "${open:-x}" = 0 ] && break; sleep 0.1
done
fds1=$(ls /proc/$apid/fd | wc -l)
if [ "${open:-x}" = 0 ] && [ "$fds1" -le "$fds0" ]; then echo "CHECK ok: TCP connections closed after the run (open $open, fds $fds0 -> $fds1)"
else echo "CHECK FAIL: TCP connections left open ($open) or fds grew ($fds0 -> $fds1)"; fail=1; fi

echo "== 2. past saturation: mixed names, 8 clients x 1000 outstanding, ${secs} s"
: > "$work/rss.txt"
( for _ in $(seq $((secs + 5))); do
    r=$(awk '/VmRSS/{print $2}' /proc/$apid/status 2>/dev/null) || break
    e=$(curl -s -m 1 "http://127.0.0.1:$mport/metrics" | awk '/^aisidd_cache_evictions_total /{print $2}')
    echo "$r ${e:-0}" >> "$work/rss.txt"; sleep 1
  done ) & sampler=$!; pids+=($sampler)
dnsperf -s 127.0.0.1 -p "$aport" -d "$work/mix.txt" -l "$secs" -c 8 -q 1000 -t 5 > "$work/p2.txt" 2>&1
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
cat "$work/p2.txt"

echo "== 3. checks"
if kill -0 $apid 2>/dev/null && [ "$(dig @127.0.0.1 -p $aport +short +tries=1 +time=2 yolo.detection.image.ai.example AAAA)" = "2001:db8:abcd:12:1:2:1:0" ]; then
  echo "CHECK ok: aisidd alive and answering after the run"
else echo "CHECK FAIL: aisidd died or stopped answering"; tail -20 "$work/aisidd.log"; fail=1; fi
echo "RSS samples (kB, one per second): $(awk '{printf "%s ", $1}' "$work/rss.txt")"
python3 - "$work/rss.txt" <<'PY' || fail=1
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
v = [int(r[0]) for r in rows]; ev = [float(r[1]) for r in rows]
# Warm-up: until the cache reaches its bound (the first eviction), plus 5 s.
full = next((i for i, e in enumerate(ev) if e > 0), None)
if full is None or len(v) - (full + 5) < 10:
    print("CHECK FAIL: the cache never filled, or too few samples after it (%d samples, full at %s)" % (len(v), full)); sys.exit(1)
w = full + 5
base = v[w]; peak = max(v[w:]); last = v[-1]
g = (peak - base) * 100.0 / base
print("cache full after %d s; RSS after warm-up (%d s) %d kB, peak after %d kB, last %d kB, growth %.2f %%" % (full, w, base, peak, last, g))
print("CHECK %s: RSS growth after warm-up < 5 %%" % ("ok" if g < 5 else "FAIL"))
sys.exit(0 if g < 5 else 1)
PY
metrics=$(python3 -c "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:$mport/metrics',timeout=5).read().decode())" 2>/dev/null)
cbytes=$(echo "$metrics" | awk '/^aisidd_cache_bytes /{print $2}')
centries=$(echo "$metrics" | awk '/^aisidd_cache_entries /{print $2}')
cevict=$(echo "$metrics" | awk '/^aisidd_cache_evictions_total /{print $2}')
echo "cache: bytes=$cbytes entries=$centries evictions=$cevict bound=$((cache_mb << 20))"
if [ -n "$cbytes" ] && [ "$cbytes" -le $((cache_mb << 20)) ]; then echo "CHECK ok: cache within its bound"
else echo "CHECK FAIL: cache bytes $cbytes over the bound $((cache_mb << 20))"; fail=1; fi
echo "$metrics" | grep -E '^aisidd_queries_total' || true
[ $fail = 0 ] && echo "RESULT: all checks hold" || echo "RESULT: FAILED"
exit $fail

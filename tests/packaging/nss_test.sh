#!/bin/sh
# The NSS module through the real glibc path: each check runs in a
# private mount namespace (unshare -m) where /etc/nsswitch.conf, /etc/hosts,
# /etc/resolv.conf and /var/lib (holding aisid/zones/) are the test's own
# files, bind-mounted; glibc finds libnss_aisid.so.2 through LD_LIBRARY_PATH.
# The host's real files are never touched. In a sanitizer build the module is
# instrumented and getent is not: AISID_SANITIZER_PRELOAD (set by CMake) names
# the sanitizer's runtime, preloaded into the programs run in the namespace.
#
#   nss_test.sh CHECK MODULE_DIR SOURCE_DIR [NSS_LOOP]
#   CHECK: getent | fallthrough | reverse | million | reload | buffers | exports
# Exit 0 pass, 1 fail, 77 skipped (no root / no mount namespaces).
set -eu

CHECK=$1
MODDIR=$2
SRC=$3
LOOP=${4:-}

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

if [ "$CHECK" = exports ]; then
    # Only glibc's entry points leave the module; the statically linked core,
    # ldns wrappers and C++ inline instances stay hidden (version script).
    SO=$MODDIR/libnss_aisid.so.2
    [ -f "$SO" ] || fail "$SO not built"
    syms=$(nm -D --defined-only "$SO" | awk '{print $3}' | sort)
    expected="_nss_aisid_gethostbyaddr2_r
_nss_aisid_gethostbyaddr_r
_nss_aisid_gethostbyname2_r
_nss_aisid_gethostbyname3_r
_nss_aisid_gethostbyname4_r
_nss_aisid_gethostbyname_r"
    [ "$syms" = "$expected" ] || fail "exported symbols differ from the six _nss_aisid_ entry points:
$syms"
    soname=$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [ "$soname" = libnss_aisid.so.2 ] || fail "SONAME is '$soname'"
    if readelf -d "$SO" | grep -q 'NEEDED.*libaisid'; then fail "links libaisid.so (the core must be static)"; fi
    readelf -d "$SO" | grep -q 'BIND_NOW' || readelf -d "$SO" | grep -q 'FLAGS.*NOW' || fail "not linked with -z now"
    echo "exports: the six _nss_aisid_ symbols, SONAME libnss_aisid.so.2"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || skip "needs root for unshare -m"
unshare -m true 2>/dev/null || skip "mount namespaces are not available here"
[ -f "$MODDIR/libnss_aisid.so.2" ] || fail "$MODDIR/libnss_aisid.so.2 not built"
command -v getent >/dev/null || fail "getent missing"

T=$(mktemp -d "${TMPDIR:-/tmp}/nss_test.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/varlib/aisid/zones" "$T/empty"
cp "$SRC/zones/ai.example.zone" "$T/varlib/aisid/zones/"
# Another source: /etc/hosts with names the aisid source must not shadow.
cat > "$T/hosts" <<'EOF'
127.0.0.1 localhost
2001:db8:ff::1 other-source.hosts.example
192.0.2.10 v4only.hosts.example
EOF
# DNS (the last source) fails at once instead of going off the machine.
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$T/resolv.conf"

# in_ns NSSWITCH_HOSTS_LINE SCRIPT: runs SCRIPT (sh) in the private namespace.
in_ns() {
    printf 'hosts: %s\n' "$1" > "$T/nsswitch.conf"
    cat > "$T/inner.sh" <<EOF
set -eu
mount --make-rprivate /
mount --bind "$T/nsswitch.conf" /etc/nsswitch.conf
mount --bind "$T/hosts" /etc/hosts
mount --bind "$T/resolv.conf" /etc/resolv.conf
mount --bind "$T/varlib" /var/lib
if [ -d /etc/aisid ]; then mount --bind "$T/empty" /etc/aisid; fi
export LD_LIBRARY_PATH="$MODDIR"
${AISID_SANITIZER_PRELOAD:+export LD_PRELOAD="$AISID_SANITIZER_PRELOAD"}
$2
EOF
    unshare -m sh "$T/inner.sh"
}

# expect_line OUTPUT REGEX WHAT
expect() { printf '%s\n' "$1" | grep -Eq "$2" || fail "$3; got:
$1"; }
reject() { if printf '%s\n' "$1" | grep -Eq "$2"; then fail "$3; got:
$1"; fi; }

case "$CHECK" in
getent)
    out=$(in_ns "files aisid dns" '
        echo "== ahosts yolo"; getent ahosts yolo.detection.image.ai.example || echo "rc=$?"
        echo "== ahosts p5000"; getent ahosts p5000.detection.image.ai.example || echo "rc=$?"
        echo "== ahosts other"; getent ahosts other-source.hosts.example || echo "rc=$?"
        echo "== hosts ns"; getent hosts ns.ai.example || echo "rc=$?"
        echo "== ahosts nx"; getent ahosts nosuch.image.ai.example || echo "rc=$?"
        echo "== ahosts legacy"; getent ahosts legacy-name.example || echo "rc=$?"
        echo "== end"')
    expect "$out" '^2001:db8:abcd:12:1:2:1:0 +STREAM +yolo\.detection\.image\.ai\.example' "AISID of yolo.detection.image.ai.example"
    expect "$out" '^2001:db8:abcd:12:1:2:0:1388 +STREAM +p5000\.detection\.image\.ai\.example' "synthesized AISID of p5000.detection.image.ai.example"
    expect "$out" '^2001:db8:ff::1 +STREAM +other-source\.hosts\.example' "a name from /etc/hosts still resolves"
    expect "$out" '^2001:db8:53::1 +ns\.ai\.example' "explicit AAAA of ns.ai.example"
    reject "$(printf '%s\n' "$out" | sed -n '/== ahosts nx/,/== ahosts legacy/p')" '2001:db8:abcd' "NXDOMAIN name answered"
    expect "$out" '== ahosts nx
rc=2' "nosuch.image.ai.example must be not found"
    expect "$out" '== ahosts legacy
rc=2' "a legacy name falls through to dns (which fails here)"
    # And with the aisid source before files, AF_UNSPEC gets the AISID.
    out=$(in_ns "aisid files dns" 'getent ahosts yolo.detection.image.ai.example')
    expect "$out" '^2001:db8:abcd:12:1:2:1:0 +STREAM +yolo\.detection\.image\.ai\.example' "AISID first with hosts: aisid files dns"
    echo "getent: AISID names answered, /etc/hosts and dns still asked"
    ;;
fallthrough)
    # aisid first: what it does not answer must reach the next source (files),
    # which here also knows an IPv4 address for an AISID name.
    echo '192.0.2.77 yolo.detection.image.ai.example' >> "$T/hosts"
    out=$(in_ns "aisid files" '
        echo "== v4 aisid name"; getent ahostsv4 yolo.detection.image.ai.example || echo "rc=$?"
        echo "== v4 other"; getent ahostsv4 v4only.hosts.example || echo "rc=$?"
        echo "== v6 other"; getent ahosts other-source.hosts.example || echo "rc=$?"
        echo "== end"')
    expect "$out" '^192\.0\.2\.77 +STREAM +yolo\.detection\.image\.ai\.example' "AF_INET question for an AISID name falls through to files"
    reject "$(printf '%s\n' "$out" | sed -n '/== v4 aisid name/,/== v4 other/p')" '2001:db8' "AF_INET question answered with an AISID"
    expect "$out" '^192\.0\.2\.10 +STREAM +v4only\.hosts\.example' "non-AISID name falls through (IPv4)"
    expect "$out" '^2001:db8:ff::1 +STREAM +other-source\.hosts\.example' "non-AISID name falls through (IPv6)"
    # The aisid source alone: NOTFOUND for them (getent exit 2), not an error.
    out=$(in_ns "aisid" '
        rc=0; getent ahostsv4 yolo.detection.image.ai.example || rc=$?; echo "v4=$rc"
        rc=0; getent ahosts other-source.hosts.example || rc=$?; echo "other=$rc"
        rc=0; getent ahosts yolo.detection.image.ai.example >/dev/null || rc=$?; echo "v6=$rc"')
    expect "$out" '^v4=2$' "AF_INET for an AISID name must be NOTFOUND"
    expect "$out" '^other=2$' "a non-AISID name must be NOTFOUND"
    expect "$out" '^v6=0$' "the AISID name must be found"
    echo "fallthrough: AF_INET and non-AISID names reach the next source"
    ;;
reverse)
    out=$(in_ns "files aisid dns" '
        getent hosts 2001:db8:abcd:12:1:2:1:1388 || echo "rc=$?"
        getent hosts 2001:db8:abcd:12:4:9:c:0 || echo "rc=$?"
        echo "== unknown codes"; getent hosts 2001:db8:abcd:12:7:7:7:0 || echo "rc=$?"
        echo "== outside"; getent hosts 2001:db8:1::1 || echo "rc=$?"')
    expect "$out" '^2001:db8:abcd:12:1:2:1:1388 +p5000\.yolo\.detection\.image\.ai\.example$' "reverse of a p5000 AISID"
    expect "$out" '^2001:db8:abcd:12:4:9:c:0 +clip\.captioning\.video\.ai\.example$' "reverse of a service AISID"
    expect "$out" '== unknown codes
rc=2' "codes outside the codebook must be not found"
    expect "$out" '== outside
rc=2' "an address outside every AISID prefix must be not found"
    echo "reverse: AISIDs map back to service names"
    ;;
million)
    [ -x "$LOOP" ] || fail "nss_loop helper not built"
    out=$(in_ns "aisid" "\"$LOOP\" 1000000 yolo.detection.image.ai.example 2001:db8:abcd:12:1:2:1:0 2") ||
        fail "nss_loop: $out"
    echo "$out"
    ;;
buffers)
    [ -x "$LOOP" ] || fail "nss_loop helper not built"
    out=$(in_ns "files" "\"$LOOP\" --buffers \"$MODDIR/libnss_aisid.so.2\" yolo.detection.image.ai.example 2001:db8:abcd:12:1:2:1:0") ||
        fail "$out"
    echo "$out"
    ;;
reload)
    [ -x "$LOOP" ] || fail "nss_loop helper not built"
    Z=$T/varlib/aisid/zones/ai.example.zone
    STEP=$T/step
    : > "$STEP"
    in_ns "aisid" "\"$LOOP\" --reload vit.classification.text.ai.example 2001:db8:abcd:12:2:1:3:0 \"$STEP\"" > "$T/loop.out" 2>&1 &
    pid=$!
    i=0
    while [ "$(cat "$STEP")" != 1 ]; do
        i=$((i + 1)); [ $i -lt 500 ] || { kill $pid 2>/dev/null; fail "helper never started: $(cat "$T/loop.out")"; }
        sleep 0.01
    done
    # Register a new service in the zone, in place (a new mtime and size).
    echo 'vit.classification.text AAAA 2001:db8:abcd:12:2:1:3:0' >> "$Z"
    while [ "$(cat "$STEP")" != 2 ]; do
        kill -0 $pid 2>/dev/null || { wait $pid || true; fail "$(cat "$T/loop.out")"; }
        sleep 0.01
    done
    # Break the file: the module must keep the last good copy.
    echo 'this is not a zone line (((' >> "$Z"
    rc=0; wait $pid || rc=$?
    cat "$T/loop.out"
    [ $rc -eq 0 ] || fail "reload check failed"
    ;;
*)
    fail "unknown check '$CHECK'"
    ;;
esac

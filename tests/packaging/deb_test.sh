#!/bin/sh
# Packaging checks. The packages come from the build tree the test
# run already built (packaging/build-deb --build-dir: cmake --install, never a
# rebuild); they are installed only into throwaway roots, with dpkg --root and
# the maintainer scripts run chroot-free (DPKG_ROOT). Nothing on this host's
# /etc is touched.
#
#   deb_test.sh CHECK SOURCE_DIR BUILD_DIR DEB_DIR [NOTIFY_HELPER]
#   CHECK: build | contents | maintscripts | lintian | python | unit | resolvconf | ready (+ NOTIFY_HELPER)
# Exit 0 pass, 1 fail, 77 skipped (a tool is missing; the reason is printed).
set -eu

CHECK=$1
SRC=$2
BUILD=$3
DEBS=$4

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/deb_test.XXXXXX")
trap 'rm -rf "$T"' EXIT

deb() {  # deb PACKAGE: the path of its .deb
    set -- "$DEBS"/"$1"_*.deb
    [ -f "$1" ] || fail "no $1 (did the build check run?)"
    echo "$1"
}

# A throwaway root dpkg can install into.
new_root() {
    R=$T/root.$1
    mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" "$R/etc"
    : > "$R/var/lib/dpkg/status"
    : > "$R/var/lib/dpkg/available"
    echo "$R"
}

# dpkg on a throwaway root, maintainer scripts run without chroot (they
# honour DPKG_ROOT); the root has no libc6 etc., hence --force-depends.
rdpkg() {
    root=$1; shift
    dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root \
        --log=/dev/null "$@" > "$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log" >&2; fail "dpkg $*"; }
}

hosts_line() { grep '^hosts:' "$1/etc/nsswitch.conf"; }

case "$CHECK" in
build)
    for t in dpkg-deb dpkg-shlibdeps; do
        command -v $t >/dev/null || skip "$t is not installed (package dpkg-dev)"
    done
    rm -rf "$DEBS"
    "$SRC/packaging/build-deb" --build-dir "$BUILD" --out "$DEBS" --no-lintian > "$T/out" 2> "$T/err" ||
        { cat "$T/out" "$T/err" >&2; fail "packaging/build-deb"; }
    cat "$T/out"
    for p in aisidd aisid-tools libaisid0 libaisid-dev libnss-aisid python3-aisid; do deb $p > /dev/null; done
    ;;
contents)
    # Each package holds what SPEC §6 promises, with Debian's metadata.
    has() {  # has PACKAGE REGEX...
        p=$1; shift
        list=$(dpkg-deb -c "$(deb "$p")" | awk '{print $6}')
        for re in "$@"; do
            printf '%s\n' "$list" | grep -Eq "$re" || fail "$p lacks $re; it has:
$list"
        done
    }
    has aisidd '^\./usr/sbin/aisidd$' '^\./usr/sbin/aisid-resolvconf$' '^\./etc/aisid/aisidd\.conf$' \
        '^\./etc/aisid/zones/ai\.example\.zone$' '^\./usr/lib/systemd/system/aisidd\.service$' \
        '^\./usr/lib/sysusers\.d/aisid\.conf$' '/man8/aisidd\.8\.gz$' '/man5/aisidd\.conf\.5\.gz$' \
        '/man8/aisid-resolvconf\.8\.gz$' '^\./usr/share/doc/aisidd/copyright$'
    has aisid-tools '^\./usr/bin/aisid-lookup$' '/man1/aisid-lookup\.1\.gz$'
    if [ -x "$BUILD/cli/aisid-admin" ]; then has aisid-tools '^\./usr/bin/aisid-admin$' '/man8/aisid-admin\.8\.gz$'; fi
    has libaisid0 '/libaisid\.so\.0$' '/libaisid\.so\.0\.[0-9.]+$'
    has libaisid-dev '^\./usr/include/aisid/aisid\.h$' '^\./usr/include/aisid/aisid\.hpp$' '/libaisid\.so$' \
        '/libaisid\.a$' '/pkgconfig/aisid\.pc$' '/cmake/aisid/aisidConfig\.cmake$' '/cmake/aisid/aisidTargets\.cmake$'
    has libnss-aisid '/libnss_aisid\.so\.2$'

    info=$(dpkg-deb -I "$(deb aisidd)")
    printf '%s\n' "$info" | grep -q '^ Package: aisidd$' || fail "aisidd control: $info"
    printf '%s\n' "$info" | grep -Eq '^ Depends: .*libc6' || fail "aisidd has no shlibs Depends: $info"
    for s in postinst prerm postrm conffiles md5sums; do
        printf '%s\n' "$info" | grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$s" || fail "aisidd lacks DEBIAN/$s"
    done
    dpkg-deb -e "$(deb aisidd)" "$T/aisidd.ctl"
    [ "$(cat "$T/aisidd.ctl/conffiles")" = "/etc/aisid/aisidd.conf
/etc/aisid/zones/ai.example.zone" ] || fail "aisidd conffiles: $(cat "$T/aisidd.ctl/conffiles")"
    dpkg-deb -e "$(deb libnss-aisid)" "$T/nss.ctl"
    [ -x "$T/nss.ctl/postinst" ] && [ -x "$T/nss.ctl/postrm" ] || fail "libnss-aisid lacks postinst/postrm"
    grep -qx 'activate-noawait ldconfig' "$T/nss.ctl/triggers" || fail "libnss-aisid lacks the ldconfig trigger"
    dpkg-deb -e "$(deb libaisid0)" "$T/lib.ctl"
    grep -Eq '^libaisid 0 libaisid0 \(>= ' "$T/lib.ctl/shlibs" || fail "libaisid0 shlibs: $(cat "$T/lib.ctl/shlibs")"
    dpkg-deb -f "$(deb libaisid-dev)" Depends | grep -q 'libaisid0 (= ' || fail "libaisid-dev must depend on libaisid0 (=)"
    # The installed NSS module is the stripped build of the one the tests load.
    dpkg-deb -x "$(deb libnss-aisid)" "$T/nss"
    so=$(find "$T/nss" -name libnss_aisid.so.2)
    nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^_nss_aisid_' && fail "packaged module exports more than _nss_aisid_*"
    echo "contents: six packages with programs, library, headers, aisid.pc, CMake package, NSS module, unit, conffiles, man pages"
    ;;
maintscripts)
    command -v systemd-sysusers >/dev/null || skip "systemd-sysusers missing (package systemd)"
    # 1. A stock Debian hosts line: aisid lands right before dns, once.
    R=$(new_root plain)
    printf 'passwd:         files\nhosts:          files dns\nnetworks:       files\n' > "$R/etc/nsswitch.conf"
    cp "$R/etc/nsswitch.conf" "$T/nsswitch.orig"
    rdpkg "$R" -i "$(deb libnss-aisid)" "$(deb aisidd)"
    [ "$(hosts_line "$R")" = "hosts:          files aisid dns" ] || fail "after install: $(hosts_line "$R")"
    grep -q '^aisid:x:[0-9]*:[0-9]*:.*:/var/lib/aisid:/usr/sbin/nologin$' "$R/etc/passwd" || fail "no aisid system user: $(cat "$R/etc/passwd")"
    grep -q '^aisid:x:' "$R/etc/group" || fail "no aisid group"
    [ -f "$R/etc/aisid/aisidd.conf" ] && [ -f "$R/etc/aisid/zones/ai.example.zone" ] || fail "conffiles not installed"
    # Reinstall (an upgrade to the same version): still once.
    rdpkg "$R" -i "$(deb libnss-aisid)" "$(deb aisidd)"
    [ "$(hosts_line "$R")" = "hosts:          files aisid dns" ] || fail "after upgrade: $(hosts_line "$R")"
    [ "$(grep -c '^aisid:' "$R/etc/passwd")" -eq 1 ] || fail "user created twice"
    # aisidd made the resolver, then removed: resolv.conf comes back.
    printf 'nameserver 192.0.2.1\n' > "$R/etc/resolv.conf.orig"
    ln -s resolv.conf.orig "$R/etc/resolv.conf"
    mkdir -p "$R/var/lib/aisid-resolvconf" "$R/var/lib/aisid/zones"
    echo resolv.conf.orig > "$R/var/lib/aisid-resolvconf/resolv.conf.link"
    echo 'AISIDD_UPSTREAMS="--upstream=192.0.2.1"' > "$R/var/lib/aisid-resolvconf/upstreams.env"
    rm "$R/etc/resolv.conf"
    printf '# Generated by aisid-resolvconf: aisidd is this host'"'"'s resolver.\nnameserver 127.0.0.153\n' > "$R/etc/resolv.conf"
    rdpkg "$R" -r aisidd libnss-aisid
    [ -L "$R/etc/resolv.conf" ] && [ "$(readlink "$R/etc/resolv.conf")" = resolv.conf.orig ] ||
        fail "remove did not restore resolv.conf: $(ls -l "$R/etc/resolv.conf"; cat "$R/etc/resolv.conf")"
    cmp -s "$R/etc/nsswitch.conf" "$T/nsswitch.orig" || fail "remove left nsswitch.conf changed: $(cat "$R/etc/nsswitch.conf")"
    [ -f "$R/etc/aisid/aisidd.conf" ] || fail "remove (not purge) must keep conffiles"
    rdpkg "$R" -P aisidd libnss-aisid
    [ ! -e "$R/etc/aisid/aisidd.conf" ] || fail "purge left /etc/aisid/aisidd.conf"
    [ ! -e "$R/var/lib/aisid" ] && [ ! -e "$R/var/lib/aisid-resolvconf" ] || fail "purge left aisid's state"
    cmp -s "$R/etc/nsswitch.conf" "$T/nsswitch.orig" || fail "purge: nsswitch.conf not as before: $(cat "$R/etc/nsswitch.conf")"

    # 2. systemd-resolved's line: before "resolve", not after its [!UNAVAIL=return].
    R=$(new_root resolved)
    printf 'hosts: files myhostname resolve [!UNAVAIL=return] dns\n' > "$R/etc/nsswitch.conf"
    rdpkg "$R" -i "$(deb libnss-aisid)"
    [ "$(hosts_line "$R")" = "hosts: files myhostname aisid resolve [!UNAVAIL=return] dns" ] || fail "resolved line: $(hosts_line "$R")"
    rdpkg "$R" -P libnss-aisid
    [ "$(hosts_line "$R")" = "hosts: files myhostname resolve [!UNAVAIL=return] dns" ] || fail "resolved line after purge: $(hosts_line "$R")"

    # 3. Already configured by the admin (with an action): left alone, and on
    #    purge removed with its action.
    R=$(new_root admin)
    printf 'hosts:\tfiles aisid [NOTFOUND=return] dns\n' > "$R/etc/nsswitch.conf"
    rdpkg "$R" -i "$(deb libnss-aisid)"
    [ "$(hosts_line "$R")" = "$(printf 'hosts:\tfiles aisid [NOTFOUND=return] dns')" ] || fail "admin line changed: $(hosts_line "$R")"
    rdpkg "$R" -P libnss-aisid
    [ "$(hosts_line "$R")" = "$(printf 'hosts:\tfiles dns')" ] || fail "admin line after purge: $(hosts_line "$R")"

    # 4. No DNS source at all: not touched. No nsswitch.conf: nothing created.
    R=$(new_root nodns)
    printf 'hosts: files\n' > "$R/etc/nsswitch.conf"
    rdpkg "$R" -i "$(deb libnss-aisid)"
    [ "$(hosts_line "$R")" = "hosts: files" ] || fail "line without dns changed: $(hosts_line "$R")"
    R=$(new_root none)
    rdpkg "$R" -i "$(deb libnss-aisid)"
    [ ! -e "$R/etc/nsswitch.conf" ] || fail "postinst created an nsswitch.conf"
    echo "maintscripts: nsswitch.conf edited once before dns/resolve, undone on remove and purge; user, conffiles, resolv.conf restore"
    ;;
python)
    # python3-aisid: laid out by dh_python3, depending on libaisid0, and the
    # module from the .deb (with the library from the .deb) imported and used.
    command -v python3 >/dev/null || skip "python3 is not installed"
    python3 -c 'import cffi' 2>/dev/null || skip "python3-cffi is not installed"
    list=$(dpkg-deb -c "$(deb python3-aisid)" | awk '{print $6}')
    for re in '^\./usr/lib/python3/dist-packages/aisid/__init__\.py$' '^\./usr/lib/python3/dist-packages/aisid/httpx\.py$' \
              '^\./usr/lib/python3/dist-packages/aisid-[0-9.]+\.dist-info/METADATA$' '^\./usr/share/doc/python3-aisid/copyright$'; do
        printf '%s\n' "$list" | grep -Eq "$re" || fail "python3-aisid lacks $re; it has:
$list"
    done
    printf '%s\n' "$list" | grep -q '__pycache__\|\.pyc$' && fail "python3-aisid ships byte code: $list"
    [ "$(dpkg-deb -f "$(deb python3-aisid)" Architecture)" = all ] || fail "python3-aisid is not Architecture: all"
    dep=$(dpkg-deb -f "$(deb python3-aisid)" Depends)
    for d in 'python3:any' 'python3-cffi' 'libaisid0 (= '; do
        printf '%s' "$dep" | grep -qF "$d" || fail "python3-aisid Depends lacks $d: $dep"
    done
    dpkg-deb -e "$(deb python3-aisid)" "$T/py.ctl"
    grep -q 'py3compile -p python3-aisid' "$T/py.ctl/postinst" || fail "python3-aisid postinst does not byte-compile"
    grep -q 'py3clean -p python3-aisid' "$T/py.ctl/prerm" || fail "python3-aisid prerm does not clean up"
    R=$T/pyroot
    dpkg-deb -x "$(deb python3-aisid)" "$R"
    dpkg-deb -x "$(deb libaisid0)" "$R"
    lib=$(find "$R" -name 'libaisid.so.0' | head -1)
    [ -n "$lib" ] || fail "libaisid0 has no libaisid.so.0"
    if nm -D "$lib" 2>/dev/null | grep -Eq ' U __(asan|tsan)_init'; then
        skip "this libaisid is built with a sanitizer: an uninstrumented python3 cannot load it"
    fi
    out=$(cd "$T" && env -u PYTHONPATH PYTHONPATH="$R/usr/lib/python3/dist-packages" AISID_LIBRARY="$lib" PYTHONDONTWRITEBYTECODE=1 \
          python3 -c 'import aisid, sys; assert aisid.__file__.startswith(sys.argv[1]), aisid.__file__
r = aisid.Client(zones=[sys.argv[2]]).resolve("p5000.yolo.detection.image.ai.example")
print(r.address, r.fields.method_term, aisid.version())' "$R/" "$SRC/zones/ai.example.zone" 2>&1) ||
        fail "import from the .deb: $out"
    [ "$out" = "2001:db8:abcd:12:1:2:1:1388 yolo 0.1.0" ] || fail "python3-aisid from the .deb answered: $out"
    echo "python: python3-aisid from the .deb imported in a scratch root: $out"
    ;;
lintian)
    command -v lintian >/dev/null || skip "lintian is not installed (apt-get install lintian)"
    lintian --tag-display-limit 0 "$DEBS"/*.deb > "$T/lintian" 2>&1 || true
    grep -v '^running with root privileges' "$T/lintian" || true
    if grep -q '^E:' "$T/lintian"; then fail "lintian reports errors"; fi
    ;;
unit)
    command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (package systemd, in packaging/test-deps.txt)"
    UNIT=$SRC/packaging/aisidd.service
    # The unit names the packaged path; verify it against the built binary.
    grep -q '^ExecStart=/usr/sbin/aisidd --config /etc/aisid/aisidd.conf ' "$UNIT" || fail "ExecStart changed"
    AISIDD=$BUILD/resolver/aisidd
    [ -x "$AISIDD" ] || fail "$AISIDD not built"
    mkdir -p "$T/units"
    sed "s|/usr/sbin/aisidd|$AISIDD|" "$UNIT" > "$T/units/aisidd.service"
    systemd-analyze verify --man=no "$T/units/aisidd.service" > "$T/verify" 2>&1 || { cat "$T/verify" >&2; fail "systemd-analyze verify"; }
    if [ -s "$T/verify" ]; then cat "$T/verify" >&2; fail "systemd-analyze verify printed warnings"; fi
    for k in 'Type=notify' 'User=aisid' 'StateDirectory=aisid' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
             'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' 'AmbientCapabilities=CAP_NET_BIND_SERVICE' \
             'ExecReload=/bin/kill -HUP $MAINPID'; do
        grep -qxF "$k" "$UNIT" || fail "unit lacks $k"
    done
    # The exposure score systemd computes from the sandboxing (0 best, 10 worst).
    if systemd-analyze security --offline=yes "$T/units/aisidd.service" > "$T/sec" 2>&1; then
        score=$(sed -n 's/.*Overall exposure level for aisidd.service: \([0-9.]*\).*/\1/p' "$T/sec")
        echo "systemd-analyze security: exposure $score"
        awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }' || fail "exposure $score > 2.0"
    else
        echo "systemd-analyze security --offline is not supported here; verify only"
    fi
    ;;
ready)
    # aisidd under the notify protocol, as aisidd.service (Type=notify) runs it.
    AISIDD=$BUILD/resolver/aisidd
    HELPER=$5
    [ -x "$AISIDD" ] && [ -x "$HELPER" ] || fail "aisidd and notify_listen must be built"
    PORT=$(( 20000 + ($$ * 13) % 40000 ))
    "$HELPER" 10 "$AISIDD" --listen "127.0.0.1:$PORT" --zone "$SRC/zones/ai.example.zone" --upstream 192.0.2.1
    ;;
resolvconf)
    TOOL=$SRC/packaging/aisid-resolvconf
    AISIDD=$BUILD/resolver/aisidd
    LOOKUP_DIR=$BUILD/cli
    [ -x "$AISIDD" ] && [ -x "$LOOKUP_DIR/aisid-lookup" ] || fail "aisidd and aisid-lookup must be built"
    export PATH="$LOOKUP_DIR:$PATH"
    R=$T/root
    mkdir -p "$R/etc/aisid/zones" "$R/run/systemd/resolve"
    cp "$SRC/packaging/aisidd.conf" "$R/etc/aisid/"
    # systemd-resolved's layout: resolv.conf a symlink to its stub file, which
    # also names aisidd's own address (that must never become an upstream).
    printf 'nameserver 127.0.0.53\nnameserver 127.0.0.153\noptions edns0 trust-ad\nsearch example.net\n' > "$R/run/systemd/resolve/stub-resolv.conf"
    ln -s ../run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
    # aisidd on a free loopback port (resolv.conf itself always names :53);
    # another port when this one is taken.
    APID=
    trap 'if [ -n "$APID" ]; then kill $APID 2>/dev/null; fi; rm -rf "$T"' EXIT
    for attempt in 1 2 3 4 5; do
        PORT=$(( 20000 + ($$ * 7 + attempt * 1009) % 40000 ))
        "$AISIDD" --listen "127.0.0.1:$PORT" --zone "$SRC/zones/ai.example.zone" --upstream 192.0.2.1 > "$T/aisidd.log" 2>&1 &
        APID=$!
        i=0
        while kill -0 $APID 2>/dev/null && [ $i -lt 50 ]; do
            if aisid-lookup --server "127.0.0.1:$PORT" yolo.detection.image.ai.example > /dev/null 2>&1; then break 2; fi
            i=$((i + 1)); sleep 0.1
        done
        kill $APID 2>/dev/null || true; wait $APID 2>/dev/null || true; APID=
    done
    [ -n "$APID" ] || fail "aisidd did not come up: $(cat "$T/aisidd.log")"
    OPTS="--root $R --probe yolo.detection.image.ai.example --timeout 1"

    # Nobody answers: nothing changes.
    rc=0; "$TOOL" $OPTS --probe-server 127.0.0.1:1 enable > "$T/o" 2>&1 || rc=$?
    [ $rc -eq 3 ] || fail "enable without an answering aisidd: rc $rc, $(cat "$T/o")"
    [ "$(readlink "$R/etc/resolv.conf")" = ../run/systemd/resolve/stub-resolv.conf ] || fail "resolv.conf changed although aisidd did not answer"
    [ ! -e "$R/var/lib/aisid-resolvconf/upstreams.env" ] || fail "upstreams left behind after a refused enable"

    "$TOOL" $OPTS --probe-server "127.0.0.1:$PORT" enable
    [ ! -L "$R/etc/resolv.conf" ] || fail "resolv.conf still the symlink"
    grep -qx 'nameserver 127.0.0.153' "$R/etc/resolv.conf" || fail "resolv.conf: $(cat "$R/etc/resolv.conf")"
    [ "$(grep -c '^nameserver' "$R/etc/resolv.conf")" -eq 1 ] || fail "resolv.conf names more than aisidd"
    grep -qx 'search example.net' "$R/etc/resolv.conf" || fail "search line lost"
    grep -qx 'AISIDD_UPSTREAMS="--upstream=127.0.0.53"' "$R/var/lib/aisid-resolvconf/upstreams.env" ||
        fail "upstreams (aisidd itself must be left out): $(cat "$R/var/lib/aisid-resolvconf/upstreams.env")"
    "$TOOL" $OPTS --probe-server "127.0.0.1:$PORT" status > "$T/o" || fail "status after enable: $(cat "$T/o")"
    # Enabling twice keeps the original saved.
    "$TOOL" $OPTS --probe-server "127.0.0.1:$PORT" enable | grep -q 'already enabled' || fail "second enable"
    "$TOOL" $OPTS disable
    [ "$(readlink "$R/etc/resolv.conf")" = ../run/systemd/resolve/stub-resolv.conf ] || fail "disable did not restore the symlink"
    [ ! -e "$R/var/lib/aisid-resolvconf" ] || fail "disable left state behind"
    rc=0; "$TOOL" $OPTS status > /dev/null || rc=$?
    [ $rc -eq 1 ] || fail "status after disable: rc $rc"

    # A plain file is restored byte for byte.
    rm "$R/etc/resolv.conf"
    printf 'nameserver 192.0.2.1\nnameserver 2001:db8::53\n' > "$R/etc/resolv.conf"
    cp "$R/etc/resolv.conf" "$T/plain"
    "$TOOL" $OPTS --probe-server "127.0.0.1:$PORT" enable > /dev/null
    grep -qx 'AISIDD_UPSTREAMS="--upstream=192.0.2.1 --upstream=2001:db8::53"' "$R/var/lib/aisid-resolvconf/upstreams.env" ||
        fail "upstreams: $(cat "$R/var/lib/aisid-resolvconf/upstreams.env")"
    "$TOOL" $OPTS disable > /dev/null
    cmp -s "$R/etc/resolv.conf" "$T/plain" || fail "plain resolv.conf not restored"

    # Only aisidd itself in resolv.conf: no upstream to give it, refused.
    printf 'nameserver 127.0.0.153\n' > "$R/etc/resolv.conf"
    rc=0; "$TOOL" $OPTS --probe-server "127.0.0.1:$PORT" enable > "$T/o" 2>&1 || rc=$?
    [ $rc -eq 3 ] || fail "enable with no upstream: rc $rc"
    grep -qx 'nameserver 127.0.0.153' "$R/etc/resolv.conf" || fail "resolv.conf changed"
    echo "resolvconf: enable only when aisidd answers, upstreams from the old file minus aisidd, disable restores"
    ;;
*)
    fail "unknown check '$CHECK'"
    ;;
esac

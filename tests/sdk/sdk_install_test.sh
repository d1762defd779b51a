#!/bin/sh
# Installs libaisid into a temporary prefix and builds the examples against it
# both ways a user would: pkg-config (shared) and find_package(aisid) (shared
# and static); then runs them. usage: sdk_install_test.sh BUILD_DIR SOURCE_DIR
# In a sanitizer build the installed library is instrumented, so the examples
# are built with AISID_SANITIZER_FLAGS (set by CMake; empty otherwise) too.
set -eu
build=$1
src=$2
tmp=$(mktemp -d /tmp/aisid-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
san=${AISID_SANITIZER_FLAGS:-}

# The library's own install components (headers, libraries, aisid.pc, CMake package).
cmake --install "$build" --prefix "$prefix" --component dev >/dev/null
cmake --install "$build" --prefix "$prefix" --component lib >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}
for f in include/aisid/aisid.h include/aisid/aisid.hpp include/aisid/address.hpp include/aisid/version.h; do
  [ -f "$prefix/$f" ] || fail "missing $f"
done
[ -f "$libdir/libaisid.a" ] || fail "missing libaisid.a"
[ -f "$libdir/pkgconfig/aisid.pc" ] || fail "missing aisid.pc"
[ -f "$libdir/cmake/aisid/aisidConfig.cmake" ] || fail "missing aisidConfig.cmake"
soname=$(objdump -p "$libdir/libaisid.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libaisid.so.0" ] || fail "SONAME is '$soname'"
[ -L "$libdir/libaisid.so.0" ] || fail "missing libaisid.so.0 link"

# The daemon's configuration lands under the prefix (CMAKE_INSTALL_SYSCONFDIR),
# never in the host's /etc: installed under DESTDIR, so that a regression
# writes into the scratch tree, not into this machine's /etc.
DESTDIR=$tmp/root cmake --install "$build" --prefix /opt/aisid --component daemon >/dev/null
[ -f "$tmp/root/opt/aisid/etc/aisid/aisidd.conf" ] || fail "aisidd.conf not under the prefix"
[ -f "$tmp/root/opt/aisid/etc/aisid/zones/ai.example.zone" ] || fail "the example zone not under the prefix"
[ ! -e "$tmp/root/etc" ] || fail "--prefix /opt/aisid installed into /etc: $(find "$tmp/root/etc" | head -3)"

zone=$src/zones/ai.example.zone
check_resolve() {  # BINARY
  out=$("$@" --zone "$zone" p5000.yolo.detection.image.ai.example)
  echo "$out" | grep -q '^p5000.yolo.detection.image.ai.example. source=aisid$' || fail "$1: $out"
  echo "$out" | grep -q '^address 2001:db8:abcd:12:1:2:1:1388$' || fail "$1: $out"
  echo "$out" | grep -q '^object 1 (image) function 2 (detection) method 1 (yolo) performance 5000$' || fail "$1: $out"
  echo "$out" | grep -q '^fallback yolo-detection-image.legacy.provider.example. port 443$' || fail "$1: $out"
  rc=0; "$@" --zone "$zone" nope.image.ai.example 2>/dev/null || rc=$?
  [ $rc -eq 1 ] || fail "$1: exit $rc for an NXDOMAIN"
}
check_connect() {  # BINARY
  out=$("$@" --zone "$zone" --resolve-only whisper.recognition.speech.ai.example)
  echo "$out" | grep -q '^aisid 2001:db8:abcd:12:3:7:9:0 object=speech function=recognition method=whisper performance=0$' \
    || fail "$1: $out"
  echo "$out" | grep -q '^fallback whisper-recognition-speech.legacy.provider.example.:8443$' || fail "$1: $out"
}

# 1. pkg-config
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion aisid)" = "0.1.0" ] || fail "pkg-config version"
cc -Wall -Werror $san "$src/examples/resolve.c" $(pkg-config --cflags --libs aisid) -o "$tmp/resolve-pc"
c++ -std=c++20 -Wall -Werror $san "$src/examples/connect.cpp" $(pkg-config --cflags --libs aisid) -o "$tmp/connect-pc"
LD_LIBRARY_PATH=$libdir check_resolve "$tmp/resolve-pc"
LD_LIBRARY_PATH=$libdir check_connect "$tmp/connect-pc"
# ...and it really uses the installed shared library.
LD_LIBRARY_PATH=$libdir ldd "$tmp/resolve-pc" | grep -q "libaisid.so.0 => $prefix" || fail "not linked to the installed libaisid.so.0"

# 2. find_package(aisid): the examples' own CMakeLists, shared and static.
cmake -S "$src/examples" -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build "$tmp/ex" -j2 >/dev/null
check_resolve "$tmp/ex/aisid-example-resolve"
check_connect "$tmp/ex/aisid-example-connect"
check_resolve "$tmp/ex/aisid-example-resolve-static"
if ldd "$tmp/ex/aisid-example-resolve-static" | grep -q libaisid; then fail "static example links libaisid.so"; fi
echo "ok"

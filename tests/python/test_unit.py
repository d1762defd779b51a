"""Unit tests of the aisid Python package: no network. Resolution and fields
against the example zone, the exceptions, the object lifetimes (use after
close), threads, and the cdef against the C header."""

import gc
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

import aisid
from aisid._ffi import CDEF, ffi, lib
from conftest import BUILD, SRC, TEST_VECTOR, ZONE


@pytest.fixture
def client():
    c = aisid.Client(zones=[str(ZONE)], watch=False)
    yield c
    c.close()


def test_test_vector(client):
    r = client.resolve(TEST_VECTOR)
    assert r.name == TEST_VECTOR + "."
    assert r.source == "aisid" and r.is_aisid
    assert r.addresses == ["2001:db8:abcd:12:1:2:1:1388"]
    assert r.address == "2001:db8:abcd:12:1:2:1:1388"
    assert r.fields == aisid.Fields("2001:db8:abcd:12::/64", 1, 2, 1, 5000, "image", "detection", "yolo")
    assert r.fallbacks == [aisid.Fallback("yolo-detection-image.legacy.provider.example.", 443)]
    assert r.zone == "ai.example."
    assert r.ttl > 0
    text = str(r)
    for line in ("  address:     2001:db8:abcd:12:1:2:1:1388", "  object:      1 (image)",
                 "  function:    2 (detection)", "  method:      1 (yolo)",
                 "  performance: 5000 (latency budget 5000 ms)",
                 "  fallback:    yolo-detection-image.legacy.provider.example.:443 (legacy endpoint, SVCB)"):
        assert line in text.splitlines()


def test_done_when_command():
    # The acceptance command, as a user types it (from the source dir).
    out = subprocess.run(
        [os.sys.executable, "-c",
         'import aisid; print(aisid.Client(zones=["zones/ai.example.zone"]).resolve("p5000.yolo.detection.image.ai.example"))'],
        cwd=SRC, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "2001:db8:abcd:12:1:2:1:1388" in out.stdout and "method:      1 (yolo)" in out.stdout


def test_agrees_with_aisid_lookup(client):
    lookup = BUILD / "cli" / "aisid-lookup"
    if not lookup.exists():
        pytest.skip(f"{lookup} is not built")
    for name in (TEST_VECTOR, "p5000.detection.image.ai.example", "generation.text.ai.example", "image.ai.example"):
        out = subprocess.run([str(lookup), "--zone", str(ZONE), "--json", name], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        j = json.loads(out.stdout)
        r = client.resolve(name)
        assert r.addresses == j["addresses"], name
        assert r.name == j["name"], name
        assert [f"{fb.target}:{fb.port}" for fb in r.fallbacks] == j.get("fallbacks", []), name


def test_synthesized_and_wildcards(client):
    r = client.resolve("p5000.detection.image.ai.example")
    assert r.address == "2001:db8:abcd:12:1:2:0:1388"
    assert r.fields.method == 0 and r.fields.method_term is None
    assert r.fallbacks == []
    assert "method:      0 (any)" in str(r)
    r = client.resolve(b"IMAGE.ai.example")  # bytes, any case
    assert r.fields[1:5] == (1, 0, 0, 0)


def test_literal_addresses(client):
    r = client.resolve("2001:db8::1")
    assert r.addresses == ["2001:db8::1"] and r.source == "legacy" and r.fields is None and r.zone is None
    assert client.resolve("192.0.2.1").addresses == ["::ffff:192.0.2.1"]


@pytest.mark.parametrize("name,cls,status", [
    ("nosuch.detection.image.ai.example", aisid.NotFoundError, 1),
    ("ai.example", aisid.NoDataError, 2),
    ("bad..name", aisid.InvalidArgumentError, 3),
    ("x" * 300, aisid.InvalidArgumentError, 3),
])
def test_errors_carry_status_and_last_error(client, name, cls, status):
    with pytest.raises(cls) as ei:
        client.resolve(name)
    e = ei.value
    assert isinstance(e, aisid.AisidError) and isinstance(e, OSError)
    assert e.status == status
    assert e.reason == ffi.string(lib.aisid_strerror(status)).decode()
    assert e.detail  # aisid_last_error() of the failing call
    assert e.name == name
    assert e.reason in str(e)


def test_type_errors(client):
    with pytest.raises(TypeError):
        client.resolve(42)
    with pytest.raises(ValueError):
        client.connect("yolo.detection.image.ai.example", 70000)


def test_zone_errors(tmpdir_path):
    with pytest.raises(aisid.ZoneError) as ei:
        aisid.Client(zones=[str(tmpdir_path / "missing.zone")])
    assert ei.value.status == 5 and "missing.zone" in str(ei.value) and "cannot read" in ei.value.detail
    bad = tmpdir_path / "bad.zone"
    bad.write_text("$ORIGIN bad.example.\n@ 300 SOA a. b. 1 2 3 4 5\nfoo BOGUS x\n")
    with pytest.raises(aisid.ZoneError) as ei:
        aisid.Client(zones=[str(bad)])
    assert re.search(r"bad\.zone:3:", ei.value.detail), ei.value.detail
    with pytest.raises(aisid.InvalidArgumentError):
        aisid.Client(zones=[str(ZONE)], upstreams=["not an address"])
    with pytest.raises(aisid.InvalidArgumentError):
        aisid.Client(zones=[str(ZONE)], attempt_delay=100)  # seconds: 10..10000 ms are accepted


def test_use_after_close(client):
    r = client.resolve(TEST_VECTOR)
    client.close()
    assert client.closed
    for call in (lambda: client.resolve(TEST_VECTOR), client.counters, client.reload, client.forget,
                 lambda: client.connect("yolo.detection.image.ai.example", 80),
                 lambda: client.add_zone_file(str(ZONE)), lambda: client.zone_generation):
        with pytest.raises(aisid.ClientClosedError):
            call()
    client.close()  # twice is fine
    # The result owns its C data (and the zone snapshot): still whole after the client is gone.
    gc.collect()
    assert r.fields.method_term == "yolo" and r.fallbacks[0].port == 443 and r.zone == "ai.example."


def test_result_close_copies_then_frees(client):
    r = client.resolve(TEST_VECTOR)
    r.close()
    assert r._r is None
    r.close()
    assert r.fields.object_term == "image" and r.address == "2001:db8:abcd:12:1:2:1:1388"
    assert "yolo" in repr(r)


def test_close_while_threads_resolve():
    # Threads resolve while another closes the client: every call either
    # completes or raises ClientClosedError; the C client is freed once, after
    # the last call in flight returned (a use after free would crash here).
    for _ in range(5):
        c = aisid.Client(zones=[str(ZONE)], watch=False)
        stop = threading.Event()
        outcomes = {"ok": 0, "closed": 0, "other": []}
        lock = threading.Lock()

        def worker():
            while not stop.is_set():
                try:
                    r = c.resolve(TEST_VECTOR)
                    assert r.fields.performance == 5000
                    with lock:
                        outcomes["ok"] += 1
                except aisid.ClientClosedError:
                    with lock:
                        outcomes["closed"] += 1
                    return
                except BaseException as e:  # noqa: BLE001 - reported below
                    outcomes["other"].append(e)
                    return

        ts = [threading.Thread(target=worker) for _ in range(4)]
        for t in ts:
            t.start()
        while outcomes["ok"] < 200:
            pass
        c.close()
        for t in ts:
            t.join(10)
        stop.set()
        assert not outcomes["other"], outcomes["other"]
        assert outcomes["closed"] == 4
        assert c._p is None  # freed


def test_threads_share_a_client(client):
    errors = []

    def worker(i):
        try:
            for _ in range(500):
                assert client.resolve(TEST_VECTOR if i % 2 else "generation.text.ai.example").is_aisid
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert client.counters()["resolve_aisid"] == 2000


def test_counters(client):
    before = client.counters()
    assert set(before) == {f for f, _ in ffi.typeof("aisid_counters_t").fields}
    client.resolve(TEST_VECTOR)
    client.resolve("2001:db8::1")
    after = client.counters()
    assert after["resolve_aisid"] == before["resolve_aisid"] + 1
    assert after["resolve_legacy"] == before["resolve_legacy"] + 1


def test_reload_and_generation(tmpdir_path):
    z = tmpdir_path / "ai.example.zone"
    shutil.copy(ZONE, z)
    c = aisid.Client(zones=[str(z)], watch=False)
    g = c.zone_generation
    with pytest.raises(aisid.NotFoundError):
        c.resolve("python.detection.image.ai.example")
    text = z.read_text().replace("yolo._method                 TXT  \"code=1\"",
                                 "yolo._method                 TXT  \"code=1\"\npython._method TXT \"code=77\"")
    assert text != z.read_text()
    z.write_text(text + "python.detection.image AAAA 2001:db8:abcd:12:1:2:4d:0\n")
    c.reload()
    assert c.zone_generation == g + 1
    assert c.resolve("python.detection.image.ai.example").fields.method_term == "python"
    z.write_text("garbage\n")
    with pytest.raises(aisid.ZoneError):
        c.reload()
    assert c.resolve("python.detection.image.ai.example").is_aisid  # the last good version stays
    c.close()


def test_version_and_default_client(monkeypatch):
    assert aisid.version() == "%d.%d.%d" % (0, 1, 0)
    c = aisid.default_client()
    assert aisid.default_client() is c
    c.close()
    assert aisid.default_client() is not c
    aisid.default_client().close()


def test_cdef_matches_header():
    # Every function of <aisid/aisid.h> is declared for cffi, and nothing else.
    header = (SRC / "sdk" / "include" / "aisid" / "aisid.h").read_text()
    in_header = set(re.findall(r"AISID_EXPORT[^;(]*?\b(aisid_\w+)\s*\(", header))
    in_cdef = set(re.findall(r"\b(aisid_\w+)\s*\(", CDEF)) - {"aisid_resolve_cb"}
    assert in_header and in_header == in_cdef, (in_header ^ in_cdef)
    for f in in_header:
        assert getattr(lib, f)  # exported by the loaded library


def test_struct_layouts_match_the_compiler(tmpdir_path):
    # ABI mode trusts the cdef's layouts: compare them with what a C compiler
    # makes of the real header.
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to check the layouts against")
    structs = {"aisid_fields_t": ["prefix", "object", "function", "method", "performance"],
               "aisid_connect_info_t": ["path", "reason", "peer", "elapsed_us", "attempts"],
               "aisid_counters_t": [f for f, _ in ffi.typeof("aisid_counters_t").fields],
               "struct sockaddr_in6": ["sin6_family", "sin6_port", "sin6_flowinfo", "sin6_addr", "sin6_scope_id"],
               "struct pollfd": ["fd", "events", "revents"]}
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "aisid/aisid.h"', "int main(void) {"]
    for s, fields in structs.items():
        lines.append(f'printf("{s} %zu\\n", sizeof({s}));')
        for f in fields:
            lines.append(f'printf("{s}.{f} %zu\\n", offsetof({s}, {f}));')
    lines.append("return 0; }")
    src = tmpdir_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmpdir_path / "layout"
    # aisid.h includes the generated aisid/version.h, which is in the build tree.
    build_include = BUILD / "include"
    subprocess.run([cc, "-I", str(SRC / "sdk" / "include"), "-I", str(build_include), str(src), "-o", str(exe)],
                   check=True)
    got = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                                check=True).stdout.splitlines())
    for s, fields in structs.items():
        assert int(got[s]) == ffi.sizeof(s), s
        for f in fields:
            assert int(got[f"{s}.{f}"]) == ffi.offsetof(s, f), f"{s}.{f}"

"""End to end in the netns testbed (gateway/testbed/run), root only: the
service is an HTTPS stand-in (tls_node.py) on the four nodes behind the
egress gateways, reached at https://yolo.detection.image.ai.example:80/ (the
egress gateways serve TCP port 80 on the AISIDs; the SVCB legacy endpoint is
[2001:db8:3::443]:443). From the AISID client network (cl) every way into the
package (connect, asyncio, httpx sync and async) takes the AISID path; from
the legacy-only network (lc) it falls back to the SVCB legacy endpoint, and
the second connect remembers that network. TLS is verified against the
service name on both paths."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, SRC, ZONE, make_cert

NAME = "yolo.detection.image.ai.example"
MISMATCH = "llama.generation.text.ai.example"  # served by n3/n4, not in the certificate
RUN = SRC / "gateway" / "testbed" / "run"


def _why_not():
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "unbound", "nc", "dig", "curl", "openssl"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"needs {tool}"
    for b in ("gateway/egress/aisid-egress", "gateway/ingress/aisid-ingress", "cli/aisid-lookup"):
        if not (BUILD / b).exists():
            return f"{BUILD / b} is not built"
    r = subprocess.run(["ip", "netns", "add", f"aisid-py-probe-{os.getpid()}"], capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot create network namespaces: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", f"aisid-py-probe-{os.getpid()}"], capture_output=True)
    return None


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    why = _why_not()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("tb")
    cert, key = make_cert(str(d), [NAME])
    tid = f"py{os.getpid() % 100000}"
    env = dict(os.environ, AISID_BUILD_DIR=str(BUILD), AISID_TESTBED_ID=tid,
               AISID_TESTBED_STATE=f"/tmp/aisid-testbed-{tid}",
               AISID_TESTBED_NODE=str(SRC / "tests" / "python" / "tls_node.py"),
               AISID_TLS_NODE_CERT=cert, AISID_TLS_NODE_KEY=key)
    up = subprocess.run([str(RUN), "up"], env=env, capture_output=True, text=True, timeout=60)
    if up.returncode != 0:
        subprocess.run([str(RUN), "down"], env=env, capture_output=True, timeout=60)
        pytest.fail(f"testbed up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    tb = {"env": env, "ca": cert, "id": tid}
    yield tb
    down = subprocess.run([str(RUN), "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"tb{tid}-" not in left, "namespaces left behind"


def run_client(tb, role, mismatch=False):
    args = [str(RUN), "exec", role, sys.executable, str(SRC / "tests" / "python" / "e2e_client.py"),
            "--zone", str(ZONE), "--upstream", "[2001:db8:53::53]:53", "--ca", tb["ca"], "--name", NAME]
    if mismatch:
        args += ["--mismatch", MISMATCH]
    r = subprocess.run(args, env=tb["env"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def on_cl(testbed):
    return run_client(testbed, "cl", mismatch=True)


@pytest.fixture(scope="module")
def on_lc(testbed):
    return run_client(testbed, "lc")


def _ok(case, key):
    assert "error" not in case, f"{key}: {case.get('error')}\n{case.get('trace', '')}"


@pytest.mark.parametrize("key", ["sync", "sync_again", "async", "async_again"])
def test_aisid_path(on_cl, key):
    c = on_cl[key]
    _ok(c, key)
    assert c["path"] == "aisid" and c["reason"] == "none"
    assert c["peer"] == "2001:db8:abcd:12:1:2:1:0"
    assert c["body"].startswith("node=n") and " path=/" in c["body"]


def test_aisid_path_bodies(on_cl):
    assert on_cl["sync"]["body"].endswith("path=/sync1")
    assert on_cl["async_again"]["body"].endswith("path=/async2")
    assert on_cl["open_connection"]["body"].endswith("path=/open")
    assert on_cl["sync_counters"]["connect_aisid_won"] == 2
    assert on_cl["async_counters"]["connect_aisid_won"] == 3


@pytest.mark.parametrize("key", ["httpx", "httpx_async"])
def test_httpx_by_aisid(on_cl, key):
    c = on_cl[key]
    _ok(c, key)
    assert c["path"] == "aisid" and c["status"] == 200
    assert c["node"] in ("n1", "n2", "n3", "n4") and c["body"].endswith(f"path=/v1/{key.replace('_', '-')}")


def test_tls_name_is_checked_on_the_aisid_path(on_cl):
    # Another AISID name, the same kind of node: the certificate does not name it.
    assert "error" in on_cl["mismatch"]
    assert "ConnectError" in on_cl["mismatch"]["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in on_cl["mismatch"]["error"] or "match" in on_cl["mismatch"]["error"]


@pytest.mark.parametrize("first,again", [("sync", "sync_again"), ("async", "async_again")])
def test_fallback_on_the_legacy_network(on_lc, first, again):
    c = on_lc[first]
    _ok(c, first)
    # lr has no route to the AISID prefix: the AISID attempt does not connect
    # within the attempt delay (or fails at once) and the SVCB endpoint wins.
    assert c["path"] == "fallback" and c["reason"] in ("delay", "unreachable")
    assert c["peer"] == "2001:db8:3::443"
    assert c["body"].startswith("node=n")
    c2 = on_lc[again]
    _ok(c2, again)
    assert c2["path"] == "fallback" and c2["reason"] == "remembered"  # this network was seen not to route AISIDs


def test_fallback_counters(on_lc):
    for k in ("sync_counters", "async_counters"):
        assert on_lc[k]["connect_fallback_won"] >= 2, on_lc[k]
        assert on_lc[k]["fallback_remembered"] >= 1, on_lc[k]
    _ok(on_lc["open_connection"], "open_connection")
    assert on_lc["open_connection"]["body"].endswith("path=/open")


@pytest.mark.parametrize("key", ["httpx", "httpx_async"])
def test_httpx_by_fallback(on_lc, key):
    c = on_lc[key]
    _ok(c, key)
    assert c["path"] == "fallback" and c["status"] == 200
    assert c["node"] in ("n1", "n2", "n3", "n4") and c["body"].endswith(f"path=/v1/{key.replace('_', '-')}")


@pytest.mark.parametrize("role,path,extra", [("cl", "aisid", ["--async"]), ("lc", "fallback", [])])
def test_example_ai_client(testbed, role, path, extra):
    # examples/ai_client.py as a user runs it, on each network.
    r = subprocess.run([str(RUN), "exec", role, sys.executable, str(SRC / "examples" / "ai_client.py"),
                        "--zone", str(ZONE), "--upstream", "[2001:db8:53::53]:53", "--cafile", testbed["ca"],
                        "--port", "80", *extra, NAME, "/example"], env=testbed["env"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "method:      1 (yolo)" in r.stdout
    assert f": 200 via {path} " in r.stdout and "path=/example" in r.stdout, r.stdout

"""Shared fixtures of the Python binding's tests.

ctest runs them with PYTHONPATH=sdk/python, AISID_LIBRARY=<build>/sdk/libaisid.so,
AISID_SOURCE_DIR and AISID_BUILD_DIR (tests/python/CMakeLists.txt). With
AISID_PYTEST_SKIP_CODE=77, a run where every test was skipped (no root, ...)
exits 77 so that ctest reports it skipped, not passed.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

SRC = Path(os.environ.get("AISID_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("AISID_BUILD_DIR", SRC / "build"))
ZONE = SRC / "zones" / "ai.example.zone"
TEST_VECTOR = "p5000.yolo.detection.image.ai.example"

# ---- exit 77 when everything was skipped ----------------------------------------

_tally = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _tally["passed"] += 1
    elif report.failed:
        _tally["failed"] += 1
    elif report.skipped:
        _tally["skipped"] += 1
        print(f"\nSKIP {report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}")


def pytest_sessionfinish(session, exitstatus):
    code = os.environ.get("AISID_PYTEST_SKIP_CODE")
    if code and _tally["skipped"] and not _tally["passed"] and not _tally["failed"]:
        session.exitstatus = int(code)


# ---- helpers ---------------------------------------------------------------------


def free_port(family=socket.AF_INET, host="127.0.0.1", kind=socket.SOCK_DGRAM):
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="aisid-py.")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


class Unbound:
    """A real Unbound on 127.0.0.1 and a free port, answering local data only
    (the settings a test Unbound needs: refuse ".", no chroot, no user, no
    daemon, queries to localhost allowed)."""

    def __init__(self, local_data, local_zones=()):
        exe = shutil.which("unbound") or "/usr/sbin/unbound"
        if not os.path.exists(exe):
            pytest.skip("unbound is not installed (apt-get install unbound)")
        self.dir = tempfile.mkdtemp(prefix="aisid-py-unbound.")
        self.port = free_port()
        conf = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-ip6: no",
            '  chroot: ""',
            '  username: ""',
            "  do-daemonize: no",
            f'  directory: "{self.dir}"',
            '  pidfile: ""',
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 0",
            "  num-threads: 1",
            "  do-not-query-localhost: no",
            "  access-control: 127.0.0.0/8 allow",
            '  module-config: "iterator"',
            '  local-zone: "." refuse',
        ]
        conf += [f'  local-zone: "{z}" static' for z in local_zones]
        conf += [f'  local-data: "{d}"' for d in local_data]
        conf += ["remote-control:", "  control-enable: no"]
        cf = os.path.join(self.dir, "unbound.conf")
        with open(cf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.log = open(os.path.join(self.dir, "unbound.log"), "w+")
        self.proc = subprocess.Popen([exe, "-d", "-c", cf], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.03)
        self.stop()
        self.log.seek(0)
        raise RuntimeError("unbound did not start: " + self.log.read())

    def _answers(self):
        # A query for "." SOA: any answer (REFUSED included) means it is up.
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.1)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Listener:
    """A TCP listener on a loopback address that accepts in a thread and
    answers each connection with "hello\\n"."""

    def __init__(self, host="127.0.0.1", port=0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                c.sendall(b"hello\n")
            except OSError:
                pass
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def make_cert(directory, names):
    """A self-signed certificate (and key) for `names` (DNS SANs), made with
    the openssl command line; returns (cert, key)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    san = ",".join(f"DNS:{n}" for n in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={names[0]}",
         "-addext", f"subjectAltName={san}", "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True)
    return cert, key


def zone_with_fallback_port(directory, port):
    """zones/ai.example.zone with the SVCB of yolo.detection.image moved to `port`
    (a loopback listener stands in for the legacy endpoint)."""
    text = ZONE.read_text().replace("yolo-detection-image.legacy.provider.example. port=443",
                                    f"yolo-detection-image.legacy.provider.example. port={port}")
    path = Path(directory) / "ai.example.zone"
    path.write_text(text)
    return str(path)

#!/usr/bin/env python3
"""The Python binding's cost, as ratios in one run (needs root).

For the AISID name p5000.yolo.detection.image.ai.example, per call:

  cffi_bare        lib.aisid_resolve + lib.aisid_result_free through cffi (the floor:
                   Python's call overhead on the C call the binding makes)
  cffi_bare_addr   the same + aisid_result_address + inet_ntop (what .address costs by hand)
  binding          aisid.Client.resolve(name)              (goal: <= 2x cffi_bare)
  binding_addr     aisid.Client.resolve(name).address      (goal: <= 2x cffi_bare_addr)
  gai_nss          socket.getaddrinfo(name, None, AF_INET6) through the NSS module
                   (nsswitch "hosts: aisid", libnss_aisid.so.2 from the build tree)
  gai_aisidd       socket.getaddrinfo through glibc's resolver (resolv.conf) to aisidd on 127.0.0.1:53
                   (nsswitch "hosts: dns", resolv.conf "nameserver 127.0.0.1")

Isolation as bench/sdk/sdk_bench does it: the script re-runs itself under
`unshare --mount --net`; there lo comes up, aisidd listens on 127.0.0.1:53, and
/etc/nsswitch.conf, /etc/resolv.conf, /etc/hosts and /var/lib/aisid are the
bench's own files, bind-mounted. Each getaddrinfo case runs in a process of its
own (glibc reads nsswitch.conf once). Nothing leaves the namespace.

    bench/sdk/python_bench.py [--build DIR] [--calls N]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
NAME = "p5000.yolo.detection.image.ai.example"
EXPECT = "2001:db8:abcd:12:1:2:1:1388"


def measure(fn, calls, batch=200):
    """Median per-call time in ns over batches of `batch` calls."""
    for _ in range(batch):
        fn()
    samples = []
    for _ in range(max(1, calls // batch)):
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - t0) / batch)
    return statistics.median(samples)


def worker(case, calls, zone):
    """One measurement, in this process; prints {"case": ns}."""
    if case.startswith("gai"):
        r = socket.getaddrinfo(NAME, None, socket.AF_INET6)
        assert r[0][4][0] == EXPECT, r
        ns = measure(lambda: socket.getaddrinfo(NAME, None, socket.AF_INET6), calls, batch=50)
        print(json.dumps({case: ns}))
        return
    import aisid
    from aisid._ffi import ffi, lib

    c = aisid.Client(zones=[zone], watch=False)
    assert c.resolve(NAME).address == EXPECT
    p, bn = c._p, NAME.encode()
    out = ffi.new("aisid_result_t **")
    buf = ffi.new("struct in6_addr *")
    resolve, free, address, ntop, buffer = lib.aisid_resolve, lib.aisid_result_free, lib.aisid_result_address, \
        socket.inet_ntop, ffi.buffer

    def cffi_bare():
        resolve(p, bn, out)
        free(out[0])

    def cffi_bare_addr():
        resolve(p, bn, out)
        address(out[0], 0, buf)
        a = ntop(socket.AF_INET6, buffer(buf)[:])
        free(out[0])
        return a

    fns = {"cffi_bare": cffi_bare, "cffi_bare_addr": cffi_bare_addr,
           "binding": lambda: c.resolve(NAME), "binding_addr": lambda: c.resolve(NAME).address}
    res = {}
    # Interleaved rounds, so that a change in machine load hits every case alike.
    for _ in range(5):
        for k, f in fns.items():
            res.setdefault(k, []).append(measure(f, calls // 5))
    print(json.dumps({k: statistics.median(v) for k, v in res.items()}))


def inside(build, calls):
    """In the private namespaces: set up, run every case, print the table."""
    t = Path(tempfile.mkdtemp(prefix="aisid-pybench."))
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        (t / "varlib" / "aisid" / "zones").mkdir(parents=True)
        zone = str(t / "varlib" / "aisid" / "zones" / "ai.example.zone")
        shutil.copy(SRC / "zones" / "ai.example.zone", zone)
        (t / "empty").mkdir()
        (t / "hosts").write_text("127.0.0.1 localhost\n")
        (t / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
        (t / "nss-aisid").write_text("hosts: aisid\n")
        (t / "nss-dns").write_text("hosts: dns\n")
        (t / "nsswitch.conf").write_text("hosts: files\n")
        for src, dst in ((t / "hosts", "/etc/hosts"), (t / "resolv.conf", "/etc/resolv.conf"),
                         (t / "varlib", "/var/lib"), (t / "nsswitch.conf", "/etc/nsswitch.conf")):
            subprocess.run(["mount", "--bind", str(src), dst], check=True)
        if os.path.isdir("/etc/aisid"):
            subprocess.run(["mount", "--bind", str(t / "empty"), "/etc/aisid"], check=True)
        (t / "state").mkdir()
        aisidd = subprocess.Popen([str(build / "resolver" / "aisidd"), "--listen", "127.0.0.1:53", "--zone", zone,
                                   "--upstream", "127.0.0.9:53", "--state-dir", str(t / "state"),
                                   "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            env = dict(os.environ, PYTHONPATH=str(SRC / "sdk" / "python"),
                       AISID_LIBRARY=str(build / "sdk" / "libaisid.so"))
            me = [sys.executable, __file__, "--build", str(build), "--calls", str(calls), "--zone", zone]
            for _ in range(50):
                try:
                    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                        s.connect(("127.0.0.1", 53))
                        break
                except OSError:
                    time.sleep(0.1)
            res = json.loads(subprocess.run(me + ["--worker", "sdk"], env=env, check=True, capture_output=True,
                                            text=True).stdout)
            for case, nss in (("gai_nss", "nss-aisid"), ("gai_aisidd", "nss-dns")):
                subprocess.run(["mount", "--bind", str(t / nss), "/etc/nsswitch.conf"], check=True)
                e = dict(env, LD_LIBRARY_PATH=str(build / "packaging" / "nss"))
                out = subprocess.run(me + ["--worker", case], env=e, check=True, capture_output=True, text=True)
                res.update(json.loads(out.stdout))
                subprocess.run(["umount", "/etc/nsswitch.conf"], check=True)
        finally:
            aisidd.terminate()
            aisidd.wait()
    finally:
        subprocess.run(["umount", "-R", "/var/lib"], stderr=subprocess.DEVNULL)
        shutil.rmtree(t, ignore_errors=True)

    print(f"Python binding, {NAME}, median ns per call ({calls} calls per case, Python {sys.version.split()[0]})")
    for k in ("cffi_bare", "cffi_bare_addr", "binding", "binding_addr", "gai_nss", "gai_aisidd"):
        print(f"  {k:16s} {res[k]:10.0f} ns")
    print("ratios:")
    print(f"  binding / cffi_bare            {res['binding'] / res['cffi_bare']:6.2f}x   (goal <= 2)")
    print(f"  binding_addr / cffi_bare_addr  {res['binding_addr'] / res['cffi_bare_addr']:6.2f}x   (goal <= 2)")
    print(f"  gai_nss / binding_addr         {res['gai_nss'] / res['binding_addr']:6.2f}x")
    print(f"  gai_aisidd / binding_addr      {res['gai_aisidd'] / res['binding_addr']:6.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(SRC / "build"))
    ap.add_argument("--calls", type=int, default=100000)
    ap.add_argument("--worker")
    ap.add_argument("--zone")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    if a.worker:
        worker(a.worker, a.calls, a.zone)
        return 0
    if os.environ.get("AISID_PYBENCH_INSIDE") != "1":
        if os.geteuid() != 0:
            print("python_bench: needs root (a private network and mount namespace)", file=sys.stderr)
            return 77
        for f in (build / "resolver" / "aisidd", build / "sdk" / "libaisid.so",
                  build / "packaging" / "nss" / "libnss_aisid.so.2"):
            if not f.exists():
                print(f"python_bench: {f} is not built (cmake --build {build} --target aisidd aisid_shared nss_aisid)",
                      file=sys.stderr)
                return 2
        env = dict(os.environ, AISID_PYBENCH_INSIDE="1")
        return subprocess.run(["unshare", "--mount", "--net", sys.executable, __file__, "--build", str(build),
                               "--calls", str(a.calls)], env=env).returncode
    inside(build, a.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())

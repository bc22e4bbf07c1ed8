"""The eBPF datapath's cost: lab up beside iptables mode, the first compile, 3 × 100 pods, and pod → ClusterIP
→ pod throughput and connection rate through the BPF programs beside kube-proxy's iptables, in one run.

Goals (issue 13): `lab up` ebpf ≤ 1.2 × iptables on the seed topology (objects cached); 3 × 100 pods in
ebpf mode < 10 s; the datapath through BPF not slower than through iptables (throughput and
connections/s ≥ 0.9 × iptables'). The first compile is timed on its own (a scratch cache folder).
Run as root: `.venv/bin/python bench/lab_ebpf.py`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labyrinth_tui.lab.bpf.compile import compile_into, objects
from labyrinth_tui.lab.build import down, up
from labyrinth_tui.lab.spec import article_spec

PREFIX = "ebbench"
RUNS = 5
MEGABYTES = 200
CONNECTIONS = 500
SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9999)); s.listen(512)
while True:
    c, _ = s.accept()
    while c.recv(1 << 20):
        pass
    c.close()
"""
CLIENT = """
import socket, sys, time
target = ("10.105.134.33", 9999)
deadline = time.monotonic() + 10
while True:  # the server is starting
    try:
        socket.create_connection(target, timeout=1).close(); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.01)
chunk = b"x" * (1 << 20)
c = socket.create_connection(target); start = time.perf_counter()
for _ in range(int(sys.argv[1])):
    c.sendall(chunk)
c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
mbps = int(sys.argv[1]) * 8 / (time.perf_counter() - start)
start = time.perf_counter()
for _ in range(int(sys.argv[2])):
    socket.create_connection(target).close()
print(mbps, int(sys.argv[2]) / (time.perf_counter() - start))
"""


def timed_up(datapath: str, pods_per_node: int = 0, attach: str = "auto") -> float:
    spec = article_spec(prefix=PREFIX, pods_per_node=pods_per_node, datapath=datapath, bpf_attach=attach)
    down(PREFIX)
    start = time.perf_counter()
    up(spec)
    return time.perf_counter() - start


def traffic(datapath: str) -> tuple[float, float]:
    """Mbit/s of one TCP stream and connections/s, wrk-1 pod → ClusterIP 10.105.134.33:9999 → wrk-2 pod."""
    spec = article_spec(prefix=PREFIX, datapath=datapath)
    down(PREFIX)
    up(spec)
    client, server = spec.find_pod("node-wrk-1"), spec.find_pod("node-wrk-2")
    srv = subprocess.Popen(["ip", "netns", "exec", spec.pod_netns(server), sys.executable, "-c", SERVER])
    try:
        argv = ["ip", "netns", "exec", spec.pod_netns(client), sys.executable, "-c", CLIENT]
        out = subprocess.run(
            [*argv, str(MEGABYTES), str(CONNECTIONS)], capture_output=True, text=True, check=True
        )
        mbps, rate = (float(x) for x in out.stdout.split())
        return mbps, rate
    finally:
        srv.kill()
        srv.wait()
        down(PREFIX)


def main() -> int:
    if os.geteuid() != 0:
        print("bench/lab_ebpf.py needs root (it builds network namespaces and loads BPF)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="labyrinth-bpf-bench-") as scratch:
        start = time.perf_counter()
        compile_into(Path(scratch) / "first")
        first_compile = time.perf_counter() - start
    objects()  # the real cache, so that every `up` below is a cached one
    ipt, ebpf, tc = [], [], []
    for _ in range(RUNS):  # interleaved: the machine's load hits both alike
        ipt.append(timed_up("iptables"))
        ebpf.append(timed_up("ebpf"))
        tc.append(timed_up("ebpf", attach="tc"))
    scale = timed_up("ebpf", pods_per_node=100)
    down(PREFIX)
    t_ipt, t_ebpf, t_tc = statistics.median(ipt), statistics.median(ebpf), statistics.median(tc)
    print(f"first compile (clang, 3 objects): {first_compile:.2f} s")
    print(
        f"lab up, seed, median of {RUNS}: iptables {t_ipt:.3f} s, "
        f"ebpf (tcx) {t_ebpf:.3f} s, ebpf (tc) {t_tc:.3f} s"
    )
    print(f"lab up, 3 × 100 pods, ebpf: {scale:.2f} s")
    bpf_mbps, bpf_rate = traffic("ebpf")
    ipt_mbps, ipt_rate = traffic("iptables")
    print(
        f"pod → ClusterIP → pod, one TCP stream: ebpf {bpf_mbps:.0f} Mbit/s, iptables {ipt_mbps:.0f} Mbit/s"
    )
    print(f"connections/s: ebpf {bpf_rate:.0f}, iptables {ipt_rate:.0f}")
    goals = [
        (f"up ebpf {t_ebpf / t_ipt:.2f} × iptables ≤ 1.2", t_ebpf <= 1.2 * t_ipt),
        (f"3 × 100 pods ebpf {scale:.2f} s < 10 s", scale < 10),
        (f"throughput ebpf {bpf_mbps / ipt_mbps:.2f} × iptables ≥ 0.9", bpf_mbps >= 0.9 * ipt_mbps),
        (f"connections/s ebpf {bpf_rate / ipt_rate:.2f} × iptables ≥ 0.9", bpf_rate >= 0.9 * ipt_rate),
    ]
    print("goals: " + "; ".join(f"{text} {'✓' if ok else '✗'}" for text, ok in goals))
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())

"""pod → ClusterIP → pod traffic through two labs up side by side (one per datapath), in paired rounds.

Why side by side: the machine is shared and its load swings within seconds (one lab after the other gave
connections/s of 3,070 and 17,388 for the same lab minutes apart). With both labs up, each round runs the
same client in the eBPF lab and in the iptables lab back to back (the order alternating), so a swing
hits both figures of a round alike, and the goal is taken on the per-round ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.lab.up import up

CLUSTER_IP = "10.105.134.33"  # the article's service; the server listens on its backend pod, port 9999
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
target = (sys.argv[3], 9999)
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


@dataclass(frozen=True)
class Figures:
    mbps: float
    rate: float  # connections/s


class TrafficLab:
    """A lab up with the server running on node-wrk-2's pod; `run()` is one client from node-wrk-1's."""

    def __init__(self, prefix: str, datapath: str) -> None:
        self.spec = article_spec(prefix=prefix, datapath=datapath)
        self.client = self.spec.pod_netns(self.spec.find_pod("node-wrk-1"))
        self.server = self.spec.pod_netns(self.spec.find_pod("node-wrk-2"))

    def run(self, megabytes: int, connections: int) -> Figures:
        argv = ["ip", "netns", "exec", self.client, sys.executable, "-c", CLIENT]
        out = subprocess.run(
            [*argv, str(megabytes), str(connections), CLUSTER_IP], capture_output=True, text=True, check=True
        )
        mbps, rate = (float(x) for x in out.stdout.split())
        return Figures(mbps, rate)


@contextmanager
def traffic_lab(prefix: str, datapath: str) -> Iterator[TrafficLab]:
    lab = TrafficLab(prefix, datapath)
    down(prefix)
    up(lab.spec)
    srv = subprocess.Popen(["ip", "netns", "exec", lab.server, sys.executable, "-c", SERVER])
    try:
        yield lab
    finally:
        srv.kill()
        srv.wait()
        down(prefix)


@dataclass(frozen=True)
class Paired:
    """Per round, eBPF's figures and iptables' taken back to back."""

    rounds: list[tuple[Figures, Figures]]

    def median(self, datapath: str, what: str) -> float:
        side = 0 if datapath == "ebpf" else 1
        return statistics.median(getattr(pair[side], what) for pair in self.rounds)

    def ratio(self, what: str) -> float:
        """The median over rounds of ebpf ÷ iptables within the round."""
        return statistics.median(getattr(b, what) / getattr(i, what) for b, i in self.rounds)

    def spread(self, datapath: str, what: str) -> str:
        side = 0 if datapath == "ebpf" else 1
        values = [getattr(pair[side], what) for pair in self.rounds]
        return f"{min(values):.0f}–{max(values):.0f}"


def paired_rounds(prefix: str, rounds: int, megabytes: int, connections: int) -> Paired:
    """Both labs up at once (`<prefix>` in eBPF mode, `<prefix>-i` in iptables mode), `rounds` rounds."""
    pairs = []
    with traffic_lab(prefix, "ebpf") as bpf, traffic_lab(prefix[:14] + "-i", "iptables") as ipt:
        for n in range(rounds):
            first, second = (bpf, ipt) if n % 2 == 0 else (ipt, bpf)
            a, b = first.run(megabytes, connections), second.run(megabytes, connections)
            pairs.append((a, b) if first is bpf else (b, a))
    return Paired(pairs)

"""A live stream under load: 20k packets/s for 10 s between two lab pods over SSH, beside plain tshark.

Measures, on the server pod's host veth (node-2): packets sent vs packets in our ring (lost), wire → ring
latency (capture timestamp to the batch reaching us), our process's memory and CPU, and the remote
tshark's peak RSS; with tshark restarted every 80k packets so hand-offs happen under load.
Anchor: the same tshark command run directly in the node's netns, output to /dev/null, same traffic.
Run as root: `.venv/bin/python bench/capture_live.py` (builds its own lab, removes it; < 2 minutes).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import statistics
import sys
import time
from pathlib import Path

from _goals import Verdict, load_line

from labyrinth_tui.lab.build import down, up
from labyrinth_tui.lab.netns import pids_in
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.model.packets import PacketRing
from labyrinth_tui.nodes.commands import in_netns
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture import capture_argv
from labyrinth_tui.sources.base import PacketBatch, SourceEvent, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.captures import CaptureStreams

RATE, SECONDS = 20_000, 10.0
FILTER = "udp dst port 9"
RESTART_AFTER = int(os.environ.get("RESTART_AFTER", "80000"))
# paced in 1 ms steps; prints how many it sent and in how long
SENDER = """
import socket, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total, n, start = int(rate * secs), 0, time.perf_counter()
while n < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1)
    while n < due:
        s.sendto(n.to_bytes(4, "big") * 8, ("10.0.2.215", 9))
        n += 1
    time.sleep(0.001)
print(n, round(time.perf_counter() - start, 2))
"""


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tshark_rss(netns: str) -> int:
    """The biggest tshark in the netns now (kB)."""
    best = 0
    for pid in pids_in([netns]).get(netns, []):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "tshark":
                best = max(best, rss_kb(pid))
        except OSError:
            continue
    return best


async def send(state: LabState) -> tuple[int, float]:
    client = next(p for p in state.pods if p.ip == "10.0.1.15")
    proc = await asyncio.create_subprocess_exec(
        *in_netns(client.netns, ["python3", "-c", SENDER, str(RATE), str(SECONDS)]),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    sent, took = out.split()
    return int(sent), float(took)


async def sample_peak(netns: str, stop: asyncio.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], tshark_rss(netns))
        await asyncio.sleep(0.2)  # a sampler: RSS read 5 times a second


async def ours(state: LabState, node_netns: str, veth: str) -> dict[str, float]:
    node = next(n for n in state.nodes if n.name == "node-2")
    connector = NetnsConnector(
        node.netns, node.address, node.ssh.port, node.ssh.user, node.ssh.client_key, node.ssh.host_key
    )
    session = NodeSession("node-2", connector)
    captures = CaptureStreams({"node-2": session}, restart_after=RESTART_AFTER)
    spec = StreamSpec("node-2", veth, FILTER)
    ring = PacketRing(100_000)
    latencies: list[float] = []
    received, batches, restarts = 0, 0, 0
    capturing = asyncio.Event()
    failure = ""

    def emit(event: SourceEvent) -> None:
        nonlocal received, batches, restarts, failure
        if isinstance(event, StreamStatus):
            if event.state is StreamState.CAPTURING and not event.reason:
                capturing.set()
            restarts += event.reason.startswith("restarted tshark")
            if event.state is StreamState.FAILED:
                failure = event.reason
                capturing.set()
            return
        if isinstance(event, PacketBatch):
            now = time.time()
            batches += 1
            received += len(event.packets)
            ring.extend(event.packets)
            latencies.extend(now - p.ts for p in event.packets[:: max(1, len(event.packets) // 50)])

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    task = asyncio.create_task(captures.open(spec, emit))
    await capturing.wait()
    if failure:
        raise SystemExit(f"stream failed: {failure}")
    stop, peak = asyncio.Event(), [0]
    sampler = asyncio.create_task(sample_peak(node_netns, stop, peak))
    sent, took = await send(state)
    drained = time.monotonic()
    while time.monotonic() - drained < 10 and received < sent:
        await asyncio.sleep(0.1)  # waiting for the stream to catch up with what was sent
    stop.set()
    await sampler
    await captures.close(spec)
    await task
    await session.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "sent": sent,
        "took": took,
        "received": received,
        "batches": batches,
        "restarts": restarts,
        "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else float("nan"),
        "rss_mb": rss_kb(os.getpid()) / 1024,
        "hwm_mb": rss_kb(os.getpid(), "VmHWM") / 1024,
        "cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "tshark_mb": peak[0] / 1024,
    }


async def anchor(state: LabState, node_netns: str, veth: str) -> dict[str, float]:
    argv = in_netns(node_netns, capture_argv(veth, FILTER, engine="tshark"))  # the anchor: tshark -i itself
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    while b"Capturing on" not in await proc.stderr.readline():
        pass
    await asyncio.sleep(1.0)  # "Capturing on" comes before capture really starts (LAB-NOTES)
    idle = tshark_rss(node_netns)
    stop, peak = asyncio.Event(), [0]
    sampler = asyncio.create_task(sample_peak(node_netns, stop, peak))
    sent, took = await send(state)
    await asyncio.sleep(2.0)  # let it write out what it has
    stop.set()
    await sampler
    proc.send_signal(signal.SIGINT)
    err = (await proc.stderr.read()).decode()
    await proc.wait()
    captured = next((int(w.split()[0]) for w in err.splitlines() if "packets captured" in w), -1)
    return {
        "sent": sent,
        "took": took,
        "received": captured,
        "tshark_mb": peak[0] / 1024,
        "idle_mb": idle / 1024,
    }


async def run(state: LabState) -> int:
    node = next(n for n in state.nodes if n.name == "node-2")
    veth = next(p.host_veth for p in state.pods if p.ip == "10.0.2.215")
    mine = await ours(state, node.netns, veth)
    plain = await anchor(state, node.netns, veth)
    print(f"{RATE} packets/s for {SECONDS:g} s, pod 10.0.1.15 → 10.0.2.215, captured on node-2/{veth}")
    print(f"{'':26}{'sent':>9}{'got':>9}{'lost':>8}{'tshark RSS':>12}")
    for name, r in (("labyrinth stream (SSH)", mine), ("tshark > /dev/null", plain)):
        lost = r["sent"] - r["received"]
        row = f"{name:26}{r['sent']:>9.0f}{r['received']:>9.0f}{lost:>8.0f}{r['tshark_mb']:>9.0f} MB"
        print(row + f"   (sender took {r['took']:.1f} s)")
    print(
        f"stream: {mine['batches']:.0f} batches, {mine['restarts']:.0f} tshark restarts (every"
        f" {RESTART_AFTER}), wire→ring latency median {mine['median_ms']:.0f} ms, p99 {mine['p99_ms']:.0f} ms"
    )
    print(f"an idle tshark with the same options already holds {plain['idle_mb']:.0f} MB (dissector tables)")
    print(
        f"our process: RSS {mine['rss_mb']:.0f} MB (peak {mine['hwm_mb']:.0f} MB, ring of 100k kept),"
        f" CPU {mine['cpu_s']:.1f} s for {mine['received']:.0f} packets"
    )
    print(load_line() + " (the idle goals need an idle machine)")
    verdict = Verdict("bench/capture_live.py")
    lost, anchor_lost = mine["sent"] - mine["received"], plain["sent"] - plain["received"]
    verdict.goal("idle: packets lost", f"{lost:.0f}", f"{anchor_lost:.0f}", "0", lost == 0)
    median, p99 = mine["median_ms"], mine["p99_ms"]
    verdict.goal("idle: wire → ring median", f"{median:.0f} ms", "", "≤ 50 ms", median <= 50)
    verdict.goal("idle: wire → ring p99", f"{p99:.0f} ms", "", "≤ 150 ms", p99 <= 150)
    return verdict.status()


def main() -> int:
    if os.geteuid() != 0:
        print("bench/capture_live.py needs root (it builds a lab of network namespaces)", file=sys.stderr)
        return 1
    spec = article_spec(prefix=f"bzcap{os.getpid() % 1000}")
    try:
        state = up(spec)
        return asyncio.run(run(state))
    finally:
        down(spec.prefix)


if __name__ == "__main__":
    sys.exit(main())

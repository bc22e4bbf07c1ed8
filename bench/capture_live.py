"""A live stream under load: packets between two lab pods over SSH, recorded and shown, beside dumpcap -w.

Three trials, each with our stream (recording on) and, at the same time on the same interface, the
anchor `dumpcap -w FILE` (nothing downstream of it): pod 10.0.1.15 → 10.0.2.215, captured on node-2's
host veth for the server pod, tshark restarted every 80k packets so hand-offs happen under load.
- idle, 20k packets/s for 10 s: 0 lost (recording and view), wire → ring median ≤ 50 ms, p99 ≤ 150 ms;
- two CPU hogs (a busy loop per core, started and stopped here), 20k packets/s for 10 s: the recording
  loses no more than dumpcap; the view has every recorded packet within 10 s of the burst's end; the
  lag the pane was told ("behind by …") is printed;
- idle, a 5 s burst at 50k packets/s: 0 lost in the recording.
Each idle trial first waits, at most 90 s, for a quiet machine (CPUs ≤ 20 % busy and no task in
uninterruptible sleep, 3 s in a row) and prints how long it waited: run after a bench that deleted hundreds
of namespaces, the kernel's cleanup of them had been measured as our latency.
"Lost" is counted per copy: sent − packets to UDP port 9 in the recording (or dumpcap's file, or the
ring). The sender is a paced Python loop; it prints how many it sent and in how long (on a loaded
machine it may take longer than asked: the rate then is what it managed).
Run as root: `.venv/bin/python bench/capture_live.py` (builds its own lab, removes it; ~2 minutes).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib.goals import Verdict, load_line, wait_quiet

from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.spec import article_spec
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.lab.up import up
from labyrinth_tui.nodes.commands import in_netns
from labyrinth_tui.nodes.connect import NetnsConnector
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import (
    PacketBatch,
    SourceEvent,
    StreamLag,
    StreamSpec,
    StreamState,
    StreamStatus,
)
from labyrinth_tui.sources.captures import CaptureStreams

FILTER = "udp dst port 9"
RESTART_AFTER = int(os.environ.get("RESTART_AFTER", "80000"))
CATCH_UP = 10.0  # seconds after the burst by which the view must hold every recorded packet
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


@dataclass
class Trial:
    label: str
    rate: int
    seconds: float
    hogs: bool
    sent: int = 0
    took: float = 0.0
    shown: int = 0  # packets that reached our ring
    recorded: int = 0  # packets in our stream's recording
    anchor: int = 0  # packets in dumpcap's file
    latencies: list[float] = field(default_factory=list)
    lag_max: tuple[int, float] = (0, 0.0)
    caught_up: float = float("nan")  # seconds after the burst until the ring held every recorded packet
    load: str = ""

    def quantile_ms(self, q: int) -> float:
        if len(self.latencies) < 100:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def count_port9(path: Path) -> int:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-n", "-Y", "udp.dstport == 9", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return len(out.split())


async def send(state: LabState, rate: int, seconds: float) -> tuple[int, float]:
    client = next(p for p in state.pods if p.ip == "10.0.1.15")
    proc = await asyncio.create_subprocess_exec(
        *in_netns(client.netns, ["python3", "-c", SENDER, str(rate), str(seconds)]),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    sent, took = out.split()
    return int(sent), float(took)


def start_hogs() -> list[subprocess.Popen[bytes]]:
    """A busy loop per core: the machine a live demo on a busy laptop runs on."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]


async def run_trial(state: LabState, trial: Trial, scratch: Path) -> None:
    scratch.mkdir()
    node = next(n for n in state.nodes if n.name == "node-2")
    veth = next(p.host_veth for p in state.pods if p.ip == "10.0.2.215")
    connector = NetnsConnector(
        node.netns, node.address, node.ssh.port, node.ssh.user, node.ssh.client_key, node.ssh.host_key
    )
    session = NodeSession("node-2", connector)
    captures = CaptureStreams({"node-2": session}, restart_after=RESTART_AFTER)
    spec = StreamSpec("node-2", veth, FILTER)
    capturing = asyncio.Event()
    failure = ""
    last_batch = [0.0]

    def emit(event: SourceEvent) -> None:
        nonlocal failure
        if isinstance(event, StreamStatus):
            if event.state is StreamState.CAPTURING and not event.reason:
                capturing.set()
            if event.state is StreamState.FAILED:
                failure = event.reason
                capturing.set()
        elif isinstance(event, StreamLag):
            trial.lag_max = max(trial.lag_max, (event.packets, event.seconds))
        elif isinstance(event, PacketBatch):
            now = time.time()
            last_batch[0] = time.monotonic()
            trial.shown += sum(1 for p in event.packets if p.dport == 9)
            step = max(1, len(event.packets) // 50)
            trial.latencies.extend(now - p.ts for p in event.packets[::step])

    record_dir = scratch / "recording"
    task = asyncio.create_task(captures.open(spec, emit, record_dir=record_dir))
    await capturing.wait()
    if failure:
        raise SystemExit(f"stream failed: {failure}")
    anchor_file = scratch / "dumpcap.pcapng"
    dumpcap = subprocess.Popen(
        in_netns(node.netns, ["dumpcap", "-q", "-i", veth, "-f", FILTER, "-w", str(anchor_file)]),
        stderr=subprocess.DEVNULL,
    )
    hogs = start_hogs() if trial.hogs else []
    try:
        await asyncio.sleep(
            1.0
        )  # dumpcap's "Capturing on" comes before capture really starts (docs/lab-facts.md)
        trial.sent, trial.took = await send(state, trial.rate, trial.seconds)
        trial.load = load_line()
        ended = time.monotonic()
        while time.monotonic() - ended < 30 and trial.shown < trial.sent:
            if last_batch[0] and time.monotonic() - max(last_batch[0], ended) > 5:
                break  # nothing new for 5 s: the rest is not coming
            await asyncio.sleep(0.1)  # waiting for the view to catch up with what was sent
        trial.caught_up = max(0.0, last_batch[0] - ended)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        dumpcap.send_signal(signal.SIGINT)
        dumpcap.wait()
    await captures.close(spec)
    await task
    await session.close()
    recording = captures.pcapng_path(spec)
    trial.recorded = count_port9(recording) if recording is not None else 0
    trial.anchor = count_port9(anchor_file)


def report(trials: list[Trial]) -> int:
    print(f"{'trial':<30}{'sent':>8}{'took':>7}{'recorded':>10}{'shown':>8}{'dumpcap':>9}  latency med/p99")
    for t in trials:
        print(
            f"{t.label:<30}{t.sent:>8}{t.took:>6.1f}s{t.recorded:>10}{t.shown:>8}{t.anchor:>9}"
            f"  {t.quantile_ms(50):>5.0f}/{t.quantile_ms(99):.0f} ms   ({t.load})"
        )
        if t.lag_max[0]:
            print(f"{'':<30}pane said at worst: behind by {t.lag_max[0]:,} packets / {t.lag_max[1]:.1f} s")
    idle, busy, burst = trials
    verdict = Verdict("bench/capture_live.py")
    lost = idle.sent - min(idle.recorded, idle.shown)
    verdict.goal(
        "idle 20k/s: lost (recording, view)", f"{lost}", f"{idle.sent - idle.anchor}", "0", lost == 0
    )
    med, p99 = idle.quantile_ms(50), idle.quantile_ms(99)
    verdict.goal("idle 20k/s: wire → ring median", f"{med:.0f} ms", "", "≤ 50 ms", med <= 50)
    verdict.goal("idle 20k/s: wire → ring p99", f"{p99:.0f} ms", "", "≤ 150 ms", p99 <= 150)
    ours, theirs = busy.sent - busy.recorded, busy.sent - busy.anchor
    verdict.goal("2 hogs 20k/s: lost in the recording", f"{ours}", f"{theirs}", "≤ dumpcap's", ours <= theirs)
    late = busy.recorded - busy.shown
    caught = f"{busy.caught_up:.1f} s after the burst ({late} recorded not shown)"
    verdict.goal(
        "2 hogs 20k/s: view caught up",
        caught,
        "",
        f"≤ {CATCH_UP:g} s, all shown",
        late <= 0 and busy.caught_up <= CATCH_UP,
    )
    ours = burst.sent - burst.recorded
    verdict.goal(
        "burst 50k/s 5 s: lost in the recording", f"{ours}", f"{burst.sent - burst.anchor}", "0", ours == 0
    )
    return verdict.status()


def main() -> int:
    if os.geteuid() != 0:
        print("bench/capture_live.py needs root (it builds a lab of network namespaces)", file=sys.stderr)
        return 1
    prefix = os.environ.get("BENCH_PREFIX", f"bcap{os.getpid() % 1000}")
    spec = article_spec(prefix=prefix)
    trials = [
        Trial("idle, 20k/s × 10 s", 20_000, 10.0, hogs=False),
        Trial("2 hogs, 20k/s × 10 s", 20_000, 10.0, hogs=True),
        Trial("idle, 50k/s × 5 s", 50_000, 5.0, hogs=False),
    ]
    print(load_line() + " before the lab (the idle trials need an idle machine)")
    try:
        state = up(spec)
        with tempfile.TemporaryDirectory(prefix="capture-live-") as tmp:
            for i, trial in enumerate(trials):
                if not trial.hogs:  # an idle trial starts on a quiet machine, and says how long it waited
                    print(f"{trial.label}: {wait_quiet()}", flush=True)
                asyncio.run(run_trial(state, trial, Path(tmp) / f"trial-{i}"))
    finally:
        down(spec.prefix)
    return report(trials)


if __name__ == "__main__":
    sys.exit(main())

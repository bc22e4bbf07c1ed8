"""Soak: the app (headless, `App.run_test`) open on three streams for minutes, RSS and CPU sampled every 15 s.

Phases, one after the other in one app:
  low    a few packets a second on each stream (the issue's TUI left open on the lab)
  busy   5k packets/s in all, after the three 100k-packet rings are filled (the warm-up)
  quiet  the streams open, no packets at all: the app's own idle cost
Goals (issue 16): RSS flat after warm-up — slope ≤ 1 MB/min in `low` and in `busy` — and ≤ 2 % CPU in
`quiet`. The anchor, measured in the same run, is this process before the app starts (its RSS, and its
CPU over the same quiet time with no app at all: what Python itself costs here).

    python bench/soak.py              # 10 minutes per phase (the goal run)
    python bench/soak.py --quick      # 1 minute per phase
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import sys
import time
from dataclasses import dataclass, field

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources import PacketBatch, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.base import Emit
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle
from labyrinth_tui.sources.replay import ReplaySource
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.screens.main import MainScreen
from labyrinth_tui.ui.widgets.packet_list import PacketList
from labyrinth_tui.ui.widgets.stream_pane import StreamPane

SAMPLE_EVERY = 15.0  # s
TICK = 0.05  # s between batches: what a capture's flush brings
LOW_RATE = 6.0  # packets/s in all
BUSY_RATE = 5_000.0
GOAL_SLOPE = 1.0  # MB/min
GOAL_IDLE_CPU = 2.0  # %
RING = 100_000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Traffic(ReplaySource):
    """The article's recording for the topology; packets made up at `rate` per second over open streams."""

    rate: float = 0.0
    burst: int = 0  # packets each stream gets at once, then 0 (fills the rings)
    streams: dict[StreamSpec, Emit] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        self.streams[spec] = emit
        emit(StreamStatus(spec, StreamState.CAPTURING))
        owed = 0.0
        while spec in self.streams:
            await asyncio.sleep(TICK)
            if self.burst:
                emit(PacketBatch(spec, tuple(self.packet(spec) for _ in range(self.burst))))
                continue
            owed += self.rate / len(self.streams) * TICK
            n, owed = int(owed), owed - int(owed)
            if n:
                emit(PacketBatch(spec, tuple(self.packet(spec) for _ in range(n))))

    async def close_stream(self, spec: StreamSpec) -> None:
        self.streams.pop(spec, None)

    def packet(self, spec: StreamSpec) -> PacketSummary:
        i = next(self.counter)
        return PacketSummary(
            time.time(), spec.node, spec.interface, i, "10.0.1.15", "10.0.2.215", "TCP", 74,
            f"{38430 + i % 1000} → 9999 [ACK] Seq={i} Ack=1 Win=64512 Len=0",
            38430 + i % 1000, 9999, "ACK", 1000 + i, 1, i % 65536,
        )  # fmt: skip


@dataclass
class Phase:
    name: str
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (minutes, RSS MB, CPU %)

    def slope(self) -> float:
        """MB per minute, least squares over the samples after the phase's first quarter (its warm-up)."""
        kept = [s for s in self.samples if s[0] > self.samples[-1][0] / 4] if self.samples else []
        xs, ys = [s[0] for s in kept], [s[1] for s in kept]
        if len(xs) < 2:
            return 0.0
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0

    def cpu(self) -> float:
        return sum(s[2] for s in self.samples) / len(self.samples) if self.samples else 0.0


async def sample(phase: Phase, minutes: float) -> None:
    start = last = time.monotonic()
    cpu_last = cpu_seconds()
    while (now := time.monotonic()) - start < minutes * 60:
        await asyncio.sleep(min(SAMPLE_EVERY, start + minutes * 60 - now))
        now, cpu = time.monotonic(), cpu_seconds()
        row = ((now - start) / 60, rss_mb(), (cpu - cpu_last) / (now - last) * 100)
        phase.samples.append(row)
        print(f"  {phase.name:<6} {row[0]:5.2f} min  RSS {row[1]:7.1f} MB  CPU {row[2]:5.1f} %", flush=True)
        last, cpu_last = now, cpu


async def anchor_idle_cpu(seconds: float) -> float:
    """This process with no app: the event loop asleep for `seconds`, as a base for the idle figure."""
    cpu, start = cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds() - cpu) / (time.monotonic() - start) * 100


async def soak(minutes: float) -> bool:
    bundle = Bundle.load(ARTICLE_BUNDLE)
    specs = [s.spec for s in bundle.streams][:3]
    anchor_cpu = await anchor_idle_cpu(min(30.0, minutes * 60))
    anchor_rss = rss_mb()
    source = Traffic(ARTICLE_BUNDLE, speed=0)
    app = make_app(source)
    phases = {name: Phase(name) for name in ("low", "busy", "quiet")}
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await app.workers.wait_for_complete()
        for spec in specs:
            await screen.open_stream(spec)
        await pilot.pause(1.0)
        print(f"app open on {len(specs)} streams: RSS {rss_mb():.1f} MB (before the app: {anchor_rss:.1f})")

        source.rate = LOW_RATE
        await sample(phases["low"], minutes)

        # warm-up: the rings filled to their 100k, then 5k packets/s for the measured minutes
        source.burst = 2_500
        lists = [p.query_one(PacketList) for p in screen.query(StreamPane)]
        while min(pl.ring.total for pl in lists) < RING:
            await pilot.pause(0.1)
        source.burst, source.rate = 0, BUSY_RATE
        await pilot.pause(SAMPLE_EVERY)
        await sample(phases["busy"], minutes)

        source.rate = 0.0
        await pilot.pause(2.0)
        await sample(phases["quiet"], minutes)
        source.streams.clear()
    ok = True
    print(f"anchor: this process before the app, idle: {anchor_cpu:.2f} % CPU, RSS {anchor_rss:.1f} MB")
    for phase in (phases["low"], phases["busy"]):
        met = phase.slope() <= GOAL_SLOPE
        ok &= met
        print(
            f"{phase.name:<6} RSS slope {phase.slope():+6.2f} MB/min (goal ≤ {GOAL_SLOPE}) "
            f"{'MET' if met else 'MISSED'}   CPU {phase.cpu():5.1f} %"
        )
    quiet = phases["quiet"]
    met = quiet.cpu() <= GOAL_IDLE_CPU
    ok &= met
    print(
        f"quiet  CPU {quiet.cpu():5.2f} % with 3 streams open and no packets (goal ≤ {GOAL_IDLE_CPU} %) "
        f"{'MET' if met else 'MISSED'}   RSS slope {quiet.slope():+.2f} MB/min"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="per phase (default 10)")
    parser.add_argument("--quick", action="store_true", help="1 minute per phase")
    args = parser.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    print(f"soak: {minutes:g} min per phase (low {LOW_RATE:g} pkt/s, busy {BUSY_RATE:g} pkt/s, quiet)")
    return 0 if asyncio.run(soak(minutes)) else 1


if __name__ == "__main__":
    sys.exit(main())

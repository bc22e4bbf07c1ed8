"""`j` → full timeline on the lab: LabSource.journey (what the TUI's `j` awaits), beside its floor.

The first journey is cold: every hop's capture started and proven (the SSH sessions are open: the app
opened them for discovery). That is what a user sees first, and the figure held to the goal: each
cold run starts from no capture at all (CaptureStreams.close_all before it). The next journeys find
the hops' captures kept warm (sources/journey_run.KEEP_WARM) and join them: `j` pressed again, printed
beside it.
Floor, measured in the same run doing the same work without us around it: one tshark started on one
hop until it is proven capturing (CaptureStreams.open on node-1/ens4, the journey starts six of these
at once) plus the article's ncat exchange alone (lab/traffic.exchange, the journey's own traffic).
Goal: the cold journey's median ≤ 3 s on an idle machine (the load average is printed: read it with it).
Each phase's median is printed too (sources/journey_run.Phases: plan, captures proven, evidence,
traffic, settle, …), so a slow run says where its time went.
Run as root: `.venv/bin/python bench/journey_latency.py [PREFIX]` (builds its own lab, removes it; < 1
minute).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

from labyrinth_tui.journey.article import PAYLOAD, PORT, SERVICE
from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.lab.down import down
from labyrinth_tui.lab.traffic import exchange
from labyrinth_tui.sources.base import SourceEvent, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.lab import LabSource

GOAL = 3.0  # s
RUNS = 3


def noop(event: SourceEvent) -> None:
    pass


async def tshark_start(source: LabSource) -> float:
    """One capture on node-1/ens4, from open() to CAPTURING (proven by its canary)."""
    assert source.captures is not None
    ready = asyncio.Event()

    def emit(event: SourceEvent) -> None:
        if isinstance(event, StreamStatus) and event.state is not StreamState.STARTING:
            ready.set()

    spec = StreamSpec("node-1", "ens4", "tcp port 9999")
    started = time.perf_counter()
    task = asyncio.create_task(source.captures.open(spec, emit))
    await asyncio.wait_for(ready.wait(), 60)
    took = time.perf_counter() - started
    await source.captures.close(spec, emit)
    await task
    return took


async def timed_journey(source: LabSource, phases: dict[str, list[float]]) -> tuple[float, JourneyReport]:
    """One `j` on the article's pair: its seconds and report, each phase's added to `phases`; it must
    complete."""
    started = time.perf_counter()
    report = await source.journey(noop)
    took = time.perf_counter() - started
    assert report.handshake is not None and report.handshake.complete, report.problems
    assert source.journey_phases is not None
    for phase, seconds in source.journey_phases.seconds.items():
        phases.setdefault(phase, []).append(seconds)
    return took, report


async def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("prefix", nargs="?", default=f"jqb{os.getpid() % 100000}", help="the lab's prefix")
    prefix = args.parse_args().prefix
    source = LabSource.article(prefix=prefix)
    phases: dict[str, list[float]] = {}
    cold_phases: dict[str, list[float]] = {}
    try:
        await source.start(noop)
        assert source.captures is not None
        colds = []
        for _ in range(RUNS):
            await source.captures.close_all()  # no capture open: every hop's starts and is proven
            await asyncio.gather(*source._lingering)  # the previous journey's closes, done
            took, first = await timed_journey(source, cold_phases)
            colds.append(took)
        journeys = [(await timed_journey(source, phases))[0] for _ in range(RUNS)]
        await source.captures.close_all()  # the floor's tshark starts cold
        starts, exchanges = [], []
        for _ in range(RUNS):
            starts.append(await tshark_start(source))
            started = time.perf_counter()
            await exchange(
                client_netns=first.client.netns, client_name=first.client.name,
                servers=[(first.server.netns, first.server.name)], target=SERVICE, port=PORT,
                payload=PAYLOAD, timeout=10.0,
            )  # fmt: skip
            exchanges.append(time.perf_counter() - started)
    finally:
        await source.close()
        await asyncio.to_thread(down, prefix)
    cold = statistics.median(colds)
    again = statistics.median(journeys)
    floor = statistics.median(starts) + statistics.median(exchanges)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"j → timeline, cold (the first j)   median {cold:6.2f} s   runs {[round(t, 2) for t in colds]}")
    print(
        f"j → timeline, again (kept warm)    median {again:6.2f} s   runs {[round(t, 2) for t in journeys]}"
    )
    print(
        f"floor: tshark start {statistics.median(starts):.2f} s + ncat exchange "
        f"{statistics.median(exchanges):.2f} s = {floor:.2f} s   (cold ×{cold / floor:.1f})"
    )
    print("where the journey's time goes (medians):  cold    again")
    for phase in dict.fromkeys([*cold_phases, *phases]):
        first_time = statistics.median(cold_phases.get(phase, [0.0]))
        again_time = statistics.median(phases.get(phase, [0.0]))
        print(f"  {phase:<22}             {first_time:6.3f} s  {again_time:6.3f} s")
    print(f"goal: the first j ≤ {GOAL:.1f} s (cold median): {'met' if cold <= GOAL else 'MISSED'}")
    return 0 if cold <= GOAL else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

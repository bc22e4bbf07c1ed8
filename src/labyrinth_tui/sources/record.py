"""Recording the lab's journey into a bundle: topology, progress, packets + pcapng for every hop, evidence."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from labyrinth_tui.lab.owned import run_root
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step
from labyrinth_tui.sources.base import (
    Emit,
    JourneyError,
    PacketBatch,
    ProgressEvent,
    SourceEvent,
    StreamSpec,
    TopologyEvent,
)
from labyrinth_tui.sources.bundle_writer import write_bundle
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.journey_run import run_journey
from labyrinth_tui.sources.lab import LabSource
from labyrinth_tui.sources.lab_nodes import lab_datapath


class _RecordingCaptures:
    """CaptureStreams that keep a pcapng of every stream they open."""

    def __init__(self, captures: CaptureStreams, record_dir: Path) -> None:
        self.captures = captures
        self.record_dir = record_dir

    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        await self.captures.open(spec, emit, record_dir=self.record_dir)

    async def close(self, spec: StreamSpec, emit: Emit, *, keep_for: float = 0.0) -> None:
        await self.captures.close(spec, emit, keep_for=keep_for)

    def is_watched(self, spec: StreamSpec) -> bool:
        return self.captures.is_watched(spec)

    async def delivered(self, specs: Sequence[StreamSpec]) -> list[bool]:
        return await self.captures.delivered(specs)


async def record_journey(source: LabSource, out: Path, title: str = "") -> Path:
    """Bring the lab up, run the article's traffic with every hop captured, write the bundle to `out`."""
    steps: list[Step] = []
    topology = None

    def keep(event: SourceEvent) -> None:
        nonlocal topology
        if isinstance(event, ProgressEvent):
            steps.append(event.step)
        elif isinstance(event, TopologyEvent):
            topology = event.topology

    await source.start(keep)
    if source.state is None or topology is None:
        raise JourneyError("the lab did not come up")
    packets: dict[StreamSpec, list[PacketSummary]] = {}

    def collect(event: SourceEvent) -> None:
        if isinstance(event, PacketBatch):
            packets.setdefault(event.spec, []).extend(event.packets)

    # inside this run's root: a `record` killed -9 leaves it to `lab down --prefix P`, which sweeps it
    with tempfile.TemporaryDirectory(prefix="record-", dir=run_root(source.state.prefix)) as tmp:
        captures = CaptureStreams(source.sessions, tag=source.state.prefix)
        report = await run_journey(
            source.state,
            captures=_RecordingCaptures(captures, Path(tmp)),
            sessions=source.sessions,
            emit=collect,
        )
        pcaps = {spec: path for spec in packets if (path := captures.pcapng_path(spec)) is not None}
        final = {step.key: step for step in steps}  # the newest state of every step
        write_bundle(
            out,
            topology,
            packets,
            steps=list(final.values()),
            pcapngs=pcaps,
            title=title or f"the article's journey, recorded in lab {source.state.prefix}",
            evidence=report.evidence,
            datapath=(await lab_datapath(source.state)).values(),
        )
    return out

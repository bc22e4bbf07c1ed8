"""ReplaySource: plays a recorded bundle (topology, progress, packets per stream) with no root and no lab."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.serialize import BundleFormatError, step_from_json
from labyrinth_tui.probes.dissect import dissect
from labyrinth_tui.sources.base import (
    Emit,
    PacketBatch,
    ProgressEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.sources.bundle import Bundle, read_packets
from labyrinth_tui.sources.capture_files import copy_recording
from labyrinth_tui.sources.journey_replay import report_from_bundle

BATCH = 2048  # packets per PacketBatch when replaying faster than real time


def _next_batch(packets: Iterator[PacketSummary]) -> tuple[PacketSummary, ...]:
    return tuple(itertools.islice(packets, BATCH))


@dataclass
class ReplaySource:
    """speed 1.0 plays at the recorded pace; 0 delivers everything at once (tests, snapshots)."""

    root: Path
    speed: float = 1.0
    name: str = "replay"
    bundle: Bundle | None = None
    _closed: set[StreamSpec] = field(default_factory=set)

    def load(self) -> Bundle:
        if self.bundle is None:
            self.bundle = Bundle.load(self.root)
        return self.bundle

    async def start(self, emit: Emit) -> None:
        bundle = self.load()
        for step in bundle.steps:
            emit(ProgressEvent(step_from_json(step)))
        emit(TopologyEvent(bundle.topology))

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        bundle = self.load()
        recorded = bundle.stream(spec) or bundle.stream_for(spec.node, spec.interface)
        if recorded is None:
            emit(StreamStatus(spec, StreamState.FAILED, "not in this recording"))
            return
        if recorded.failed or recorded.packets_file is None:
            emit(StreamStatus(spec, StreamState.FAILED, recorded.failed or "no packets recorded"))
            return
        packets = read_packets(recorded.packets_file)
        emit(StreamStatus(spec, StreamState.CAPTURING))
        self._closed.discard(spec)
        try:
            await self._replay(spec, packets, emit)
        except BundleFormatError as exc:  # the packets before the defect were shown; then it is said
            emit(StreamStatus(spec, StreamState.FAILED, str(exc)))
            return
        finally:
            # its file, now rather than when the generator is collected; a cancelled read may still be
            # running in its thread ("generator already executing"): that one closes it when it ends
            with contextlib.suppress(ValueError):
                packets.close()
        if spec not in self._closed:
            emit(StreamStatus(spec, StreamState.STOPPED, "end of recording"))

    async def _replay(self, spec: StreamSpec, packets: Iterator[PacketSummary], emit: Emit) -> None:
        """Read BATCH packets at a time off the loop and emit them, at once or at the recorded pace.

        Streamed: a recording of any size holds one batch in memory here (the pane keeps its own ring).
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        t0: float | None = None
        while spec not in self._closed:
            batch = await asyncio.to_thread(_next_batch, packets)
            if not batch:
                return
            if self.speed <= 0:
                emit(PacketBatch(spec, batch))
                continue
            if t0 is None:
                t0 = batch[0].ts
            i = 0
            while i < len(batch) and spec not in self._closed:
                due = start + (batch[i].ts - t0) / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.05))
                    continue
                end = i
                now = loop.time()
                while end < len(batch) and start + (batch[end].ts - t0) / self.speed <= now:
                    end += 1
                emit(PacketBatch(spec, batch[i:end]))
                i = end

    async def close_stream(self, spec: StreamSpec) -> None:
        self._closed.add(spec)

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        bundle = self.load()
        recorded = bundle.stream(spec) or bundle.stream_for(spec.node, spec.interface)
        return recorded.pcapng_file if recorded is not None else None

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        return await copy_recording(self.pcapng_path(spec), target)  # whole from the start

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        path = self.pcapng_path(spec)
        if path is None or not path.exists():
            return None
        return await dissect(path, packet.number)

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        # a recording holds one journey, whatever the request: the one it recorded
        return await asyncio.to_thread(report_from_bundle, self.root)

    async def datapath(self) -> dict[str, NodeBpf]:
        """The programs and their counters as they were after the recorded journey."""
        return {n.node: n for n in self.load().datapath}

    async def close(self) -> None:
        if self.bundle is not None:
            self._closed.update(s.spec for s in self.bundle.streams)

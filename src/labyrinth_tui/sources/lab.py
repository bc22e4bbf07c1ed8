"""LabSource: brings the lab up if needed (with progress), then feeds the app its topology and streams."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.lab.down import down, sweep_orphans
from labyrinth_tui.lab.spec import LabSpec, article_spec
from labyrinth_tui.lab.state import LabState
from labyrinth_tui.lab.up import up
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.dissect import dissect
from labyrinth_tui.sources.base import (
    Emit,
    JourneyError,
    ProgressEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.sources.capture_files import copy_recording
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.journey_run import KEEP_WARM, Phases, run_journey
from labyrinth_tui.sources.lab_nodes import discover_lab, lab_datapath, sessions_for, topology_from_state


@dataclass
class LabSource:
    spec: LabSpec
    name: str = "lab"
    state: LabState | None = None
    sessions: dict[str, NodeSession] = field(default_factory=dict)
    captures: CaptureStreams | None = None
    topology: Topology | None = None  # discovery's, kept for the journey
    journey_phases: Phases | None = None  # where the last journey's time went
    _lingering: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)  # journeys' closes
    _openers: dict[StreamSpec, Emit] = field(default_factory=dict, repr=False)  # who opened each stream

    @classmethod
    def article(cls, prefix: str = "labyrinth", pods_per_node: int = 0) -> LabSource:
        return cls(article_spec(prefix=prefix, pods_per_node=pods_per_node))

    async def start(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()

        def progress(step: Step) -> None:
            # called from the builder's thread: hand the step to the loop, never touch anything here
            loop.call_soon_threadsafe(emit, ProgressEvent(step))

        self.state = await asyncio.to_thread(up, self.spec, progress)
        emit(TopologyEvent(topology_from_state(self.state)))
        self.sessions = sessions_for(self.state)
        self.captures = CaptureStreams(self.sessions, tag=self.spec.prefix)
        # the app at start: a killed earlier run of this lab's leftover folders (its own prefix only)
        await asyncio.to_thread(sweep_orphans, self.spec.prefix)
        started = loop.time()
        emit(
            ProgressEvent(Step("lab", "discovery", StepState.RUNNING, 0, 1, 0.0, "ip -j over SSH, per node"))
        )
        topology = self.topology = await discover_lab(self.state, self.sessions)
        unreachable = [n.name for n in topology.nodes if not n.reachable]
        done = StepState.FAILED if unreachable else StepState.DONE
        why = f"unreachable: {', '.join(unreachable)}" if unreachable else ""
        emit(ProgressEvent(Step("lab", "discovery", done, 1, 1, loop.time() - started, why)))
        emit(TopologyEvent(topology))

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        if self.captures is None or self.state is None:
            emit(StreamStatus(spec, StreamState.FAILED, "the lab is not up yet"))
            return
        record_dir = Path(self.state.state_dir) / "recordings"
        record_dir.mkdir(exist_ok=True)
        self._openers[spec] = emit
        await self.captures.open(spec, emit, record_dir=record_dir)

    async def close_stream(self, spec: StreamSpec) -> None:
        if self.captures is not None:  # our opener leaves: a journey reading the same capture keeps it
            await self.captures.close(spec, self._openers.pop(spec, None))

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return self.captures.pcapng_path(spec) if self.captures is not None else None

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        if self.captures is not None and self.captures.is_live(spec):
            return await self.captures.save_live(spec, target)
        return await copy_recording(self.pcapng_path(spec), target)

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        if self.captures is not None and self.captures.is_live(spec):
            return await self.captures.live_dissection(spec, packet.number)  # tshark on the node
        path = self.pcapng_path(spec)  # a closed stream: its recording, fetched when it closed
        if path is None or not path.exists():
            return None
        return await dissect(path, packet.number)

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        if self.state is None:
            raise JourneyError("the lab is not up yet")
        # the streams already open are joined, not restarted; discovery's topology is the one shown
        self.journey_phases = Phases()
        return await run_journey(
            self.state, request, sessions=self.sessions, captures=self.captures, topology=self.topology,
            emit=emit, phases=self.journey_phases, linger=self._lingering, keep_warm=KEEP_WARM,
        )  # fmt: skip

    async def datapath(self) -> dict[str, NodeBpf]:
        return {} if self.state is None else await lab_datapath(self.state)

    async def down(self) -> None:
        """Stop every capture and connection, then remove the lab (everything it made, by prefix)."""
        await self.close()
        self.state = None
        await asyncio.to_thread(down, self.spec.prefix)

    async def close(self) -> None:
        if self.captures is not None:
            await self.captures.close_all()
        await asyncio.gather(*self._lingering, return_exceptions=True)
        sessions, self.sessions = self.sessions, {}
        await asyncio.gather(*(s.close() for s in sessions.values()), return_exceptions=True)

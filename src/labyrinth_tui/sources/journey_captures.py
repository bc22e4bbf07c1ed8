"""A journey's hop captures: what the run needs of them, what they emitted, and waiting for their proof."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Protocol

from labyrinth_tui.journey.plan import JourneyPlan
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.sources.base import (
    Emit,
    PacketBatch,
    ProgressEvent,
    SourceEvent,
    StreamSpec,
    StreamState,
    StreamStatus,
)


class Captures(Protocol):
    """What the run needs of captures (CaptureStreams is one): open runs until close(spec, emit).

    A capture already open on a hop with the same spec is joined, not restarted (CaptureStreams fans
    its packets out to every opener); close(spec, emit) leaves it running for the others, and with
    `keep_for` keeps it warm that long for the next journey."""

    async def open(self, spec: StreamSpec, emit: Emit) -> None: ...

    async def close(self, spec: StreamSpec, emit: Emit, *, keep_for: float = 0.0) -> None: ...

    def is_watched(self, spec: StreamSpec) -> bool: ...

    async def delivered(self, specs: Sequence[StreamSpec]) -> list[bool]:
        """For each spec, True once its stream has emitted everything its node recorded until now."""
        ...


def proven(status: StreamStatus | None) -> bool:
    """A hop's capture the traffic may start on: capturing, or recording every packet on the node
    while its tshark starts (it shows them from the recording; the journey waits for them to arrive)."""
    return status is not None and (
        status.state is StreamState.CAPTURING or (status.state is StreamState.STARTING and status.recorded)
    )


def hop_specs(plan: JourneyPlan) -> tuple[StreamSpec, ...]:
    """The hops' captures, with the journey's fields. A stream the user watches without those fields is
    another spec: the journey opens its own capture beside it rather than upgrading it, because the
    fields are tshark's output format and changing them means restarting that tshark — a gap in the
    user's stream and a new readiness proof, the very costs reusing an open capture saves."""
    return tuple(StreamSpec(h.node, h.interface, plan.capture_filter, journey_fields=True) for h in plan.hops)


class Collector:
    """What the streams emitted: their states (with a wakeup per change) and the packets they saw."""

    def __init__(self, forward: Callable[[SourceEvent], None] | None) -> None:
        self.states: dict[StreamSpec, StreamStatus] = {}
        self.packets: dict[StreamSpec, list[PacketSummary]] = {}
        self.changed = asyncio.Event()
        self.forward = forward
        # streams the journey joined: whoever opened them gets their events already, not twice
        self.joined: set[StreamSpec] = set()

    def __call__(self, event: SourceEvent) -> None:
        if isinstance(event, StreamStatus):
            self.states[event.spec] = event
        elif isinstance(event, PacketBatch):
            self.packets.setdefault(event.spec, []).extend(event.packets)
        self.changed.set()
        if self.forward is not None and getattr(event, "spec", None) not in self.joined:
            self.forward(event)

    async def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    def count(self) -> int:
        return sum(len(v) for v in self.packets.values())


async def until_ready(
    collector: Collector,
    specs: tuple[StreamSpec, ...],
    settled: Callable[[], bool],
    limit: float,
    stall: float,
) -> None:
    """Wait while the captures make progress: each status change is a step forward (shown as a journey
    step per capture); stop when all settled, when none moved for `stall` s, or at `limit` s."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_move = start
    seen: dict[StreamSpec, StreamStatus | None] = {}
    while True:
        now = loop.time()
        for spec in specs:
            status = collector.states.get(spec)
            if status != seen.get(spec):
                seen[spec] = status
                last_move = now
                if status is not None and collector.forward is not None:
                    collector.forward(ProgressEvent(capture_step(spec, status, now - start)))
        if settled() or now - start >= limit or now - last_move >= stall:
            return
        collector.changed.clear()
        wait = min(limit - (now - start), stall - (now - last_move))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.changed.wait(), max(wait, 0.01))


def capture_step(spec: StreamSpec, status: StreamStatus, elapsed: float) -> Step:
    """The journey's progress step for one hop's capture, as its latest status says."""
    state = {
        StreamState.STARTING: StepState.DONE if status.recorded else StepState.RUNNING,
        StreamState.CAPTURING: StepState.DONE,
    }.get(status.state, StepState.FAILED)
    log = status.reason or str(status.state)
    return Step(
        "journey",
        f"capture {spec.node}/{spec.interface}",
        state,
        int(state is StepState.DONE),
        1,
        elapsed,
        log,
    )


def why_not_ready(status: StreamStatus | None, limit: float, stall: float) -> str:
    """Why a hop's capture was not proven: its node's silence, its last step, or its failure."""
    if status is None:
        return f"no word from its node in {limit:g} s"
    if status.state is StreamState.STARTING:
        return (
            f"still '{status.reason or 'starting'}' (no step forward for {stall:g} s, or {limit:g} s in all)"
        )
    return status.reason or str(status.state)

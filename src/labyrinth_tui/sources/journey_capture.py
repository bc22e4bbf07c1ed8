"""Captures for a journey run: the protocol it needs, and a small tshark-over-SSH stream proven by a canary.

The run takes any `Captures` (open(spec, emit) / close(spec)); sources/captures.py's CaptureStreams is
the full one. This one is what the run uses when none is given: tshark on the node over its
NodeSession, CAPTURING only after the stream's own canary frame came back through tshark.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Protocol

from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture import capture_argv
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import (
    Canary,
    CanaryNotSent,
    CanaryWatch,
    canary_filter,
    interpret_canary_send,
)
from labyrinth_tui.sources.base import Emit, PacketBatch, StreamSpec, StreamState, StreamStatus


class Captures(Protocol):
    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        """Start capturing; emit StreamStatus (CAPTURING once proven) and PacketBatches."""

    async def close(self, spec: StreamSpec) -> None:
        """Stop it; nothing left running on the node."""


class TsharkCaptures:
    """One tshark per StreamSpec on its node's NodeSession."""

    def __init__(self, sessions: Mapping[str, NodeSession]) -> None:
        self.sessions = sessions
        self._tasks: dict[StreamSpec, asyncio.Task[None]] = {}

    async def open(self, spec: StreamSpec, emit: Emit) -> None:
        if spec in self._tasks:
            return
        self._tasks[spec] = asyncio.create_task(self._run(spec, emit), name=f"capture {spec.key}")

    async def close(self, spec: StreamSpec) -> None:
        task = self._tasks.pop(spec, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self, spec: StreamSpec, emit: Emit) -> None:
        session = self.sessions[spec.node]
        canary = Canary.new()
        watch = CanaryWatch(canary)
        parser = SummaryParser(spec.node, spec.interface)
        emit(StreamStatus(spec, StreamState.STARTING))
        sender: asyncio.Task[None] | None = None
        try:
            argv = capture_argv(spec.interface, canary_filter(spec.capture_filter))
            async with session.stream(argv) as lines:
                sender = asyncio.create_task(self._send_canary(session, spec, canary, watch, emit))
                async for line in lines:
                    packet = parser.parse(line)
                    if packet is None:
                        continue
                    was_ready = watch.ready
                    kept = watch.take((packet,))
                    if watch.ready and not was_ready:
                        emit(StreamStatus(spec, StreamState.CAPTURING))
                    if kept and watch.ready:
                        emit(PacketBatch(spec, tuple(kept)))
                reason = lines.stderr_tail.strip().splitlines()[-1:] or [f"tshark exited {lines.exit_status}"]
                emit(StreamStatus(spec, StreamState.FAILED, reason[0]))
        except asyncio.CancelledError:
            emit(StreamStatus(spec, StreamState.STOPPED))
            raise
        except (NodeError, ValueError) as exc:
            emit(StreamStatus(spec, StreamState.FAILED, str(exc)))
        finally:
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    async def _send_canary(
        self, session: NodeSession, spec: StreamSpec, canary: Canary, watch: CanaryWatch, emit: Emit
    ) -> None:
        # canaries go out every 0.1 s until ours comes back (tshark's "Capturing on" proves nothing)
        for _ in range(50):
            result = await session.run(canary.send_argv(spec.interface, count=1), check=False)
            try:
                interpret_canary_send(spec.interface, result.exit_status, result.stderr)
            except CanaryNotSent as exc:
                emit(StreamStatus(spec, StreamState.FAILED, exc.reason))
                return
            if watch.ready:
                return
            await asyncio.sleep(0.1)
        emit(StreamStatus(spec, StreamState.FAILED, f"no packets visible on {spec.interface}"))

"""PublishingSource: the presenter's real source, its events also copied to the serve hub, never waited on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.sources.base import Emit, PacketBatch, Source, SourceEvent, StreamSpec
from labyrinth_tui.sources.follow_wire import (
    DetailAsk,
    DetailReply,
    Dropped,
    FollowEvent,
    JourneyShown,
    JourneyStarted,
    Selection,
    StreamClosed,
    StreamOpened,
    TourShown,
    encode,
    read_frame,
)
from labyrinth_tui.sources.tour import TourResult, tour_runner

SOFT_LIMIT = 2 << 20  # bytes the hub has not read yet before the presenter stops sending it packets
COALESCE = 0.25  # seconds of a stream's packets sent to the hub as one batch


class PublishingSource:
    """Wraps the presenter's source: every call goes to it unchanged; what it emits, which streams are
    open, the journey's report and the presenter's selection are copied to the hub. The copy is
    fire-and-forget with a bounded buffer, so the presenter never waits on the room.

    Packet batches are coalesced: a stream's packets go to the hub every COALESCE seconds as one batch
    (the room reads a screen, not every 50 ms batch), so the hub and every viewer handle four frames a
    second per stream instead of twenty; any other event first flushes what is pending, so the room sees
    them in the presenter's order."""

    def __init__(
        self, inner: Source, sock: socket.socket, soft_limit: int = SOFT_LIMIT, coalesce: float = COALESCE
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.sock = sock
        self.soft_limit = soft_limit
        self.coalesce = coalesce
        self._writer: asyncio.StreamWriter | None = None
        self._dropped: dict[StreamSpec, int] = {}
        self._pending: dict[StreamSpec, list[PacketSummary]] = {}
        self._source_dropped: dict[StreamSpec, int] = {}
        self._flush_at: asyncio.TimerHandle | None = None
        self._reading: asyncio.Task[None] | None = None
        self._asked: set[asyncio.Task[None]] = set()

    def publish(self, frame: SourceEvent | FollowEvent | DetailReply) -> None:
        if isinstance(frame, PacketBatch):
            self._pending.setdefault(frame.spec, []).extend(frame.packets)
            self._source_dropped[frame.spec] = frame.dropped  # a running count: the latest is right
            if self._flush_at is None:
                self._flush_at = asyncio.get_running_loop().call_later(self.coalesce, self.flush)
            return
        self.flush()
        self._write(frame)

    def flush(self) -> None:
        """Send the packets gathered since the last flush, one batch per stream."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        pending, self._pending = self._pending, {}
        for spec, packets in pending.items():
            self._write(PacketBatch(spec, tuple(packets), self._source_dropped.get(spec, 0)))

    def _write(self, frame: SourceEvent | FollowEvent | DetailReply) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        waiting = writer.transport.get_write_buffer_size()
        if isinstance(frame, PacketBatch) and waiting > self.soft_limit:
            self._dropped[frame.spec] = self._dropped.get(frame.spec, 0) + len(frame.packets)
            return
        if self._dropped:
            for spec, count in self._dropped.items():
                writer.write(encode(Dropped(spec, count)))
            self._dropped.clear()
        writer.write(encode(frame))

    def _tee(self, emit: Emit) -> Emit:
        def both(event: SourceEvent) -> None:
            emit(event)
            self.publish(event)

        return both

    async def start(self, emit: Emit) -> None:
        if self._writer is None:
            reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
            self._reading = asyncio.create_task(self._answer(reader))
        await self.inner.start(self._tee(emit))

    async def _answer(self, reader: asyncio.StreamReader) -> None:
        """The hub's questions: a viewer's packet dissection, answered from the real source."""
        while (frame := await read_frame(reader)) is not None:
            if isinstance(frame, DetailAsk):
                task = asyncio.create_task(self._detail(frame))
                self._asked.add(task)  # the loop keeps only weak references to tasks
                task.add_done_callback(self._asked.discard)

    async def _detail(self, ask: DetailAsk) -> None:
        try:
            found = await self.inner.packet_detail(ask.spec, ask.packet)
        except Exception as exc:  # the viewer is told why; the presenter's app is not disturbed
            self.publish(DetailReply(ask.request, None, str(getattr(exc, "reason", exc))))
            return
        self.publish(DetailReply(ask.request, found))

    def note_selection(self, label: str) -> None:
        self.publish(Selection(label))

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        self.publish(StreamOpened(spec))
        await self.inner.open_stream(spec, self._tee(emit))

    async def close_stream(self, spec: StreamSpec) -> None:
        self.publish(StreamClosed(spec))
        await self.inner.close_stream(spec)

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        self.publish(JourneyStarted())
        report = await self.inner.journey(self._tee(emit), request)
        self.publish(JourneyShown(report))
        return report

    async def tour(self, emit: Emit) -> TourResult:
        """The tour as the presenter's TourScreen runs it (`tour_runner`: a run that fails is one ✗ step),
        shown to the room as a tour: its journey is not published on its own, so viewers get one screen."""
        self.publish(JourneyStarted())
        result = await tour_runner(lambda: self.inner.journey(self._tee(emit)))()
        self.publish(TourShown(*result))
        return result

    async def datapath(self) -> dict[str, NodeBpf]:
        return await self.inner.datapath()

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return self.inner.pcapng_path(spec)

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        return await self.inner.save_pcapng(spec, target)

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        return await self.inner.packet_detail(spec, packet)

    async def close(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
        await self.inner.close()
        if self._reading is not None:
            self._reading.cancel()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    def __getattr__(self, name: str) -> object:
        # the lab's own verbs (down) stay reachable for the presenter's palette
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

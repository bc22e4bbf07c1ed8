"""The follow hub (the presenter's events fanned out to viewers, a bounded queue each) and FollowSource."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.serialize import BundleFormatError, packet_from_json, packet_to_json
from labyrinth_tui.sources.base import (
    Emit,
    PacketBatch,
    ProgressEvent,
    SourceEvent,
    StreamSpec,
    StreamStatus,
    TopologyEvent,
)
from labyrinth_tui.sources.follow_wire import (
    DetailAsk,
    DetailReply,
    Dropped,
    FollowEvent,
    Frame,
    JourneyShown,
    JourneyStarted,
    Notice,
    Selection,
    StreamClosed,
    StreamOpened,
    TourShown,
    encode,
    encode_request,
    read_encoded,
    read_frame,
    read_request,
)

SOFT_LIMIT = 1 << 20  # bytes waiting for one viewer before its packet batches are dropped (counted)
HARD_LIMIT = 4 << 20  # bytes waiting before the viewer itself is dropped: it stopped reading
KEEP_PER_STREAM = 5_000  # packets a late joiner gets of each open stream
SNAPSHOT_BATCH = 1_000


class FollowRefused(Exception):
    """A viewer asked for something only the presenter may do."""

    def __init__(self, what: str) -> None:
        super().__init__(f"follow mode: {what} is the presenter's to do")
        self.reason = str(self)


@dataclass
class _Stream:
    status: StreamStatus | None = None
    packets: deque[PacketSummary] = field(default_factory=lambda: deque(maxlen=KEEP_PER_STREAM))


@dataclass
class _Viewer:
    number: int
    writer: asyncio.StreamWriter
    dropped: dict[StreamSpec, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)  # hub request → the viewer's own request id


class FollowHub:
    """Runs in the serve process. The presenter writes, the hub never waits on a viewer: each viewer's
    socket buffer is its queue; past SOFT_LIMIT its packet batches are counted instead of sent (it is
    told how many), past HARD_LIMIT it is dropped (`on_drop`). The presenter's memory and frames are
    therefore independent of the slowest viewer; the hub's own is at most HARD_LIMIT per viewer plus
    KEEP_PER_STREAM packets per open stream."""

    def __init__(
        self,
        soft_limit: int = SOFT_LIMIT,
        hard_limit: int = HARD_LIMIT,
        on_drop: Callable[[int, str], None] | None = None,
    ) -> None:
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.on_drop = on_drop
        self.viewers: dict[int, _Viewer] = {}
        self.presenter: asyncio.StreamWriter | None = None
        self.topology: TopologyEvent | None = None
        self.progress: dict[tuple[str, str], ProgressEvent] = {}
        self.streams: dict[StreamSpec, _Stream] = {}
        self.shown: JourneyShown | TourShown | None = None  # the last journey or tour, for late joiners
        self.selection = ""
        self._asks = itertools.count(1)
        self._pending: dict[int, int] = {}  # hub request → viewer number

    # the presenter's side
    async def serve_presenter(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.presenter = writer
        self.publish(Notice("the presenter is here"))
        try:
            while (got := await read_encoded(reader)) is not None:
                frame, data = got
                if isinstance(frame, DetailReply):
                    self._reply(frame)
                elif not isinstance(frame, DetailAsk):
                    self.publish(frame, data)
        finally:
            self.presenter = None
            writer.close()
            self.publish(Notice("the presenter left: what was shown stays until they are back"))

    def publish(self, frame: SourceEvent | FollowEvent, data: bytes = b"") -> None:
        """To every viewer, as the same bytes (`data`: the frame as the presenter encoded it)."""
        self._remember(frame)
        data = data or encode(frame)
        for viewer in list(self.viewers.values()):
            self._send(viewer, frame, data)

    def _remember(self, frame: SourceEvent | FollowEvent) -> None:
        if isinstance(frame, TopologyEvent):
            self.topology = frame
        elif isinstance(frame, ProgressEvent):
            self.progress[frame.step.key] = frame
        elif isinstance(frame, StreamOpened):
            self.streams.setdefault(frame.spec, _Stream())
        elif isinstance(frame, StreamClosed):
            self.streams.pop(frame.spec, None)
        elif isinstance(frame, StreamStatus) and frame.spec in self.streams:
            self.streams[frame.spec].status = frame
        elif isinstance(frame, PacketBatch) and frame.spec in self.streams:
            self.streams[frame.spec].packets.extend(frame.packets)
        elif isinstance(frame, JourneyShown | TourShown):
            self.shown = frame
        elif isinstance(frame, Selection):
            self.selection = frame.label

    def _send(self, viewer: _Viewer, frame: Frame, data: bytes) -> None:
        waiting = viewer.writer.transport.get_write_buffer_size()
        if waiting > self.hard_limit:
            self.drop(viewer.number, "your connection fell too far behind the presenter")
            return
        if isinstance(frame, PacketBatch) and waiting > self.soft_limit:
            viewer.dropped[frame.spec] = viewer.dropped.get(frame.spec, 0) + len(frame.packets)
            return
        if viewer.dropped and waiting <= self.soft_limit:
            for spec, count in viewer.dropped.items():
                viewer.writer.write(encode(Dropped(spec, count)))
            viewer.dropped.clear()
        viewer.writer.write(data)

    def drop(self, number: int, reason: str) -> None:
        viewer = self.viewers.pop(number, None)
        if viewer is None:
            return
        viewer.writer.transport.abort()
        if self.on_drop is not None:
            self.on_drop(number, reason)

    # the viewers' side
    async def serve_viewer(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Catch the viewer up (what is shown now), then stream; its requests are JSON, read-only."""
        viewer = _Viewer(number, writer)
        for frame in self._snapshot():
            writer.write(encode(frame))
        self.viewers[number] = viewer
        try:
            while (request := await read_request(reader)) is not None:
                self._ask(viewer, request)
        except (ValueError, KeyError, TypeError, ConnectionError, BundleFormatError):
            pass  # a viewer process that speaks nonsense is simply no longer heard
        finally:
            self.viewers.pop(number, None)
            writer.close()

    def _snapshot(self) -> list[Frame]:
        frames: list[Frame] = []
        if self.topology is not None:
            frames.append(self.topology)
        frames.extend(self.progress.values())
        for spec, stream in self.streams.items():
            frames.append(StreamOpened(spec))
            if stream.status is not None:
                frames.append(stream.status)
            kept = list(stream.packets)
            frames.extend(
                PacketBatch(spec, tuple(kept[i : i + SNAPSHOT_BATCH]))
                for i in range(0, len(kept), SNAPSHOT_BATCH)
            )
        if self.shown is not None:
            frames.append(self.shown)
        if self.selection:
            frames.append(Selection(self.selection))
        if self.presenter is None:
            frames.append(Notice("waiting for the presenter"))
        return frames

    def _ask(self, viewer: _Viewer, request: dict[str, object]) -> None:
        """A packet's dissection is the one thing a viewer may ask for; one at a time per viewer."""
        spec_fields, own, packet_fields = request["spec"], request["detail"], request["packet"]
        if not (isinstance(spec_fields, list) and isinstance(own, int) and isinstance(packet_fields, dict)):
            raise TypeError("a detail request is {detail: int, spec: [...], packet: {...}}")
        if len(spec_fields) != 3:
            raise TypeError("a detail request's spec is [node, interface, filter]")
        node, interface, capture_filter = (str(part) for part in spec_fields)
        spec = StreamSpec(node, interface, capture_filter)
        packet = packet_from_json(packet_fields)
        reason = ""
        presenter = self.presenter
        if presenter is None:
            reason = "the presenter is not here"
        elif viewer.asks:
            reason = "one dissection at a time"
        elif spec not in self.streams:  # only what the room is shown: never a name the source would look up
            reason = "not a stream the presenter shows"
        if reason or presenter is None:
            viewer.writer.write(encode(DetailReply(own, None, reason)))
            return
        ask = next(self._asks)
        viewer.asks[ask] = own
        self._pending[ask] = viewer.number
        presenter.write(encode(DetailAsk(ask, spec, packet)))

    def _reply(self, reply: DetailReply) -> None:
        viewer = self.viewers.get(self._pending.pop(reply.request, -1))
        if viewer is None:
            return
        own = viewer.asks.pop(reply.request)
        viewer.writer.write(encode(DetailReply(own, reply.dissection, reply.error)))


Deliver = Callable[[SourceEvent | FollowEvent], None]


class FollowSource:
    """What a viewer's app consumes: the hub's stream on an inherited socket. It cannot act on the
    cluster: capture, journey and export are refused here, and the hub has no way to ask for them."""

    name = "follow"

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._replies: dict[int, asyncio.Future[DetailReply]] = {}
        self._requests = itertools.count(1)

    async def follow(self, deliver: Deliver) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)
        while (frame := await read_frame(reader)) is not None:
            if isinstance(frame, DetailReply):
                waiting = self._replies.pop(frame.request, None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(frame)
            elif not isinstance(frame, DetailAsk):
                deliver(frame)
        deliver(Notice("the server closed the connection"))

    async def start(self, emit: Emit) -> None:
        def only_source_events(event: SourceEvent | FollowEvent) -> None:
            if isinstance(event, ProgressEvent | TopologyEvent | StreamStatus | PacketBatch):
                emit(event)

        await self.follow(only_source_events)

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        raise FollowRefused("opening a capture")

    async def close_stream(self, spec: StreamSpec) -> None:
        raise FollowRefused("closing a capture")

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        raise FollowRefused("running the journey")

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        raise FollowRefused("exporting to the server's disk")

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return None

    async def datapath(self) -> dict[str, NodeBpf]:
        return {}  # a viewer sees the presenter's screens, not its nodes

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        if self._writer is None:
            return None
        request = next(self._requests)
        waiting: asyncio.Future[DetailReply] = asyncio.get_running_loop().create_future()
        self._replies[request] = waiting
        body = {"detail": request, "spec": [spec.node, spec.interface, spec.capture_filter]}
        self._writer.write(encode_request({**body, "packet": packet_to_json(packet)}))
        reply = await asyncio.wait_for(waiting, timeout=30)
        if reply.error:
            raise RuntimeError(reply.error)
        return reply.dissection

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()


__all__ = ["FollowHub", "FollowRefused", "FollowSource", "JourneyStarted"]

"""The follow hub between the presenter's app and the viewers: coalesced batches, same bytes, bounded."""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import Callable
from pathlib import Path

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.serialize import packet_to_json
from labyrinth_tui.sources.base import Emit, PacketBatch, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.follow import FollowHub, FollowSource
from labyrinth_tui.sources.follow_publish import PublishingSource
from labyrinth_tui.sources.follow_wire import (
    HEADER,
    MAX_REQUEST,
    DetailReply,
    FollowEvent,
    StreamOpened,
    encode_request,
    read_frame,
)
from tests.fakes.packets import CLIENT_LXC, CLIENT_NODE
from tests.fakes.packets import ack as packet

SPEC = StreamSpec(CLIENT_NODE, CLIENT_LXC)


class Burst:
    """A source whose stream is 20 batches of 50 packets, 10 ms apart, then the end of the recording."""

    name = "burst"

    async def start(self, emit: Emit) -> None:
        return None

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        emit(StreamStatus(spec, StreamState.CAPTURING))
        for batch in range(20):
            emit(PacketBatch(spec, tuple(packet(batch * 50 + i + 1) for i in range(50))))
            await asyncio.sleep(0.01)  # why: paced like a live source, so batches cross merge windows
        emit(StreamStatus(spec, StreamState.STOPPED, "end of recording"))

    async def close_stream(self, spec: StreamSpec) -> None:
        return None

    async def journey(self, emit: Emit) -> JourneyReport:
        raise NotImplementedError

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return None

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        return None

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        return None

    async def close(self) -> None:
        return None


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)  # why: polling a condition the hub's tasks make true
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_viewer_gets_the_presenters_stream_in_a_few_batches_in_order() -> None:
    hub = FollowHub()
    presenter_end, hub_from_presenter = socket.socketpair()
    viewer_end, hub_from_viewer = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=hub_from_presenter)
    serving = asyncio.create_task(hub.serve_presenter(reader, writer))
    v_reader, v_writer = await asyncio.open_unix_connection(sock=hub_from_viewer)
    viewing = asyncio.create_task(hub.serve_viewer(1, v_reader, v_writer))
    seen: list[object] = []
    follow = asyncio.create_task(FollowSource(viewer_end).follow(seen.append))
    publishing = PublishingSource(Burst(), presenter_end, coalesce=0.5)
    own: list[object] = []
    await publishing.start(own.append)
    await publishing.open_stream(SPEC, own.append)

    def ended() -> bool:
        return any(isinstance(e, StreamStatus) and e.state is StreamState.STOPPED for e in seen)

    await until(ended, "the end of the stream on the viewer")
    batches = [e for e in seen if isinstance(e, PacketBatch)]
    numbers = [p.number for b in batches for p in b.packets]
    # the presenter's own app got all twenty batches as they came; the room got them merged
    assert len([e for e in own if isinstance(e, PacketBatch)]) == 20
    assert numbers == list(range(1, 1001))
    assert len(batches) <= 2
    kinds = [type(e).__name__ for e in seen if not isinstance(e, FollowEvent) or isinstance(e, StreamOpened)]
    assert kinds[0] == "StreamOpened" and kinds[-1] == "StreamStatus"
    # a late joiner is caught up from what the hub kept of the open stream
    late_end, hub_from_late = socket.socketpair()
    l_reader, l_writer = await asyncio.open_unix_connection(sock=hub_from_late)
    late_viewing = asyncio.create_task(hub.serve_viewer(2, l_reader, l_writer))
    late: list[object] = []
    late_follow = asyncio.create_task(FollowSource(late_end).follow(late.append))
    await until(lambda: sum(len(e.packets) for e in late if isinstance(e, PacketBatch)) == 1000, "catch-up")
    assert [p.number for e in late if isinstance(e, PacketBatch) for p in e.packets] == numbers
    await publishing.close()
    for task in (serving, viewing, follow, late_viewing, late_follow):
        task.cancel()


class Opens:
    """A file made by unpickling: the proof a viewer's bytes were unpickled by the server."""

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(PROOF), "w"))


PROOF = Path("/nonexistent")


async def test_a_viewers_requests_are_json_bounded_and_only_about_what_is_shown(tmp_path: Path) -> None:
    global PROOF
    PROOF = tmp_path / "unpickled"
    hub = FollowHub()
    presenter_end, hub_from_presenter = socket.socketpair()
    reader, writer = await asyncio.open_unix_connection(sock=hub_from_presenter)
    serving = asyncio.create_task(hub.serve_presenter(reader, writer))
    await until(lambda: hub.presenter is not None, "the presenter")

    kept: list[asyncio.StreamWriter] = []

    async def viewer(number: int, raw: bytes) -> tuple[asyncio.StreamReader, asyncio.Task[None]]:
        end, hub_end = socket.socketpair()
        v_reader, v_writer = await asyncio.open_unix_connection(sock=hub_end)
        task = asyncio.create_task(hub.serve_viewer(number, v_reader, v_writer))
        await until(lambda: number in hub.viewers, "the viewer")
        end_reader, end_writer = await asyncio.open_unix_connection(sock=end)
        end_writer.write(raw)
        kept.append(end_writer)  # a StreamWriter closes its socket when collected
        return end_reader, task

    # a pickle that would open a file: the hub reads JSON only, and hears that viewer no more
    body = pickle.dumps(Opens())
    _, pickled = await viewer(1, HEADER.pack(len(body)) + body)
    await until(pickled.done, "the hub to stop hearing the pickling viewer")
    assert not PROOF.exists() and 1 not in hub.viewers
    # a request past MAX_REQUEST is not buffered: the viewer is no longer heard
    _, huge = await viewer(2, HEADER.pack(MAX_REQUEST + 1) + b"{")
    await until(huge.done, "the hub to stop hearing the oversized viewer")
    # a dissection of a stream the presenter does not show is refused, with a reason
    ask = {"detail": 7, "spec": ["node-1", "../../etc/passwd", ""], "packet": packet_to_json(packet(1))}
    replies, _ = await viewer(3, encode_request(ask))
    reply = await asyncio.wait_for(read_frame(replies), 10)
    while reply is not None and not isinstance(reply, DetailReply):
        reply = await asyncio.wait_for(read_frame(replies), 10)
    assert isinstance(reply, DetailReply), "the hub hung up instead of refusing"
    assert (
        reply.request == 7 and reply.dissection is None and "not a stream the presenter shows" in reply.error
    )
    presenter_end.close()
    serving.cancel()

"""CaptureStreams: live tshark streams on nodes over SSH — checked, proven ready, batched, recorded, ended."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.nodes.commands import (
    UnsafeArgument,
    ended_with_reader,
    new_marker,
    validate_capture_filter,
    validate_interface,
    validate_node_name,
)
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession, RemoteStream
from labyrinth_tui.probes.capture import (
    CaptureCheckFailed,
    Relay,
    capture_argv,
    interpret_stream_setup,
    stream_setup_script,
)
from labyrinth_tui.probes.capture_format import DEFAULT_FORMAT, LIST_FORMAT
from labyrinth_tui.probes.capture_parse import GATHER_BELOW, GATHER_PAUSE, LineAssembler, SummaryParser
from labyrinth_tui.probes.capture_ready import Canary, CanaryNotSent, canary_filter
from labyrinth_tui.probes.capture_swap import RESTART_AFTER
from labyrinth_tui.sources.base import (
    Emit,
    PacketBatch,
    StreamDrops,
    StreamLag,
    StreamSpec,
    StreamState,
    StreamStatus,
)
from labyrinth_tui.sources.capture_canaries import delivered_on_nodes, send_canaries
from labyrinth_tui.sources.capture_files import fetch_recording
from labyrinth_tui.sources.capture_runs import Lines, ended_why
from labyrinth_tui.sources.live_stream import LiveStream, StreamFailed, Subscriber, dissect_live, save_live

FLUSH_EVERY: Final = 0.05  # at most one PacketBatch per stream per 50 ms
RECORDED_NOTE: Final = "recording; tshark starting"
DELIVERY_LIMIT: Final = 15.0  # s for a delivery canary to come back (tshark starting on a busy node)
LIVE: Final = (StreamState.STARTING, StreamState.CAPTURING)


class CaptureStreams:
    """Live streams on `sessions` (node name → session). `await open(spec, emit)` runs until closed."""

    def __init__(
        self,
        sessions: Mapping[str, NodeSession],
        *,
        privilege: Sequence[str] | Callable[[str], Sequence[str]] = (),
        restart_after: int = RESTART_AFTER,
        ready_timeout: float = 8.0,
        tag: str = "",
        buffer_kb: int = 32 * 1024,
    ) -> None:
        self.sessions = sessions
        # a lab's prefix in its capture folders' names: `lab down` sweeps only its own lab's orphans
        self.tag = tag
        # e.g. ("sudo", "-n") for a non-root login; or node name → its prefix
        self.privilege = privilege
        self.restart_after = restart_after
        self.ready_timeout = ready_timeout
        self.buffer_kb = buffer_kb  # tcpdump's kernel buffer (tests make the kernel drop with 1 KiB)
        self._streams: dict[StreamSpec, LiveStream] = {}
        self._recordings: dict[StreamSpec, Path] = {}
        self._runners: set[asyncio.Task[None]] = set()  # each stream's capture, whoever reads it

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        """The stream's recording (after it closed, when opened with record_dir): frame N = packet N."""
        return self._recordings.get(spec)

    def is_live(self, spec: StreamSpec) -> bool:
        return spec in self._streams

    def is_watched(self, spec: StreamSpec) -> bool:
        """Live with someone reading it (not only kept warm after its last reader left)."""
        stream = self._streams.get(spec)
        return stream is not None and bool(stream.subscribers)

    async def live_dissection(self, spec: StreamSpec, number: int) -> Dissection | None:
        """Packet `number` of a live stream, dissected on its node (`live_stream.dissect_live`); None when
        the stream is not live or no longer keeps the packet."""
        stream = self._streams.get(spec)
        return None if stream is None else await dissect_live(stream, number)

    async def save_live(self, spec: StreamSpec, target: Path) -> str | None:
        """A live stream's recording so far as pcapng at `target` (`live_stream.save_live`); None when the
        stream is not live."""
        stream = self._streams.get(spec)
        return None if stream is None else await save_live(stream, target)

    async def open(
        self, spec: StreamSpec, emit: Emit, *, ring_capacity: int = 100_000, record_dir: Path | None = None
    ) -> None:
        """Capture on spec until `close(spec, emit)`: StreamStatus changes and PacketBatches through `emit`.

        A spec already open is not started again: `emit` joins the running capture (it gets the
        stream's current status at once, then every packet from now on) and the capture stops when the
        last of its openers has closed. `ring_capacity` and `record_dir` are the first opener's.
        """
        while (running := self._streams.get(spec)) is not None and running.closing.is_set():
            await running.done.wait()  # stopping: let it go, then start afresh
        if running is not None:
            await self._subscribed(running, Subscriber(emit), joined=True)
            return
        try:
            validate_node_name(spec.node)
            validate_interface(spec.interface)
            validate_capture_filter(spec.capture_filter)
        except UnsafeArgument as exc:
            emit(StreamStatus(spec, StreamState.FAILED, str(exc)))
            return
        session = self.sessions.get(spec.node)
        if session is None:
            emit(StreamStatus(spec, StreamState.FAILED, f"no node named {spec.node!r}"))
            return
        workdir = f"/tmp/labyrinth-cap-{self.tag + '-' if self.tag else ''}{secrets.token_hex(6)}"
        privilege = tuple(self.privilege(spec.node) if callable(self.privilege) else self.privilege)
        first = Subscriber(emit)
        stream = LiveStream(spec, session, [first], max(1, ring_capacity), workdir, record_dir, privilege)
        self._streams[spec] = stream
        self._recordings.pop(spec, None)
        # the capture runs in a task of its own: it outlives this opener when others still read it
        runner = asyncio.create_task(self._capture(stream), name=f"capture {spec.key}")
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)
        await self._subscribed(stream, first, joined=False)

    async def _subscribed(self, stream: LiveStream, subscriber: Subscriber, *, joined: bool) -> None:
        """Until `subscriber` has left (closed, or the stream ended); a cancelled opener leaves."""
        if joined:
            if stream.idle is not None:  # kept warm for this: it reads on
                stream.idle.cancel()
                stream.idle = None
            stream.subscribers.append(subscriber)
            if stream.status is not None:
                subscriber.emit(stream.status)
        try:
            await subscriber.left.wait()
        except asyncio.CancelledError:
            # shielded: a cancelled caller must still leave nothing behind on the node
            await asyncio.shield(self._leave(stream, subscriber))
            raise

    async def _leave(self, stream: LiveStream, subscriber: Subscriber, keep_for: float = 0.0) -> None:
        """`subscriber` gets no more events; the last one out stops the capture and waits for its end,
        unless `keep_for` > 0: then the capture runs on unread for that long, for an opener to come."""
        last = subscriber in stream.subscribers and len(stream.subscribers) == 1
        if subscriber in stream.subscribers and (not last or keep_for > 0):
            stream.subscribers.remove(subscriber)  # the capture goes on for the others, or kept warm
            subscriber.emit(StreamStatus(stream.spec, StreamState.STOPPED, "closed"))
            subscriber.left.set()
            if last:
                stream.idle = asyncio.get_running_loop().call_later(keep_for, stream.closing.set)
            return
        stream.closing.set()  # the last one out: it hears the stream's own end
        await stream.done.wait()

    async def _capture(self, stream: LiveStream) -> None:
        """The capture from its filter check to its end; its last status to everyone still subscribed."""
        spec = stream.spec
        reason = ""
        stream.emit(StreamStatus(spec, StreamState.STARTING, "checking the capture filter"))
        try:
            await self._run(stream)
        except (StreamFailed, CaptureCheckFailed, NodeError) as exc:
            reason = exc.reason
        except Exception as exc:  # a bug of ours must show on the stream, not vanish with its task
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            await asyncio.shield(self._finish(stream))
        stream.state = StreamState.FAILED if reason else StreamState.STOPPED
        stream.emit(StreamStatus(spec, stream.state, reason or "closed"))
        for subscriber in stream.subscribers:
            subscriber.left.set()
        stream.subscribers.clear()

    async def close(self, spec: StreamSpec, emit: Emit | None = None, *, keep_for: float = 0.0) -> None:
        """`emit` leaves the stream (the capture stops when it was the last, or `keep_for` s later if no
        one opens it meanwhile); without `emit` the stream stops for all. Returns once `emit` gets
        nothing more (and, when stopped, nothing runs on the node)."""
        stream = self._streams.get(spec)
        if stream is None:
            return
        if emit is None:
            stream.closing.set()
            await stream.done.wait()
            return
        subscriber = next((s for s in stream.subscribers if s.emit == emit), None)
        if subscriber is not None:
            await self._leave(stream, subscriber, keep_for)

    async def close_all(self) -> None:
        """Stop every stream without fetching recordings: this ends the app or the lab, nobody reads them."""
        for stream in self._streams.values():
            stream.keep_recording = False
        await asyncio.gather(*(self.close(spec) for spec in list(self._streams)), return_exceptions=True)

    # --- one stream -----------------------------------------------------------------------------
    async def _run(self, stream: LiveStream) -> None:
        spec, session = stream.spec, stream.session
        marker = new_marker()
        script = stream_setup_script(marker, spec.interface, spec.capture_filter, stream.workdir)
        setup = await session.run(stream.cmd(["sh", "-s"]), input=script, timeout=30, check=False)
        failed = interpret_stream_setup(
            spec.interface, spec.capture_filter, marker, setup.exit_status, setup.stdout, setup.stderr
        )
        if failed:
            raise StreamFailed(failed)
        if stream.closing.is_set():
            return
        flusher = asyncio.create_task(self._flush_loop(stream))
        try:
            lines = self._lines(stream)
            await self._start(stream, lines)
            # the relay sends the canary itself once tcpdump listens; this sender steps in if it must
            sender = self._background(
                stream,
                send_canaries(
                    session, stream.privilege, spec.interface, lines, stream.closing, self.ready_timeout
                ),
            )
            await self._until_ready(stream, lines, sender)
            stream.state = StreamState.CAPTURING
            stream.emit(StreamStatus(spec, StreamState.CAPTURING))
            await self._follow(stream, lines)
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            self._flush(stream)

    async def _follow(self, stream: LiveStream, lines: Lines) -> None:
        """Until close, or the capture's end by itself (tshark swaps happen on the node meanwhile)."""
        closing = asyncio.ensure_future(stream.closing.wait())
        ended = asyncio.ensure_future(lines.ended.wait())
        try:
            await asyncio.wait({closing, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            ended.cancel()
        if not stream.closing.is_set():
            raise StreamFailed(lines.end_reason or "tshark ended")

    def _lines(self, stream: LiveStream) -> Lines:
        """The stream's reader of the relay's lines, with a fresh canary of its own."""
        spec = stream.spec

        def note(reason: str) -> None:
            stream.emit(StreamStatus(spec, StreamState.CAPTURING, reason))

        def behind(packets: int, seconds: float) -> None:
            stream.emit(StreamLag(spec, packets, seconds))

        def kernel_dropped(packets: int) -> None:
            stream.emit(StreamDrops(spec, packets))

        fmt = DEFAULT_FORMAT if spec.journey_fields else LIST_FORMAT
        parser = SummaryParser(spec.node, spec.interface, fmt)
        prefix = f"{stream.workdir}/run"
        lines = Lines(
            prefix, stream.record_dir is not None, Canary.new(), parser, note, behind, kernel_dropped
        )
        stream.lines = lines
        return lines

    async def _start(self, stream: LiveStream, lines: Lines) -> None:
        spec = stream.spec
        fmt = DEFAULT_FORMAT if spec.journey_fields else LIST_FORMAT
        argv = capture_argv(
            spec.interface,
            canary_filter(spec.capture_filter),
            buffer_kb=self.buffer_kb,
            fmt=fmt,
            relay=Relay(lines.prefix, self.restart_after, lines.keep, lines.canary.frame()),
        )
        wrapped = stream.cmd(ended_with_reader(argv, workdir=stream.workdir))
        stream.remote = stream.session.stream(wrapped, privilege=stream.privilege)
        await stream.remote.start()
        self._background(stream, self._read(stream, lines, stream.remote))

    @staticmethod
    def _background(stream: LiveStream, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(job)
        stream.background.add(task)
        task.add_done_callback(stream.background.discard)
        return task

    async def _until_ready(self, stream: LiveStream, lines: Lines, sender: asyncio.Task[None]) -> None:
        """Until the stream has shown its canary: only then does it capture. Once the relay has recorded
        it, the stream says so (STARTING, `recorded`): every packet from then on will be shown."""
        waits = [asyncio.ensure_future(e.wait()) for e in (lines.ready, lines.ended, stream.closing)]
        recorded = asyncio.ensure_future(lines.recorded.wait())
        try:
            done, pending = await asyncio.wait(
                {sender, recorded, *waits}, return_when=asyncio.FIRST_COMPLETED
            )
            if done == {recorded}:  # recorded, not yet shown: say so, then wait on for tshark
                if not lines.ready.is_set():
                    stream.emit(StreamStatus(stream.spec, StreamState.STARTING, RECORDED_NOTE, recorded=True))
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if lines.ready.is_set() or stream.closing.is_set():
                return
            if lines.ended.is_set():
                raise StreamFailed(lines.end_reason or "tshark ended before it was ready")
            try:
                sender.result()
            except CanaryNotSent as exc:
                raise StreamFailed(exc.reason) from None
            raise StreamFailed(
                f"no packets visible on {stream.spec.interface}: tshark saw none of its canaries"
            )
        finally:
            for waiter in (*waits, recorded):
                waiter.cancel()

    async def delivered(self, specs: Sequence[StreamSpec], timeout: float = DELIVERY_LIMIT) -> list[bool]:
        """For each spec, True once its stream has emitted every packet its node recorded on the
        interface until now: a fresh canary sent there came back through tshark (one round trip per
        node sends them; see capture_canaries.delivered). False when not live, ended, or after `timeout`."""
        live = [
            stream
            for spec in specs
            if (stream := self._streams.get(spec)) is not None
            and stream.lines is not None
            and stream.state in LIVE
        ]
        # what a canary followed is pending in its stream once it is shown: out now, not in 50 ms
        shown = await delivered_on_nodes(live, timeout, self._flush)
        return [shown.get(spec, False) for spec in specs]

    async def _read(self, stream: LiveStream, lines: Lines, remote: RemoteStream) -> None:
        """The relay's stdout in chunks → packets (and tshark swaps) for the stream."""
        assembler = LineAssembler()
        try:
            while chunk := await remote.read():
                lines.take(stream.pending, assembler.feed(chunk))
                if len(chunk) < GATHER_BELOW:  # tshark's 4 KiB writes: let more gather (capture_parse.py)
                    await asyncio.sleep(GATHER_PAUSE)
            if not lines.stopping:  # when we stop it, the last line may be cut anywhere: drop it
                lines.take(stream.pending, assembler.flush())
            if not lines.stopping:
                lines.end_reason = ended_why(stream.spec, remote.exit_status, remote.stderr_tail)
        except NodeError as exc:
            lines.end_reason = exc.reason
        finally:
            lines.ended.set()

    async def _flush_loop(self, stream: LiveStream) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self._flush(stream)

    def _flush(self, stream: LiveStream) -> None:
        if not stream.pending:
            return
        packets, stream.pending = stream.pending, []
        if len(packets) > stream.ring_capacity:  # a ring would evict them at once: do not ship them
            stream.dropped += len(packets) - stream.ring_capacity
            packets = packets[-stream.ring_capacity :]
        stream.emit(PacketBatch(stream.spec, tuple(packets), stream.dropped))

    async def _stop(self, stream: LiveStream) -> None:
        if stream.remote is None or stream.lines is None or stream.lines.stopping:
            return
        stream.lines.stopping = True
        await stream.remote.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.lines.ended.wait(), 10)

    async def _finish(self, stream: LiveStream) -> None:
        """Stop the capture, fetch the recording if asked, remove our files on the node."""
        if stream.idle is not None:
            stream.idle.cancel()
        try:
            await self._stop(stream)
            # the reader has ended with the capture; canary senders end within a round
            await asyncio.gather(*stream.background, return_exceptions=True)
            parts = stream.lines.parts()[0] if stream.lines is not None else []
            if stream.record_dir is not None and parts and stream.keep_recording:
                with contextlib.suppress(NodeError, OSError, ValueError):  # ValueError: bad base64
                    self._recordings[stream.spec] = await fetch_recording(
                        stream.session, parts, stream.record_dir, stream.spec, stream.privilege
                    )
            with contextlib.suppress(NodeError):
                await stream.session.run(stream.cmd(["rm", "-rf", "--", stream.workdir]), timeout=30)
        finally:
            self._streams.pop(stream.spec, None)
            stream.done.set()

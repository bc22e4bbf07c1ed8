"""CaptureStreams: live tshark streams on nodes over SSH — checked, proven ready, batched, rotated, ended."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import (
    UnsafeArgument,
    ended_with_reader,
    pipeline,
    validate_capture_filter,
    validate_interface,
    validate_node_name,
)
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.capture import (
    CaptureCheckFailed,
    Recording,
    capture_argv,
    filter_check_argv,
    interpret_filter_check,
)
from labyrinth_tui.probes.capture_parse import LineAssembler, SummaryParser
from labyrinth_tui.probes.capture_ready import (
    Canary,
    CanaryNotSent,
    canary_filter,
    interpret_canary_send,
    is_canary,
)
from labyrinth_tui.probes.dissect import DISSECT_TIMEOUT, DissectError, frame_in, pdml_argv, pdml_layers
from labyrinth_tui.sources.base import Emit, PacketBatch, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.capture_files import fetch_recording
from labyrinth_tui.sources.capture_runs import Run, ended_why, release, take

FLUSH_EVERY: Final = 0.05  # at most one PacketBatch per stream per 50 ms
# tshark's memory grows ~0.8 KB per packet even in one pass (LAB-NOTES): 250k packets ≈ 200 MB, then
# a fresh tshark takes over. Its own `-M N` (session auto reset) does not bound it, measured reading
# a pipe: 1M packets 748 MB without; 2M packets 616 MB with -M 50000 and 1.25 GB with -M 20000.
RESTART_AFTER: Final = 250_000
# canaries go in rounds of 10, 0.1 s apart: a round ends by itself 1 s later (closing its channel does
# not stop it), so a stream that is ready never waits long for its sender
CANARY_ROUND: Final = 10


class _Failed(Exception):
    """The stream cannot go on; `reason` is for the user (tshark's or the node's own words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Stream:
    spec: StreamSpec
    session: NodeSession
    emit: Emit
    ring_capacity: int
    workdir: str
    record_dir: Path | None
    privilege: tuple[str, ...]
    segments: list[Run] = field(default_factory=list)
    pending: list[PacketSummary] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    next_number: int = 0  # stream numbers given so far (the recording's frames before the current run)
    state: StreamState = StreamState.STARTING
    dropped: int = 0  # packets never emitted because one flush carried more than ring_capacity
    background: set[asyncio.Task[None]] = field(default_factory=set)  # readers, canary senders


def _keep_deferred(stream: _Stream, run: Run) -> None:
    """Packets `run` kept back for a hand-off that will not come: those before the cut are the stream's."""
    stream.pending += [p for p in run.deferred if not is_canary(p) and (run.cut is None or p.ts < run.cut)]
    run.deferred, run.deferring = [], False


class CaptureStreams:
    """Live streams on `sessions` (node name → session). `await open(spec, emit)` runs until closed."""

    def __init__(
        self,
        sessions: Mapping[str, NodeSession],
        *,
        privilege: Sequence[str] | Callable[[str], Sequence[str]] = (),
        restart_after: int = RESTART_AFTER,
        ready_timeout: float = 8.0,
    ) -> None:
        self.sessions = sessions
        # e.g. ("sudo", "-n") for a non-root login; or node name → its prefix
        self.privilege = privilege
        self.restart_after = restart_after
        self.ready_timeout = ready_timeout
        self._streams: dict[StreamSpec, _Stream] = {}
        self._recordings: dict[StreamSpec, Path] = {}

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        """The stream's recording (after it closed, when opened with record_dir): frame N = packet N."""
        return self._recordings.get(spec)

    @property
    def open_specs(self) -> list[StreamSpec]:
        return list(self._streams)

    def is_live(self, spec: StreamSpec) -> bool:
        return spec in self._streams

    def _where(self, spec: StreamSpec, number: int) -> tuple[_Stream, Run, int] | None:
        """The live run whose file holds the stream's packet `number`, and its frame number there."""
        stream = self._streams.get(spec)
        if stream is None:
            return None
        for run in stream.segments:
            local = number - run.offset
            last = run.last if run.last is not None else run.frames
            if run.holding or run.removed or not run.first <= local <= last:
                continue
            return stream, run, local
        return None

    async def live_dissection(self, spec: StreamSpec, number: int) -> Dissection | None:
        """Packet `number` of a live stream, dissected by tshark on its node from the run's recording.

        The recording is written as packets pass (tee), so any packet the stream showed can be read:
        tshark dissects it there with everything before it in its run (TCP analysis, DNS pairs), and
        its bytes come back as one packet cut out by editcap. None when the stream is not live, or the
        packet is no longer kept on the node (a run before a restart, when nothing is recorded).
        """
        found = self._where(spec, number)
        if found is None:
            return None
        stream, run, local = found
        where = f"{spec.node}:{run.path}"
        pdml = await stream.session.run(
            self._cmd(stream, pdml_argv(run.path, local)), timeout=DISSECT_TIMEOUT, check=False
        )
        layers = pdml_layers(where, local, pdml.exit_status, pdml.stdout.encode(), pdml.stderr.encode())
        cut = pipeline(["editcap", "-r", run.path, "-", str(local)], ["base64", "-w", "0"])
        raw = await stream.session.run(self._cmd(stream, cut), timeout=DISSECT_TIMEOUT, check=False)
        try:
            frame = frame_in(base64.b64decode(raw.stdout, validate=True), 1, where)
        except (ValueError, binascii.Error, DissectError):  # DissectError: no packet in what came back
            said = raw.stderr.strip()[-200:] or f"exit {raw.exit_status}, no packet {local} in the file"
            raise DissectError(where, local, f"editcap could not cut the packet out: {said}") from None
        return Dissection(number, layers, frame)

    async def save_live(self, spec: StreamSpec, target: Path) -> str | None:
        """A live stream's recording so far, fetched from its node, as pcapng at `target`.

        Returns "" when frame N of the file is the stream's packet N; a note for the user when only
        the latest packets could be kept (a stream that is not recorded keeps its current tshark run
        only). None when the stream is not live; NodeError/OSError when the node cannot give it.
        `target` is written whole or not at all.
        """
        stream = self._streams.get(spec)
        if stream is None:
            return None
        runs = [r for r in stream.segments if not r.holding and not r.removed]
        note = ""
        if len(runs) < len([r for r in stream.segments if not r.holding]):
            runs = runs[-1:]  # the earlier runs' files are gone from the node
            if runs:
                first = runs[0].offset + runs[0].first
                note = (
                    f"packets from #{first:,} on only (frame 1 is #{first:,}): this stream keeps only "
                    "its current tshark run on the node"
                )
        parts = [(r.path, r.first, r.last if r.last is not None else r.frames) for r in runs]
        if not any(last >= first for _, first, last in parts):
            raise OSError(f"{spec.key} has recorded no packet yet")
        partial = target.with_name(target.name + ".part")
        try:
            with tempfile.TemporaryDirectory(prefix="labyrinth-save-") as tmp:
                fetched = await fetch_recording(stream.session, parts, Path(tmp), spec, stream.privilege)
                await asyncio.to_thread(shutil.copyfile, fetched, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return note

    async def open(
        self, spec: StreamSpec, emit: Emit, *, ring_capacity: int = 100_000, record_dir: Path | None = None
    ) -> None:
        """Capture on spec until `close(spec)`: StreamStatus changes and PacketBatches through `emit`."""
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
        if spec in self._streams:
            emit(StreamStatus(spec, StreamState.FAILED, f"{spec.key} is already being captured"))
            return
        workdir = f"/tmp/labyrinth-cap-{secrets.token_hex(6)}"
        privilege = tuple(self.privilege(spec.node) if callable(self.privilege) else self.privilege)
        stream = _Stream(spec, session, emit, max(1, ring_capacity), workdir, record_dir, privilege)
        self._streams[spec] = stream
        self._recordings.pop(spec, None)
        reason = ""
        emit(StreamStatus(spec, StreamState.STARTING, "checking the capture filter"))
        try:
            await self._run(stream)
        except _Failed as exc:
            reason = exc.reason
        except CaptureCheckFailed as exc:
            reason = exc.reason
        except NodeError as exc:
            reason = exc.reason
        finally:
            # shielded: a cancelled caller must still leave nothing behind on the node
            await asyncio.shield(self._finish(stream))
        if reason:
            stream.state = StreamState.FAILED
            emit(StreamStatus(spec, StreamState.FAILED, reason))
        else:
            stream.state = StreamState.STOPPED
            emit(StreamStatus(spec, StreamState.STOPPED, "closed"))

    async def close(self, spec: StreamSpec) -> None:
        """Stop one stream; returns once nothing of it runs on the node."""
        stream = self._streams.get(spec)
        if stream is None:
            return
        stream.closing.set()
        await stream.done.wait()

    async def close_all(self) -> None:
        await asyncio.gather(*(self.close(spec) for spec in list(self._streams)), return_exceptions=True)

    # --- one stream -----------------------------------------------------------------------------
    @staticmethod
    def _cmd(stream: _Stream, argv: Sequence[str]) -> list[str]:
        return [*stream.privilege, *argv]

    async def _run(self, stream: _Stream) -> None:
        spec, session = stream.spec, stream.session
        checked = await session.run(
            self._cmd(stream, filter_check_argv(spec.interface, spec.capture_filter)), timeout=30, check=False
        )
        interpret_filter_check(
            spec.interface, spec.capture_filter, checked.exit_status, checked.stdout, checked.stderr
        )
        await session.run(self._cmd(stream, ["mkdir", "-m", "700", "-p", "--", stream.workdir]), timeout=30)
        if stream.closing.is_set():
            return
        flusher = asyncio.create_task(self._flush_loop(stream))
        try:
            current = await self._start_segment(stream, 0)
            await self._until_ready(stream, current)
            stream.state = StreamState.CAPTURING
            stream.emit(StreamStatus(spec, StreamState.CAPTURING))
            await self._follow(stream, current)
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            for run in stream.segments:
                _keep_deferred(stream, run)
            self._flush(stream)

    async def _follow(self, stream: _Stream, current: Run) -> None:
        """Wait for close, the run's end, or its packet budget; hand over to a fresh tshark at the budget."""
        closing = asyncio.ensure_future(stream.closing.wait())
        try:
            while True:
                ended = asyncio.ensure_future(current.ended.wait())
                budget = asyncio.ensure_future(self._budget_spent(current))
                await asyncio.wait({closing, ended, budget}, return_when=asyncio.FIRST_COMPLETED)
                ended.cancel()
                budget.cancel()
                if closing.done():
                    return
                if current.ended.is_set():
                    raise _Failed(current.end_reason or "tshark ended")
                current = await self._rotate(stream, current)
        finally:
            closing.cancel()

    async def _budget_spent(self, segment: Run) -> None:
        while segment.parser.parsed < self.restart_after + segment.budget:
            await asyncio.sleep(FLUSH_EVERY)  # polled: the parser counts, it does not signal

    async def _rotate(self, stream: _Stream, old: Run) -> Run:
        """A fresh tshark takes over from `old` without a gap: both run until old sees new's canary."""
        spec = stream.spec
        why = f"restarting tshark after {old.parser.parsed} packets (its memory only grows)"
        stream.emit(StreamStatus(spec, StreamState.CAPTURING, why))
        try:
            new = await self._start_segment(stream, old.index + 1, previous=old)
            # its tshark is reading (warm); only then the canary that marks the cut
            await self._until_ready(stream, new, warmup=True)
            await self._until_ready(stream, new)
        except (_Failed, NodeError) as exc:
            # the running tshark is fine: keep it, drop the newcomer, try again one budget later
            failed = stream.segments[-1] if stream.segments[-1] is not old else None
            if failed is not None:
                failed.previous = None  # a canary of it still in flight must not cut old
                await self._stop_segment(stream, failed)
                stream.segments.remove(failed)
            _keep_deferred(stream, old)
            old.handoff_mac, old.cut, old.budget = None, None, old.budget + self.restart_after
            why = f"tshark restart failed ({exc.reason}); the running one goes on"
            stream.emit(StreamStatus(spec, StreamState.CAPTURING, why))
            return old
        if stream.closing.is_set():
            return old  # closing: the newcomer never counted a packet; _finish stops it
        # old's packets count up to new's canary; then new's held lines continue the stream
        if not old.handed.is_set():
            # old hands over at new's canary: on a quiet interface, give it a packet after it too
            self._background(stream, self._nudge(stream, new))
        await self._until_handed(stream, old)
        if old.last is None:  # old never reached `cut` (it ended, or it stalled before)
            await self._stop_segment(stream, old)
            _keep_deferred(stream, old)
            if old.last is None:  # (its reader may have reached the cut meanwhile)
                old.last = old.frames
            if old.end_reason:
                why = f"{old.end_reason} during a restart: packets just before it may be missing"
                stream.emit(StreamStatus(spec, StreamState.CAPTURING, why))
        else:  # old counts no more: new's held packets go out now, old stops meanwhile
            self._background(stream, self._stop_segment(stream, old))
        stream.next_number += old.last - old.first + 1
        release(new, stream.pending, stream.next_number)
        stream.emit(StreamStatus(spec, StreamState.CAPTURING, ""))
        return new

    async def _until_handed(self, stream: _Stream, old: Run) -> None:
        """Wait for old to reach the cut, for as long as it keeps reading (a loaded node lags)."""
        events = (old.handed, old.ended, stream.closing)
        frames = -1
        while not any(e.is_set() for e in events) and old.frames != frames:
            frames = old.frames
            waits = [asyncio.ensure_future(e.wait()) for e in events]
            await asyncio.wait(waits, timeout=self.ready_timeout / 4, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()

    async def _start_segment(self, stream: _Stream, index: int, previous: Run | None = None) -> Run:
        spec = stream.spec
        canary = Canary.new()
        path = f"{stream.workdir}/run-{index:04d}.pcap"
        segment = Run(index, path, canary, SummaryParser(spec.node, spec.interface))
        segment.holding = previous is not None
        segment.previous = previous
        if previous is not None:
            previous.handoff_mac = canary.src_mac
            segment.warmup = Canary.new()
        else:
            segment.warm.set()  # nothing to hand over from: its first canary is its start
        argv = capture_argv(
            spec.interface, canary_filter(spec.capture_filter), recording=Recording(path), buffer_mb=32
        )
        wrapped = self._cmd(stream, ended_with_reader(argv, workdir=stream.workdir))
        segment.stream = stream.session.stream(wrapped, privilege=stream.privilege)
        stream.segments.append(segment)
        await segment.stream.start()
        self._background(stream, self._read(stream, segment))
        return segment

    @staticmethod
    def _background(stream: _Stream, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(job)
        stream.background.add(task)
        task.add_done_callback(stream.background.discard)
        return task

    async def _until_ready(self, stream: _Stream, segment: Run, *, warmup: bool = False) -> None:
        """Send canaries on the interface until this run has seen one: only then does it capture.

        warmup: the hand-off run's warm-up canary instead (its tshark is reading; no cut yet).
        """
        canary, seen = (segment.warmup, segment.warm) if warmup else (segment.canary, segment.ready)
        assert canary is not None
        sender = self._background(stream, self._send_canaries(stream, segment, canary, seen))
        waits = [asyncio.ensure_future(e.wait()) for e in (seen, segment.ended, stream.closing)]
        try:
            await asyncio.wait({sender, *waits}, return_when=asyncio.FIRST_COMPLETED)
            if seen.is_set() or stream.closing.is_set():
                return
            if segment.ended.is_set():
                raise _Failed(segment.end_reason or "tshark ended before it was ready")
            try:
                sender.result()
            except CanaryNotSent as exc:
                raise _Failed(exc.reason) from None
            raise _Failed(f"no packets visible on {stream.spec.interface}: tshark saw none of its canaries")
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _send_canaries(
        self, stream: _Stream, segment: Run, canary: Canary, seen: asyncio.Event
    ) -> None:
        """Rounds of canaries until the run has `seen` one (or ready_timeout); then 1 s for the last."""
        interface = stream.spec.interface
        for _ in range(max(1, round(self.ready_timeout / (CANARY_ROUND * 0.1)))):
            if seen.is_set() or segment.ended.is_set() or stream.closing.is_set():
                return
            argv = self._cmd(stream, canary.send_argv(interface, count=CANARY_ROUND, interval=0.1))
            sent = await stream.session.run(argv, timeout=30, check=False)
            interpret_canary_send(interface, sent.exit_status, sent.stderr)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.wait(), 1.0)

    async def _nudge(self, stream: _Stream, run: Run) -> None:
        argv = self._cmd(stream, run.canary.send_argv(stream.spec.interface, count=3, interval=0.05))
        with contextlib.suppress(NodeError):
            await stream.session.run(argv, timeout=30, check=False)

    async def _read(self, stream: _Stream, segment: Run) -> None:
        """tshark's stdout in chunks → packets (or held lines while a hand-off is under way)."""
        assert segment.stream is not None
        lines = LineAssembler()
        try:
            while chunk := await segment.stream.read():
                take(segment, stream.pending, lines.feed(chunk))
            take(segment, stream.pending, lines.flush())
            if not segment.stopping:
                status, stderr = segment.stream.exit_status, segment.stream.stderr_tail
                segment.end_reason = ended_why(stream.spec, status, stderr)
        except NodeError as exc:
            segment.end_reason = exc.reason
        finally:
            segment.ended.set()

    async def _flush_loop(self, stream: _Stream) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self._flush(stream)

    def _flush(self, stream: _Stream) -> None:
        if not stream.pending:
            return
        packets, stream.pending = stream.pending, []
        if len(packets) > stream.ring_capacity:  # a ring would evict them at once: do not ship them
            stream.dropped += len(packets) - stream.ring_capacity
            packets = packets[-stream.ring_capacity :]
        stream.emit(PacketBatch(stream.spec, tuple(packets)))

    async def _stop_segment(self, stream: _Stream, segment: Run) -> None:
        if segment.stream is None or segment.stopping:
            return  # never started, or being stopped already (a hand-off stops old in the background)
        segment.stopping = True
        segment.removed = stream.record_dir is None  # its file goes: nothing may read it from now on
        await segment.stream.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(segment.ended.wait(), 10)
        if segment.removed:
            with contextlib.suppress(NodeError):  # bounded disk: a run nobody records is deleted at once
                await stream.session.run(
                    self._cmd(stream, ["rm", "-f", "--", segment.path]), timeout=30, check=False
                )

    async def _finish(self, stream: _Stream) -> None:
        """Stop every run, fetch the recording if asked, remove our files on the node."""
        try:
            await asyncio.gather(*(self._stop_segment(stream, s) for s in stream.segments))
            # readers have ended with their runs; canary senders end within a round
            await asyncio.gather(*stream.background, return_exceptions=True)
            for run in stream.segments:
                if run.last is None and not run.holding:
                    run.last = run.frames  # it ran to the end: all it captured counts
            if stream.record_dir is not None and stream.segments:
                with contextlib.suppress(NodeError, OSError, ValueError):  # ValueError: bad base64
                    parts = [(s.path, s.first, s.last or 0) for s in stream.segments if not s.holding]
                    self._recordings[stream.spec] = await fetch_recording(
                        stream.session, parts, stream.record_dir, stream.spec, stream.privilege
                    )
            with contextlib.suppress(NodeError):
                await stream.session.run(self._cmd(stream, ["rm", "-rf", "--", stream.workdir]), timeout=30)
        finally:
            self._streams.pop(stream.spec, None)
            stream.done.set()

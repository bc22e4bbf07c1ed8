"""One live capture stream: its state, its openers, and what can be read from its files on its node."""

from __future__ import annotations

import asyncio
import base64
import binascii
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.commands import pipeline
from labyrinth_tui.nodes.session import NodeSession, RemoteStream
from labyrinth_tui.probes.dissect import DISSECT_TIMEOUT, DissectError, frame_in, pdml_argv, pdml_layers
from labyrinth_tui.sources.base import Emit, SourceEvent, StreamSpec, StreamState, StreamStatus
from labyrinth_tui.sources.capture_files import copy_recording, fetch_recording
from labyrinth_tui.sources.capture_runs import Lines


class StreamFailed(Exception):
    """The stream cannot go on; `reason` is for the user (tshark's or the node's own words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Subscriber:
    """One opener of a stream: its emit, and `left` once it no longer gets the stream's events."""

    emit: Emit
    left: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class LiveStream:
    """One capture on one node's interface: its openers, its node-side run, the packets not yet sent."""

    spec: StreamSpec
    session: NodeSession
    subscribers: list[Subscriber]
    ring_capacity: int
    workdir: str
    record_dir: Path | None
    privilege: tuple[str, ...]
    lines: Lines | None = None
    remote: RemoteStream | None = None
    pending: list[PacketSummary] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    state: StreamState = StreamState.STARTING
    status: StreamStatus | None = None  # the last one emitted: what a later opener is told at once
    idle: asyncio.TimerHandle | None = None  # kept warm with nobody reading: when it stops
    dropped: int = 0  # packets never emitted because one flush carried more than ring_capacity
    keep_recording: bool = True  # False once nobody will read it (the app quits, the lab goes down)
    background: set[asyncio.Task[None]] = field(default_factory=set)  # the reader, canary senders

    def emit(self, event: SourceEvent) -> None:
        """To every opener still subscribed (fan-out: one tshark, several readers)."""
        if isinstance(event, StreamStatus):
            self.status = event
        for subscriber in list(self.subscribers):
            subscriber.emit(event)

    def cmd(self, argv: Sequence[str]) -> list[str]:
        """`argv` as the stream's commands run on its node (with its privilege prefix, e.g. sudo -n)."""
        return [*self.privilege, *argv]


async def dissect_live(stream: LiveStream, number: int) -> Dissection | None:
    """Packet `number` of a live stream, dissected by tshark on its node from its run's file.

    The relay writes each packet to the file as it passes, so any packet the stream showed can be
    read: tshark dissects it there with everything before it in its run (TCP analysis, DNS pairs),
    and its bytes come back as one packet cut out by editcap. None when the packet is no longer kept
    on the node (an earlier run, when nothing records the stream).
    """
    found = stream.lines.where(number) if stream.lines is not None else None
    if found is None:
        return None
    run, local = found
    where = f"{stream.spec.node}:{run.path}"
    pdml = await stream.session.run(
        stream.cmd(pdml_argv(run.path, local)), timeout=DISSECT_TIMEOUT, check=False
    )
    layers = pdml_layers(where, local, pdml.exit_status, pdml.stdout.encode(), pdml.stderr.encode())
    cut = pipeline(["editcap", "-r", run.path, "-", str(local)], ["base64", "-w", "0"])
    raw = await stream.session.run(stream.cmd(cut), timeout=DISSECT_TIMEOUT, check=False)
    try:
        frame = frame_in(base64.b64decode(raw.stdout, validate=True), 1, where)
    except (ValueError, binascii.Error, DissectError):  # DissectError: no packet in what came back
        said = raw.stderr.strip()[-200:] or f"exit {raw.exit_status}, no packet {local} in the file"
        raise DissectError(where, local, f"editcap could not cut the packet out: {said}") from None
    return Dissection(number, layers, frame)


async def save_live(stream: LiveStream, target: Path) -> str | None:
    """A live stream's recording so far, fetched from its node, as pcapng at `target`.

    Returns "" when frame N of the file is the stream's packet N; a note for the user when only
    the latest packets could be kept (a stream that is not recorded keeps its current tshark run
    only). None before it started; NodeError/OSError when the node cannot give it.
    `target` is written whole or not at all.
    """
    if stream.lines is None:
        return None
    parts, note = stream.lines.parts()
    if not parts:
        raise OSError(f"{stream.spec.key} has recorded no packet yet")
    scratch = stream.record_dir  # the lab's state when it has one: removed with the lab
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labyrinth-save-", dir=scratch) as tmp:
        fetched = await fetch_recording(stream.session, parts, Path(tmp), stream.spec, stream.privilege)
        await copy_recording(fetched, target)  # whole or not at all
    return note

"""One tshark run of a live stream, and the hand-off between consecutive runs (no packet lost or doubled)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.nodes.session import RemoteStream
from labyrinth_tui.probes.capture_parse import SummaryParser
from labyrinth_tui.probes.capture_ready import Canary, is_canary
from labyrinth_tui.sources.base import StreamSpec


@dataclass(eq=False)
class Run:
    """One tshark run of a stream. Consecutive runs overlap; the hand-off is the new run's canary.

    The new run counts from just after its first canary (capture time `cut`); the old one keeps every
    packet captured before `cut` and stops counting at the first one from `cut` on: nothing is lost or
    counted twice (both read the same interface, so the kernel stamps the same frame alike).

    A new run's own tcpdump captures from its first instant, but its tshark reads nothing for its first
    ~0.5-1 s (loading dissectors): at 20k packets/s the kernel ring (MTU-sized slots) fills and drops
    meanwhile. So a hand-off run first waits for its `warmup` canary (tshark is reading), and only the
    `canary` sent after that marks the cut: the new run has no holes from `cut` on.
    """

    index: int
    path: str  # its pcapng on the node
    canary: Canary
    parser: SummaryParser
    warmup: Canary | None = None  # a hand-off run's first canary: its tshark is reading
    warm: asyncio.Event = field(default_factory=asyncio.Event)
    stream: RemoteStream | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    handed: asyncio.Event = field(default_factory=asyncio.Event)  # it reached the next run's `cut`
    previous: Run | None = None
    cut: float | None = None  # capture time from which the next run has the packets
    deferring: bool = False  # the next run's canaries are passing: keep packets until `cut` is known
    deferred: list[PacketSummary] = field(default_factory=list)
    stopping: bool = False
    removed: bool = False  # its file was deleted from the node (nothing records the stream)
    offset: int = 0  # stream number = offset + frame number of its own file
    frames: int = 0  # its newest frame number so far
    end_reason: str = ""  # why it ended by itself ("" when we stopped it)
    first: int = 1  # its first kept frame (frame numbers of its own file)
    last: int | None = None  # its last kept frame, once the next run took over
    handoff_mac: str | None = None  # the next run's canary: where this run's packets stop counting
    held: list[str] = field(default_factory=list)  # lines after its canary, until the previous run ends
    holding: bool = False
    budget: int = 0  # packets it may parse beyond the restart threshold (after a failed restart)


def take(segment: Run, pending: list[PacketSummary], lines: list[str]) -> None:
    """A chunk of the run's lines: packets to `pending`, held, deferred or dropped per the hand-off."""
    if segment.last is not None:
        return  # handed over: the next run has these packets
    if segment.holding and segment.ready.is_set():
        segment.held += lines
        return
    parse, mine, handoff = segment.parser.parse, segment.canary.src_mac, segment.handoff_mac
    warmup = segment.warmup.src_mac if segment.warmup is not None else None
    for i, line in enumerate(lines):
        if not line:
            continue  # the node's "is anyone reading?" probe
        packet = parse(line)
        if packet is None:
            continue
        segment.frames = local = packet.number - segment.offset
        if segment.cut is not None and _past_cut(packet, segment.cut, handoff):
            _hand_over(segment, local)
            return
        if is_canary(packet):
            if warmup is not None and packet.src == warmup and not segment.warm.is_set():
                segment.warm.set()
            elif packet.src == mine and not segment.ready.is_set() and segment.warm.is_set():
                segment.ready.set()
                if segment.holding:
                    segment.first = local + 1
                    segment.held += lines[i + 1 :]
                    if segment.previous is not None:
                        _cut(segment.previous, pending, packet.ts)
                    return
            elif handoff is not None and packet.src == handoff and segment.cut is None:
                segment.deferring = True
                segment.deferred.append(packet)  # kept as a marker: the cut may fall on it
            continue
        if segment.holding:
            continue  # before its canary: the previous run counts these
        (segment.deferred if segment.deferring else pending).append(packet)


def _past_cut(packet: PacketSummary, cut: float, handoff: str | None) -> bool:
    """The next run has this packet: it came after `cut`, or it is the canary the cut was taken at.

    Not `ts >= cut`: timestamps are microseconds, and a packet stamped like the canary but ahead of it
    is the old run's (the new one counts only what follows its canary)."""
    return packet.ts > cut or (packet.ts == cut and is_canary(packet) and packet.src == handoff)


def _cut(old: Run, pending: list[PacketSummary], cut: float) -> None:
    """The next run has everything from `cut` on: old keeps what it captured before."""
    old.cut = cut
    deferred, old.deferred, old.deferring = old.deferred, [], False
    for packet in deferred:
        if _past_cut(packet, cut, old.handoff_mac):
            _hand_over(old, packet.number - old.offset)
            return
        if not is_canary(packet):
            pending.append(packet)


def _hand_over(segment: Run, local: int) -> None:
    segment.last = local - 1
    segment.deferred = []
    segment.handed.set()


def release(segment: Run, pending: list[PacketSummary], next_number: int) -> None:
    """The previous run is over: `segment`'s held lines become packets numbered after it."""
    # the parser numbers this run's frames 1, 2, …; the stream goes on from next_number
    segment.offset = segment.parser._offset = next_number - segment.first + 1
    segment.holding = False
    held, segment.held = segment.held, []
    take(segment, pending, held)


def ended_why(spec: StreamSpec, status: int | None, stderr: str) -> str:
    """tshark's own last words when it ended by itself (the interface vanished, a crash)."""
    if status == 127:
        return f"tshark is not installed on {spec.node} (e.g. `apt-get install tshark`)"
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("Capturing on", "Running as", " "))
    ]
    said = lines[-1] if lines else "no message"
    return f"tshark on {spec.node}/{spec.interface} ended (exit {status}): {said}"

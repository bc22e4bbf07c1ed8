"""Journey and Hop: one packet's ordered sightings across interfaces and nodes, and what changed between."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import NamedTuple

from labyrinth_tui.journey.nat import Flow, NatTable, endpoint_text
from labyrinth_tui.journey.roles import Direction, PathMap, Role, StreamKey
from labyrinth_tui.model.packets import PacketSummary


class ChangeKind(StrEnum):
    DNAT = "DNAT"  # destination rewritten: ClusterIP:port → pod IP:targetPort
    UNDNAT = "un-DNAT"  # a reply's source rewritten back: pod IP:targetPort → ClusterIP:port
    SNAT = "SNAT"  # any other source rewrite
    ENCAP = "encap"  # wrapped in VXLAN: outer UDP 8472 between node addresses, with a VNI
    DECAP = "decap"  # unwrapped again


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened to the packet between the previous hop and this one."""

    kind: ChangeKind
    before: str  # NAT: the old ip:port; encap: the inner addresses; decap: the outer ones
    after: str
    vni: int | None = None  # encap / decap

    @property
    def text(self) -> str:
        """How the TUI says it: 'DNAT 10.105.134.33:9999 → 10.0.2.215:9999', 'encap VXLAN VNI 6174 …'."""
        if self.kind is ChangeKind.ENCAP:
            return f"encap VXLAN VNI {self.vni} {self.after}"
        if self.kind is ChangeKind.DECAP:
            return f"decap VXLAN VNI {self.vni} {self.before}"
        return f"{self.kind} {self.before} → {self.after}"


@dataclass(frozen=True, slots=True)
class Hop:
    """One sighting of the packet, as the TUI shows it: where, which way, when, as what, and what changed."""

    index: int
    node: str
    interface: str
    role: Role
    direction: Direction
    time: float  # corrected to the reference node's clock
    captured_time: float  # the node's own clock, as tshark printed it
    since_previous: float | None  # seconds since the previous hop (corrected clocks); None on the first
    src: str  # ip:port as seen here; the inner packet when encapsulated
    dst: str
    changes: tuple[Change, ...]  # vs the previous hop (i.e. it happened between the two)
    vni: int | None
    outer: str | None  # "10.168.0.4:45304 → 10.168.0.5:8472" when encapsulated
    last_seen: bool  # the packet vanished after this hop: the expected next hop never saw it
    packet: PacketSummary = field(repr=False)  # the observation, for the packet detail


@dataclass(frozen=True, slots=True)
class StitchContext:
    """What every journey of one stitch shares: the service NAT, interface roles, per-node clock offsets."""

    nat: NatTable
    paths: PathMap
    offsets: dict[str, float]


@dataclass(frozen=True, slots=True)
class Journey:
    """One packet's observations in corrected-time order. Hops are built on access (cheap: a few per packet).

    A retransmitted segment or a re-sent DNS query is its own Journey with `transmission` > 0.
    """

    flow: Flow  # the packet's addresses with services as ClusterIP:port (the client's view)
    observations: tuple[PacketSummary, ...]
    start: float  # corrected time of the first hop
    end: float  # corrected time of the last hop
    sender: str | None  # node the packet came from, when known
    receiver: str | None  # node it was going to, when known
    expected: tuple[StreamKey, ...]  # captured streams it should have crossed, in order
    transmission: int = 0  # 0: first sending; n: the n-th retransmission of the same segment / query
    ctx: StitchContext | None = field(default=None, compare=False, repr=False)

    @property
    def first(self) -> PacketSummary:
        return self.observations[0]

    @property
    def retransmission(self) -> bool:
        return self.transmission > 0

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def tcp_flags(self) -> frozenset[str]:
        return tcp_flag_set(self.first.tcp_flags)

    @property
    def streams(self) -> tuple[StreamKey, ...]:
        return tuple((p.node, p.interface) for p in self.observations)

    @property
    def unseen(self) -> tuple[StreamKey, ...]:
        """Expected streams that never saw this packet (before, between or after its hops)."""
        seen = set(self.streams)
        return tuple(s for s in self.expected if s not in seen)

    @property
    def expected_next(self) -> StreamKey | None:
        """Where the packet should have been seen after its last hop, when it vanished."""
        seen = set(self.streams)
        last = -1
        for i, stream in enumerate(self.expected):
            if stream in seen:
                last = i
        if last < 0 or last == len(self.expected) - 1:
            return None
        return self.expected[last + 1]

    @property
    def vanished(self) -> bool:
        return self.expected_next is not None

    @property
    def title(self) -> str:
        p = self.first
        what = p.info if p.info else p.protocol
        return f"{p.protocol} {_addresses(p)} {what}".strip()

    @property
    def hops(self) -> tuple[Hop, ...]:
        return build_hops(self)


def tcp_flag_set(flags: str | None) -> frozenset[str]:
    """'SYN,ACK', '[SYN, ACK]' or 'SYN ACK' → {'SYN', 'ACK'}."""
    if not flags:
        return frozenset()
    cleaned = flags.strip("[]").replace(",", " ")
    return frozenset(f.strip().upper() for f in cleaned.split() if f.strip())


class _Seen(NamedTuple):
    """The fields a hop shows, read once from a packet (each numeric attribute of it unpacks a struct)."""

    ts: float
    node: str
    interface: str
    src: str
    sport: int | None
    dst: str
    dport: int | None
    vni: int | None
    outer_src: str | None
    outer_sport: int | None
    outer_dst: str | None
    outer_dport: int | None

    @property
    def encapsulated(self) -> bool:
        return self.vni is not None


_READ_SEEN = attrgetter(*_Seen._fields)


def _outer(p: _Seen) -> str | None:
    if not p.encapsulated:
        return None
    src = endpoint_text(p.outer_src or "?", p.outer_sport)
    return f"{src} → {endpoint_text(p.outer_dst or '?', p.outer_dport)}"


def _addresses(p: PacketSummary | _Seen) -> str:
    return f"{endpoint_text(p.src, p.sport)} → {endpoint_text(p.dst, p.dport)}"


def _changes(prev: _Seen, cur: _Seen, nat: NatTable, l4: str) -> tuple[Change, ...]:
    changes: list[Change] = []
    if not prev.encapsulated and cur.encapsulated:
        changes.append(Change(ChangeKind.ENCAP, _addresses(prev), _outer(cur) or "", cur.vni))
    if (prev.src, prev.sport) != (cur.src, cur.sport):
        kind = (
            ChangeKind.UNDNAT
            if nat.is_backend(prev.src, prev.sport, l4) and nat.is_frontend(cur.src, cur.sport, l4)
            else ChangeKind.SNAT
        )
        changes.append(Change(kind, endpoint_text(prev.src, prev.sport), endpoint_text(cur.src, cur.sport)))
    if (prev.dst, prev.dport) != (cur.dst, cur.dport):
        changes.append(
            Change(ChangeKind.DNAT, endpoint_text(prev.dst, prev.dport), endpoint_text(cur.dst, cur.dport))
        )
    if prev.encapsulated and not cur.encapsulated:
        changes.append(Change(ChangeKind.DECAP, _outer(prev) or "", _addresses(cur), prev.vni))
    return tuple(changes)


def build_hops(journey: Journey) -> tuple[Hop, ...]:
    """The hops of a journey, each compared with the one before it."""
    ctx = journey.ctx
    if ctx is None:
        raise ValueError("a Journey needs the StitchContext it was stitched with to build its hops")
    vanished = journey.vanished
    paths = ctx.paths
    hops: list[Hop] = []
    prev: _Seen | None = None
    prev_time = 0.0
    last = len(journey.observations) - 1
    for i, p in enumerate(journey.observations):
        seen = _Seen._make(_READ_SEEN(p))
        time = seen.ts - ctx.offsets.get(seen.node, 0.0)
        direction = paths.direction(
            seen.node, seen.interface, seen.src, seen.dst, journey.sender, journey.receiver
        )
        hops.append(
            Hop(
                index=i,
                node=seen.node,
                interface=seen.interface,
                role=paths.role(seen.node, seen.interface).role,
                direction=direction,
                time=time,
                captured_time=seen.ts,
                since_previous=None if prev is None else time - prev_time,
                src=endpoint_text(seen.src, seen.sport),
                dst=endpoint_text(seen.dst, seen.dport),
                changes=() if prev is None else _changes(prev, seen, ctx.nat, journey.flow.l4),
                vni=seen.vni,
                outer=_outer(seen),
                last_seen=vanished and i == last,
                packet=p,
            )
        )
        prev, prev_time = seen, time
    return tuple(hops)

"""Journey and Hop: one packet's ordered sightings across interfaces and nodes, and what changed between."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

from labyrinth_tui.journey.nat import Flow, NatTable, endpoint_text
from labyrinth_tui.journey.read import DPORT, OUTER_DPORT, OUTER_SPORT, SPORT, TS, VNI, default_reader
from labyrinth_tui.journey.roles import Direction, PathMap, Role, StreamKey
from labyrinth_tui.model.packets import (
    HAS_DPORT,
    HAS_OUTER_DPORT,
    HAS_OUTER_SPORT,
    HAS_SPORT,
    HAS_VNI,
    PacketSummary,
)


class ChangeKind(StrEnum):
    DNAT = "DNAT"  # destination rewritten: ClusterIP:port → pod IP:targetPort
    UNDNAT = "un-DNAT"  # a reply's source rewritten back: pod IP:targetPort → ClusterIP:port
    SNAT = "SNAT"  # any other source rewrite
    ENCAP = "encap"  # wrapped in VXLAN: outer UDP 8472 between node addresses, with a VNI
    DECAP = "decap"  # unwrapped again


@dataclass(slots=True)
class Change:
    """Something that happened to the packet between the previous hop and this one.

    Read-only by convention, not frozen (as Hop): every VXLAN hop makes an encap or decap Change.
    """

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


@dataclass(slots=True)
class Hop:
    """One sighting of the packet, as the TUI shows it: where, which way, when, as what, and what changed.

    Read-only by convention, not frozen: a frozen dataclass's __init__ sets each field through
    object.__setattr__, 8 × slower than a plain slots one, and a million packets make a million hops.
    """

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
    # what a journey's hops show besides its times and outer addresses, per journey shape (its ends and
    # expected path, each hop's where and addresses): the packets of one flow and direction share one
    plans: dict[tuple[Any, ...], tuple[_Step, ...]] = field(default_factory=dict, compare=False, repr=False)


@dataclass(slots=True)
class Journey:
    """One packet's observations in corrected-time order. Hops are built on access (cheap: a few per packet).

    A retransmitted segment or a re-sent DNS query is its own Journey with `transmission` > 0.
    Read-only by convention, not frozen (as Hop): stitching makes one per packet, and a frozen
    dataclass's __init__ sets each field through object.__setattr__.
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

    @property
    def encapsulated(self) -> bool:
        return self.vni is not None


_SEEN_FIELDS = attrgetter(*_Seen._fields)


def _seen_by_attribute(p: PacketSummary) -> _Seen:
    return _Seen._make(_SEEN_FIELDS(p))


def _seen_reader() -> Callable[[PacketSummary], _Seen]:
    """p → _Seen: one unpack of today's packed rows (journey/read.py finds the layout), else attributes."""
    reader = default_reader()
    presence_at = reader.presence
    if not reader.row_layout or presence_at is None:
        return _seen_by_attribute
    at = reader.index
    unpack, (ts_at, sport_at, dport_at, vni_at, presence_at) = reader.narrowed(
        [at[TS], at[SPORT], at[DPORT], at[VNI], presence_at]
    )
    new = tuple.__new__

    def by_row(p: PacketSummary) -> _Seen:
        packed, node, interface, src, dst, _, _, _ = p
        n = unpack(packed)
        present = n[presence_at]
        return new(
            _Seen,
            (
                n[ts_at],
                node,
                interface,
                src,
                n[sport_at] if present & HAS_SPORT else None,
                dst,
                n[dport_at] if present & HAS_DPORT else None,
                n[vni_at] if present & HAS_VNI else None,
            ),
        )

    return by_row


_READ_SEEN = _seen_reader()


def _outer_text(src: str | None, sport: int | None, dst: str | None, dport: int | None) -> str:
    return f"{endpoint_text(src or '?', sport)} → {endpoint_text(dst or '?', dport)}"


def _addresses(p: PacketSummary | _Seen) -> str:
    return f"{endpoint_text(p.src, p.sport)} → {endpoint_text(p.dst, p.dport)}"


def _changes(prev: _Seen, cur: _Seen, nat: NatTable, l4: str) -> tuple[Change, ...]:
    """The address rewrites between two hops (encap and decap, which name per-packet outer ports, apart)."""
    changes: list[Change] = []
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
    return tuple(changes)


class _Step(NamedTuple):
    """What one hop of a journey shape shows, whatever the packet: all but its times and outer ports."""

    node: str
    interface: str
    role: Role
    direction: Direction
    offset: float  # the node's clock offset
    src: str
    dst: str
    rewrites: tuple[Change, ...]
    vni: int | None
    last_seen: bool
    encap_from: str | None  # the previous hop's addresses when the packet was wrapped here
    decap_to: str | None  # this hop's addresses when it was unwrapped here
    decap_vni: int | None


def _plan(
    journey: Journey, ctx: StitchContext, read: Callable[[PacketSummary], _Seen] = _READ_SEEN
) -> tuple[_Step, ...]:
    """The steps of a journey, read the slow, obvious way from its packets' attributes."""
    paths = ctx.paths
    last = len(journey.observations) - 1
    vanished = journey.vanished
    sender, receiver = journey.sender, journey.receiver
    steps: list[_Step] = []
    prev: _Seen | None = None
    for i, p in enumerate(journey.observations):
        seen = read(p)
        wrapped = prev is not None and not prev.encapsulated and seen.encapsulated
        unwrapped = prev is not None and prev.encapsulated and not seen.encapsulated
        steps.append(
            _Step(
                seen.node,
                seen.interface,
                paths.role(seen.node, seen.interface).role,
                paths.direction(seen.node, seen.interface, seen.src, seen.dst, sender, receiver),
                ctx.offsets.get(seen.node, 0.0),
                endpoint_text(seen.src, seen.sport),
                endpoint_text(seen.dst, seen.dport),
                () if prev is None else _changes(prev, seen, ctx.nat, journey.flow.l4),
                seen.vni,
                vanished and i == last,
                _addresses(prev) if wrapped and prev is not None else None,
                _addresses(seen) if unwrapped else None,
                prev.vni if unwrapped and prev is not None else None,
            )
        )
        prev = seen
    return tuple(steps)


def _shape_reader() -> Callable[[PacketSummary], tuple[float, tuple[Any, ...]]]:
    """p → (captured ts, what of p a journey shape depends on), by attribute: any PacketSummary storage.

    Equal shapes mean equal node, interface, addresses, ports and VNI (absent ones included).
    """
    read = attrgetter("ts", "node", "interface", "src", "dst", "sport", "dport", "vni")

    def by_attribute(p: PacketSummary) -> tuple[float, tuple[Any, ...]]:
        ts, *shape = read(p)
        return ts, tuple(shape)

    return by_attribute


_SHAPE = _shape_reader()
_OUTER = attrgetter("outer_src", "outer_sport", "outer_dst", "outer_dport")


def _steps(
    journey: Journey,
    ctx: StitchContext,
    shape: tuple[Any, ...],
    read: Callable[[PacketSummary], _Seen] = _READ_SEEN,
) -> tuple[_Step, ...]:
    steps = ctx.plans.get(shape)
    if steps is None:
        steps = ctx.plans[shape] = _plan(journey, ctx, read)
    return steps


def _hop(
    i: int,
    step: _Step,
    ts: float,
    outer: str | None,
    prev_time: float,
    prev_outer: str | None,
    p: PacketSummary,
) -> Hop:
    node, interface, role, direction, offset, src, dst, changes, vni, last_seen, wrap, unwrap, vni0 = step
    time = ts - offset
    if vni is not None:
        if wrap is not None:
            changes = (Change(ChangeKind.ENCAP, wrap, outer or "", vni), *changes)
    elif unwrap is not None:
        changes = (*changes, Change(ChangeKind.DECAP, prev_outer or "", unwrap, vni0))
    since = None if i == 0 else time - prev_time
    return Hop(
        i, node, interface, role, direction, time, ts, since, src, dst, changes, vni, outer, last_seen, p
    )


def _build_by_attribute(journey: Journey, ctx: StitchContext) -> tuple[Hop, ...]:
    """build_hops for any PacketSummary storage: every field read as an attribute."""
    observations = journey.observations
    views = list(map(_SHAPE, observations))
    shape = (journey.sender, journey.receiver, journey.flow.l4, journey.expected, *[v[1] for v in views])
    steps = _steps(journey, ctx, shape, _seen_by_attribute)
    hops: list[Hop] = []
    prev_time, prev_outer = 0.0, None
    for i, ((ts, _), step, p) in enumerate(zip(views, steps, observations, strict=True)):
        outer = _outer_text(*_OUTER(p)) if step.vni is not None else None
        hop = _hop(i, step, ts, outer, prev_time, prev_outer, p)
        hops.append(hop)
        prev_time, prev_outer = hop.time, outer
    return tuple(hops)


def _row_builder() -> Callable[[Journey, StitchContext], tuple[Hop, ...]] | None:
    """build_hops for today's packed PacketSummary (journey/read.py finds its layout): one unpack per packet,
    the shape key built flat in one loop, the outer addresses read from the packet's own tuple."""
    reader = default_reader()
    presence_at = reader.presence
    if not reader.row_layout or presence_at is None:
        return None
    at = reader.index
    wanted = [at[TS], at[SPORT], at[DPORT], at[VNI], at[OUTER_SPORT], at[OUTER_DPORT], presence_at]
    unpack, (ts_at, sport_at, dport_at, vni_at, osport_at, odport_at, presence_at) = reader.narrowed(wanted)
    both_outer_ports = HAS_OUTER_SPORT | HAS_OUTER_DPORT
    # of the presence bits, those of the numbers a shape holds: the others (a payload hash, seq…) would
    # split one flow's packets into several shapes with the same steps
    shape_bits = HAS_SPORT | HAS_DPORT | HAS_VNI

    def build(journey: Journey, ctx: StitchContext) -> tuple[Hop, ...]:
        observations = journey.observations
        key: list[Any] = [journey.sender, journey.receiver, journey.flow.l4, journey.expected]
        numbers = []
        for p in observations:
            packed, node, interface, src, dst, _, _, _ = p
            n = unpack(packed)
            numbers.append(n)
            key += (
                node,
                interface,
                src,
                dst,
                n[sport_at],
                n[dport_at],
                n[vni_at],
                n[presence_at] & shape_bits,
            )
        steps = _steps(journey, ctx, tuple(key))
        hops: list[Hop] = []
        append = hops.append
        prev_time = 0.0
        prev_outer: str | None = None
        for i, (n, step, p) in enumerate(zip(numbers, steps, observations, strict=True)):
            (
                node,
                interface,
                role,
                direction,
                offset,
                src,
                dst,
                changes,
                vni,
                last_seen,
                wrap,
                unwrap,
                vni0,
            ) = step
            ts = n[ts_at]
            time = ts - offset
            outer = None
            if vni is not None:
                extra = p[7]
                if extra is not None and n[presence_at] & both_outer_ports == both_outer_ports:
                    outer = f"{extra[3] or '?'}:{n[osport_at]} → {extra[4] or '?'}:{n[odport_at]}"
                else:
                    outer = _outer_text(*_OUTER(p))
                if wrap is not None:
                    changes = (Change(ChangeKind.ENCAP, wrap, outer, vni), *changes)
            elif unwrap is not None:
                changes = (*changes, Change(ChangeKind.DECAP, prev_outer or "", unwrap, vni0))
            append(
                Hop(
                    i,
                    node,
                    interface,
                    role,
                    direction,
                    time,
                    ts,
                    None if i == 0 else time - prev_time,
                    src,
                    dst,
                    changes,
                    vni,
                    outer,
                    last_seen,
                    p,
                )
            )
            prev_time, prev_outer = time, outer
        return tuple(hops)

    return build


_BUILD = _row_builder() or _build_by_attribute


def build_hops(journey: Journey) -> tuple[Hop, ...]:
    """The hops of a journey, each compared with the one before it.

    What a hop shows besides its times and outer ports (role, direction, addresses, NAT) is the same for
    every packet of a flow and direction: it is worked out once per journey shape and kept in the
    StitchContext, so building a million hops costs little more than making the Hop objects.
    """
    ctx = journey.ctx
    if ctx is None:
        raise ValueError("a Journey needs the StitchContext it was stitched with to build its hops")
    return _BUILD(journey, ctx)


def hops_of(journeys: Iterable[Journey]) -> list[tuple[Hop, ...]]:
    """Every journey's hops at once (an export, a bench), with the cyclic GC off while they are made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [build_hops(j) for j in journeys]
    finally:
        if collecting:
            gc.enable()

"""Building a journey's hops fast: one plan per journey shape, the packed rows read with one unpack each."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from labyrinth_tui.journey.hop import Change, ChangeKind, Hop, addresses_text, outer_text
from labyrinth_tui.journey.nat import NatTable, endpoint_text
from labyrinth_tui.journey.read import DPORT, OUTER_DPORT, OUTER_SPORT, SPORT, TS, VNI, default_reader
from labyrinth_tui.journey.roles import Direction, Role
from labyrinth_tui.model.packets import (
    HAS_DPORT,
    HAS_OUTER_DPORT,
    HAS_OUTER_SPORT,
    HAS_SPORT,
    HAS_VNI,
    PacketSummary,
)

if TYPE_CHECKING:
    from labyrinth_tui.journey.hops import Journey, StitchContext


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


class Step(NamedTuple):
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
) -> tuple[Step, ...]:
    """The steps of a journey, read the slow, obvious way from its packets' attributes."""
    paths = ctx.paths
    last = len(journey.observations) - 1
    vanished = journey.vanished
    sender, receiver = journey.sender, journey.receiver
    steps: list[Step] = []
    prev: _Seen | None = None
    for i, p in enumerate(journey.observations):
        seen = read(p)
        wrapped = prev is not None and not prev.encapsulated and seen.encapsulated
        unwrapped = prev is not None and prev.encapsulated and not seen.encapsulated
        steps.append(
            Step(
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
                addresses_text(prev) if wrapped and prev is not None else None,
                addresses_text(seen) if unwrapped else None,
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
) -> tuple[Step, ...]:
    steps = ctx.plans.get(shape)
    if steps is None:
        steps = ctx.plans[shape] = _plan(journey, ctx, read)
    return steps


def _hop(
    i: int,
    step: Step,
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
        outer = outer_text(*_OUTER(p)) if step.vni is not None else None
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
                    outer = outer_text(*_OUTER(p))
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


BUILD = _row_builder() or _build_by_attribute

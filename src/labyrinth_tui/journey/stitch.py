"""stitch(): one packet's observations from many streams and nodes, grouped into a Journey of ordered hops.

How the same packet is recognised on every hop:
- across NAT: addresses are compared in their client's view (every service endpoint written as its
  ClusterIP:port, from the service table), so the SYN to 10.105.134.33:9999 on the client's lxc and the
  SYN to 10.0.2.215:9999 on cilium_vxlan have the same key;
- across VXLAN: an observation on ens4 carries the inner packet's fields (outer_* and vni say it was
  encapsulated), so it keys like the same packet on cilium_vxlan and lxc;
- what stays the same on every hop: IP id, TCP raw seq/ack and flags, DNS id, payload hash;
- across nodes: per-node clock offsets are estimated NTP-style from packets crossing in both directions
  (see journey/clock.py) and every hop is placed on the reference node's clock.
A key seen twice on one interface is a retransmission: a second Journey with `transmission` = 1; so
is the same segment or DNS query sent again with a new IP id (duplicate ACKs are not retransmissions).
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from labyrinth_tui.journey.clock import ClockOffset
from labyrinth_tui.journey.group import (
    ENTRY_STREAM,
    KEY_IDENT,
    EndsFinder,
    Entry,
    Grouping,
    Key,
    Run,
    clock_samples,
    once_per_stream,
    run_of,
    runs_of,
)
from labyrinth_tui.journey.hops import (
    Journey,
    StitchContext,
    tcp_flag_set,
)
from labyrinth_tui.journey.nat import Flow, NatTable
from labyrinth_tui.journey.phases import (
    DnsPhase,
    Handshake,
    dns_phase,
    handshakes,
)
from labyrinth_tui.journey.read import PacketReader, default_reader
from labyrinth_tui.journey.roles import (
    PathMap,
    RolesInput,
    StreamKey,
)
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.topology import Service

DEFAULT_HOP_WINDOW = 0.1  # s: hops of one packet are µs–ms apart; a TCP retransmission comes ≥ 200 ms later


@dataclass(frozen=True, slots=True)
class StitchResult:
    """Every packet's journey, and the clock corrections that put the nodes' captures on one timeline."""

    journeys: tuple[Journey, ...]  # by corrected start time
    clock_offsets: dict[str, ClockOffset]  # per node, relative to reference_node
    reference_node: str | None
    observations: int
    context: StitchContext

    def vanished(self) -> list[Journey]:
        return [j for j in self.journeys if j.vanished]

    def handshakes(self, client: str | None = None) -> list[Handshake]:
        return handshakes(self.journeys, client)

    def dns_phase(self, name: str | None = None, client: str | None = None) -> DnsPhase:
        return dns_phase(self.journeys, name, client)


def stitch(
    observations: Iterable[PacketSummary],
    services: Sequence[Service] = (),
    roles: RolesInput | None = None,
    *,
    captured: Collection[StreamKey] | None = None,
    reference_node: str | None = None,
    hop_window: float = DEFAULT_HOP_WINDOW,
    reader: PacketReader | None = None,
) -> StitchResult:
    """Group observations of the same packet across streams, NAT, VXLAN and node clocks into Journeys.

    roles: (node, interface) → its Role / InterfaceRole (pod_ip for host veths and node_ip for the
    underlay make directions and expected paths exact; see roles_from_topology). Unlisted interfaces
    get a role from their name. captured: the streams that were open (default: those that saw
    anything) — a packet missing from one of them on its expected path is "last seen" before it.
    reference_node: the clock every hop is put on (default: the first node by name).
    """
    # A million observations make a million long-lived tuples and lists and no reference cycles:
    # the cyclic collector would only rescan them, again and again (more than half the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _stitch(observations, services, roles, captured, reference_node, hop_window, reader or _READER)
    finally:
        if collecting:
            gc.enable()


_READER = default_reader()


def _stitch(
    observations: Iterable[PacketSummary],
    services: Sequence[Service],
    roles: RolesInput | None,
    captured: Collection[StreamKey] | None,
    reference_node: str | None,
    hop_window: float,
    reader: PacketReader,
) -> StitchResult:
    nat = NatTable(services)
    grouping = Grouping(observations, nat, reader)
    streams = grouping.streams
    paths = PathMap(roles or {}, captured if captured is not None else streams)
    ends = EndsFinder(paths, nat)
    samples = clock_samples(grouping, ends)
    nodes = {node for node, _ in streams}
    clock = samples.estimate(nodes, reference_node) if nodes else {}
    offsets = {node: c.offset for node, c in clock.items()}
    ctx = StitchContext(nat, paths, offsets)

    # Each group becomes one journey per transmission. A retransmitted segment with a new IP id is in
    # another group with the same transport key (the key without the IP id), so it is numbered with
    # it; duplicate ACKs are distinct packets, not retransmissions: their IP id stays in the key.
    flows = grouping.flows
    pure_ack: dict[str | None, bool] = {}
    transports: list[tuple[Any, ...]] = []
    once: set[tuple[Any, ...]] = set()
    twice: set[tuple[Any, ...]] = set()
    for key in grouping.groups:
        flags = key[1]
        is_pure_ack = pure_ack.get(flags)
        if is_pure_ack is None:
            is_pure_ack = pure_ack[flags] = tcp_flag_set(flags) == {"ACK"}
        # the key without its IP id (KEY_IDENT), unless a pure ACK without payload (hash at KEY_IDENT + 3)
        transport = key if is_pure_ack and not key[KEY_IDENT + 3] else (key[0], flags, *key[KEY_IDENT + 1 :])
        transports.append(transport)
        if transport in once:
            twice.add(transport)
        else:
            once.add(transport)

    journeys: list[Journey] = []
    append = journeys.append
    where: dict[int, tuple[str | None, str | None, tuple[StreamKey, ...]]] = {}  # per flow id, once known
    resent: list[tuple[Key, list[Entry], tuple[Any, ...]]] = []
    for (key, group), transport in zip(grouping.groups.items(), transports, strict=True):
        n = len(group)
        if transport in twice or (n > 1 and len(set(map(ENTRY_STREAM, group))) != n):
            resent.append((key, group, transport))
            continue
        # the common case, inlined (it runs once per packet): sent once, seen once per interface;
        # ties in time are broken by node and interface names, never by the input order
        if n == 1:
            ts, (node, _), p = group[0]
            start = end = ts - offsets[node]
            seen: tuple[PacketSummary, ...] = (p,)
        else:
            timed = sorted([(ts - offsets[stream[0]], stream, p) for ts, stream, p in group])
            start, end = timed[0][0], timed[-1][0]
            seen = tuple(map(_THIRD, timed))
        fid = key[0]
        flow = flows[fid]
        found = where.get(fid)
        if found is None:
            found = _where(ends, paths, flow, seen)
            if found[0] is not None and found[1] is not None:  # then it is the same for the whole flow
                where[fid] = found
        append(Journey(flow, seen, start, end, found[0], found[1], found[2], 0, ctx))

    # Retransmissions: numbered in time order within their transport key
    by_transport: dict[tuple[Any, ...], list[tuple[int, Run]]] = {}
    for key, group, transport in resent:
        runs = [run_of(group, offsets)] if once_per_stream(group) else runs_of(group, offsets, hop_window)
        by_transport.setdefault(transport, []).extend((key[0], run) for run in runs)
    for bucket in by_transport.values():
        bucket.sort(key=_run_order)
        for n, (fid, (start, seen, end)) in enumerate(bucket):
            flow = flows[fid]
            sender, receiver, expected = _where(ends, paths, flow, seen)
            append(Journey(flow, seen, start, end, sender, receiver, expected, n, ctx))
    journeys.sort(key=_START)
    if len(set(map(_START, journeys))) != len(journeys):  # ties: make the order not depend on input's
        journeys.sort(key=_journey_order)
    reference = reference_node or (min(nodes) if nodes else None)
    return StitchResult(tuple(journeys), clock, reference, grouping.count, ctx)


_START = attrgetter("start")
_THIRD = itemgetter(2)


def _where(
    ends: EndsFinder, paths: PathMap, flow: Flow, seen: tuple[PacketSummary, ...]
) -> tuple[str | None, str | None, tuple[StreamKey, ...]]:
    """Sender, receiver and the expected path of a packet."""
    sender, receiver, src_ip, dst_ip = ends(flow, seen)
    return sender, receiver, paths.expected(sender, receiver, src_ip, dst_ip)


def _run_order(item: tuple[int, Run]) -> tuple[float, str, str, int]:
    start, seen, _ = item[1]
    return (start, seen[0].node, seen[0].interface, seen[0].number)


def _journey_order(j: Journey) -> tuple[float, str, str, int]:
    first = j.observations[0]
    return (j.start, first.node, first.interface, first.number)


def journey_jsonable(journey: Journey) -> dict[str, Any]:
    """A journey as `labyrinth journey --json` prints it."""
    return {
        "title": journey.title,
        "flow": journey.flow._asdict(),
        "transmission": journey.transmission,
        "vanished": journey.vanished,
        "expected_next": list(journey.expected_next) if journey.expected_next else None,
        "unseen": [list(s) for s in journey.unseen],
        "hops": [
            {
                "node": h.node,
                "interface": h.interface,
                "role": str(h.role),
                "direction": str(h.direction),
                "time": h.time,
                "captured_time": h.captured_time,
                "since_previous": h.since_previous,
                "src": h.src,
                "dst": h.dst,
                "changes": [c.text for c in h.changes],
                "vni": h.vni,
                "outer": h.outer,
                "last_seen": h.last_seen,
                "number": h.packet.number,
                "info": h.packet.info,
            }
            for h in journey.hops
        ],
    }

"""Stitching passes: group by packet key, find each packet's sender, sample clocks, split retransmissions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from labyrinth_tui.model.journey_clock import ClockSamples
from labyrinth_tui.model.journey_nat import Flow, NatTable
from labyrinth_tui.model.journey_phases import dns_id_of
from labyrinth_tui.model.journey_read import (
    DPORT,
    INTERFACE,
    KEY_NUMBERS,
    NODE,
    PROTOCOL,
    SPORT,
    TS,
    PacketReader,
)
from labyrinth_tui.model.journey_roles import PathMap, StreamKey
from labyrinth_tui.model.packets import PacketSummary

Entry = tuple[float, str, str, PacketSummary]  # (captured ts, node, interface, the observation)
# (flow id, (ip_id, seq, ack, payload_hash, dns_id)); a flow id stands for (Flow, tcp flags)
Key = tuple[int, tuple[Any, ...]]
Run = tuple[float, tuple[PacketSummary, ...], float]  # corrected start, observations in order, end
Ends = tuple[
    str | None, str | None, str, str
]  # sender node, receiver node, source pod ip, destination pod ip

ENTRY_STREAM = itemgetter(1, 2)
ENTRY_PACKET = itemgetter(3)


class Grouping:
    """Observations by packet key: the flow in its client's view, the tcp flags, what never changes."""

    def __init__(self, observations: Iterable[PacketSummary], nat: NatTable, reader: PacketReader) -> None:
        self.flows: list[tuple[Flow, str | None]] = []  # flow id → (flow, tcp flags)
        self.groups: dict[Key, list[Entry]] = {}
        self.streams: set[StreamKey] = set()
        self.count = 0
        self._ids: dict[tuple[Flow, str | None], int] = {}
        self._read(observations, nat, reader)

    def _read(self, observations: Iterable[PacketSummary], nat: NatTable, reader: PacketReader) -> None:
        # the hot loop of stitching: a few C-level reads and two dict lookups per observation
        raw_ids: dict[tuple[Any, ...], int] = {}
        groups = self.groups
        streams = self.streams
        strings_of, packed_of, unpack = reader.strings, reader.packed, reader.unpack
        at = reader.index
        ts_at, sport_at, dport_at = at[TS], at[SPORT], at[DPORT]
        ident_of = itemgetter(*(at[i] for i in KEY_NUMBERS))
        count = 0
        last_node = last_iface = None
        for p in observations:
            count += 1
            strs = strings_of(p)
            nums = unpack(packed_of(p))
            raw = (strs, nums[sport_at], nums[dport_at])
            fid = raw_ids.get(raw)
            if fid is None:
                fid = raw_ids[raw] = self._flow_id(p, nat)
            ident = ident_of(nums)
            if strs[PROTOCOL] == "DNS" and p.dns_id is None:  # no dns.id captured: read the info line
                ident = (*ident[:-1], dns_id_of(p))
            node, iface = strs[NODE], strs[INTERFACE]
            entry = (nums[ts_at], node, iface, p)
            key = (fid, ident)
            found = groups.get(key)
            if found is None:
                groups[key] = [entry]
            else:
                found.append(entry)
            if iface is not last_iface or node is not last_node:  # a stream's packets mostly come in runs
                streams.add((node, iface))
                last_node, last_iface = node, iface
        self.count = count

    def _flow_id(self, p: PacketSummary, nat: NatTable) -> int:
        if p.tcp_flags is not None or p.seq is not None:
            l4 = "TCP"
        else:
            l4 = "UDP" if p.sport is not None else p.protocol
        pair = (nat.flow(p.src, p.sport, p.dst, p.dport, l4), p.tcp_flags)
        found = self._ids.get(pair)
        if found is None:
            found = self._ids[pair] = len(self.flows)
            self.flows.append(pair)
        return found


class EndsFinder:
    """Which node sent a packet and which received it: from outer addresses, pods, or local order."""

    def __init__(self, paths: PathMap, nat: NatTable) -> None:
        self.paths = paths
        self.nat = nat
        self._by_flow: dict[Flow, Ends] = {}

    def known(self, flow: Flow) -> Ends | None:
        """The answer for a flow whose both ends were found before (most packets of most flows)."""
        return self._by_flow.get(flow)

    def __call__(self, flow: Flow, group: Sequence[PacketSummary]) -> Ends:
        found = self._by_flow.get(flow)
        if found is not None:
            return found
        pod_node = self.paths.pod_node
        node_of = self.paths.node_of_address
        sender = receiver = None
        src_ip, dst_ip = flow.src, flow.dst
        for p in group:
            if p.src != flow.src or p.src in pod_node:
                src_ip = p.src  # the real pod behind a reply's ClusterIP source
            if p.dst != flow.dst or p.dst in pod_node:
                dst_ip = p.dst  # the real pod behind the ClusterIP destination (after DNAT)
            outer_src = p.outer_src
            if outer_src is not None and sender is None:
                sender = node_of.get(outer_src)
                outer_dst = p.outer_dst
                receiver = node_of.get(outer_dst) if outer_dst is not None else None
        if dst_ip == flow.dst:  # never seen after DNAT: a service with one endpoint still says where
            backends = self.nat.backends_of(flow.dst, flow.dport, flow.l4)
            if len(backends) == 1:
                dst_ip = backends[0][0]
        sender = sender or pod_node.get(src_ip)
        receiver = receiver or pod_node.get(dst_ip)
        if sender is None or receiver is None:
            sender, receiver = self._by_local_order(group, sender, receiver)
        result = (sender, receiver, src_ip, dst_ip)
        if sender is not None and receiver is not None:
            self._by_flow[flow] = result
        return result

    def _by_local_order(
        self, group: Sequence[PacketSummary], sender: str | None, receiver: str | None
    ) -> tuple[str | None, str | None]:
        # One node, one clock: encapsulation after a plain sighting means this node sent the packet,
        # before a plain sighting means it arrived here. Learn the node's underlay address on the way.
        per_node: dict[str, list[PacketSummary]] = {}
        for p in group:
            per_node.setdefault(p.node, []).append(p)
        for node, seen in sorted(per_node.items()):
            seen.sort(key=lambda p: (p.ts, p.interface))
            kinds = [p.encapsulated for p in seen]
            if True not in kinds or False not in kinds:
                continue
            encap = seen[kinds.index(True)]
            if not kinds[0] and sender is None:
                sender = node
                if encap.outer_src is not None:
                    self.paths.node_of_address.setdefault(encap.outer_src, node)
            elif kinds[0] and receiver is None:
                receiver = node
                if encap.outer_dst is not None:
                    self.paths.node_of_address.setdefault(encap.outer_dst, node)
        return sender, receiver


def clock_samples(grouping: Grouping, ends: EndsFinder, repeated: set[Key]) -> ClockSamples:
    """Per packet seen on two nodes: the receiver's first sighting minus the sender's last.

    That is the one-way delay plus the receiver's clock offset. Keys seen twice on one interface
    (retransmissions) are left out and noted in `repeated`.
    """
    samples = ClockSamples()
    flows = grouping.flows
    for key, group in grouping.groups.items():
        n = len(group)
        if n < 2:
            continue
        if len(set(map(ENTRY_STREAM, group))) != n:
            repeated.add(key)
            continue
        flow = flows[key[0]][0]
        sender, receiver, _, _ = ends.known(flow) or ends(flow, list(map(ENTRY_PACKET, group)))
        if sender is None or receiver is None or sender == receiver:
            continue
        left = arrived = None
        for ts, node, _, _ in group:
            if node == sender:
                if left is None or ts > left:
                    left = ts
            elif node == receiver and (arrived is None or ts < arrived):
                arrived = ts
        if left is not None and arrived is not None:
            samples.add(sender, receiver, arrived - left)
    return samples


Timed = list[tuple[float, PacketSummary]]


def split_transmissions(items: Timed, window: float) -> list[Timed]:
    """Observations of one key seen more than once on an interface: one run per transmission.

    Each sighting joins the newest run that has not been on its interface yet and moved within
    `window`; otherwise it starts a new run (a retransmission).
    """
    runs: list[tuple[Timed, set[StreamKey]]] = []
    for t, p in items:
        stream = (p.node, p.interface)
        for obs, seen in reversed(runs):
            if stream not in seen and t - obs[-1][0] <= window:
                obs.append((t, p))
                seen.add(stream)
                break
        else:
            runs.append(([(t, p)], {stream}))
    return [obs for obs, _ in runs]


def _tie_break(tp: tuple[float, PacketSummary]) -> tuple[float, str, str, int]:
    return (tp[0], tp[1].node, tp[1].interface, tp[1].number)


def runs_of(group: list[Entry], offsets: dict[str, float], repeated: bool, window: float) -> list[Run]:
    """One group's observations on the reference clock, in order; one run per transmission."""
    times = [ts - offsets[node] for ts, node, _, _ in group]
    n = len(group)
    if not repeated:
        if n == 1:
            return [(times[0], (group[0][3],), times[0])]
        if len(set(times)) == n:  # no ties: time alone orders them, whatever the input order
            order = sorted(range(n), key=times.__getitem__)
            seen = tuple(group[i][3] for i in order)
            return [(times[order[0]], seen, times[order[-1]])]
    timed = sorted(zip(times, map(ENTRY_PACKET, group), strict=True), key=_tie_break)
    runs = split_transmissions(timed, window) if repeated else [timed]
    return [(run[0][0], tuple(p for _, p in run), run[-1][0]) for run in runs]

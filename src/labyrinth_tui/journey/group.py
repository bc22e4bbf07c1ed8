"""Stitching passes: group by packet key, find each packet's sender, sample clocks, split retransmissions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from labyrinth_tui.journey.clock import ClockSamples
from labyrinth_tui.journey.nat import Flow, NatTable
from labyrinth_tui.journey.phases import dns_id_of
from labyrinth_tui.journey.read import (
    DPORT,
    FLOW_DST,
    FLOW_FLAGS,
    FLOW_PROTOCOL,
    FLOW_SRC,
    KEY_NUMBERS,
    SPORT,
    TS,
    PacketReader,
)
from labyrinth_tui.journey.roles import PathMap, StreamKey
from labyrinth_tui.model.packets import PacketSummary

# (captured ts, (node, interface), the observation): the stream tuple is one object per stream, so a
# group's streams compare and hash without a tuple made per observation
Entry = tuple[float, StreamKey, PacketSummary]
# (flow id, tcp flags, ip_id, seq, ack, payload_hash, dns_id): flat, one tuple made per observation
Key = tuple[Any, ...]
KEY_IDENT = 2  # where (ip_id, seq, ack, payload_hash, dns_id) start in a Key
Run = tuple[float, tuple[PacketSummary, ...], float]  # corrected start, observations in order, end
# sender node, receiver node, source pod ip, destination pod ip
Ends = tuple[str | None, str | None, str, str]

ENTRY_STREAM = itemgetter(1)
ENTRY_PACKET = itemgetter(2)


class Grouping:
    """Observations by packet key: the flow in its client's view, the tcp flags, what never changes."""

    def __init__(self, observations: Iterable[PacketSummary], nat: NatTable, reader: PacketReader) -> None:
        self.flows: list[Flow] = []  # flow id → flow
        self.groups: dict[Key, list[Entry]] = {}
        self.streams: set[StreamKey] = set()
        self.count = 0
        self._ids: dict[Flow, int] = {}
        if reader.row_layout:
            self._read_rows(observations, nat, reader)
        else:
            self._read(observations, nat, reader)
        self.count = sum(map(len, self.groups.values()))

    def _read_rows(self, observations: Iterable[PacketSummary], nat: NatTable, reader: PacketReader) -> None:
        # _read for packets that unpack as rows (today's packed PacketSummary): the same steps, ~15% faster
        raw_ids: dict[tuple[Any, ...], int] = {}
        groups = self.groups
        streams: dict[StreamKey, StreamKey] = {}
        at = reader.index
        unpack, (ts_at, sport_at, dport_at, ip_id_at, seq_at, ack_at, hash_at, dns_at) = reader.narrowed(
            [at[i] for i in (TS, SPORT, DPORT, *KEY_NUMBERS)]
        )
        last_node = last_iface = None
        stream: StreamKey = ("", "")
        for p in observations:
            packed, node, iface, src, dst, protocol, flags, _ = p
            n = unpack(packed)
            raw = (src, dst, protocol, n[sport_at], n[dport_at])
            fid = raw_ids.get(raw)
            if fid is None:
                fid = raw_ids[raw] = self._flow_id(p, nat)
            if iface is not last_iface or node is not last_node:  # a stream's packets mostly come in runs
                stream = streams.setdefault((node, iface), (node, iface))
                last_node, last_iface = node, iface
            key = (fid, flags, n[ip_id_at], n[seq_at], n[ack_at], n[hash_at], n[dns_at])
            if protocol == "DNS" and not key[-1] and p.dns_id is None:  # no dns.id: read the info line
                key = (*key[:-1], dns_id_of(p))
            found = groups.get(key)
            if found is None:
                groups[key] = [(n[ts_at], stream, p)]
            else:
                found.append((n[ts_at], stream, p))
        self.streams.update(streams)

    def _read(self, observations: Iterable[PacketSummary], nat: NatTable, reader: PacketReader) -> None:
        # the same for any PacketSummary storage: a few C-level reads and two dict lookups per observation
        raw_ids: dict[tuple[Any, ...], int] = {}
        groups = self.groups
        streams: dict[StreamKey, StreamKey] = {}
        where_of, flow_of, packed_of, unpack = reader.where, reader.flow, reader.packed, reader.unpack
        at = reader.index
        ts_at, sport_at, dport_at = at[TS], at[SPORT], at[DPORT]
        ident_of = itemgetter(*(at[i] for i in KEY_NUMBERS))
        for p in observations:
            strs = flow_of(p)
            nums = unpack(packed_of(p))
            raw = (strs[FLOW_SRC], strs[FLOW_DST], strs[FLOW_PROTOCOL], nums[sport_at], nums[dport_at])
            fid = raw_ids.get(raw)
            if fid is None:
                fid = raw_ids[raw] = self._flow_id(p, nat)
            key = (fid, strs[FLOW_FLAGS], *ident_of(nums))
            if strs[FLOW_PROTOCOL] == "DNS" and not key[-1] and p.dns_id is None:  # no dns.id: read info
                key = (*key[:-1], dns_id_of(p))
            where = tuple(where_of(p))
            stream = streams.setdefault(where, where)
            entry = (nums[ts_at], stream, p)
            found = groups.get(key)
            if found is None:
                groups[key] = [entry]
            else:
                found.append(entry)
        self.streams.update(streams)

    def _flow_id(self, p: PacketSummary, nat: NatTable) -> int:
        if p.tcp_flags is not None or p.seq is not None:
            l4 = "TCP"
        else:
            l4 = "UDP" if p.sport is not None else p.protocol
        flow = nat.flow(p.src, p.sport, p.dst, p.dport, l4)
        found = self._ids.get(flow)
        if found is None:
            found = self._ids[flow] = len(self.flows)
            self.flows.append(flow)
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
        # a pod's node, or the node itself (its own traffic, or VXLAN that tshark did not decode)
        sender = sender or pod_node.get(src_ip) or node_of.get(src_ip)
        receiver = receiver or pod_node.get(dst_ip) or node_of.get(dst_ip)
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


# The fastest packet each way is what the estimate needs; ~8k packets find it about as well as 1M do.
CLOCK_SAMPLE_TARGET = 8_000


def clock_samples(grouping: Grouping, ends: EndsFinder) -> ClockSamples:
    """Per packet seen on two nodes: the receiver's first sighting minus the sender's last.

    That is the one-way delay plus the receiver's clock offset. With many packets, a share of them
    chosen by their content (seq, IP id, DNS id: the same whatever the input order) is enough; if that
    share misses a direction between two nodes, every packet is used.
    """
    stride = max(1, len(grouping.groups) // CLOCK_SAMPLE_TARGET)
    samples = _clock_samples(grouping, ends, stride)
    if stride > 1 and not samples.both_ways():
        samples = _clock_samples(grouping, ends, 1)
    return samples


def _clock_samples(grouping: Grouping, ends: EndsFinder, stride: int) -> ClockSamples:
    samples = ClockSamples()
    flows = grouping.flows
    for key, group in grouping.groups.items():
        n = len(group)
        if n < 2:
            continue
        if stride > 1 and ((key[3] or 0) ^ (key[2] or 0) ^ (key[6] or 0)) % stride:  # seq ^ ip_id ^ dns_id
            continue
        if len(set(map(ENTRY_STREAM, group))) != n:  # a retransmission: which sighting is which?
            continue
        flow = flows[key[0]]
        sender, receiver, _, _ = ends.known(flow) or ends(flow, list(map(ENTRY_PACKET, group)))
        if sender is None or receiver is None or sender == receiver:
            continue
        left = max([ts for ts, (node, _), _ in group if node == sender], default=None)
        arrived = min([ts for ts, (node, _), _ in group if node == receiver], default=None)
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


def once_per_stream(group: list[Entry]) -> bool:
    return len(group) == 1 or len(set(map(ENTRY_STREAM, group))) == len(group)


def run_of(group: list[Entry], offsets: dict[str, float]) -> Run:
    """A packet seen at most once per interface: its sightings on the reference clock, in order.

    Ties in time are broken by node and interface name (never equal here), not by the input order.
    """
    if len(group) == 1:
        ts, (node, _), p = group[0]
        return (ts - offsets[node], (p,), ts - offsets[node])
    timed = sorted([(ts - offsets[stream[0]], stream, p) for ts, stream, p in group])
    return (timed[0][0], tuple([e[2] for e in timed]), timed[-1][0])


def runs_of(group: list[Entry], offsets: dict[str, float], window: float) -> list[Run]:
    """A key seen more than once on an interface, on the reference clock: one run per transmission."""
    timed = sorted([(ts - offsets[node], p) for ts, (node, _), p in group], key=_tie_break)
    return [(run[0][0], tuple(p for _, p in run), run[-1][0]) for run in split_transmissions(timed, window)]

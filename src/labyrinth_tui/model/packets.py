"""PacketSummary (one packet as seen on one interface) and PacketRing (bounded, counts what it dropped)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PacketSummary:
    """One observation of a packet on one interface of one node.

    src/dst are the inner addresses; for a VXLAN-encapsulated packet the outer_* fields and vni say
    how it travelled between nodes.
    """

    ts: float
    node: str
    interface: str
    number: int
    src: str
    dst: str
    protocol: str
    length: int
    info: str
    sport: int | None = None
    dport: int | None = None
    tcp_flags: str | None = None  # e.g. "SYN", "SYN,ACK"
    seq: int | None = None
    ack: int | None = None
    ip_id: int | None = None
    dns_query: str | None = None
    dns_answer: str | None = None
    outer_src: str | None = None
    outer_dst: str | None = None
    outer_sport: int | None = None
    outer_dport: int | None = None
    vni: int | None = None
    # identity of one packet across hops (model/journey.py): tshark dns.id, dns.qry.type name,
    # dns.flags.rcode (responses only), and a stable hash of the transport payload (e.g. crc32 of udp.payload)
    dns_id: int | None = None
    dns_qtype: str | None = None
    dns_rcode: int | None = None
    payload_hash: int | None = None

    @property
    def encapsulated(self) -> bool:
        return self.vni is not None


class PacketRing:
    """The newest `capacity` packets of a stream. Old packets fall off the front and are counted."""

    __slots__ = ("_items", "capacity", "dropped", "total")

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("a PacketRing holds at least one packet")
        self.capacity = capacity
        self._items: deque[PacketSummary] = deque(maxlen=capacity)
        self.dropped = 0
        self.total = 0

    def append(self, packet: PacketSummary) -> None:
        if len(self._items) == self.capacity:
            self.dropped += 1
        self._items.append(packet)
        self.total += 1

    def extend(self, packets: Iterable[PacketSummary]) -> None:
        for packet in packets:
            self.append(packet)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[PacketSummary]:
        return iter(self._items)

    def __getitem__(self, index: int) -> PacketSummary:
        return self._items[index]

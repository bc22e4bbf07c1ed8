"""PacketSummary (one packet as seen on one interface) and PacketRing (bounded, counts what it dropped)."""

from __future__ import annotations

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
    """The newest `capacity` packets of a stream. Old packets fall off the front and are counted.

    A circular list, not a deque: the packet list reads rows by index from anywhere in the ring
    (render_line for the visible rows), and a deque indexes its middle in O(n).
    """

    __slots__ = ("_head", "_items", "_size", "capacity", "dropped", "total")

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("a PacketRing holds at least one packet")
        self.capacity = capacity
        self._items: list[PacketSummary | None] = [None] * capacity
        self._head = 0  # index of the oldest packet
        self._size = 0
        self.dropped = 0
        self.total = 0

    def append(self, packet: PacketSummary) -> None:
        if self._size == self.capacity:
            self._items[self._head] = packet
            self._head = (self._head + 1) % self.capacity
            self.dropped += 1
        else:
            self._items[(self._head + self._size) % self.capacity] = packet
            self._size += 1
        self.total += 1

    def extend(self, packets: Iterable[PacketSummary]) -> None:
        for packet in packets:
            self.append(packet)

    def clear(self) -> None:
        """Forget the packets (dropped and total keep counting what the stream has seen)."""
        self._items = [None] * self.capacity
        self._head = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[PacketSummary]:
        for i in range(self._size):
            yield self[i]

    def __getitem__(self, index: int) -> PacketSummary:
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(f"packet {index} is not in the ring (it holds {self._size})")
        item = self._items[(self._head + index) % self.capacity]
        assert item is not None
        return item

"""PacketSummary (one packet on one interface, ~250 bytes kept) and PacketRing (bounded, counts drops)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import Field, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class _PacketFields:
    """The schema of a PacketSummary: its public fields, their order, types and defaults.

    PacketSummary stores them packed (see below) but answers `dataclasses.fields`, `asdict` and
    `replace` with exactly these, so code written against the dataclass keeps working.
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
    seq: int | None = None  # raw (absolute) sequence number: relative ones differ per capture start
    ack: int | None = None
    ip_id: int | None = None
    dns_query: str | None = None
    dns_answer: str | None = None  # "10.96.0.10", "fd00::1,10.0.0.1", or the rcode name ("NXDOMAIN")
    outer_src: str | None = None
    outer_dst: str | None = None
    outer_sport: int | None = None
    outer_dport: int | None = None
    vni: int | None = None
    # identity of one packet across hops (journey/stitch.py): tshark dns.id, dns.qry.type name,
    # dns.flags.rcode (responses only), and a stable hash of the transport payload (e.g. crc32 of udp.payload)
    dns_id: int | None = None
    dns_qtype: str | None = None
    dns_rcode: int | None = None
    payload_hash: int | None = None


PACKET_FIELDS: tuple[str, ...] = tuple(_PacketFields.__dataclass_fields__)

# The numbers of a packet, packed: ts, number, length, seq, ack, vni, payload_hash, then the 16-bit ones
# (sport, dport, ip_id, outer_sport, outer_dport, dns_id, dns_rcode) and a bit per optional field that
# is present. One bytes object (numbers + UTF-8 info) instead of ~15 Python ints and a str: a 100k ring
# keeps ~25 MB instead of ~67 MB.
NUMBERS = struct.Struct("<dIIIIIqHHHHHHHH")
HAS_SPORT, HAS_DPORT, HAS_SEQ, HAS_ACK, HAS_IP_ID = 0x001, 0x002, 0x004, 0x008, 0x010
HAS_OUTER_SPORT, HAS_OUTER_DPORT, HAS_VNI, HAS_DNS_ID, HAS_DNS_RCODE = 0x020, 0x040, 0x080, 0x100, 0x200
HAS_PAYLOAD_HASH = 0x400
_NUMBERS_SIZE = NUMBERS.size
_unpack = NUMBERS.unpack_from
_new = tuple.__new__

Extra = tuple[str | None, str | None, str | None, str | None, str | None]
"""(dns_query, dns_answer, dns_qtype, outer_src, outer_dst): rare, repetitive, so shared between packets."""


_NO_EXTRA: Extra = (None, None, None, None, None)


def _opt(value: int | None, bit: int) -> tuple[int, int]:
    return (0, 0) if value is None else (value, bit)


class PacketSummary(tuple):  # type: ignore[type-arg]
    """One observation of a packet on one interface of one node.

    src/dst are the inner addresses; for a VXLAN-encapsulated packet the outer_* fields and vni say
    how it travelled between nodes. Built and read like the frozen dataclass it was (same fields,
    same constructor, `dataclasses.fields/asdict/replace` work), but stored as a tuple of
    (numbers+info bytes, node, interface, src, dst, protocol, tcp_flags, extra) so the strings a
    stream repeats are shared and a packet costs ~250 bytes, not ~670 (issue 6: <= 300).
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]] = _PacketFields.__dataclass_fields__

    def __new__(
        cls,
        ts: float,
        node: str,
        interface: str,
        number: int,
        src: str,
        dst: str,
        protocol: str,
        length: int,
        info: str,
        sport: int | None = None,
        dport: int | None = None,
        tcp_flags: str | None = None,
        seq: int | None = None,
        ack: int | None = None,
        ip_id: int | None = None,
        dns_query: str | None = None,
        dns_answer: str | None = None,
        outer_src: str | None = None,
        outer_dst: str | None = None,
        outer_sport: int | None = None,
        outer_dport: int | None = None,
        vni: int | None = None,
        dns_id: int | None = None,
        dns_qtype: str | None = None,
        dns_rcode: int | None = None,
        payload_hash: int | None = None,
    ) -> PacketSummary:
        present = 0
        optional: list[int] = []
        for value, bit in (
            _opt(seq, HAS_SEQ),
            _opt(ack, HAS_ACK),
            _opt(vni, HAS_VNI),
            _opt(payload_hash, HAS_PAYLOAD_HASH),
            _opt(sport, HAS_SPORT),
            _opt(dport, HAS_DPORT),
            _opt(ip_id, HAS_IP_ID),
            _opt(outer_sport, HAS_OUTER_SPORT),
            _opt(outer_dport, HAS_OUTER_DPORT),
            _opt(dns_id, HAS_DNS_ID),
            _opt(dns_rcode, HAS_DNS_RCODE),
        ):
            optional.append(value)
            present |= bit
        try:
            numbers = NUMBERS.pack(ts, number, length, *optional, present)
        except struct.error as exc:
            raise ValueError(f"PacketSummary: a number is out of range or not a number ({exc})") from None
        extra: Extra | None = (dns_query, dns_answer, dns_qtype, outer_src, outer_dst)
        if extra == _NO_EXTRA:
            extra = None
        raw = numbers + info.encode("utf-8", "surrogatepass")
        return _new(cls, (raw, node, interface, src, dst, protocol, tcp_flags, extra))

    @classmethod
    def from_packed(
        cls,
        raw: bytes,
        node: str,
        interface: str,
        src: str,
        dst: str,
        protocol: str,
        tcp_flags: str | None,
        extra: Extra | None,
    ) -> PacketSummary:
        """The fast path for parsers: `raw` is NUMBERS.pack(...) followed by the UTF-8 info line."""
        return _new(cls, (raw, node, interface, src, dst, protocol, tcp_flags, extra))

    # -- the strings, kept as shared references
    @property
    def node(self) -> str:
        return self[1]  # type: ignore[no-any-return]

    @property
    def interface(self) -> str:
        return self[2]  # type: ignore[no-any-return]

    @property
    def src(self) -> str:
        return self[3]  # type: ignore[no-any-return]

    @property
    def dst(self) -> str:
        return self[4]  # type: ignore[no-any-return]

    @property
    def protocol(self) -> str:
        return self[5]  # type: ignore[no-any-return]

    @property
    def tcp_flags(self) -> str | None:
        return self[6]  # type: ignore[no-any-return]

    def _extra(self, index: int) -> str | None:
        extra: Extra | None = self[7]
        return None if extra is None else extra[index]

    @property
    def dns_query(self) -> str | None:
        return self._extra(0)

    @property
    def dns_answer(self) -> str | None:
        return self._extra(1)

    @property
    def dns_qtype(self) -> str | None:
        return self._extra(2)

    @property
    def outer_src(self) -> str | None:
        return self._extra(3)

    @property
    def outer_dst(self) -> str | None:
        return self._extra(4)

    @property
    def info(self) -> str:
        raw: bytes = self[0]
        return raw[_NUMBERS_SIZE:].decode("utf-8", "surrogatepass")

    # -- the numbers, unpacked on read
    @property
    def ts(self) -> float:
        return _unpack(self[0])[0]  # type: ignore[no-any-return]

    @property
    def number(self) -> int:
        return _unpack(self[0])[1]  # type: ignore[no-any-return]

    @property
    def length(self) -> int:
        return _unpack(self[0])[2]  # type: ignore[no-any-return]

    def _optional(self, index: int, bit: int) -> int | None:
        values = _unpack(self[0])
        return values[index] if values[14] & bit else None

    @property
    def seq(self) -> int | None:
        return self._optional(3, HAS_SEQ)

    @property
    def ack(self) -> int | None:
        return self._optional(4, HAS_ACK)

    @property
    def vni(self) -> int | None:
        return self._optional(5, HAS_VNI)

    @property
    def payload_hash(self) -> int | None:
        return self._optional(6, HAS_PAYLOAD_HASH)

    @property
    def sport(self) -> int | None:
        return self._optional(7, HAS_SPORT)

    @property
    def dport(self) -> int | None:
        return self._optional(8, HAS_DPORT)

    @property
    def ip_id(self) -> int | None:
        return self._optional(9, HAS_IP_ID)

    @property
    def outer_sport(self) -> int | None:
        return self._optional(10, HAS_OUTER_SPORT)

    @property
    def outer_dport(self) -> int | None:
        return self._optional(11, HAS_OUTER_DPORT)

    @property
    def dns_id(self) -> int | None:
        return self._optional(12, HAS_DNS_ID)

    @property
    def dns_rcode(self) -> int | None:
        return self._optional(13, HAS_DNS_RCODE)

    @property
    def encapsulated(self) -> bool:
        return self.vni is not None

    def as_dict(self) -> dict[str, Any]:
        """Every public field by name, None included (JSON-ready: str, int, float, None)."""
        return {name: getattr(self, name) for name in PACKET_FIELDS}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v is not None)
        return f"PacketSummary({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # tuple's own pickling would call __new__ with the internal tuple: rebuild from the packed form
        # instead (as_dict per packet made pickling a 5k pkt/s stream cost more than the stream's parse;
        # `labyrinth serve` pickles every packet between its processes). Pickles are never stored.
        return (PacketSummary.from_packed, tuple(self))

    def __copy__(self) -> PacketSummary:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PacketSummary:
        return self


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
        """Append them all: one or two slice writes, not a Python call per packet (the list's ingest)."""
        items = packets if isinstance(packets, list | tuple) else list(packets)
        n, capacity = len(items), self.capacity
        if n == 0:
            return
        self.total += n
        overflow = self._size + n - capacity
        if n >= capacity:  # only the newest `capacity` stay
            self._items = list(items[n - capacity :])
            self._head, self._size = 0, capacity
            self.dropped += overflow
            return
        tail = (self._head + self._size) % capacity
        first = min(n, capacity - tail)
        self._items[tail : tail + first] = items[:first]
        if first < n:  # wrapped round to the front
            self._items[: n - first] = items[first:]
        if overflow > 0:  # the oldest were overwritten
            self._head = (self._head + overflow) % capacity
            self._size = capacity
            self.dropped += overflow
        else:
            self._size += n

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

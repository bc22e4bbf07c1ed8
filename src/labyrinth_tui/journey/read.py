"""Reading the fields that identify a packet from a million PacketSummaries fast, whatever their storage."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from labyrinth_tui.model import packets
from labyrinth_tui.model.packets import PacketSummary

# The numbers stitching reads, in this order, whichever way they are read
NUMBER_FIELDS = (
    *("ts", "sport", "dport", "ip_id", "seq", "ack", "payload_hash", "dns_id", "vni"),
    *("outer_sport", "outer_dport"),
)
TS, SPORT, DPORT, IP_ID, SEQ, ACK, PAYLOAD_HASH, DNS_ID, VNI = range(9)
OUTER_SPORT, OUTER_DPORT = 9, 10
# What stays the same on every hop, in key order: IP id first (a retransmission's key is the rest),
# DNS id last (filled from the info line when the capture did not give it)
KEY_NUMBERS = (IP_ID, SEQ, ACK, PAYLOAD_HASH, DNS_ID)
# The strings, in this order: where it was seen, then what the flow is
STRING_FIELDS = ("node", "interface", "src", "dst", "protocol", "tcp_flags")
NODE, INTERFACE, SRC, DST, PROTOCOL, TCP_FLAGS = range(len(STRING_FIELDS))
FLOW_STRINGS = (SRC, DST, PROTOCOL, TCP_FLAGS)
FLOW_SRC, FLOW_DST, FLOW_PROTOCOL, FLOW_FLAGS = range(len(FLOW_STRINGS))


@dataclass(frozen=True, slots=True)
class PacketReader:
    """where(p) → (node, interface); flow(p) → FLOW_STRINGS; unpack(packed(p)) → the numbers, where
    index[i] is NUMBER_FIELDS[i].

    Two C-level calls per packet and no Python frame: that is most of what stitching 1M packets costs.

    An absent optional number may read as 0 on the fast path (None on the attribute path): keys only
    compare packets read by the same reader, so either is consistent.
    """

    where: Callable[[PacketSummary], tuple[Any, ...]]
    flow: Callable[[PacketSummary], tuple[Any, ...]]
    packed: Callable[[PacketSummary], Any]
    unpack: Callable[[Any], tuple[Any, ...]]
    index: tuple[int, ...]  # position of each NUMBER_FIELDS entry in the numbers
    fast: bool
    # the packet itself unpacks as (packed numbers, *STRING_FIELDS, anything): one step, no getters
    row_layout: bool = False
    # position in the numbers of the word that says which optional ones are present (absent ones read
    # as 0 on the fast path): with it, numbers that compare equal mean the same field values
    presence: int | None = None
    # the struct format the numbers are packed with, when known (packed_reader): see narrowed()
    layout: str | None = None

    def numbers(self, p: PacketSummary) -> tuple[Any, ...]:
        return self.unpack(self.packed(p))

    def narrowed(self, wanted: Sequence[int]) -> tuple[Callable[[Any], tuple[Any, ...]], tuple[int, ...]]:
        """An unpack of only the numbers at `wanted` (positions in `unpack`'s result, as in `index`), and
        where each of them lands in its result. The others are skipped as pad bytes, so no int or float is
        made for them: 8 of the 15 numbers cost 0.21 s per million packets, all 15 0.27 s. The full
        unpack when the layout is unknown or has counts or alignment."""
        fmt = self.layout
        if fmt is None or fmt[:1] not in ("<", ">", "!", "=") or not fmt[1:].isalpha():
            return self.unpack, tuple(wanted)
        order, codes = fmt[0], fmt[1:]
        keep = sorted(set(wanted))
        parts = [code if i in keep else f"{struct.calcsize(order + code)}x" for i, code in enumerate(codes)]
        return struct.Struct(order + "".join(parts)).unpack_from, tuple(keep.index(w) for w in wanted)


def attribute_reader() -> PacketReader:
    """Always correct: one attribute read per field."""
    every = tuple(range(len(NUMBER_FIELDS)))
    names = [STRING_FIELDS[i] for i in FLOW_STRINGS]
    return PacketReader(
        attrgetter("node", "interface"), attrgetter(*names), attrgetter(*NUMBER_FIELDS), tuple, every, False
    )


_PROBE_NUMBERS = {  # distinct values, so each one's position in the packed numbers can be found
    "ts": 1234.5,
    "sport": 40001,
    "dport": 40002,
    "ip_id": 40003,
    "seq": 3000000001,
    "ack": 3000000002,
    "payload_hash": 3000000003,
    "dns_id": 40004,
    "vni": 40005,
    "outer_sport": 40006,
    "outer_dport": 40007,
}
_PROBE_STRINGS = {
    "node": "probe-node",
    "interface": "probe-iface",
    "src": "probe-src",
    "dst": "probe-dst",
    "protocol": "probe-proto",
    "tcp_flags": "probe-flags",
}


def packed_reader() -> PacketReader | None:
    """One unpack per packet when PacketSummary keeps its numbers packed (model/packets.py, issue 6).

    The layout is not assumed: a probe packet with distinct values is built and every field is found
    in it, or None is returned and stitching reads attributes instead.
    """
    numbers_struct = getattr(packets, "NUMBERS", None)
    if numbers_struct is None:
        return None
    try:
        probe = PacketSummary(**_PROBE_NUMBERS, **_PROBE_STRINGS, number=7, length=9, info="probe")  # type: ignore[arg-type]
        if not isinstance(probe, tuple):
            return None
        raw_at = [i for i, v in enumerate(probe) if isinstance(v, bytes | bytearray)]
        if len(raw_at) != 1:
            return None
        unpack = numbers_struct.unpack_from
        unpacked = unpack(probe[raw_at[0]])
        index = tuple(unpacked.index(_PROBE_NUMBERS[name]) for name in NUMBER_FIELDS)
        string_at = tuple(list(probe).index(_PROBE_STRINGS[name]) for name in STRING_FIELDS)
        # the presence word: the one number, other than the fields, that differs when all optionals are absent
        bare = PacketSummary(**_PROBE_STRINGS, ts=1234.5, number=7, length=9, info="probe")  # type: ignore[arg-type]
        bare_numbers = unpack(bare[raw_at[0]])
    except (ValueError, TypeError, AttributeError):
        return None
    row_layout = len(probe) == len(STRING_FIELDS) + 2 and raw_at == [0] and string_at == (1, 2, 3, 4, 5, 6)
    pairs = enumerate(zip(unpacked, bare_numbers, strict=True))
    differ = [i for i, (a, b) in pairs if a != b and i not in index]
    reader = PacketReader(
        itemgetter(string_at[NODE], string_at[INTERFACE]),
        itemgetter(*(string_at[i] for i in FLOW_STRINGS)),
        itemgetter(raw_at[0]),
        unpack,
        index,
        True,
        row_layout,
        differ[0] if len(differ) == 1 else None,
        getattr(numbers_struct, "format", None),
    )
    # the probe must read back exactly as its attributes say
    nums = reader.numbers(probe)
    if [nums[i] for i in index] != [getattr(probe, n) for n in NUMBER_FIELDS]:
        return None
    if list(reader.where(probe)) != [probe.node, probe.interface]:
        return None
    if list(reader.flow(probe)) != [getattr(probe, STRING_FIELDS[i]) for i in FLOW_STRINGS]:
        return None
    return reader


def default_reader() -> PacketReader:
    return packed_reader() or attribute_reader()

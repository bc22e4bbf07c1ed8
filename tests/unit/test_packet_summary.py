"""PacketSummary: packed storage that reads and behaves like the frozen dataclass it replaced."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labyrinth_tui.model.packets import PACKET_FIELDS, PacketSummary

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
text = st.text(max_size=80)  # any Unicode, lone surrogates included
maybe = st.none


@st.composite
def packet_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "ts": draw(st.floats(0, 4e9, allow_nan=False)),
        "node": draw(text),
        "interface": draw(text),
        "number": draw(u32),
        "src": draw(text),
        "dst": draw(text),
        "protocol": draw(text),
        "length": draw(u32),
        "info": draw(text),
        "sport": draw(maybe() | u16),
        "dport": draw(maybe() | u16),
        "tcp_flags": draw(maybe() | st.sampled_from(["SYN", "SYN,ACK", "", "FIN,PSH,ACK"])),
        "seq": draw(maybe() | u32),
        "ack": draw(maybe() | u32),
        "ip_id": draw(maybe() | u16),
        "dns_query": draw(maybe() | text),
        "dns_answer": draw(maybe() | text),
        "outer_src": draw(maybe() | text),
        "outer_dst": draw(maybe() | text),
        "outer_sport": draw(maybe() | u16),
        "outer_dport": draw(maybe() | u16),
        "vni": draw(maybe() | st.integers(0, 0xFF_FFFF)),
        "dns_id": draw(maybe() | u16),
        "dns_qtype": draw(maybe() | st.sampled_from(["A", "AAAA", "SRV"])),
        "dns_rcode": draw(maybe() | st.integers(0, 4095)),
        "payload_hash": draw(maybe() | st.integers(-(2**63), 2**63 - 1)),
    }


@given(packet_fields())
def test_every_field_reads_back_exactly(fields: dict[str, Any]) -> None:
    packet = PacketSummary(**fields)
    assert packet.as_dict() == fields
    assert dataclasses.asdict(packet) == fields
    assert packet.encapsulated == (fields["vni"] is not None)


@given(packet_fields())
def test_it_pickles_copies_and_compares_by_value(fields: dict[str, Any]) -> None:
    packet = PacketSummary(**fields)
    again = PacketSummary(**fields)
    assert packet == again and hash(packet) == hash(again)
    assert pickle.loads(pickle.dumps(packet)) == packet
    assert copy.deepcopy(packet) == packet


def test_dataclass_tools_work_as_before() -> None:
    packet = PacketSummary(
        1.5, "node-1", "ens4", 7, "10.0.1.15", "10.0.2.215", "TCP", 74, "57074 → 8080 [SYN]"
    )
    assert tuple(f.name for f in dataclasses.fields(PacketSummary)) == PACKET_FIELDS
    assert PACKET_FIELDS[:9] == (
        "ts",
        "node",
        "interface",
        "number",
        "src",
        "dst",
        "protocol",
        "length",
        "info",
    )
    later = dataclasses.replace(packet, seq=2276503845, tcp_flags="SYN")
    assert (later.seq, later.tcp_flags, later.number, later.info) == (
        2276503845,
        "SYN",
        7,
        "57074 → 8080 [SYN]",
    )
    assert packet.seq is None  # replace made a new one
    assert "src='10.0.1.15'" in repr(later) and "seq=2276503845" in repr(later)
    json.dumps(later.as_dict())  # JSON-ready


def test_it_is_immutable() -> None:
    packet = PacketSummary(1.5, "node-1", "ens4", 7, "10.0.1.15", "10.0.2.215", "TCP", 74, "x")
    with pytest.raises(AttributeError):
        packet.src = "10.0.0.1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [("sport", 65536), ("seq", 2**32), ("ip_id", -1), ("number", -3), ("vni", 2**32), ("ts", "soon")],
)
def test_a_number_out_of_range_is_a_clear_error(field: str, value: object) -> None:
    base: dict[str, Any] = dict(
        ts=1.0, node="n", interface="i", number=1, src="a", dst="b", protocol="TCP", length=60, info=""
    )
    with pytest.raises(ValueError, match="out of range or not a number"):
        PacketSummary(**{**base, field: value})

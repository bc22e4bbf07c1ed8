"""The packed reader's narrowed unpack reads exactly what the full one does, for the numbers asked."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from labyrinth_tui.journey.read import NUMBER_FIELDS, PacketReader, packed_reader
from labyrinth_tui.model.packets import PacketSummary

ports = st.one_of(st.none(), st.integers(0, 65535))
u32 = st.one_of(st.none(), st.integers(0, 2**32 - 1))
packets = st.builds(
    PacketSummary,
    ts=st.floats(0, 1e10, allow_nan=False),
    node=st.just("node-1"),
    interface=st.just("ens4"),
    number=st.integers(0, 2**32 - 1),
    src=st.just("10.0.1.15"),
    dst=st.just("10.0.2.215"),
    protocol=st.just("TCP"),
    length=st.integers(0, 2**32 - 1),
    info=st.text(max_size=5),
    sport=ports,
    dport=ports,
    seq=u32,
    ack=u32,
    ip_id=ports,
    vni=st.one_of(st.none(), st.integers(0, 2**24 - 1)),
    outer_sport=ports,
    outer_dport=ports,
    dns_id=ports,
    payload_hash=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
)


def _reader() -> PacketReader:
    reader = packed_reader()
    assert reader is not None and reader.layout is not None  # today's PacketSummary is packed
    return reader


@settings(max_examples=300, deadline=None)
@given(packets, st.sets(st.sampled_from(range(len(NUMBER_FIELDS))), min_size=1))
def test_a_narrowed_unpack_reads_what_the_full_one_does(packet: PacketSummary, fields: set[int]) -> None:
    reader = _reader()
    assert reader.presence is not None
    wanted = [reader.index[f] for f in sorted(fields)] + [reader.presence]
    unpack, where = reader.narrowed(wanted)
    full = reader.numbers(packet)
    narrow = unpack(packet[0])
    assert [narrow[i] for i in where] == [full[w] for w in wanted]
    assert len(narrow) == len(set(wanted)) < len(full)  # the others were skipped


def test_an_unknown_or_aligned_layout_falls_back_to_the_full_unpack() -> None:
    reader = _reader()
    for layout in (None, "@dII", "<d2I"):
        same = replace(reader, layout=layout)
        unpack, where = same.narrowed([3, 0])
        assert unpack is same.unpack and where == (3, 0)

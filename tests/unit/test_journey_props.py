"""Properties of stitching: input order, clock skew and the way packets are read never change the journeys."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from labyrinth_tui.journey import group as journey_group
from labyrinth_tui.journey.clock import ClockMethod
from labyrinth_tui.journey.hop_build import _build_by_attribute
from labyrinth_tui.journey.read import attribute_reader, packed_reader
from labyrinth_tui.journey.stitch import StitchResult, stitch
from labyrinth_tui.model.packets import PacketSummary
from tests.fakes.article import NODE2, SERVICES
from tests.fakes.journey_article import ROLES, Capture, tcp

PORTS = (38430, 41208, 40686, 50210)

# one connection: client port, start time, and per extra data segment (lost after n hops | None, resent?)
connection = st.tuples(
    st.sampled_from(PORTS),
    st.floats(0.0, 5.0, allow_nan=False),
    st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 5)), st.booleans()), max_size=4),
)
scenarios = st.lists(connection, min_size=1, max_size=4, unique_by=lambda c: c[0])


def _capture(conns: list[tuple[int, float, list[tuple[int | None, bool]]]], skew: float) -> Capture:
    cap = Capture(skew={NODE2: skew})
    for port, t0, segments in conns:
        cap.send(t0, tcp(port, 9999, "SYN", 1000, 0, 0))
        cap.send(t0 + 0.0005, tcp(9999, port, "SYN,ACK", 9000, 1001, 0, reply=True))
        cap.send(t0 + 0.001, tcp(port, 9999, "ACK", 1001, 9001, 1, length=66))
        seq = 1001
        for i, (lost_after, resent) in enumerate(segments):
            t = t0 + 0.002 + i * 0.5
            segment = tcp(port, 9999, "PSH,ACK", seq, 9001, 2 + i, payload_hash=port * 100 + i, length=80)
            cap.send(t, segment, drop_after=lost_after)
            if resent:
                cap.send(t + 0.25, segment)
            seq += 14
    return cap


@contextmanager
def clock_sample_target(n: int) -> Iterator[None]:
    """Makes the clock estimate sample packets as it does for big captures: ~1 in len(groups)/target."""
    saved = journey_group.CLOCK_SAMPLE_TARGET
    journey_group.CLOCK_SAMPLE_TARGET = n
    try:
        yield
    finally:
        journey_group.CLOCK_SAMPLE_TARGET = saved


def _run(observations: list[PacketSummary], **kwargs: object) -> StitchResult:
    return stitch(observations, SERVICES, ROLES, captured=tuple(ROLES), **kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(scenarios, st.floats(-3.0, 3.0, allow_nan=False), st.randoms(use_true_random=False))
def test_shuffling_the_input_never_changes_the_journeys(conns, skew, rnd) -> None:  # type: ignore[no-untyped-def]
    cap = _capture(conns, skew)
    shuffled = list(cap.observations)
    rnd.shuffle(shuffled)
    assert _run(shuffled).journeys == _run(cap.observations).journeys


@settings(max_examples=60, deadline=None)
@given(scenarios, st.floats(-3.0, 3.0, allow_nan=False))
def test_every_observation_is_in_exactly_one_journey_of_one_packet(conns, skew) -> None:  # type: ignore[no-untyped-def]
    cap = _capture(conns, skew)
    result = _run(cap.observations)
    assert Counter(p for j in result.journeys for p in j.observations) == Counter(cap.observations)
    for journey in result.journeys:
        assert len({(p.seq, p.ack, p.tcp_flags, p.ip_id) for p in journey.observations}) == 1
        assert len({p.sport if p.src == "10.0.1.15" else p.dport for p in journey.observations}) == 1
        assert len(set(journey.streams)) == len(journey.streams)  # a hop once per journey
        assert all(h.since_previous is None or h.since_previous >= 0 for h in journey.hops)


def _identity(journey: object) -> list[tuple[object, ...]]:
    """A journey's packets without their times (which the skew changes): the same in both runs."""
    return sorted(
        (p.node, p.interface, p.sport, p.dport, p.seq, p.ack, p.tcp_flags, p.ip_id)  # type: ignore[attr-defined]
        for p in journey.observations  # type: ignore[attr-defined]
    )


@settings(max_examples=60, deadline=None)
@given(scenarios, st.floats(-3.0, 3.0, allow_nan=False).filter(lambda s: abs(s) > 1e-3))
@example(conns=[(38430, 6.568778769655151e-20, []), (41208, 0.0, [])], skew=1.0)  # found in CI
def test_a_skewed_node2_clock_is_corrected_away(conns, skew) -> None:  # type: ignore[no-untyped-def]
    skewed = _run(_capture(conns, skew).observations)
    true = _run(_capture(conns, 0.0).observations)
    assert abs(skewed.clock_offsets[NODE2].offset - skew) < 1e-6
    assert len(skewed.journeys) == len(true.journeys)
    # paired by what they carry, not by position: two connections opened in the same instant may list
    # in either order once the skew is taken off (1.0 + 6.6e-20 - 1.0 == 0.0 in floats)
    for a, b in zip(
        sorted(skewed.journeys, key=_identity), sorted(true.journeys, key=_identity), strict=True
    ):
        assert [(h.node, h.interface, h.src, h.dst) for h in a.hops] == [
            (h.node, h.interface, h.src, h.dst) for h in b.hops
        ]
        assert all(abs(x.time - y.time) < 1e-6 for x, y in zip(a.hops, b.hops, strict=True))
        assert (a.transmission, a.vanished, a.expected_next) == (b.transmission, b.vanished, b.expected_next)


@settings(max_examples=30, deadline=None)
@given(scenarios, st.floats(-3.0, 3.0, allow_nan=False))
def test_the_packed_fast_path_reads_what_the_attributes_say(conns, skew) -> None:  # type: ignore[no-untyped-def]
    observations = _capture(conns, skew).observations
    packed = packed_reader()
    assert packed is not None and packed.row_layout  # PacketSummary is packed today: the fast path is taken
    expected = _run(observations, reader=attribute_reader()).journeys
    assert _run(observations).journeys == expected
    assert _run(observations, reader=replace(packed, row_layout=False)).journeys == expected
    # and the hops: built from the packed rows (the default) as read attribute by attribute
    by_rows = [j.hops for j in expected]
    assert by_rows == [_build_by_attribute(j, j.ctx) for j in expected if j.ctx is not None]
    assert any(h.outer and h.changes for hops in by_rows for h in hops)  # VXLAN hops were compared


@settings(max_examples=30, deadline=None)
@given(scenarios, st.floats(-3.0, 3.0, allow_nan=False), st.randoms(use_true_random=False))
def test_sampling_packets_for_the_clock_finds_the_same_offset(conns, skew, rnd) -> None:  # type: ignore[no-untyped-def]
    observations = _capture(conns, skew).observations
    full = _run(observations)
    with clock_sample_target(2):  # a share of the packets, as for captures of more than 40k packets
        sampled = _run(observations)
        shuffled = list(observations)
        rnd.shuffle(shuffled)
        assert _run(shuffled).journeys == sampled.journeys
    assert sampled.clock_offsets[NODE2].offset == pytest.approx(full.clock_offsets[NODE2].offset, abs=1e-9)
    assert sampled.clock_offsets[NODE2].method is full.clock_offsets[NODE2].method


def test_a_sample_that_misses_a_direction_falls_back_to_every_packet() -> None:
    cap = Capture(skew={NODE2: 0.25})
    for i in range(40):  # requests, half of them in the sample (1 in 2: seq ^ IP id even)
        cap.send(i * 0.01, tcp(38430, 9999, "PSH,ACK", 1001 + 10 * i, 9001, 2 + i, payload_hash=i))
    cap.send(0.5, tcp(9999, 38430, "ACK", 9001, 1401, 0, reply=True, length=66))  # one reply: 9001 is odd
    with clock_sample_target(20):
        result = _run(cap.observations)
    assert result.clock_offsets[NODE2].method is ClockMethod.TWO_WAY
    assert result.clock_offsets[NODE2].offset == pytest.approx(0.25, abs=1e-9)

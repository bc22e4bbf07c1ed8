"""PacketRing: bounded, newest kept, dropped counted, any row readable by index."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labyrinth_tui.model.packets import PacketRing, PacketSummary


def pkt(n: int) -> PacketSummary:
    return PacketSummary(float(n), "node-1", "ens4", n, "10.0.1.15", "10.0.2.215", "TCP", 74, f"#{n}")


@given(st.integers(1, 50), st.integers(0, 200))
def test_ring_keeps_the_newest_and_counts_the_dropped(capacity: int, count: int) -> None:
    ring = PacketRing(capacity)
    ring.extend(pkt(n) for n in range(count))
    assert len(ring) == min(capacity, count)
    assert ring.dropped == max(0, count - capacity)
    assert ring.total == count
    assert [p.number for p in ring] == list(range(max(0, count - capacity), count))
    if count:
        assert ring[-1].number == count - 1
        assert ring[0].number == max(0, count - capacity)


@given(st.integers(1, 30), st.lists(st.integers(0, 70), max_size=8), st.booleans())
def test_batches_of_any_size_keep_what_one_by_one_keeps(capacity: int, batches: list[int], gen: bool) -> None:
    """extend() writes slices; what it keeps, in what order, and what it counts are append()'s."""
    by_batch, one_by_one = PacketRing(capacity), PacketRing(capacity)
    n = 0
    for size in batches:
        batch = [pkt(i) for i in range(n, n + size)]
        n += size
        by_batch.extend(iter(batch) if gen else batch)
        for packet in batch:
            one_by_one.append(packet)
        assert [p.number for p in by_batch] == [p.number for p in one_by_one]
        assert (len(by_batch), by_batch.dropped, by_batch.total) == (
            len(one_by_one),
            one_by_one.dropped,
            one_by_one.total,
        )
        if len(by_batch):
            assert by_batch[-1].number == n - 1


def test_clear_keeps_the_counters_and_index_errors_are_clear() -> None:
    ring = PacketRing(3)
    ring.extend(pkt(n) for n in range(5))
    ring.clear()
    assert len(ring) == 0 and ring.total == 5 and ring.dropped == 2
    with pytest.raises(IndexError, match="holds 0"):
        ring[0]
    with pytest.raises(ValueError):
        PacketRing(0)

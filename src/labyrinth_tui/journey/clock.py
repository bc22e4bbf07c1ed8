"""Per-node clock offsets, NTP-style, from packets seen leaving one node and arriving at another."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class ClockMethod(StrEnum):
    REFERENCE = "reference"  # the clock every other node is corrected to
    TWO_WAY = "two-way"  # packets crossed in both directions: offset = half the difference of min delays
    ONE_WAY = "one-way"  # packets crossed in one direction only: assumes the fastest one took no time
    NONE = "none"  # no packet crossed between this node and the others: left uncorrected


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """How far a node's clock is ahead of the reference node's. Corrected time = captured time − offset."""

    node: str
    offset: float
    uncertainty: float | None  # ± seconds: half the fastest round trip; None when it cannot be bounded
    samples: int  # packets that crossed between this node and the one it was compared with
    method: ClockMethod
    compared_with: str | None = None


@dataclass(frozen=True, slots=True)
class _Edge:
    theta: float  # clock(b) − clock(a)
    uncertainty: float | None
    samples: int
    method: ClockMethod


class ClockSamples:
    """The fastest apparent one-way delay per (sender, receiver) pair of nodes, in their local clocks.

    The minimum is what survives queueing: over many packets, the fastest one in each direction took
    about the same time on the wire, so the asymmetry of the two minima is twice the clock offset.
    """

    __slots__ = ("_count", "_min")

    def __init__(self) -> None:
        self._min: dict[tuple[str, str], float] = {}
        self._count: dict[tuple[str, str], int] = {}

    def add(self, sender: str, receiver: str, delay: float) -> None:
        key = (sender, receiver)
        current = self._min.get(key)
        if current is None or delay < current:
            self._min[key] = delay
        self._count[key] = self._count.get(key, 0) + 1

    def both_ways(self) -> bool:
        """Some packets crossed, and every pair of nodes that exchanged packets did so both ways."""
        return bool(self._min) and all((b, a) in self._min for a, b in self._min)

    def _edge(self, a: str, b: str) -> _Edge | None:
        ab = self._min.get((a, b))
        ba = self._min.get((b, a))
        samples = self._count.get((a, b), 0) + self._count.get((b, a), 0)
        if ab is not None and ba is not None:
            return _Edge((ab - ba) / 2, abs(ab + ba) / 2, samples, ClockMethod.TWO_WAY)
        if ab is not None:
            return _Edge(ab, None, samples, ClockMethod.ONE_WAY)
        if ba is not None:
            return _Edge(-ba, None, samples, ClockMethod.ONE_WAY)
        return None

    def estimate(self, nodes: Iterable[str], reference: str | None = None) -> dict[str, ClockOffset]:
        """Every node's offset from the reference (default: the first node by name).

        Nodes are reached from the reference through two-way comparisons first, one-way ones after.
        """
        names = sorted(set(nodes) | {n for pair in self._min for n in pair})
        if not names:
            return {}
        ref = reference if reference is not None else names[0]
        if ref not in names:
            names = sorted([*names, ref])
        offsets: dict[str, ClockOffset] = {ref: ClockOffset(ref, 0.0, 0.0, 0, ClockMethod.REFERENCE)}
        for allowed in ((ClockMethod.TWO_WAY,), (ClockMethod.TWO_WAY, ClockMethod.ONE_WAY)):
            frontier = sorted(offsets)
            while frontier:
                nxt: list[str] = []
                for a in frontier:
                    for b in names:
                        if b in offsets:
                            continue
                        edge = self._edge(a, b)
                        if edge is None or edge.method not in allowed:
                            continue
                        base = offsets[a]
                        unc = (
                            None
                            if edge.uncertainty is None or base.uncertainty is None
                            else base.uncertainty + edge.uncertainty
                        )
                        offset = base.offset + edge.theta
                        offsets[b] = ClockOffset(b, offset, unc, edge.samples, edge.method, a)
                        nxt.append(b)
                frontier = nxt
        for name in names:
            offsets.setdefault(name, ClockOffset(name, 0.0, None, 0, ClockMethod.NONE))
        return dict(sorted(offsets.items()))

"""Journey: one packet's ordered sightings across interfaces and nodes (its Hops, built on access)."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labyrinth_tui.journey.hop import Change, ChangeKind, Hop, addresses_text
from labyrinth_tui.journey.hop_build import BUILD
from labyrinth_tui.journey.nat import Flow, NatTable
from labyrinth_tui.journey.roles import PathMap, StreamKey
from labyrinth_tui.model.packets import PacketSummary

if TYPE_CHECKING:
    from labyrinth_tui.journey.hop_build import Step

__all__ = ["Change", "ChangeKind", "Hop", "Journey", "StitchContext", "build_hops", "hops_of", "tcp_flag_set"]


@dataclass(frozen=True, slots=True)
class StitchContext:
    """What every journey of one stitch shares: the service NAT, interface roles, per-node clock offsets."""

    nat: NatTable
    paths: PathMap
    offsets: dict[str, float]
    # what a journey's hops show besides its times and outer addresses, per journey shape (its ends and
    # expected path, each hop's where and addresses): the packets of one flow and direction share one
    plans: dict[tuple[Any, ...], tuple[Step, ...]] = field(default_factory=dict, compare=False, repr=False)


@dataclass(slots=True)
class Journey:
    """One packet's observations in corrected-time order. Hops are built on access (cheap: a few per packet).

    A retransmitted segment or a re-sent DNS query is its own Journey with `transmission` > 0.
    Read-only by convention, not frozen (as Hop): stitching makes one per packet, and a frozen
    dataclass's __init__ sets each field through object.__setattr__.
    """

    flow: Flow  # the packet's addresses with services as ClusterIP:port (the client's view)
    observations: tuple[PacketSummary, ...]
    start: float  # corrected time of the first hop
    end: float  # corrected time of the last hop
    sender: str | None  # node the packet came from, when known
    receiver: str | None  # node it was going to, when known
    expected: tuple[StreamKey, ...]  # captured streams it should have crossed, in order
    transmission: int = 0  # 0: first sending; n: the n-th retransmission of the same segment / query
    ctx: StitchContext | None = field(default=None, compare=False, repr=False)

    @property
    def first(self) -> PacketSummary:
        return self.observations[0]

    @property
    def retransmission(self) -> bool:
        return self.transmission > 0

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def tcp_flags(self) -> frozenset[str]:
        return tcp_flag_set(self.first.tcp_flags)

    @property
    def streams(self) -> tuple[StreamKey, ...]:
        return tuple((p.node, p.interface) for p in self.observations)

    @property
    def unseen(self) -> tuple[StreamKey, ...]:
        """Expected streams that never saw this packet (before, between or after its hops)."""
        seen = set(self.streams)
        return tuple(s for s in self.expected if s not in seen)

    @property
    def expected_next(self) -> StreamKey | None:
        """Where the packet should have been seen after its last hop, when it vanished."""
        seen = set(self.streams)
        last = -1
        for i, stream in enumerate(self.expected):
            if stream in seen:
                last = i
        if last < 0 or last == len(self.expected) - 1:
            return None
        return self.expected[last + 1]

    @property
    def vanished(self) -> bool:
        return self.expected_next is not None

    @property
    def title(self) -> str:
        p = self.first
        what = p.info if p.info else p.protocol
        return f"{p.protocol} {addresses_text(p)} {what}".strip()

    @property
    def hops(self) -> tuple[Hop, ...]:
        return build_hops(self)


def tcp_flag_set(flags: str | None) -> frozenset[str]:
    """'SYN,ACK', '[SYN, ACK]' or 'SYN ACK' → {'SYN', 'ACK'}."""
    if not flags:
        return frozenset()
    cleaned = flags.strip("[]").replace(",", " ")
    return frozenset(f.strip().upper() for f in cleaned.split() if f.strip())


def build_hops(journey: Journey) -> tuple[Hop, ...]:
    """The hops of a journey, each compared with the one before it.

    What a hop shows besides its times and outer ports (role, direction, addresses, NAT) is the same for
    every packet of a flow and direction: it is worked out once per journey shape and kept in the
    StitchContext, so building a million hops costs little more than making the Hop objects.
    """
    ctx = journey.ctx
    if ctx is None:
        raise ValueError("a Journey needs the StitchContext it was stitched with to build its hops")
    return BUILD(journey, ctx)


def hops_of(journeys: Iterable[Journey]) -> list[tuple[Hop, ...]]:
    """Every journey's hops at once (an export, a bench), with the cyclic GC off while they are made."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return [build_hops(j) for j in journeys]
    finally:
        if collecting:
            gc.enable()

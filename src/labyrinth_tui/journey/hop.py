"""Hop and Change: one sighting of a packet on one interface, and what happened to it since the last."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from labyrinth_tui.journey.nat import endpoint_text
from labyrinth_tui.journey.roles import Direction, Role
from labyrinth_tui.model.packets import PacketSummary


class ChangeKind(StrEnum):
    DNAT = "DNAT"  # destination rewritten: ClusterIP:port → pod IP:targetPort
    UNDNAT = "un-DNAT"  # a reply's source rewritten back: pod IP:targetPort → ClusterIP:port
    SNAT = "SNAT"  # any other source rewrite
    ENCAP = "encap"  # wrapped in VXLAN: outer UDP 8472 between node addresses, with a VNI
    DECAP = "decap"  # unwrapped again


@dataclass(slots=True)
class Change:
    """Something that happened to the packet between the previous hop and this one.

    Read-only by convention, not frozen (as Hop): every VXLAN hop makes an encap or decap Change.
    """

    kind: ChangeKind
    before: str  # NAT: the old ip:port; encap: the inner addresses; decap: the outer ones
    after: str
    vni: int | None = None  # encap / decap

    @property
    def text(self) -> str:
        """How the TUI says it: 'DNAT 10.105.134.33:9999 → 10.0.2.215:9999', 'encap VXLAN VNI 6174 …'."""
        if self.kind is ChangeKind.ENCAP:
            return f"encap VXLAN VNI {self.vni} {self.after}"
        if self.kind is ChangeKind.DECAP:
            return f"decap VXLAN VNI {self.vni} {self.before}"
        return f"{self.kind} {self.before} → {self.after}"


@dataclass(slots=True)
class Hop:
    """One sighting of the packet, as the TUI shows it: where, which way, when, as what, and what changed.

    Read-only by convention, not frozen: a frozen dataclass's __init__ sets each field through
    object.__setattr__, 8 × slower than a plain slots one, and a million packets make a million hops.
    """

    index: int
    node: str
    interface: str
    role: Role
    direction: Direction
    time: float  # corrected to the reference node's clock
    captured_time: float  # the node's own clock, as tshark printed it
    since_previous: float | None  # seconds since the previous hop (corrected clocks); None on the first
    src: str  # ip:port as seen here; the inner packet when encapsulated
    dst: str
    changes: tuple[Change, ...]  # vs the previous hop (i.e. it happened between the two)
    vni: int | None
    outer: str | None  # "10.168.0.4:45304 → 10.168.0.5:8472" when encapsulated
    last_seen: bool  # the packet vanished after this hop: the expected next hop never saw it
    packet: PacketSummary = field(repr=False)  # the observation, for the packet detail


class _Addressed(Protocol):
    """What addresses_text reads: a PacketSummary, or what a hop plan read of one."""

    @property
    def src(self) -> str: ...
    @property
    def sport(self) -> int | None: ...
    @property
    def dst(self) -> str: ...
    @property
    def dport(self) -> int | None: ...


def outer_text(src: str | None, sport: int | None, dst: str | None, dport: int | None) -> str:
    """The VXLAN outer addresses as a hop shows them: "10.168.0.4:45304 → 10.168.0.5:8472"."""
    return f"{endpoint_text(src or '?', sport)} → {endpoint_text(dst or '?', dport)}"


def addresses_text(p: _Addressed) -> str:
    """A packet's inner addresses: "10.0.1.15:38430 → 10.105.134.33:9999"."""
    return f"{endpoint_text(p.src, p.sport)} → {endpoint_text(p.dst, p.dport)}"

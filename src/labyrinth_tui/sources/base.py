"""The Source protocol and the events a source emits to whoever shows it (the TUI or a `--json` twin)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step
from labyrinth_tui.model.topology import Topology


class JourneyError(RuntimeError):
    """A journey could not be made: which part, and why (for a person)."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    node: str
    interface: str
    capture_filter: str = ""
    # the journey's fields too (tcp flags, raw seq/ack, ip.id, vni, outer addresses, DNS): hop captures
    # need them; a stream that is only watched asks tshark for the list's columns (cheaper per packet)
    journey_fields: bool = False

    @property
    def key(self) -> str:
        suffix = f" [{self.capture_filter}]" if self.capture_filter else ""
        return f"{self.node}/{self.interface}{suffix}"


class StreamState(StrEnum):
    STARTING = "starting"
    CAPTURING = "capturing"  # packets on the interface can really be seen now
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    step: Step


@dataclass(frozen=True, slots=True)
class TopologyEvent:
    topology: Topology


@dataclass(frozen=True, slots=True)
class StreamStatus:
    spec: StreamSpec
    state: StreamState
    reason: str = ""
    # STARTING only: the node records every packet on the interface from now on (its canary is in the
    # recording), and tshark will show them once it is up — enough for a journey to send its traffic
    recorded: bool = False


@dataclass(frozen=True, slots=True)
class StreamLag:
    """How far the node's tshark is behind the stream's recording (0 packets: caught up). The node
    records every packet before tshark sees it, so lag never means loss."""

    spec: StreamSpec
    packets: int
    seconds: float

    @property
    def text(self) -> str:
        """What the stream's pane says ("" once caught up)."""
        if self.packets <= 0:
            return ""
        return f"behind by {self.packets:,} packets / {self.seconds:.1f} s, all recorded"


@dataclass(frozen=True, slots=True)
class StreamDrops:
    """Packets the node's kernel dropped for the stream's capture socket so far (tcpdump's own count):
    they never reached tcpdump, so no recording or view holds them."""

    spec: StreamSpec
    packets: int

    @property
    def text(self) -> str:
        """What the stream's header says ("" while none)."""
        return f"kernel dropped {self.packets:,}" if self.packets > 0 else ""


@dataclass(frozen=True, slots=True)
class PacketBatch:
    spec: StreamSpec
    packets: tuple[PacketSummary, ...]
    dropped: int = 0  # so far on this stream: packets the source could not ship (a burst over the ring)


SourceEvent = ProgressEvent | TopologyEvent | StreamStatus | StreamLag | StreamDrops | PacketBatch
Emit = Callable[[SourceEvent], None]


class Source(Protocol):
    """What the app consumes. Every method runs on the app's event loop; blocking work stays off it."""

    name: str

    async def start(self, emit: Emit) -> None:
        """Bring the cluster up if needed (emitting progress), then emit its topology."""

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        """Start capturing on spec; emit StreamStatus changes and PacketBatches until closed."""

    async def close_stream(self, spec: StreamSpec) -> None:
        """Stop one capture; nothing of it is left running on the node."""

    async def close(self) -> None:
        """Stop every capture and release every connection."""

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        """Where the stream's packets are recorded as pcapng, if they are (export, dissection)."""

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        """Write the stream's packets so far to `target` as pcapng (a live stream's are fetched from its
        node now). "" when frame N is packet N, else a note on what the file holds; None if the stream
        is not recorded. Raises OSError/NodeError with the reason; `target` is whole or absent."""

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        """The full dissection of one packet of the stream, off the UI loop; None if not recorded."""

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        """The request's packet (the article's by default) followed across every hop (runs its traffic
        where the source can)."""

    async def datapath(self) -> dict[str, NodeBpf]:
        """Each node's tc/tcx programs (with their counters now) and BPF service map, by node name;
        empty where the source has none (an iptables lab, a recording without it, a viewer)."""

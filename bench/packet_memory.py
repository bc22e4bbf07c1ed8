"""Memory per packet kept in a 100k PacketRing (issue 6 goal: <= 300 bytes), ours beside the plain dataclass.

Ours: PacketSummary as the capture parser builds it (numbers + info packed in one bytes object,
repeated strings shared). Anchor, measured in the same run on the same packets: the frozen slotted
dataclass PacketSummary was before (one Python object per field). Both figures come from tracemalloc
(everything the ring keeps alive), plus a sys.getsizeof walk of one typical packet of each kind.

Run: `.venv/bin/python bench/packet_memory.py [--packets 100000]`.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes.pcapgen

from lib.goals import Verdict
from tests.fakes.pcapgen import write_pcap

from labyrinth_tui.model.packets import PACKET_FIELDS, PacketRing, PacketSummary
from labyrinth_tui.probes.capture import read_argv
from labyrinth_tui.probes.capture_parse import SummaryParser

GOAL_BYTES = 300


@dataclass(frozen=True, slots=True)
class DataclassPacket:
    """The anchor: PacketSummary as a plain frozen slotted dataclass, one attribute per field."""

    ts: float
    node: str
    interface: str
    number: int
    src: str
    dst: str
    protocol: str
    length: int
    info: str
    sport: int | None
    dport: int | None
    tcp_flags: str | None
    seq: int | None
    ack: int | None
    ip_id: int | None
    dns_query: str | None
    dns_answer: str | None
    outer_src: str | None
    outer_dst: str | None
    outer_sport: int | None
    outer_dport: int | None
    vni: int | None
    dns_id: int | None
    dns_qtype: str | None
    dns_rcode: int | None
    payload_hash: int | None


def kept_bytes(build: Any, count: int) -> float:
    """Bytes per packet that a full ring of `count` built packets keeps alive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ring = PacketRing(count)
    ring.extend(build())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(ring) == count
    return (after - before) / count


def deep_size(obj: object, shared: set[int]) -> int:
    """getsizeof of obj and everything it refers to, except objects in `shared` (kept once per stream)."""
    seen: set[int] = set()
    stack = [obj]
    total = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or id(item) in shared or item is None:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, tuple):
            stack.extend(item)
        elif hasattr(item, "__slots__") and not isinstance(item, (str, bytes)):
            stack.extend(getattr(item, name) for name in item.__slots__)
    return total


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--packets", type=int, default=100_000)
    n = args.parse_args().packets

    with tempfile.TemporaryDirectory(prefix="packet-memory-") as tmp:
        pcap = Path(tmp) / "article.pcap"
        write_pcap(pcap, n)
        lines = subprocess.run(
            read_argv(str(pcap)), capture_output=True, text=True, check=True
        ).stdout.splitlines()

    def ours() -> list[PacketSummary]:
        return SummaryParser("node-1", "ens4").parse_many(lines)

    def anchor() -> list[DataclassPacket]:
        # the same values, each field its own object, as the dataclass kept them
        packets = SummaryParser("node-1", "ens4").parse_many(lines)
        return [DataclassPacket(*(getattr(p, f) for f in PACKET_FIELDS)) for p in packets]

    ours_bytes = kept_bytes(ours, n)
    anchor_bytes = kept_bytes(anchor, n)

    sample = ours()
    kinds = {
        "TCP in VXLAN (ens4)": next(p for p in sample if p.vni is not None),
        "TCP (lxc)": next(p for p in sample if p.vni is None and p.tcp_flags is not None),
        "DNS answer": next(p for p in sample if p.dns_answer is not None),
    }
    # what a stream keeps once, not per packet: its interned strings and shared extra tuples
    shared: set[int] = set()
    for p in sample[:1000]:
        shared |= {id(s) for s in (p.node, p.interface, p.src, p.dst, p.protocol, p.tcp_flags)}
        if p[7] is not None:
            shared |= {id(p[7]), *(id(s) for s in p[7])}
    print(f"{n} packets of the article's mix (TCP flows, DNS walks, VXLAN), parsed from real tshark lines\n")
    print(f"{'kept per packet in a full ring (tracemalloc)':<52}{'ours':>8}{'dataclass':>11}")
    print(f"{'  all kinds, averaged':<52}{ours_bytes:>8.0f}{anchor_bytes:>11.0f}")
    for label, packet in kinds.items():
        as_dataclass = DataclassPacket(*(getattr(packet, f) for f in PACKET_FIELDS))
        walk = f"  getsizeof walk, {label}"
        print(f"{walk:<52}{deep_size(packet, shared):>8}{deep_size(as_dataclass, shared):>11}")
    print()
    ring_mb, anchor_mb = ours_bytes * n / 1e6, anchor_bytes * n / 1e6
    ratio = ours_bytes / anchor_bytes
    print(f"ours / dataclass: {ratio:.2f}   (full ring: {ring_mb:.0f} MB, not {anchor_mb:.0f} MB)")
    verdict = Verdict("bench/packet_memory.py")
    met = ours_bytes <= GOAL_BYTES
    verdict.goal(
        "bytes kept per packet", f"{ours_bytes:.0f} B", f"{anchor_bytes:.0f} B", f"≤ {GOAL_BYTES} B", met
    )
    return verdict.status()


if __name__ == "__main__":
    sys.exit(main())

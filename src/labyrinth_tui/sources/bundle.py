"""A recording on disk (bundle.json, topology, packets per stream): what replay, journey and record share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.evidence import EvidenceDiff
from labyrinth_tui.model.evidence_json import evidence_from_json
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.serialize import BundleFormatError, packet_from_json, topology_from_json
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources.base import StreamSpec

BUNDLE_FORMAT = 1
ARTICLE_BUNDLE = Path(__file__).resolve().parent.parent / "assets" / "bundles" / "article"


@dataclass(frozen=True, slots=True)
class RecordedStream:
    spec: StreamSpec
    packets_file: Path | None
    pcapng_file: Path | None
    failed: str = ""


@dataclass
class Bundle:
    """A recording on disk: bundle.json names the rest."""

    root: Path
    topology: Topology
    steps: list[dict[str, Any]]
    streams: list[RecordedStream]
    title: str = ""
    evidence: tuple[EvidenceDiff, ...] = ()  # the recorded journey's, where it was kept
    datapath: tuple[NodeBpf, ...] = ()  # each node's BPF programs after the journey

    @classmethod
    def load(cls, root: Path) -> Bundle:
        try:
            meta = json.loads((root / "bundle.json").read_text())
        except FileNotFoundError as exc:
            raise BundleFormatError(f"{root} is not a recording: no bundle.json") from exc
        except json.JSONDecodeError as exc:
            raise BundleFormatError(f"{root / 'bundle.json'}: {exc}") from exc
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleFormatError(
                f"{root}: format {meta.get('format')!r}, this version reads {BUNDLE_FORMAT}"
            )
        topology = topology_from_json(json.loads((root / meta["topology"]).read_text()))
        streams = [
            RecordedStream(
                StreamSpec(s["node"], s["interface"], s.get("filter", "")),
                (root / s["packets"]) if s.get("packets") else None,
                (root / s["pcapng"]) if s.get("pcapng") else None,
                s.get("failed", ""),
            )
            for s in meta.get("streams", [])
        ]
        evidence = tuple(evidence_from_json(e) for e in _optional(root, meta.get("evidence")))
        datapath = tuple(NodeBpf.from_json(n) for n in _optional(root, meta.get("datapath")))
        return cls(root, topology, meta.get("steps", []), streams, meta.get("title", ""), evidence, datapath)

    def stream(self, spec: StreamSpec) -> RecordedStream | None:
        return next((s for s in self.streams if s.spec == spec), None)

    def stream_for(self, node: str, interface: str) -> RecordedStream | None:
        return next((s for s in self.streams if (s.spec.node, s.spec.interface) == (node, interface)), None)


def _optional(root: Path, name: str | None) -> list[dict[str, Any]]:
    """A list kept in its own file of the bundle (older recordings have none)."""
    if not name:
        return []
    try:
        found = json.loads((root / name).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleFormatError(f"{root / name}: {exc}") from exc
    if not isinstance(found, list):
        raise BundleFormatError(f"{root / name}: expected a list")
    return found


def read_packets(path: Path) -> list[PacketSummary]:
    packets = []
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                packets.append(packet_from_json(json.loads(line)))
            except (json.JSONDecodeError, BundleFormatError) as exc:
                raise BundleFormatError(f"{path}:{number}: {exc}") from exc
    return packets

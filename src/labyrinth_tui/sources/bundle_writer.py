"""Writing a record/replay bundle: bundle.json, topology.json and a JSON-lines file (+ pcapng) per stream."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.evidence import EvidenceDiff
from labyrinth_tui.model.evidence_json import evidence_to_json
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step
from labyrinth_tui.model.serialize import packet_to_json, topology_to_json
from labyrinth_tui.model.topology import Topology, to_jsonable
from labyrinth_tui.sources.base import StreamSpec
from labyrinth_tui.sources.bundle import BUNDLE_FORMAT


def _file_stem(spec: StreamSpec) -> str:
    raw = f"{spec.node}__{spec.interface}" + (f"__{spec.capture_filter}" if spec.capture_filter else "")
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", raw)[:120]


def write_bundle(
    root: Path,
    topology: Topology,
    streams: Mapping[StreamSpec, Iterable[PacketSummary]],
    *,
    steps: Iterable[Step] = (),
    pcapngs: Mapping[StreamSpec, Path] | None = None,
    failures: Mapping[StreamSpec, str] | None = None,
    title: str = "",
    evidence: Iterable[EvidenceDiff] = (),
    datapath: Iterable[NodeBpf] = (),
) -> Path:
    """Write a bundle that `labyrinth replay root` plays; returns root. Existing stream files are replaced.
    evidence: the journey's, before vs after its traffic; datapath: each node's BPF programs after it."""
    (root / "streams").mkdir(parents=True, exist_ok=True)
    (root / "topology.json").write_text(json.dumps(topology_to_json(topology), indent=1))
    entries = []
    for spec, packets in streams.items():
        stem = _file_stem(spec)
        packets_path = root / "streams" / f"{stem}.jsonl"
        with packets_path.open("w") as out:
            for packet in packets:
                out.write(json.dumps(packet_to_json(packet), separators=(",", ":")) + "\n")
        entry = {
            "node": spec.node,
            "interface": spec.interface,
            "filter": spec.capture_filter,
            "packets": f"streams/{stem}.jsonl",
        }
        source_pcap = (pcapngs or {}).get(spec)
        if source_pcap is not None and source_pcap.exists():
            target = root / "streams" / f"{stem}.pcapng"
            if source_pcap.resolve() != target.resolve():
                shutil.copyfile(source_pcap, target)
            entry["pcapng"] = f"streams/{stem}.pcapng"
        entries.append(entry)
    for spec, reason in (failures or {}).items():
        # a stream that failed to start is part of what happened: replay shows it failing the same way
        entries.append(
            {"node": spec.node, "interface": spec.interface, "filter": spec.capture_filter, "failed": reason}
        )
    meta = {
        "format": BUNDLE_FORMAT,
        "title": title,
        "topology": "topology.json",
        "steps": [to_jsonable(s) for s in steps],
        "streams": entries,
    }
    kept = [evidence_to_json(e) for e in evidence]
    if kept:
        (root / "evidence.json").write_text(json.dumps(kept, indent=1))
        meta["evidence"] = "evidence.json"
    nodes = [n.to_json() for n in datapath]
    if nodes:
        (root / "datapath.json").write_text(json.dumps(nodes, indent=1))
        meta["datapath"] = "datapath.json"
    (root / "bundle.json").write_text(json.dumps(meta, indent=1))
    return root

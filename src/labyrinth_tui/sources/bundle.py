"""A recording on disk (bundle.json, topology, packets per stream): what replay, journey and record share."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.decode import DecodeError, kind, loads, short
from labyrinth_tui.model.evidence import EvidenceDiff
from labyrinth_tui.model.evidence_json import evidence_from_json
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.serialize import BundleFormatError, packet_from_json, topology_from_json
from labyrinth_tui.model.text import inert
from labyrinth_tui.model.topology import Topology
from labyrinth_tui.sources.base import StreamSpec

T = TypeVar("T")

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
        """bundle.json and the topology it names, checked: any defect is one BundleFormatError line."""
        path = root / "bundle.json"
        if not path.is_file():
            raise BundleFormatError(f"{root} is not a recording: no bundle.json")
        meta = _json_file(path, MAX_META_BYTES)
        if not isinstance(meta, dict):
            raise BundleFormatError(f"{path}: expected a mapping, got {kind(meta)}")
        if meta.get("format") != BUNDLE_FORMAT:
            raise BundleFormatError(
                f"{root}: format {short(meta.get('format'), 40)}, this version reads {BUNDLE_FORMAT}"
            )
        topology_path = _member(root, meta, "topology", path, required=True)
        assert topology_path is not None
        topology = topology_from_json(_json_file(topology_path, MAX_META_BYTES))
        raw_streams = meta.get("streams", [])
        steps = meta.get("steps", [])
        title = meta.get("title", "")
        if not isinstance(raw_streams, list) or not isinstance(steps, list) or not isinstance(title, str):
            raise BundleFormatError(f"{path}: streams and steps must be lists, title a string")
        streams = []
        for i, s in enumerate(raw_streams):
            where = f"{path}: streams[{i}]"
            if not isinstance(s, dict):
                raise BundleFormatError(f"{where}: expected a mapping, got {kind(s)}")
            texts = {k: s.get(k, "") for k in ("node", "interface", "filter", "failed")}
            if (
                not all(isinstance(v, str) for v in texts.values())
                or not texts["node"]
                or not texts["interface"]
            ):
                raise BundleFormatError(f"{where}: node and interface must be strings")
            spec = StreamSpec(inert(texts["node"]), inert(texts["interface"]), inert(texts["filter"]))
            packets = _member(root, s, "packets", where)
            pcapng = _member(root, s, "pcapng", where)
            streams.append(RecordedStream(spec, packets, pcapng, inert(texts["failed"])))
        evidence = tuple(_decoded(evidence_from_json, _member(root, meta, "evidence", path)))
        datapath = tuple(_decoded(NodeBpf.from_json, _member(root, meta, "datapath", path)))
        return cls(root, topology, steps, streams, inert(title), evidence, datapath)

    def stream(self, spec: StreamSpec) -> RecordedStream | None:
        return next((s for s in self.streams if s.spec == spec), None)

    def stream_for(self, node: str, interface: str) -> RecordedStream | None:
        return next((s for s in self.streams if (s.spec.node, s.spec.interface) == (node, interface)), None)


MAX_META_BYTES = 64 << 20  # bundle.json, topology.json
MAX_LINE_BYTES = 64 << 10  # one packet's JSON line: ~300 bytes in practice
MAX_PACKETS = 5_000_000


def _decoded(decode: Callable[[dict[str, Any]], T], path: Path | None) -> list[T]:
    """A list kept in its own file of the bundle (evidence, datapath; older recordings have none)."""
    if path is None:
        return []
    found = _json_file(path, MAX_META_BYTES)
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise BundleFormatError(f"{path}: expected a list of mappings, got {kind(found)}")
    try:
        return [decode(item) for item in found]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleFormatError(f"{path}: {short(str(exc), 80)}") from None


def _json_file(path: Path, limit: int) -> object:
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise BundleFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(raw) > limit:
        raise BundleFormatError(f"{path}: larger than {limit >> 20} MB")
    try:
        return loads(raw)
    except DecodeError as exc:
        raise BundleFormatError(f"{path}: {exc}") from None


def _member(
    root: Path, meta: dict[str, Any], key: str, where: object, *, required: bool = False
) -> Path | None:
    """A file the bundle names: a plain file inside the bundle's folder, never `../` or /dev/zero."""
    name = meta.get(key)
    if not name and not required:
        return None
    if not isinstance(name, str) or not name:
        raise BundleFormatError(f"{where}: {key} must name a file of the recording")
    path = root / name
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        inside = False
    if not inside or not path.is_file():
        raise BundleFormatError(f"{where}: {key} {short(name, 60)!s} is not a file inside {root}")
    return path


def read_packets(path: Path) -> Generator[PacketSummary, None, None]:
    """The packets of a JSON-lines file, streamed: one line in memory at a time, whatever the file's size.

    A defect is a BundleFormatError `PATH:LINE: what` raised when the reader reaches it (the packets
    before it have been yielded); a line longer than MAX_LINE_BYTES (a file of one 1 GB line,
    /dev/zero) fails at once instead of being read whole. `list(read_packets(p))` for all of them.
    """
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BundleFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    strings: dict[str, str] = {}
    with f:
        count = 0
        for number in itertools.count(1):
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise BundleFormatError(f"{path}:{number}: a line longer than {MAX_LINE_BYTES >> 10} kB")
            if not line.strip():
                continue
            count += 1
            if count > MAX_PACKETS:
                raise BundleFormatError(f"{path}: more than {MAX_PACKETS} packets")
            try:
                yield packet_from_json(loads(line, max_depth=4), strings)
            except (DecodeError, BundleFormatError) as exc:
                raise BundleFormatError(f"{path}:{number}: {exc}") from None

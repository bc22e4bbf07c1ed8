"""A node's eBPF datapath as the app shows it: tc/tcx attachments with their counters, and the service map."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class BpfLink:
    """One program on one device, as the kernel reports it (link info by fd, or the clsact filter)."""

    kind: str  # "tcx" (a bpf link) or "tc" (a classic clsact filter)
    link_id: int | None  # tc filters are not links
    prog_id: int
    prog_name: str  # the full C name (the kernel keeps 15 characters)
    ifindex: int
    ifname: str
    attach_type: str  # tcx_ingress | tcx_egress | clsact/ingress | clsact/egress
    seen: int = 0
    translated: int = 0

    @property
    def direction(self) -> str:
        return "ingress" if self.attach_type.endswith("ingress") else "egress"

    def article_line(self) -> str:
        """`bpftool link`'s form, as in the article: `tcx prog 572 ifindex cilium_vxlan(5) attach_type …`."""
        device = f"{self.ifname}({self.ifindex})"
        if self.kind == "tcx":
            return f"{self.link_id}: tcx prog {self.prog_id} ifindex {device} attach_type {self.attach_type}"
        # `bpftool net`'s form for a clsact filter
        return f"{self.ifname}({self.ifindex}) {self.attach_type} {self.prog_name} prog_id {self.prog_id}"


@dataclass(frozen=True, slots=True)
class LbBackend:
    slot: int
    backend_id: int
    address: str
    port: int
    proto: str


@dataclass(frozen=True, slots=True)
class LbService:
    """One ClusterIP:port/proto of the BPF service map and its backends in slot order."""

    address: str
    port: int
    proto: str
    rev_nat_index: int
    backends: tuple[LbBackend, ...]

    @property
    def frontend(self) -> str:
        return f"{self.address}:{self.port}/{self.proto}"


@dataclass(frozen=True, slots=True)
class NodeBpf:
    node: str
    attach: str  # tcx | tc
    links: tuple[BpfLink, ...] = ()
    services: tuple[LbService, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for link, raw in zip(self.links, data["links"], strict=True):
            raw["direction"] = link.direction
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeBpf:
        links = tuple(
            BpfLink(**{k: v for k, v in link.items() if k != "direction"}) for link in data.get("links", ())
        )
        services = tuple(
            LbService(**{**s, "backends": tuple(LbBackend(**b) for b in s["backends"])})
            for s in data.get("services", ())
        )
        return cls(data["node"], data["attach"], links, services, data.get("error", ""))


@dataclass(frozen=True, slots=True)
class LabBpf:
    prefix: str
    datapath: str
    attach: str
    nodes: tuple[NodeBpf, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "datapath": self.datapath,
            "attach": self.attach,
            "nodes": [n.to_json() for n in self.nodes],
        }


def lb_list(services: tuple[LbService, ...]) -> list[str]:
    """The service map in `cilium bpf lb list`'s layout: the frontend's slot 0, then one line per backend."""
    width = max((len(s.frontend) for s in services), default=20) + 6
    lines = [f"{'SERVICE ADDRESS':<{width}}BACKEND ADDRESS (REVNAT_ID) (SLOT)"]
    for svc in services:
        lines.append(f"{svc.frontend + ' (0)':<{width}}0.0.0.0:0 ({svc.rev_nat_index}) (0) [ClusterIP]")
        for b in svc.backends:
            backend = f"{b.address}:{b.port}/{b.proto} ({svc.rev_nat_index}) ({b.slot})"
            lines.append(f"{svc.frontend + f' ({b.slot})':<{width}}{backend}")
    return lines


def node_lines(node: NodeBpf) -> list[str]:
    """A node's links in the article's form, each with its program and counters, then its service map."""
    lines = [
        f"{node.node}: {len(node.links)} {node.attach} attachments"
        + (f" ({node.error})" if node.error else "")
    ]
    for link in node.links:
        lines.append(f"  {link.article_line()}")
        lines.append(f"      {link.prog_name}: {link.seen} packets seen, {link.translated} translated")
    if node.services:
        lines += [f"  {line}" for line in lb_list(node.services)]
    return lines

"""Node, Pod, Interface, Route and Topology: the cluster as the app sees it, whatever its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class InterfaceKind(StrEnum):
    VETH = "veth"
    VXLAN = "vxlan"
    BRIDGE = "bridge"
    DEVICE = "device"
    LOOPBACK = "loopback"


@dataclass(frozen=True, slots=True)
class VxlanInfo:
    vni: int
    port: int
    local: str | None = None


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    ifindex: int
    kind: InterfaceKind
    mtu: int = 0
    mac: str = ""
    state: str = "UNKNOWN"
    addresses: tuple[str, ...] = ()
    master: str | None = None
    # for a veth: where its peer lives (netns id relative to this namespace) and the peer's ifindex
    link_netnsid: int | None = None
    peer_ifindex: int | None = None
    vxlan: VxlanInfo | None = None
    link_kind: str | None = None  # the kernel's own word (`info_kind`), e.g. "dummy" for a DEVICE


@dataclass(frozen=True, slots=True)
class VethPair:
    """A host-side veth (Cilium's `lxc…`) and its peer inside another netns (a pod's `eth0`)."""

    host_veth: str
    host_ifindex: int
    pod_netns: str
    pod_interface: str
    pod_ifindex: int
    netnsid: int  # the pod netns' id as the node's namespace numbers it (`link_netnsid`)


@dataclass(frozen=True, slots=True)
class Route:
    dst: str
    gateway: str | None = None
    dev: str | None = None
    src: str | None = None
    mtu: int | None = None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    ip: str
    netns: str
    host_veth: str | None = None
    host_ifindex: int | None = None
    pod_ifindex: int | None = None
    gateway: str | None = None
    mtu: int | None = None
    routes: tuple[Route, ...] = ()
    processes: tuple[str, ...] = ()  # "PID ARGS", one per process in the pod netns

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    address: str
    reachable: bool = True
    error: str | None = None
    role: str = "worker"
    interfaces: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()
    pods: tuple[Pod, ...] = ()
    netns: tuple[str, ...] = ()
    partial: bool = False  # discovery gave part of the tree (and said why in error)
    hostname: str | None = None
    veth_pairs: tuple[VethPair, ...] = ()

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[ServicePort, ...] = ()
    endpoints: tuple[str, ...] = ()  # pod IPs


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int


@dataclass(frozen=True, slots=True)
class Topology:
    cluster: str
    nodes: tuple[Node, ...] = ()
    services: tuple[Service, ...] = field(default=())

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def pods(self) -> list[tuple[Node, Pod]]:
        return [(n, p) for n in self.nodes for p in n.pods]

    def pod_by_ip(self, ip: str) -> tuple[Node, Pod] | None:
        return next(((n, p) for n, p in self.pods() if p.ip == ip), None)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses → dicts/lists, the shape every `--json` twin prints."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, tuple | list):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj

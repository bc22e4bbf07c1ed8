"""LabSpec: the article's topology as data (nodes, pods, services) and the names derived from it."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from dataclasses import dataclass, field, replace

PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,15}")  # always with fullmatch: `$` would let "ab\n" through
PODS_PER_NODE_MAX = 1000
NS_UUID = uuid.UUID("6f1c3a52-8d1e-4b8e-9f6a-1a2b3c4d5e6f")  # namespace for stable pod netns names


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    address: str  # ens4, in the VPC 10.168.0.0/24
    role: str  # control-plane | worker
    pod_cidr: str
    gateway: str  # cilium_host's address, every local pod's default gateway
    index: int
    extra_cidr: str = ""  # scale pods beyond what pod_cidr holds (--pods-per-node > ~250), routed alike

    @property
    def vxlan_mac(self) -> str:
        return f"02:4c:ab:00:00:{self.index:02x}"


@dataclass(frozen=True, slots=True)
class PodSpec:
    namespace: str
    name: str
    node: str
    ip: str
    app: str

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def host_veth(self) -> str:
        """`lxc` + 12 hex, like Cilium's, stable for a given pod."""
        return "lxc" + hashlib.sha256(self.qualified_name.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class PortSpec:
    name: str
    protocol: str  # TCP | UDP
    port: int
    target_port: int


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    namespace: str
    name: str
    cluster_ip: str
    selector_app: str
    ports: tuple[PortSpec, ...]


@dataclass(frozen=True, slots=True)
class LabSpec:
    prefix: str = "labyrinth"
    vpc_cidr: str = "10.168.0.0/24"
    cluster_cidr: str = "10.0.0.0/16"  # kube-proxy's --cluster-cidr: traffic from it is not masqueraded
    vni: int = 2
    vxlan_port: int = 8472
    node_mtu: int = 1460  # GCP's
    pod_mtu: int = 1460
    pod_route_mtu: int = 1410  # node MTU less VXLAN's 50 bytes, on the pod's routes as in the article
    datapath: str = "ebpf"  # ebpf: services in tc programs, as Cilium; iptables: kube-proxy's rules do it
    bpf_attach: str = "auto"  # ebpf only: tcx links, classic tc (clsact) filters, or auto (tcx on ≥ 6.6)
    nodes: tuple[NodeSpec, ...] = ()
    pods: tuple[PodSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = field(default=())

    # --- names of what the lab makes; every one of them starts with the prefix and a dot
    @property
    def vpc_netns(self) -> str:
        return f"{self.prefix}.vpc"

    def node_netns(self, node: str) -> str:
        return f"{self.prefix}.{node}"

    def pod_netns(self, pod: PodSpec) -> str:
        """A UUID like the article's pod netns, stable per pod, behind the lab's prefix."""
        return f"{self.prefix}.{uuid.uuid5(NS_UUID, pod.qualified_name)}"

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in the lab (nodes: {', '.join(n.name for n in self.nodes)})")

    def find_pod(self, name: str) -> PodSpec:
        """A pod by `ns/name`, by name, or by a unique name prefix (`node-wrk-1-ubuntu24`)."""
        exact = [p for p in self.pods if name in (p.qualified_name, p.name)]
        if len(exact) == 1:
            return exact[0]
        partial = [p for p in self.pods if p.name.startswith(name) or p.qualified_name.startswith(name)]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise KeyError(f"no pod {name!r}; pods: {', '.join(p.qualified_name for p in self.pods[:8])}")
        raise KeyError(f"{name!r} matches {len(partial)} pods: be more precise")

    def endpoints(self, service: ServiceSpec) -> list[PodSpec]:
        return [p for p in self.pods if p.app == service.selector_app and p.namespace == service.namespace]

    def pods_on(self, node: str) -> list[PodSpec]:
        return [p for p in self.pods if p.node == node]


DATAPATHS = ("ebpf", "iptables")
BPF_ATTACH = ("auto", "tcx", "tc")
SCALE_SERVICE_IP = "10.96.200.200"
MAX_WORKERS = 40


class PrefixError(ValueError):
    """A lab prefix that is not 1-16 of a-z, 0-9 and '-' starting with a letter (it names paths and netns)."""


def check_prefix(prefix: object) -> str:
    """The one rule for every `--prefix`: checked before any path or netns name is formed from it.

    A prefix becomes `/run/labyrinth/<prefix>`, the netns `<prefix>.<node>` and a lock file, so
    '', '*', '../x' or a 300-character name must never get that far.
    """
    if isinstance(prefix, str) and PREFIX_RE.fullmatch(prefix):
        return prefix
    shown = repr(prefix) if len(repr(prefix)) <= 40 else repr(prefix)[:37] + "…"
    raise PrefixError(f"prefix {shown}: use 1-16 of a-z, 0-9 and '-', starting with a letter")


def lab_command(verb: str, prefix: str) -> str:
    """A hint that repeats the prefix the user gave: a bare `lab down` would act on the default lab."""
    return f"labyrinth lab {verb} --prefix {prefix}"


def article_spec(
    prefix: str = "labyrinth",
    pods_per_node: int = 0,
    datapath: str = "ebpf",
    bpf_attach: str = "auto",
    workers: int = 2,
) -> LabSpec:
    """The cluster of the article: node-0 (control plane), node-1 and node-2, the two nc pods, CoreDNS.

    For scale, `pods_per_node` extra pods on every node and `workers` worker nodes (node-1..N: a lab
    that stands in for a bigger cluster; node-3 on get 10.168.0.(3+k), pod CIDR 10.0.k.0/24)."""
    check_prefix(prefix)
    if datapath not in DATAPATHS:
        raise ValueError(f"datapath {datapath!r}: the lab has {', '.join(DATAPATHS)}")
    if bpf_attach not in BPF_ATTACH:
        raise ValueError(f"bpf attach {bpf_attach!r}: use one of {', '.join(BPF_ATTACH)}")
    if not 0 <= pods_per_node <= PODS_PER_NODE_MAX:
        raise ValueError(f"--pods-per-node takes 0 to {PODS_PER_NODE_MAX}")
    if isinstance(workers, bool) or not 2 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers takes 2 (the article's node-1 and node-2) to {MAX_WORKERS}")
    nodes = (
        NodeSpec("node-0", "10.168.0.2", "control-plane", "10.0.0.0/24", "10.0.0.93", 0),
        NodeSpec("node-1", "10.168.0.4", "worker", "10.0.1.0/24", "10.0.1.49", 1),
        NodeSpec("node-2", "10.168.0.5", "worker", "10.0.2.0/24", "10.0.2.244", 2),
        *(
            NodeSpec(f"node-{k}", f"10.168.0.{3 + k}", "worker", f"10.0.{k}.0/24", f"10.0.{k}.1", k)
            for k in range(3, workers + 1)
        ),
    )
    if pods_per_node > 200:  # more than a /24 holds beside the article's pods: a /22 of its own each
        nodes = tuple(replace(n, extra_cidr=f"10.0.{64 + 4 * n.index}.0/22") for n in nodes)
    pods = [
        PodSpec(
            "wrk-1", "node-wrk-1-ubuntu24-684f7d8fd6-2zncq", "node-1", "10.0.1.15", "node-wrk-1-ubuntu24"
        ),
        PodSpec(
            "wrk-2", "node-wrk-2-ubuntu24-85748464f7-mwmrt", "node-2", "10.0.2.215", "node-wrk-2-ubuntu24"
        ),
        PodSpec("kube-system", "coredns-674b8bbfcf-qwkfz", "node-2", "10.0.2.17", "kube-dns"),
    ]
    pods += _extra_pods(nodes, {p.ip for p in pods}, pods_per_node)
    services: tuple[ServiceSpec, ...] = (
        ServiceSpec(
            "kube-system",
            "kube-dns",
            "10.96.0.10",
            "kube-dns",
            (PortSpec("dns", "UDP", 53, 53), PortSpec("dns-tcp", "TCP", 53, 53)),
        ),
        ServiceSpec(
            "wrk-1",
            "node-wrk-1-ubuntu24",
            "10.98.41.127",
            "node-wrk-1-ubuntu24",
            (PortSpec("tcp-9999", "TCP", 9999, 9999), PortSpec("udp-9999", "UDP", 9999, 9999)),
        ),
        ServiceSpec(
            "wrk-2",
            "node-wrk-2-ubuntu24",
            "10.105.134.33",
            "node-wrk-2-ubuntu24",
            (PortSpec("tcp-9999", "TCP", 9999, 9999), PortSpec("udp-9999", "UDP", 9999, 9999)),
        ),
    )
    if pods_per_node:
        # one service over every extra pod of every node: several backends, spread by flow
        scale_port = (PortSpec("tcp-8080", "TCP", 8080, 8080),)
        services += (ServiceSpec("scale", "extra", SCALE_SERVICE_IP, "extra", scale_port),)
    return LabSpec(
        prefix=prefix,
        nodes=nodes,
        pods=tuple(pods),
        services=services,
        datapath=datapath,
        bpf_attach=bpf_attach,
    )


def _extra_pods(nodes: tuple[NodeSpec, ...], taken: set[str], per_node: int) -> list[PodSpec]:
    extra: list[PodSpec] = []
    for node in nodes:
        cidrs = [node.pod_cidr, *([node.extra_cidr] if node.extra_cidr else [])]
        hosts = (str(h) for cidr in cidrs for h in ipaddress.ip_network(cidr).hosts())
        free = (h for h in hosts if h not in taken and h != node.gateway)
        for i in range(per_node):
            ip = next(free)
            extra.append(PodSpec("scale", f"extra-{node.name}-{i:03d}", node.name, ip, "extra"))
    return extra

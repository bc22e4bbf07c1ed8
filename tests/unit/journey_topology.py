"""A discovered-looking topology for planner tests: the article's nodes, pods, veths, VXLAN and services."""

from __future__ import annotations

from labyrinth_tui.model.topology import (
    Interface,
    InterfaceKind,
    Node,
    Pod,
    Route,
    Service,
    ServicePort,
    Topology,
    VxlanInfo,
)

CLIENT = Pod(
    "wrk-1", "node-wrk-1-ubuntu24-684f7d8fd6-2zncq", "10.0.1.15", "x.p1", host_veth="lxc1ba60d50596c"
)
SERVER = Pod(
    "wrk-2", "node-wrk-2-ubuntu24-85748464f7-mwmrt", "10.0.2.215", "x.p2", host_veth="lxc91a2bea4a8f8"
)
EXTRA_2 = Pod("scale", "extra-node-2-000", "10.0.2.2", "x.p3", host_veth="lxc0000000000e2")
SECOND = Pod(
    "wrk-2", "node-wrk-2-ubuntu24-85748464f7-other", "10.0.1.77", "x.p4", host_veth="lxc00000000077a"
)


def node(name: str, address: str, pods: tuple[Pod, ...], overlay: Interface | None) -> Node:
    interfaces = [
        Interface("lo", 1, InterfaceKind.LOOPBACK, addresses=("127.0.0.1/8",)),
        Interface("ens4", 2, InterfaceKind.DEVICE, addresses=(f"{address}/24",), state="UP"),
    ]
    if overlay is not None:
        interfaces.append(overlay)
    interfaces += [Interface(p.host_veth or "", 10 + i, InterfaceKind.VETH) for i, p in enumerate(pods)]
    return Node(name, address, interfaces=tuple(interfaces), pods=pods)


VXLAN = Interface("cilium_vxlan", 5, InterfaceKind.VXLAN, vxlan=VxlanInfo(2, 8472), link_kind="vxlan")


def topology(
    *, overlay: Interface | None = VXLAN, second_backend: bool = False, unreachable: str | None = None
) -> Topology:
    node1_pods = (CLIENT, SECOND) if second_backend else (CLIENT,)
    nodes = [
        node("node-1", "10.168.0.4", node1_pods, overlay),
        node("node-2", "10.168.0.5", (SERVER, EXTRA_2), overlay),
    ]
    if unreachable is not None:
        nodes = [
            Node(n.name, n.address, reachable=False, error="connection refused", pods=n.pods)
            if n.name == unreachable
            else n
            for n in nodes
        ]
    endpoints = (SERVER.ip, SECOND.ip) if second_backend else (SERVER.ip,)
    tcp = ServicePort("tcp-9999", "TCP", 9999, 9999)
    udp = ServicePort("udp-9999", "UDP", 9999, 9999)
    services = (
        Service("wrk-2", "node-wrk-2-ubuntu24", "10.105.134.33", (tcp, udp), endpoints),
        Service("scale", "web", "10.96.7.7", (ServicePort("http", "TCP", 80, 8080),), (EXTRA_2.ip,)),
    )
    return Topology("lab x", tuple(nodes), services)


def vxlan_routes() -> dict[tuple[str, str], Route | str]:
    """What `ip -j route get` says on the lab: remote pods via cilium_vxlan, the other node via ens4."""
    return {
        ("node-1", SERVER.ip): Route(SERVER.ip, "10.0.2.244", "cilium_vxlan"),
        ("node-1", "10.168.0.5"): Route("10.168.0.5", None, "ens4"),
        ("node-2", CLIENT.ip): Route(CLIENT.ip, "10.0.1.49", "cilium_vxlan"),
        ("node-2", "10.168.0.4"): Route("10.168.0.4", None, "ens4"),
    }

"""Cilium's health endpoint on every node: `lxc_health` on the node, its peer in a small netns of its own.

The article's `bpftool link` lists a tcx program on `lxc_health` beside the pods' `lxc…`: Cilium runs
one health endpoint per node, wired like a pod. The lab gives it the last address of the node's pod
CIDR (extra pods are taken from the start of it), so it never meets a pod.
"""

from __future__ import annotations

import ipaddress

from labyrinth_tui.lab.spec import LabSpec, NodeSpec

HEALTH_VETH = "lxc_health"


def health_netns(spec: LabSpec, node: NodeSpec) -> str:
    return f"{spec.prefix}.health-{node.name}"


def health_ip(node: NodeSpec) -> str:
    return str(list(ipaddress.ip_network(node.pod_cidr).hosts())[-1])


def node_side(spec: LabSpec, node: NodeSpec) -> list[str]:
    """`ip -batch` lines for the node's netns: the veth, its peer moved into the health netns, a /32 route."""
    return [
        f"link add {HEALTH_VETH} mtu {spec.pod_mtu} type veth peer name eth0 mtu {spec.pod_mtu} "
        f"netns {health_netns(spec, node)}",
        f"link set {HEALTH_VETH} up",
        f"route add {health_ip(node)}/32 dev {HEALTH_VETH}",
    ]


def endpoint_side(spec: LabSpec, node: NodeSpec) -> list[str]:
    """`ip -batch` lines for the health netns itself, wired as a pod is."""
    return [
        "link set lo up",
        "link set eth0 up",
        f"addr add {health_ip(node)}/32 dev eth0",
        f"route add {node.gateway} dev eth0 scope link",
        f"route add default via {node.gateway} dev eth0 mtu {spec.pod_route_mtu}",
    ]

"""The lab's links and routes as `ip -batch` scripts: the VPC, the nodes (a pod's own side: netlink.py)."""

from __future__ import annotations

import ipaddress

from labyrinth_tui.lab.spec import LabSpec, NodeSpec, PodSpec

VPC_BRIDGE = "vpc0"


def vpc_port(node: NodeSpec) -> str:
    return f"v-{node.name}"[:15]


def vpc_batch(spec: LabSpec) -> list[str]:
    """The "VPC": a bridge in its own namespace, one port per node; the node end is the node's ens4."""
    lines = ["link set lo up", f"link add {VPC_BRIDGE} type bridge", f"link set {VPC_BRIDGE} up"]
    for node in spec.nodes:
        port = vpc_port(node)
        lines.append(
            f"link add {port} mtu {spec.node_mtu} type veth peer name ens4 mtu {spec.node_mtu} "
            f"netns {spec.node_netns(node.name)}"
        )
        lines.append(f"link set {port} master {VPC_BRIDGE} up")
    return lines


def node_batch(spec: LabSpec, node: NodeSpec) -> list[str]:
    """ens4, Cilium's cilium_host/cilium_net pair and cilium_vxlan, the remote pod CIDRs, the local pods."""
    prefixlen = ipaddress.ip_network(spec.vpc_cidr).prefixlen
    vxlan_mtu = spec.node_mtu - 50
    lines = [
        "link set lo up",
        "link set ens4 up",
        f"addr add {node.address}/{prefixlen} dev ens4",
        f"link add cilium_host mtu {spec.pod_mtu} type veth peer name cilium_net mtu {spec.pod_mtu}",
        "link set cilium_net up",
        "link set cilium_host up",
        f"addr add {node.gateway}/32 dev cilium_host",
        f"link add cilium_vxlan address {node.vxlan_mac} mtu {vxlan_mtu} type vxlan id {spec.vni} "
        f"dstport {spec.vxlan_port} local {node.address} dev ens4 nolearning",
        "link set cilium_vxlan up",
    ]
    for remote in spec.nodes:
        if remote is node:
            continue
        lines.append(f"neigh add {remote.gateway} lladdr {remote.vxlan_mac} dev cilium_vxlan nud permanent")
        lines.append(f"route add {remote.pod_cidr} via {remote.gateway} dev cilium_vxlan onlink")
        if remote.extra_cidr:
            lines.append(f"route add {remote.extra_cidr} via {remote.gateway} dev cilium_vxlan onlink")
    for pod in spec.pods_on(node.name):
        lines += pod_host_side(spec, pod)
    return lines


def pod_host_side(spec: LabSpec, pod: PodSpec) -> list[str]:
    veth = pod.host_veth
    return [
        f"link add {veth} mtu {spec.pod_mtu} type veth peer name eth0 mtu {spec.pod_mtu} "
        f"netns {spec.pod_netns(pod)}",
        f"link set {veth} up",
        f"route add {pod.ip}/32 dev {veth}",
    ]


def fdb_batch(spec: LabSpec, node: NodeSpec) -> list[str]:
    """Static VXLAN forwarding: the remote node's cilium_vxlan MAC lives behind its ens4 address."""
    return [
        f"fdb append {remote.vxlan_mac} dev cilium_vxlan dst {remote.address}"
        for remote in spec.nodes
        if remote is not node
    ]

"""Interface roles (host_veth, overlay, underlay), hop directions, and the path a packet should take."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from labyrinth_tui.model.topology import InterfaceKind, Topology


class Role(StrEnum):
    HOST_VETH = "host_veth"  # lxc…: the node's end of a pod's veth pair
    OVERLAY = "overlay"  # cilium_vxlan: where pod traffic to another node is (de)encapsulated
    UNDERLAY = "underlay"  # ens4: the node's real NIC, where VXLAN travels as UDP 8472
    OTHER = "other"


class Direction(StrEnum):
    """Which way a packet crosses an interface.

    On a host_veth, relative to the pod (egress = leaving the pod). On cilium_vxlan and ens4, relative to
    the node (egress = on its way off this node).
    """

    EGRESS = "egress"
    INGRESS = "ingress"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class InterfaceRole:
    role: Role
    pod_ip: str | None = None  # host_veth: the pod behind it
    node_ip: str | None = None  # underlay: the node's own address (outer src/dst of its VXLAN packets)


StreamKey = tuple[str, str]  # (node, interface)
RolesInput = Mapping[StreamKey, InterfaceRole | Role]


def infer_role(interface: str) -> InterfaceRole:
    """A role from the interface's name alone, for streams the caller did not describe."""
    if interface.startswith("lxc") and interface != "lxc_health":
        return InterfaceRole(Role.HOST_VETH)
    if "vxlan" in interface or interface.startswith("flannel"):
        return InterfaceRole(Role.OVERLAY)
    if interface.startswith(("ens", "eth", "enp", "eno")):
        return InterfaceRole(Role.UNDERLAY)
    return InterfaceRole(Role.OTHER)


def roles_from_topology(topology: Topology) -> dict[StreamKey, InterfaceRole]:
    """Every interface of every node with its role: pods' host veths, VXLAN devices, the node's NIC."""
    roles: dict[StreamKey, InterfaceRole] = {}
    for node in topology.nodes:
        for iface in node.interfaces:
            if iface.kind is InterfaceKind.VXLAN:
                roles[(node.name, iface.name)] = InterfaceRole(Role.OVERLAY)
            elif any(a.split("/")[0] == node.address for a in iface.addresses):
                roles[(node.name, iface.name)] = InterfaceRole(Role.UNDERLAY, node_ip=node.address)
        for pod in node.pods:
            if pod.host_veth:
                roles[(node.name, pod.host_veth)] = InterfaceRole(Role.HOST_VETH, pod_ip=pod.ip)
    return roles


class PathMap:
    """What the stitcher knows about where things are: pods and node addresses per node, captured streams.

    The expected path of a packet between pods on two nodes is the article's: the sender's host_veth,
    cilium_vxlan, ens4, then the receiver's ens4, cilium_vxlan, host_veth — limited to captured streams.
    """

    def __init__(self, roles: RolesInput, captured: Collection[StreamKey]) -> None:
        self.roles: dict[StreamKey, InterfaceRole] = {
            k: (v if isinstance(v, InterfaceRole) else InterfaceRole(v)) for k, v in roles.items()
        }
        for key in captured:
            self.roles.setdefault(key, infer_role(key[1]))
        self.captured = frozenset(captured)
        self.pod_node: dict[str, str] = {}
        self.node_of_address: dict[str, str] = {}
        self._host_veth: dict[tuple[str, str], str] = {}  # (node, pod ip) → interface
        self._overlay: dict[str, list[str]] = {}
        self._underlay: dict[str, list[str]] = {}
        for (node, iface), role in sorted(self.roles.items()):
            if role.role is Role.HOST_VETH and role.pod_ip:
                self.pod_node[role.pod_ip] = node
                self._host_veth[(node, role.pod_ip)] = iface
            elif role.role is Role.UNDERLAY and role.node_ip:
                self.node_of_address[role.node_ip] = node
        for node, iface in sorted(self.captured):
            kind = self.role(node, iface).role
            if kind is Role.OVERLAY:
                self._overlay.setdefault(node, []).append(iface)
            elif kind is Role.UNDERLAY:
                self._underlay.setdefault(node, []).append(iface)
        self._expected: dict[tuple[str | None, str | None, str, str], tuple[StreamKey, ...]] = {}

    def role(self, node: str, interface: str) -> InterfaceRole:
        found = self.roles.get((node, interface))
        if found is None:
            found = self.roles[(node, interface)] = infer_role(interface)
        return found

    def _veth(self, node: str, pod_ip: str) -> list[StreamKey]:
        iface = self._host_veth.get((node, pod_ip))
        return [(node, iface)] if iface is not None and (node, iface) in self.captured else []

    def expected(
        self, sender: str | None, receiver: str | None, src_ip: str, dst_ip: str
    ) -> tuple[StreamKey, ...]:
        """The captured streams a packet from src_ip on sender to dst_ip on receiver crosses, in order."""
        cache_key = (sender, receiver, src_ip, dst_ip)
        found = self._expected.get(cache_key)
        if found is not None:
            return found
        path: list[StreamKey] = []
        if sender is not None and sender == receiver:
            path = self._veth(sender, src_ip) + self._veth(sender, dst_ip)
        else:
            if sender is not None:
                path += self._veth(sender, src_ip)
                path += [(sender, i) for i in self._overlay.get(sender, [])]
                path += [(sender, i) for i in self._underlay.get(sender, [])]
            if receiver is not None:
                path += [(receiver, i) for i in self._underlay.get(receiver, [])]
                path += [(receiver, i) for i in self._overlay.get(receiver, [])]
                path += self._veth(receiver, dst_ip)
        result = self._expected[cache_key] = tuple(path)
        return result

    def direction(
        self, node: str, interface: str, src: str, dst: str, sender: str | None, receiver: str | None
    ) -> Direction:
        """Egress or ingress of one hop, from the interface's role and the packet's addresses there."""
        role = self.role(node, interface)
        if role.role is Role.HOST_VETH and role.pod_ip is not None:
            if src == role.pod_ip:
                return Direction.EGRESS
            if dst == role.pod_ip:
                return Direction.INGRESS
            return Direction.UNKNOWN
        if role.role is Role.HOST_VETH and self.pod_node.get(src) == node:
            return Direction.EGRESS
        if sender is None or sender == receiver:  # same-node traffic never crosses overlay/underlay
            return Direction.UNKNOWN
        return Direction.EGRESS if sender == node else Direction.INGRESS

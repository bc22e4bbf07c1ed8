"""The hops of a journey from the topology and each node's route to the other end, never from names.

Two steps, both pure: `resolve_ends` finds the client pod and the server pods (every backend of a
service) in what discovery saw and says which routes to ask the nodes for (`route_queries`);
`plan_hops` turns the answers (`ip -j route get <ip>` on each node) into the hops to capture on: the
client pod's host veth, the device its node routes the other pod through (an overlay such as
cilium_vxlan, or none when routing is direct), the uplink toward the other node, and the mirror on
the server's node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labyrinth_tui.journey.request import JourneyRequest, RequestError
from labyrinth_tui.journey.roles import InterfaceRole, Role, StreamKey, roles_from_topology
from labyrinth_tui.model.topology import Interface, InterfaceKind, Node, Pod, Route, Service, Topology

# devices a node tunnels pod traffic through, by the kernel's kind or the CNI's name for them
OVERLAY_KINDS = frozenset({"vxlan", "geneve", "ipip"})
OVERLAY_NAMES = frozenset({"cilium_vxlan", "cilium_geneve", "flannel.1", "vxlan.calico", "tunl0"})
GENEVE_PORT = 6081  # IANA's; Cilium's geneve mode uses it


@dataclass(frozen=True, slots=True)
class End:
    """One pod of the journey on its node; host_network when it has no veth and the node's address."""

    node: Node
    pod: Pod

    @property
    def host_network(self) -> bool:
        return self.pod.host_veth is None and self.pod.ip == self.node.address


@dataclass(frozen=True, slots=True)
class Ends:
    """The client, the servers (every backend of a service: the one that answers is known only after)."""

    client: End
    servers: tuple[End, ...]
    service: Service | None
    target_host: str  # what the client dials: the service's DNS name, or the pod's IP
    target_ip: str  # the ClusterIP, or the pod's IP
    port: int
    target_port: int  # the port the backends listen on
    proto: str
    unknown_endpoints: tuple[str, ...] = ()  # a service's endpoints no discovered pod has


RouteQuery = tuple[str, str]  # (node, destination address) for `ip -j route get`


@dataclass(frozen=True, slots=True)
class PlannedHop:
    node: str
    interface: str
    role: InterfaceRole
    why: str  # "the client's host veth", "route to 10.0.2.215", "uplink to 10.168.0.5", …


@dataclass(frozen=True, slots=True)
class JourneyPlan:
    ends: Ends
    hops: tuple[PlannedHop, ...]
    capture_filter: str
    notes: tuple[str, ...] = ()  # what could not be determined, and what was captured instead

    @property
    def streams(self) -> tuple[StreamKey, ...]:
        return tuple((h.node, h.interface) for h in self.hops)

    def roles(self, topology: Topology) -> dict[StreamKey, InterfaceRole]:
        """Every interface's role as discovery tells it, the hops' own roles over them."""
        roles = roles_from_topology(topology)
        roles.update({(h.node, h.interface): h.role for h in self.hops})
        return roles


def find_pod(topology: Topology, name: str) -> End:
    """A pod by `ns/name`, or `ns/` plus a unique prefix of its name; RequestError listing near pods."""
    namespace, _, pod_name = name.partition("/")
    pods = [(n, p) for n, p in topology.pods() if p.namespace == namespace]
    exact = [(n, p) for n, p in pods if p.name == pod_name]
    found = exact or [(n, p) for n, p in pods if p.name.startswith(pod_name + "-")]
    if len(found) == 1:
        return End(*found[0])
    if not found:
        known = ", ".join(p.qualified_name for _, p in (pods or topology.pods())[:6])
        raise RequestError(f"no pod {name!r} in the topology; pods there: {known or 'none'}")
    raise RequestError(f"{name!r} matches {len(found)} pods: " + ", ".join(p.name for _, p in found[:4]))


def _service(topology: Topology, target: str) -> Service:
    name, _, namespace = target.partition(".")
    namespace = namespace.removesuffix(".svc.cluster.local").removesuffix(".svc")
    found = next((s for s in topology.services if (s.name, s.namespace) == (name, namespace)), None)
    if found is None:
        known = ", ".join(f"{s.name}.{s.namespace}" for s in topology.services[:8])
        raise RequestError(f"no service {target!r}; services: {known or 'none'}")
    return found


def resolve_ends(topology: Topology, request: JourneyRequest) -> Ends:
    """The request's pods and service as discovery found them; RequestError when one is not there."""
    client = find_pod(topology, request.client)
    if request.target_is_pod:
        server = find_pod(topology, request.target)
        if request.port is None:
            raise RequestError(f"--to {request.target}: give the port (NAMESPACE/POD:PORT)")
        return Ends(
            client, (server,), None, server.pod.ip, server.pod.ip, request.port, request.port, request.proto
        )
    service = _service(topology, request.target)
    ports = [p for p in service.ports if p.protocol.lower() == request.proto]
    port = next((p for p in ports if p.port == request.port), None)
    if port is None and request.port is None and len(ports) == 1:
        port = ports[0]
    if port is None:
        have = ", ".join(f"{p.port}/{p.protocol.lower()}" for p in service.ports) or "none"
        want = f"{request.port}/{request.proto}" if request.port else f"a single {request.proto} port"
        raise RequestError(f"service {request.target} has no port {want} (ports: {have})")
    servers = tuple(End(*found) for ip in service.endpoints if (found := topology.pod_by_ip(ip)) is not None)
    unknown = tuple(ip for ip in service.endpoints if topology.pod_by_ip(ip) is None)
    if not servers:
        why = f"its endpoints {', '.join(unknown)} are on no node discovery reached" if unknown else "none"
        raise RequestError(f"service {request.target} has no backend to follow ({why})")
    return Ends(
        client, servers, service, request.target, service.cluster_ip, port.port, port.target_port,
        request.proto, unknown,
    )  # fmt: skip


def route_queries(ends: Ends) -> tuple[RouteQuery, ...]:
    """What each involved node must say: its route to the other pod, and to the other node's address."""
    queries: list[RouteQuery] = []
    client = ends.client
    for server in ends.servers:
        if server.node.name == client.node.name:
            continue
        queries += [
            (client.node.name, server.pod.ip),
            (client.node.name, server.node.address),
            (server.node.name, client.pod.ip),
            (server.node.name, client.node.address),
        ]
    return tuple(dict.fromkeys(queries))


def is_overlay(interface: Interface) -> bool:
    return (
        interface.kind is InterfaceKind.VXLAN
        or interface.link_kind in OVERLAY_KINDS
        or interface.name in OVERLAY_NAMES
    )


def _overlay_filter(interface: Interface) -> str:
    if interface.link_kind == "ipip" or interface.name == "tunl0":
        return "ip proto 4"
    if interface.vxlan is not None and interface.vxlan.port:
        return f"udp port {interface.vxlan.port}"
    return (
        f"udp port {GENEVE_PORT}" if "geneve" in (interface.link_kind or interface.name) else "udp port 8472"
    )


class _Planner:
    def __init__(self, ends: Ends, routes: Mapping[RouteQuery, Route | str]) -> None:
        self.ends = ends
        self.routes = routes
        self.hops: list[PlannedHop] = []
        self.notes: list[str] = []
        self.overlays: list[Interface] = []

    def add(self, node: Node, interface: str, role: InterfaceRole, why: str) -> None:
        if any((h.node, h.interface) == (node.name, interface) for h in self.hops):
            return
        if node.interfaces and node.interface(interface) is None:
            self.notes.append(f"{node.name}: {interface} ({why}) is not among the interfaces discovery found")
            return
        if not node.reachable or not node.interfaces:
            self.notes.append(f"{node.name}: not discovered ({node.error or 'no interfaces'}); no {why} hop")
            return
        self.hops.append(PlannedHop(node.name, interface, role, why))

    def veth(self, end: End, who: str) -> None:
        if end.host_network:
            self.notes.append(f"{end.pod.qualified_name} uses the node's network: no host veth to capture")
        elif end.pod.host_veth is None:
            self.notes.append(f"{end.pod.qualified_name}: its host veth was not found on {end.node.name}")
        else:
            self.add(
                end.node,
                end.pod.host_veth,
                InterfaceRole(Role.HOST_VETH, pod_ip=end.pod.ip),
                f"the {who}'s host veth",
            )

    def _route(self, node: Node, dst: str) -> Route | None:
        found = self.routes.get((node.name, dst))
        if isinstance(found, Route) and found.dev:
            return found
        why = found if isinstance(found, str) and found else "no answer"
        self.notes.append(f"{node.name}: the route to {dst} could not be determined ({why})")
        return None

    def toward(self, node: Node, pod_ip: str, peer: Node) -> list[tuple[str, InterfaceRole, str]]:
        """The overlay (if any) then the uplink `node` sends `pod_ip`'s packets through, toward `peer`."""
        underlay = InterfaceRole(Role.UNDERLAY, node_ip=node.address)
        route = self._route(node, pod_ip)
        if route is None:
            return self._fallback(node)
        device = node.interface(route.dev or "")
        if device is None or not is_overlay(device):
            return [(route.dev or "", underlay, f"route to {pod_ip} (direct)")]
        self.overlays.append(device)
        found: list[tuple[str, InterfaceRole, str]] = [
            (device.name, InterfaceRole(Role.OVERLAY), f"route to {pod_ip}")
        ]
        uplink = self._route(node, peer.address)
        if uplink is not None:
            found.append((uplink.dev or "", underlay, f"uplink to {peer.address}"))
        else:
            found += [h for h in self._fallback(node) if h[1].role is Role.UNDERLAY]
        return found

    def _fallback(self, node: Node) -> list[tuple[str, InterfaceRole, str]]:
        """What discovery knows: the node's overlay devices and the interface holding its address."""
        found: list[tuple[str, InterfaceRole, str]] = []
        for iface in node.interfaces:
            if is_overlay(iface) and iface.state != "DOWN":
                self.overlays.append(iface)
                found.append((iface.name, InterfaceRole(Role.OVERLAY), "an overlay device (route unknown)"))
        for iface in node.interfaces:
            if any(a.split("/")[0] == node.address for a in iface.addresses):
                role = InterfaceRole(Role.UNDERLAY, node_ip=node.address)
                found.append((iface.name, role, "the node's address (route unknown)"))
        if found:
            self.notes.append(f"{node.name}: capturing on {', '.join(f[0] for f in found)} instead")
        return found


def plan_hops(ends: Ends, routes: Mapping[RouteQuery, Route | str]) -> JourneyPlan:
    """The hops in the order a request crosses them; `routes` maps a route_queries() entry to what the
    node answered (a Route) or why it could not (a string)."""
    planner = _Planner(ends, routes)
    client = ends.client
    planner.veth(client, "client")
    remote = [s for s in ends.servers if s.node.name != client.node.name]
    for server in remote:
        for iface, role, why in planner.toward(client.node, server.pod.ip, server.node):
            planner.add(client.node, iface, role, why)
    for server in remote:
        mirror = planner.toward(server.node, client.pod.ip, client.node)
        for iface, role, why in reversed(mirror):
            planner.add(server.node, iface, role, why)
        planner.veth(server, "server")
    for server in ends.servers:
        if server.node.name == client.node.name:
            planner.veth(server, "server")
    return JourneyPlan(
        ends, tuple(planner.hops), _capture_filter(ends, planner.overlays), tuple(planner.notes)
    )


def _capture_filter(ends: Ends, overlays: list[Interface]) -> str:
    """DNS, the connection's own port(s), and what the overlay carries it in: the article's filter for
    the article's pair (`udp port 53 or tcp port 9999 or udp port 8472`)."""
    parts = ["udp port 53"] if ends.service is not None else []
    parts += [f"{ends.proto} port {p}" for p in dict.fromkeys((ends.port, ends.target_port))]
    parts += list(dict.fromkeys(_overlay_filter(i) for i in overlays))
    return " or ".join(parts)

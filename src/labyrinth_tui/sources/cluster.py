"""ClusterSource: any Kubernetes cluster — nodes and pods from its API, each node's tree found over SSH."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
from labyrinth_tui.cloud.kube.client import KubeClient, NodeInfo, PodInfo, load_kubeconfig
from labyrinth_tui.cloud.kube.errors import KubeError
from labyrinth_tui.cloud.kube.tunnel import API_SERVER_NAME, ApiTunnel, api_endpoint
from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Node, Pod, Service, Topology
from labyrinth_tui.nodes.connect import HostKeyPrompt
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.probes.discovery import discover_node
from labyrinth_tui.sources.base import Emit, JourneyError, ProgressEvent, StreamSpec, TopologyEvent
from labyrinth_tui.sources.captures import CaptureStreams

GROUP = "cluster"


def _api_pods(pods: Sequence[PodInfo], node: str) -> list[Pod]:
    """The node's pods as the API knows them (no netns name: only the node can tell it)."""
    mine = [p for p in pods if p.node == node and p.ip and not p.host_network]
    return [
        Pod(p.namespace, p.name, p.ip, netns="") for p in sorted(mine, key=lambda p: (p.namespace, p.name))
    ]


def merge_topology(
    cluster: str,
    nodes: Sequence[NodeInfo],
    pods: Sequence[PodInfo],
    services: Sequence[Service],
    discovered: Mapping[str, Node],
    addresses: Mapping[str, str],
) -> Topology:
    """The API's nodes and pods, with each node's discovered tree where there is one.

    A discovered pod (found by its IP on the node) keeps what discovery saw — netns, host veth, routes;
    pods the API lists but discovery did not find are added as the API knows them.
    """
    merged = []
    for info in nodes:
        role = "control-plane" if "control-plane" in info.roles else "worker"
        address = addresses.get(info.name, info.internal_ip)
        api_pods = _api_pods(pods, info.name)
        seen = discovered.get(info.name)
        if seen is None:
            merged.append(Node(info.name, address, role=role, pods=tuple(api_pods)))
            continue
        found_ips = {p.ip for p in seen.pods}
        extra = tuple(p for p in api_pods if p.ip not in found_ips)
        merged.append(replace(seen, name=info.name, address=address, role=role, pods=seen.pods + extra))
    return Topology(cluster=cluster, nodes=tuple(merged), services=tuple(services))


@dataclass
class ClusterSource:
    """An existing cluster: `kubeconfig` (and `context`) for its API; `inventory` to reach its nodes.

    Without an inventory each node is reached at its InternalIP with your ~/.ssh/config; an inventory
    overrides address, user, key and port per node, and its `api_via` reaches the API server through
    an SSH tunnel (a cluster made by `labyrinth cluster bootstrap` needs it: 6443 is internal only).
    """

    kubeconfig: Path
    context: str | None = None
    inventory: Inventory | None = None
    name: str = "cluster"
    discover: bool = True
    ssh_timeout: float = 10.0
    ask_host_key: HostKeyPrompt | None = None
    topology: Topology | None = None
    sessions: dict[str, NodeSession] = field(default_factory=dict)
    _kube: KubeClient | None = field(default=None, repr=False)
    _tunnel: ApiTunnel | None = field(default=None, repr=False)
    _certs: Path | None = field(default=None, repr=False)
    _captures: CaptureStreams | None = field(default=None, repr=False)

    def _entry(self, name: str) -> NodeEntry:
        return (self.inventory.node(name) if self.inventory else None) or NodeEntry(name)

    async def _connect(self) -> KubeClient:
        config = load_kubeconfig(self.kubeconfig)
        # the client library writes the kubeconfig's keys to files: ours go in a private folder we remove
        self._certs = Path(tempfile.mkdtemp(prefix="labyrinth-kube-"))
        via = self.inventory.api_via if self.inventory else None
        if via is None or self.inventory is None:
            return KubeClient.from_config(config, context=self.context, temp_dir=self._certs)
        host, port = api_endpoint(config, self.context)
        entry = self._entry(via)
        self._tunnel = ApiTunnel(
            self.inventory.connector(entry, ask_host_key=self.ask_host_key), via, host, port
        )
        await self._tunnel.__aenter__()
        return KubeClient.from_config(
            config,
            context=self.context,
            server=self._tunnel.url,
            tls_server_name=API_SERVER_NAME,
            temp_dir=self._certs,
        )

    async def _discover(
        self, nodes: Sequence[NodeInfo], identities: dict[str, tuple[str, str]]
    ) -> dict[str, Node]:
        async def one(info: NodeInfo) -> Node:
            entry = self._entry(info.name)
            try:
                connector = (self.inventory or Inventory(self.name, (entry,))).connector(
                    entry, address=info.internal_ip, ask_host_key=self.ask_host_key
                )
            except ValueError as exc:
                return Node(info.name, info.internal_ip, reachable=False, error=str(exc))
            session = NodeSession(info.name, connector, connect_attempts=1, connect_timeout=self.ssh_timeout)
            self.sessions[info.name] = session
            privilege = ("sudo", "-n") if entry.sudo else ()
            return await discover_node(session, identities, privilege=privilege)

        found = await asyncio.gather(*(one(n) for n in nodes), return_exceptions=True)
        result = {}
        for info, node in zip(nodes, found, strict=True):
            if isinstance(node, Node):
                result[info.name] = node
            elif isinstance(node, Exception):
                why = node.reason if isinstance(node, NodeError) else f"{type(node).__name__}: {node}"
                result[info.name] = Node(info.name, info.internal_ip, reachable=False, error=why)
            else:
                raise node
        return result

    async def start(self, emit: Emit) -> None:
        def step(name: str, state: StepState, started: float, log: str = "") -> None:
            finished = state in (StepState.DONE, StepState.FAILED)
            emit(ProgressEvent(Step(GROUP, name, state, int(finished), 1, time.monotonic() - started, log)))

        started = time.monotonic()
        step("api", StepState.RUNNING, started)
        try:
            self._kube = kube = await self._connect()
            nodes, pods, services = await asyncio.gather(kube.nodes(), kube.pods(), kube.services())
        except (KubeError, NodeError) as exc:
            step("api", StepState.FAILED, started, str(exc))
            raise
        cluster = kube.cluster or self.name
        addresses = {n.name: self._entry(n.name).address or n.internal_ip for n in nodes}
        step(
            "api", StepState.DONE, started, f"{len(nodes)} nodes, {len(pods)} pods, {len(services)} services"
        )
        # what the API says comes first: the tree shows at once, discovery fills it in
        self.topology = merge_topology(cluster, nodes, pods, services, {}, addresses)
        emit(TopologyEvent(self.topology))
        if not self.discover:
            return
        started = time.monotonic()
        step("discover", StepState.RUNNING, started)
        identities = {p.ip: (p.namespace, p.name) for p in pods if p.ip and not p.host_network}
        discovered = await self._discover(nodes, identities)
        reached = sum(n.reachable for n in discovered.values())
        unreachable = [f"{n.name}: {n.error}" for n in discovered.values() if not n.reachable]
        state = StepState.DONE if reached else StepState.FAILED
        step("discover", state, started, "\n".join([f"{reached}/{len(nodes)} nodes reached", *unreachable]))
        self.topology = merge_topology(cluster, nodes, pods, services, discovered, addresses)
        emit(TopologyEvent(self.topology))

    def _privilege(self, node: str) -> tuple[str, ...]:
        return ("sudo", "-n") if self._entry(node).sudo else ()

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        if self._captures is None:
            # the same sessions discovery opened: one connection per node, channels pooled
            self._captures = CaptureStreams(self.sessions, privilege=self._privilege)
        await self._captures.open(spec, emit)

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return self._captures.pcapng_path(spec) if self._captures is not None else None

    async def journey(self, emit: Emit) -> JourneyReport:
        raise JourneyError("following the article's packet runs on the lab for now (labyrinth journey)")

    async def datapath(self) -> dict[str, NodeBpf]:
        return {}  # a node's programs come with the journey's evidence (bpftool on the node)

    async def packet_detail(self, spec: StreamSpec, packet: PacketSummary) -> Dissection | None:
        # streams here are not recorded once closed; a live one is dissected by tshark on its node
        if self._captures is None or not self._captures.is_live(spec):
            return None
        return await self._captures.live_dissection(spec, packet.number)

    async def save_pcapng(self, spec: StreamSpec, target: Path) -> str | None:
        if self._captures is None or not self._captures.is_live(spec):
            return None
        return await self._captures.save_live(spec, target)

    async def close_stream(self, spec: StreamSpec) -> None:
        if self._captures is not None:
            await self._captures.close(spec)

    async def close(self) -> None:
        if self._captures is not None:  # first: ending a capture needs its node's session
            await self._captures.close_all()
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):
                await session.close()
        if self._kube is not None:
            self._kube.close()
            self._kube = None
        if self._tunnel is not None:
            await self._tunnel.close()
            self._tunnel = None
        if self._certs is not None:
            shutil.rmtree(self._certs, ignore_errors=True)
            self._certs = None

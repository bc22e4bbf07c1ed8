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
from typing import Any

from labyrinth_tui.cloud.bootstrap.inventory import Inventory, NodeEntry
from labyrinth_tui.cloud.kube.cilium import service_maps
from labyrinth_tui.cloud.kube.client import KubeClient, NodeInfo, PodInfo, load_kubeconfig
from labyrinth_tui.cloud.kube.errors import KubeError
from labyrinth_tui.cloud.kube.exec import journey_exchange
from labyrinth_tui.cloud.kube.pod_tools import PodTool, detect_tools
from labyrinth_tui.cloud.kube.tunnel import API_SERVER_NAME, ApiTunnel, api_endpoint
from labyrinth_tui.journey.plan import End, Ends
from labyrinth_tui.journey.report import JourneyReport
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.model.bpf import NodeBpf
from labyrinth_tui.model.dissection import Dissection
from labyrinth_tui.model.packets import PacketSummary
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.model.topology import Node, Pod, Service, Topology
from labyrinth_tui.nodes.commands import in_netns
from labyrinth_tui.nodes.connect import HostKeyPrompt
from labyrinth_tui.nodes.errors import NodeError
from labyrinth_tui.nodes.session import NodeSession
from labyrinth_tui.sources.base import Emit, JourneyError, ProgressEvent, StreamSpec, TopologyEvent
from labyrinth_tui.sources.captures import CaptureStreams
from labyrinth_tui.sources.cluster_nodes import NodeDiscovery
from labyrinth_tui.sources.journey_run import KEEP_WARM, READY_LIMIT, follow, plan_journey

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
    ready_timeout: float = READY_LIMIT  # s the journey's captures may take to be proven (a hard limit)
    ask_host_key: HostKeyPrompt | None = None
    topology: Topology | None = None
    sessions: dict[str, NodeSession] = field(default_factory=dict)
    _kube: KubeClient | None = field(default=None, repr=False)
    _tunnel: ApiTunnel | None = field(default=None, repr=False)
    _certs: Path | None = field(default=None, repr=False)
    _captures: CaptureStreams | None = field(default=None, repr=False)
    _lingering: set[asyncio.Future[Any]] = field(default_factory=set, repr=False)  # journeys' closes
    _openers: dict[StreamSpec, Emit] = field(default_factory=dict, repr=False)  # who opened each stream
    _dial_tools: dict[tuple[str, str], PodTool] = field(default_factory=dict, repr=False)
    _listen_tools: dict[tuple[str, str], PodTool] = field(default_factory=dict, repr=False)

    def _entry(self, name: str) -> NodeEntry:
        return (self.inventory.node(name) if self.inventory else None) or NodeEntry(name)

    async def _connect(self) -> KubeClient:
        config = load_kubeconfig(self.kubeconfig)
        # the client library writes the kubeconfig's keys to files: ours go in a private folder we remove
        self._certs = Path(tempfile.mkdtemp(prefix="labyrinth-kube-"))
        via = self.inventory.api_via if self.inventory else None
        if via is None or self.inventory is None:
            # in a thread: the client's first use imports its models (~1 s, 2 s at load), and SSH to the
            # nodes goes on meanwhile on this loop
            return await asyncio.to_thread(
                KubeClient.from_config, config, context=self.context, temp_dir=self._certs
            )
        host, port = api_endpoint(config, self.context)
        entry = self._entry(via)
        self._tunnel = ApiTunnel(
            self.inventory.connector(entry, ask_host_key=self.ask_host_key), via, host, port
        )
        await self._tunnel.__aenter__()
        return await asyncio.to_thread(
            KubeClient.from_config,
            config,
            context=self.context,
            server=self._tunnel.url,
            tls_server_name=API_SERVER_NAME,
            temp_dir=self._certs,
        )

    async def start(self, emit: Emit) -> None:
        def step(name: str, state: StepState, started: float, log: str = "") -> None:
            finished = state in (StepState.DONE, StepState.FAILED)
            emit(ProgressEvent(Step(GROUP, name, state, int(finished), 1, time.monotonic() - started, log)))

        started = time.monotonic()
        step("api", StepState.RUNNING, started)
        finder = NodeDiscovery(self.inventory, self.name, self.sessions, self.ssh_timeout, self.ask_host_key)
        if self.discover:
            finder.early()  # SSH and each node's script while the API answers
        try:
            self._kube = kube = await self._connect()
            nodes, pods, services = await asyncio.gather(kube.nodes(), kube.pods(), kube.services())
        except BaseException as exc:
            finder.stop()  # a failure, or a cancelled start (the app quit while attaching)
            if isinstance(exc, KubeError | NodeError):
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
        discovered, refused = await finder.discover(nodes, identities)
        reached = sum(n.reachable for n in discovered.values())
        unreachable = [f"{n.name}: {n.error}" for n in discovered.values() if not n.reachable]
        state = StepState.DONE if reached and not refused else StepState.FAILED
        step("discover", state, started, "\n".join([f"{reached}/{len(nodes)} nodes reached", *unreachable]))
        self.topology = merge_topology(cluster, nodes, pods, services, discovered, addresses)
        emit(TopologyEvent(self.topology))
        if refused:  # the inventory's login, not a node, is wrong: one line, the first node's
            raise min(refused, key=lambda r: r.node)

    def _privilege(self, node: str) -> tuple[str, ...]:
        return ("sudo", "-n") if self._entry(node).needs_sudo else ()

    async def open_stream(self, spec: StreamSpec, emit: Emit) -> None:
        if self._captures is None:
            # the same sessions discovery opened: one connection per node, channels pooled
            self._captures = CaptureStreams(self.sessions, privilege=self._privilege)
        self._openers[spec] = emit
        await self._captures.open(spec, emit)

    def pcapng_path(self, spec: StreamSpec) -> Path | None:
        return self._captures.pcapng_path(spec) if self._captures is not None else None

    async def journey(self, emit: Emit, request: JourneyRequest | None = None) -> JourneyReport:
        """The request's ends (the article's by default) followed: hops from the discovered topology and
        each node's routes, captures over SSH, nc through the API's exec in the pods."""
        if self.topology is None or self._kube is None:
            raise JourneyError("the cluster is not attached yet: its topology is not known")
        request = request or JourneyRequest()
        kube, topology = self._kube, self.topology
        plan = await plan_journey(topology, request, self.sessions)
        if self._captures is None:
            self._captures = CaptureStreams(self.sessions, privilege=self._privilege)
        ends = plan.ends

        async def traffic() -> tuple[str | None, int]:
            app = ends.service is not None and await self._listening(ends)
            servers = [] if app else [(s.pod.namespace, s.pod.name) for s in ends.servers]
            client = (ends.client.pod.namespace, ends.client.pod.name)
            port = ends.port if ends.service is not None else ends.target_port
            try:
                dial, listen = await self._tools(kube, client, servers)
                received, which = await journey_exchange(
                    kube,
                    servers,
                    client,
                    target=ends.target_host,
                    port=port,
                    payload=request.payload,
                    proto=ends.proto,
                    server_argv=[t.server(ends.target_port, ends.proto) for t in listen],
                    client_argv=dial.client(ends.target_host, port, ends.proto),
                )
            except KubeError as exc:
                raise JourneyError(str(exc)) from None
            return (None, -1) if app else (received, which)

        report = await follow(
            plan,
            topology,
            traffic,
            self.sessions,
            captures=self._captures,
            emit=emit,
            payload=request.payload,
            ready_timeout=self.ready_timeout,
            privilege=self._privilege,
            linger=self._lingering,
            keep_warm=KEEP_WARM,
        )
        if ends.service is None:
            return report
        nodes = [ends.client.node.name, report.server.node]
        try:  # where the service is translated when Cilium's eBPF does it: shown beside the packets
            maps = await service_maps(kube, nodes, f"{ends.target_ip}:{ends.port}")
        except KubeError as exc:
            return replace(report, problems=(*report.problems, f"Cilium service map not read: {exc}"))
        return replace(report, service_maps=maps)

    async def _listening(self, ends: Ends) -> bool:
        """Does a backend of the target Service already listen on the target port (seen from its node)?"""

        async def one(end: End) -> bool:
            session = self.sessions.get(end.node.name)
            if session is None or not end.pod.netns:
                return False  # not known: a server of ours is started as usual
            # `ss -H -l -t|-u sport = :PORT` prints one line per listening socket, nothing when none
            kind = "-u" if ends.proto == "udp" else "-t"
            argv = in_netns(end.pod.netns, ["ss", "-H", "-l", "-n", kind, f"sport = :{ends.target_port}"])
            try:
                result = await session.run([*self._privilege(end.node.name), *argv], check=False)
            except NodeError:
                return False
            return result.exit_status == 0 and bool(result.stdout.strip())

        return any(await asyncio.gather(*(one(s) for s in ends.servers)))

    async def _tools(
        self, kube: KubeClient, client: tuple[str, str], servers: list[tuple[str, str]]
    ) -> tuple[PodTool, list[PodTool]]:
        """What each pod's image has to dial or listen with; asked once per pod while attached."""
        missing = [s for s in servers if s not in self._listen_tools]
        if client not in self._dial_tools or missing:
            dial, listen = await detect_tools(kube, client, missing)
            self._dial_tools[client] = dial
            self._listen_tools.update(zip(missing, listen, strict=True))
        return self._dial_tools[client], [self._listen_tools[s] for s in servers]

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
        if self._captures is not None:  # our opener leaves: a journey reading the same capture keeps it
            await self._captures.close(spec, self._openers.pop(spec, None))

    async def close(self) -> None:
        if self._captures is not None:  # first: ending a capture needs its node's session
            await self._captures.close_all()
        await asyncio.gather(*self._lingering, return_exceptions=True)
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
